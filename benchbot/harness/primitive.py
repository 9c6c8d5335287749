"""The grasp primitive, identical for the real, dry-run and simulated backends.

Sequence: open → pre-grasp (back along the approach axis) → linear approach → grip →
lift straight up (base +z) → hold → read the gripper. Any exception or Ctrl-C in between
stops the arm (`arm.stop()`) and is re-raised.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchbot.config.protocol import Motion
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Arm, Execution, Gripper
from benchbot.core.types import GraspPose, GripperStatus, Pose


def grasp_in_base(grasp_cam: GraspPose, t_base_camera: np.ndarray) -> GraspPose:
    """A camera-frame grasp expressed in the robot base frame (t_base_camera: 4×4, base ← camera)."""
    t = np.asarray(t_base_camera, dtype=float)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise BenchbotError("camera-to-base transform must be a finite 4×4 matrix",
                            "re-run the hand-eye calibration")
    r = t[:3, :3]
    if np.abs(r.T @ r - np.eye(3)).max() > 1e-4 or np.linalg.det(r) <= 0:
        raise BenchbotError("camera-to-base transform has no proper rotation part",
                            "re-run the hand-eye calibration")
    if grasp_cam.frame != "camera":
        raise BenchbotError(f"grasp is in frame '{grasp_cam.frame}', expected 'camera'",
                            "pass the detector's camera-frame grasp")
    return grasp_cam.transformed(t, "base")


def rotation_angle_rad(r_a: np.ndarray, r_b: np.ndarray) -> float:
    """Angle of the relative rotation between two rotation matrices."""
    c = (np.trace(np.asarray(r_a).T @ np.asarray(r_b)) - 1.0) / 2.0
    return math.acos(float(np.clip(c, -1.0, 1.0)))


def prefer_jaw_orientation(grasp: GraspPose, current: Pose) -> GraspPose:
    """A parallel gripper is symmetric: of the jaw axis and its opposite (θ and θ+π), return the
    grasp whose tool pose needs the smaller rotation from `current`."""
    flipped = GraspPose(grasp.center_m, grasp.approach, -np.asarray(grasp.jaw_axis), grasp.width_m, grasp.frame)
    keep = rotation_angle_rad(current.rotation, grasp.tool_pose().rotation)
    flip = rotation_angle_rad(current.rotation, flipped.tool_pose().rotation)
    return flipped if flip < keep - 1e-9 else grasp


def pregrasp_pose(tool: Pose, offset_m: float) -> Pose:
    """The tool pose `offset_m` back along its approach axis (tool z)."""
    return Pose(tool.position_m - offset_m * tool.rotation[:, 2], tool.rotation, tool.frame)


def lifted_pose(tool: Pose, lift_m: float) -> Pose:
    """The tool pose raised straight up (base +z) by `lift_m`, same orientation."""
    return Pose(tool.position_m + np.array([0.0, 0.0, lift_m]), tool.rotation, tool.frame)


def _status_record(s: GripperStatus | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"activated": s.activated, "moving": s.moving, "object_detected": s.object_detected,
            "position_m": s.position_m, "fault": s.fault}


class _Recorder:
    """Runs steps, logging each with its start time (from the primitive's start) and duration."""

    def __init__(self, clock: Callable[[], float], log: list[dict[str, Any]] | None = None) -> None:
        self.clock = clock
        self.t0 = clock()
        self.log: list[dict[str, Any]] = log if log is not None else []

    def run(self, step: str, fn: Callable[[], Any], **info: Any) -> Any:
        entry: dict[str, Any] = {"step": step, **info, "t_s": self.clock() - self.t0}
        self.log.append(entry)
        result = fn()
        entry["duration_s"] = self.clock() - self.t0 - entry["t_s"]
        if isinstance(result, GripperStatus):
            entry["status"] = _status_record(result)
        return result


def _pose_info(pose: Pose, speed_mps: float, accel_mps2: float) -> dict[str, Any]:
    return {"pose": pose.as_record(), "speed_mps": speed_mps, "accel_mps2": accel_mps2}


def execute_grasp(arm: Arm, gripper: Gripper, grasp: GraspPose, motion: Motion, opening_m: float, *,
                  force: float = 1.0, grip_speed: float = 1.0, choose_jaw: bool = True,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.perf_counter,
                  log: list[dict[str, Any]] | None = None) -> Execution:
    """Run the grasp primitive for a base-frame grasp; return the Execution with a full log.

    `force`/`grip_speed` are the gripper fractions (protocol `gripper.force`/`speed`).
    With `choose_jaw`, the jaw orientation needing the smaller wrist rotation is used.
    `log`: a list to append the steps to as they run, so a caller keeps the partial log
    when the primitive raises (the Execution's log is that same list).
    """
    if grasp.frame != "base":
        raise BenchbotError(f"grasp is in frame '{grasp.frame}', expected 'base'",
                            "convert it with grasp_in_base(grasp, t_base_camera)")
    rec = _Recorder(clock, log)
    try:
        if choose_jaw:
            grasp = prefer_jaw_orientation(grasp, arm.current_pose())
        tool = grasp.tool_pose()
        pre = pregrasp_pose(tool, motion.pregrasp_offset_m)
        lift = lifted_pose(tool, motion.lift_height_m)
        rec.run("open", lambda: gripper.open(opening_m), width_m=opening_m)
        rec.run("pregrasp", lambda: arm.move_linear(pre, motion.speed_mps, motion.accel_mps2),
                **_pose_info(pre, motion.speed_mps, motion.accel_mps2))
        rec.run("approach", lambda: arm.move_linear(tool, motion.approach_speed_mps, motion.accel_mps2),
                **_pose_info(tool, motion.approach_speed_mps, motion.accel_mps2))
        rec.run("grip", lambda: gripper.grip(force, grip_speed), force=force, speed=grip_speed)
        rec.run("lift", lambda: arm.move_linear(lift, motion.speed_mps, motion.accel_mps2),
                **_pose_info(lift, motion.speed_mps, motion.accel_mps2))
        rec.run("hold", lambda: sleep(motion.hold_s), hold_s=motion.hold_s)
        status = rec.run("status", gripper.status)
    except BaseException as exc:  # KeyboardInterrupt included: stop the arm, then re-raise
        _stop_after(arm, rec, exc)
        raise
    return Execution(grasp_pose=grasp, gripper=status, lifted_m=None, log=rec.log)


def release(arm: Arm, gripper: Gripper, opening_m: float, drop_pose: Pose | None, motion: Motion, *,
            clock: Callable[[], float] = time.perf_counter,
            log: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Optionally move to `drop_pose`, then open the gripper; return the log of commands."""
    rec = _Recorder(clock, log)
    try:
        if drop_pose is not None:
            rec.run("drop", lambda: arm.move_linear(drop_pose, motion.speed_mps, motion.accel_mps2),
                    **_pose_info(drop_pose, motion.speed_mps, motion.accel_mps2))
        rec.run("open", lambda: gripper.open(opening_m), width_m=opening_m)
    except BaseException as exc:
        _stop_after(arm, rec, exc)
        raise
    return rec.log


def go_home(arm: Arm) -> None:
    """Send the arm to its configured home; stop it if that is interrupted."""
    try:
        arm.home()
    except BaseException:
        _safe_stop(arm)
        raise


def _stop_after(arm: Arm, rec: _Recorder, exc: BaseException) -> None:
    entry: dict[str, Any] = {"step": "stop", "t_s": rec.clock() - rec.t0, "reason": type(exc).__name__}
    rec.log.append(entry)
    entry["stop_error"] = _safe_stop(arm)


def _safe_stop(arm: Arm) -> str | None:
    """Stop the arm without masking the exception being handled; return the stop's own error."""
    try:
        arm.stop()
    except Exception as e:  # the original error matters more; the stop failure is logged
        return f"{type(e).__name__}: {e}"
    return None

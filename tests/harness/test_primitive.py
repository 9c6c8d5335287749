"""Grasp primitive on the dry-run arm behind the safety gate, with a scripted gripper."""
from __future__ import annotations

import numpy as np
import pytest

from benchbot.config.protocol import Motion
from benchbot.core.errors import BenchbotError, DeviceError, UnsafeMotionError
from benchbot.core.types import GraspPose, GripperStatus, Pose
from benchbot.devices.arms.dryrun import TOOL_DOWN, DryRunArm
from benchbot.devices.safety import GatedArm, SafetyGate, tilt_deg
from benchbot.harness.primitive import (
    execute_grasp,
    go_home,
    grasp_in_base,
    prefer_jaw_orientation,
    release,
    rotation_angle_rad,
)

MOTION = Motion(hold_s=1.5)


class ScriptedGripper:
    def __init__(self, holds_object: bool = True) -> None:
        self.holds_object = holds_object
        self.calls: list[tuple] = []
        self.width_m = 0.0

    def activate(self) -> None: ...
    def close(self) -> None: ...

    def open(self, width_m: float) -> GripperStatus:
        self.calls.append(("open", width_m))
        self.width_m = width_m
        return self.status()

    def grip(self, force: float = 1.0, speed: float = 1.0) -> GripperStatus:
        self.calls.append(("grip", force, speed))
        self.width_m = 0.03 if self.holds_object else 0.0
        return self.status()

    def status(self) -> GripperStatus:
        return GripperStatus(True, False, self.holds_object and self.width_m < 0.085, self.width_m)


class CountingClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 0.25
        return self.t


def base_grasp(x=0.45, y=0.05, z=0.03, jaw=(0.0, 1.0, 0.0)) -> GraspPose:
    return GraspPose(np.array([x, y, z]), np.array([0.0, 0.0, -1.0]), np.array(jaw, float), 0.04, "base")


def rig(**arm_kw):
    backend = DryRunArm(**arm_kw)
    arm = GatedArm(backend, SafetyGate())
    arm.connect()
    return backend, arm


def test_sequence_poses_speeds_and_log():
    backend, arm = rig()
    gripper = ScriptedGripper()
    slept: list[float] = []
    ex = execute_grasp(arm, gripper, base_grasp(), MOTION, 0.085, force=0.5, grip_speed=0.4,
                       sleep=slept.append, clock=CountingClock())
    assert [e["step"] for e in ex.log] == ["open", "pregrasp", "approach", "grip", "lift", "hold", "status"]
    moves = [e for e in backend.log if e["cmd"] == "move_linear"]
    assert [m["pose"][:3] for m in moves] == [[0.45, 0.05, 0.13], [0.45, 0.05, 0.03], [0.45, 0.05, 0.18]]
    assert [m["speed_mps"] for m in moves] == [MOTION.speed_mps, MOTION.approach_speed_mps, MOTION.speed_mps]
    assert gripper.calls == [("open", 0.085), ("grip", 0.5, 0.4)]
    assert slept == [1.5]
    assert ex.gripper is not None and ex.gripper.object_detected
    assert ex.log[3]["status"]["object_detected"] is True
    assert all(e["duration_s"] > 0 and e["t_s"] >= 0 for e in ex.log)
    assert ex.grasp_pose is not None and ex.grasp_pose.frame == "base"
    final = backend.current_pose()
    assert tilt_deg(final.rotation) == pytest.approx(0.0, abs=1e-9)


def test_jaw_orientation_takes_the_smaller_wrist_rotation():
    current = Pose(np.zeros(3), TOOL_DOWN, "base")  # tool x along base +x
    g = base_grasp(jaw=(-1.0, 0.05, 0.0))
    chosen = prefer_jaw_orientation(g, current)
    assert chosen.jaw_axis[0] > 0
    assert rotation_angle_rad(current.rotation, chosen.tool_pose().rotation) < 0.1
    same = prefer_jaw_orientation(base_grasp(jaw=(1.0, 0.0, 0.0)), current)
    assert same.jaw_axis[0] == 1.0


def test_primitive_uses_the_chosen_jaw_orientation():
    backend, arm = rig()
    execute_grasp(arm, ScriptedGripper(), base_grasp(jaw=(-1.0, 0.0, 0.0)), MOTION, 0.085, sleep=lambda s: None)
    assert rotation_angle_rad(backend.current_pose().rotation, TOOL_DOWN) < 1e-6


def test_device_error_mid_primitive_stops_the_arm_and_reraises():
    backend, arm = rig()
    backend.inject("protective_stop", after_moves=1)  # during the approach
    gripper = ScriptedGripper()
    partial: list[dict] = []
    with pytest.raises(DeviceError, match="protective stop"):
        execute_grasp(arm, gripper, base_grasp(), MOTION, 0.085, sleep=lambda s: None, log=partial)
    assert backend.log[-1]["cmd"] == "stop"
    assert [c[0] for c in gripper.calls] == ["open"]  # never gripped
    assert [e["step"] for e in partial] == ["open", "pregrasp", "approach", "stop"]
    assert partial[-1]["reason"] == "DeviceError" and partial[-1]["stop_error"] is None


def test_ctrl_c_during_hold_stops_the_arm():
    backend, arm = rig()

    def interrupted(_s: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_grasp(arm, ScriptedGripper(), base_grasp(), MOTION, 0.085, sleep=interrupted)
    assert backend.log[-1]["cmd"] == "stop"


def test_grasp_below_the_table_never_reaches_the_backend():
    backend, arm = rig()
    with pytest.raises(UnsafeMotionError, match="table"):
        execute_grasp(arm, ScriptedGripper(), base_grasp(z=-0.01), MOTION, 0.085, sleep=lambda s: None)
    assert all(e["pose"][2] >= 0 for e in backend.log if e["cmd"] == "move_linear")
    assert backend.log[-1]["cmd"] == "stop"


def test_camera_frame_grasp_is_refused():
    _, arm = rig()
    g = GraspPose(np.zeros(3), np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), 0.04, "camera")
    with pytest.raises(BenchbotError, match="expected .base."):
        execute_grasp(arm, ScriptedGripper(), g, MOTION, 0.085)


def test_grasp_in_base_for_a_camera_looking_down():
    # camera 0.70 m above the table at (0.5, 0, 0.7): camera z → base −z, x → base −y, y → base −x
    t = np.eye(4)
    t[:3, :3] = np.array([[0, -1, 0], [-1, 0, 0], [0, 0, -1]], float)
    t[:3, 3] = [0.5, 0.0, 0.7]
    g_cam = GraspPose(np.array([0.02, -0.01, 0.68]), np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), 0.04, "camera")
    g = grasp_in_base(g_cam, t)
    assert g.frame == "base"
    assert np.allclose(g.center_m, [0.51, -0.02, 0.02])
    assert np.allclose(g.approach, [0, 0, -1]) and np.allclose(g.jaw_axis, [0, -1, 0])
    assert tilt_deg(g.tool_pose().rotation) == pytest.approx(0.0)
    with pytest.raises(BenchbotError):
        grasp_in_base(g_cam, np.eye(3))
    with pytest.raises(BenchbotError):
        grasp_in_base(g, t)  # already in base


def test_release_and_home():
    backend, arm = rig()
    gripper = ScriptedGripper()
    drop = Pose(np.array([0.3, -0.3, 0.3]), TOOL_DOWN, "base")
    log = release(arm, gripper, 0.085, drop, MOTION)
    assert [e["step"] for e in log] == ["drop", "open"]
    assert np.allclose(backend.current_pose().position_m, drop.position_m)
    assert release(arm, gripper, 0.05, None, MOTION)[0]["step"] == "open"
    go_home(arm)
    assert backend.log[-1]["cmd"] == "home"

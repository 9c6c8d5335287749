"""The calibration motion: poses around the board centre, moving the (gated) arm through them,
detecting the board at each and solving the hand-eye problem."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from benchbot.calibration.board import BoardSpec, detect_board
from benchbot.calibration.calfile import Calibration, calibration_from_result
from benchbot.calibration.handeye import MIN_POSES, HandEyeResult, solve_hand_eye
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.geometry import TOOL_DOWN
from benchbot.core.types import Intrinsics, Pose

DEFAULT_TILT_DEG = 35.0  # board tilt of the calibration poses: ≥ 35° constrains the rotation well
MAX_TILT_DEG = 60.0
POSE_Z_SPAN_M = 0.06  # the calibration poses step up and down by half of this around the centre


ImageSource = Callable[[], np.ndarray]


def intensity_source(camera: Any) -> ImageSource:
    """The camera's IR/intensity image grabber (`capture_ir()`), for board detection."""
    grab = getattr(camera, "capture_ir", None)
    if grab is None:
        raise BenchbotError(f"camera {type(camera).__name__} gives no IR/intensity image for board detection",
                            "calibrate with a kinect2 or k4a camera")
    return grab


def calibration_poses(center_m: Sequence[float], n: int = 12, tilt_deg: float = DEFAULT_TILT_DEG,
                      radius_m: float = 0.08, z_span_m: float = POSE_Z_SPAN_M,
                      base_rotation: np.ndarray | None = None) -> list[Pose]:
    """Arm poses around `center_m` (base frame, where the camera sees the board), with the tool
    tilted about varying horizontal axes and turned about its own axis: what a good hand-eye
    calibration needs. base_rotation: the tool orientation at zero tilt (default: pointing down)."""
    base = TOOL_DOWN if base_rotation is None else np.asarray(base_rotation, float)
    c = np.asarray(center_m, float)
    poses = []
    for i in range(n):
        phi = 2.0 * math.pi * i / n
        axis = np.array([math.cos(phi), math.sin(phi), 0.0])
        tilt = Rotation.from_rotvec(math.radians(tilt_deg) * axis)
        twist = Rotation.from_rotvec([0.0, 0.0, math.radians(25.0 * math.sin(3 * phi))])
        r = tilt.as_matrix() @ base @ twist.as_matrix()
        p = c + np.array([radius_m * math.cos(phi + 0.7), radius_m * math.sin(phi + 0.7),
                          z_span_m * (i % 3 - 1) / 2.0])
        poses.append(Pose(p, r, "base"))
    return poses


@dataclass
class CollectedPoses:
    T_base_gripper: list[np.ndarray] = field(default_factory=list)
    T_camera_board: list[np.ndarray] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # pose indices where the board was not seen
    reprojection_px: list[float] = field(default_factory=list)


def collect_poses(arm: Any, images: ImageSource, poses: Sequence[Pose], board: BoardSpec, intr: Intrinsics,
                  speed_mps: float = 0.1, accel_mps2: float = 0.3, settle: Callable[[], None] | None = None,
                  dist: np.ndarray | None = None) -> CollectedPoses:
    """Move the arm through `poses`; at each, grab an image, detect the board, and pair the
    arm's reported pose with the board pose. Poses must already be safe (caller gates them)."""
    out = CollectedPoses()
    for i, pose in enumerate(poses):
        arm.move_linear(pose, speed_mps, accel_mps2)
        if settle is not None:
            settle()
        obs = detect_board(images(), board, intr, dist)
        if obs is None:
            out.skipped.append(i)
            continue
        out.T_base_gripper.append(arm.current_pose().as_matrix())
        out.T_camera_board.append(obs.T_camera_board)
        out.reprojection_px.append(obs.reprojection_px)
    return out


def run_calibration(arm: Any, camera: Any, poses: Sequence[Pose], board: BoardSpec, intr: Intrinsics | None = None,
                    speed_mps: float = 0.1, accel_mps2: float = 0.3, settle: Callable[[], None] | None = None,
                    camera_serial: str | None = None,
                    camera_kind: str | None = None) -> tuple[Calibration, HandEyeResult]:
    """The whole `benchbot calibrate` motion: collect poses with `arm` and `camera`, solve, and
    return the calibration (not yet saved) with the solver's details."""
    intr = intr or camera.intrinsics
    got = collect_poses(arm, intensity_source(camera), poses, board, intr, speed_mps, accel_mps2, settle)
    if len(got.T_base_gripper) < MIN_POSES:
        raise DeviceError(f"board seen in only {len(got.T_base_gripper)} of {len(poses)} poses",
                          "check that the board is in view, lit, and matches the board settings")
    res = solve_hand_eye(got.T_base_gripper, got.T_camera_board)
    cal = calibration_from_result(res, len(got.T_base_gripper) - len(res.rejected), camera_serial, camera_kind,
                                  intr, board)
    return cal, res

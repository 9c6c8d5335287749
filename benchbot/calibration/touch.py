"""Checking a calibration by touch: the TCP, guided by hand in freedrive, touches board corners
whose positions the calibration predicts; the report gives the errors."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchbot.calibration.board import BoardSpec, board_points_in_camera, detect_board
from benchbot.calibration.calfile import Calibration
from benchbot.calibration.procedure import TOOL_DOWN, intensity_source
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.geometry import transform_points
from benchbot.core.types import Intrinsics, Pose


@dataclass
class CheckReport:
    """Touch-point check: where the TCP touched vs where the calibration predicts the point."""

    predicted_base_m: np.ndarray  # (N, 3)
    measured_base_m: np.ndarray  # (N, 3)
    errors_mm: np.ndarray  # (N,) Euclidean
    errors_xyz_mm: np.ndarray  # (N, 3) measured − predicted

    @property
    def mean_mm(self) -> float:
        return float(self.errors_mm.mean())

    @property
    def max_mm(self) -> float:
        return float(self.errors_mm.max())

    def ok(self, tolerance_mm: float = 5.0) -> bool:
        return self.max_mm <= tolerance_mm

    def rows(self) -> list[dict[str, float]]:
        return [{"point": i, "error_mm": round(float(e), 2), "dx_mm": round(float(d[0]), 2),
                 "dy_mm": round(float(d[1]), 2), "dz_mm": round(float(d[2]), 2)}
                for i, (e, d) in enumerate(zip(self.errors_mm, self.errors_xyz_mm, strict=True))]


def check_calibration(T_base_camera: np.ndarray, points_camera_m: np.ndarray,
                      touched_base_m: np.ndarray) -> CheckReport:
    """Compare points seen by the camera (camera frame), mapped through the calibration, with the
    same points touched by the TCP (base frame)."""
    pc = np.asarray(points_camera_m, float).reshape(-1, 3)
    pb = np.asarray(touched_base_m, float).reshape(-1, 3)
    if len(pc) != len(pb) or len(pc) == 0:
        raise BenchbotError(f"{len(pc)} camera points but {len(pb)} touched points", "touch every listed point once")
    pred = transform_points(np.asarray(T_base_camera, float), pc)
    diff = (pb - pred) * 1000.0
    return CheckReport(pred, pb, np.linalg.norm(diff, axis=1), diff)


def run_touch_check(arm: Any, camera: Any, board: BoardSpec, cal: Calibration, operator: Any,
                    indices: Sequence[int] = (0, -1), hover_m: float = 0.03, speed_mps: float = 0.05,
                    accel_mps2: float = 0.3, tool_rotation: np.ndarray | None = None,
                    intr: Intrinsics | None = None) -> CheckReport:
    """`benchbot check-calibration`: detect the board lying on the table, move the TCP to hover
    `hover_m` above each chosen corner as predicted by the calibration, switch the arm to freedrive
    (ur_rtde teachMode: no pendant jogging, which remote control forbids) for the operator to guide
    the TCP onto the corner by hand, read back where the TCP really is, and lift straight up."""
    intr = intr or camera.intrinsics
    obs = detect_board(intensity_source(camera)(), board, intr)
    if obs is None:
        raise DeviceError("calibration board not found in the camera image",
                          "lay the board flat on the table in view of the camera")
    cam_pts = board_points_in_camera(obs, board, indices)
    pred = transform_points(cal.T_base_camera, cam_pts)
    rot = TOOL_DOWN if tool_rotation is None else tool_rotation
    touched = []
    for k, p in zip(indices, pred, strict=True):
        arm.move_linear(Pose(p + np.array([0.0, 0.0, hover_m]), rot, "base"), speed_mps, accel_mps2)
        touched.append(_touch_by_hand(arm, operator, k, hover_m))
        here = arm.current_pose()
        arm.move_linear(Pose(here.position_m + np.array([0.0, 0.0, hover_m]), here.rotation, "base"),
                        speed_mps, accel_mps2)
    return check_calibration(cal.T_base_camera, cam_pts, np.array(touched))


def _touch_by_hand(arm: Any, operator: Any, corner: int, hover_m: float) -> np.ndarray:
    """Freedrive on, the operator guides the TCP onto the corner and confirms, freedrive off
    (the arm then holds still); the TCP position there."""
    arm.start_freedrive()
    try:
        ok = operator.confirm(f"Freedrive is on: guide the TCP by hand onto board corner {corner} (it hovers "
                              f"{hover_m * 1000:.0f} mm above the predicted point), hold it there and confirm")
    finally:
        arm.end_freedrive()
    if not ok:
        raise BenchbotError("calibration check cancelled by the operator", "run it again when ready")
    return arm.current_pose().position_m

"""Can the camera see the calibration board where the robot will hold it?

Depth cameras have a working range (Kinect v2 0.5–4.5 m; Azure Kinect NFOV unbinned 0.5–3.86 m);
the board is found in the same sensor's IR image, so it is held where that sensor works. Before
`benchbot calibrate` waves the board through its tilted poses, the arm holds it untilted at the
calibration centre, the board is detected, and its distance from the camera must leave room for
the poses' height changes. Otherwise the calibration is refused with a one-line fix.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError

KINECT2_RANGE_M = (0.5, 4.5)
K4A_RANGE_M = {"NFOV_UNBINNED": (0.5, 3.86), "NFOV_2X2BINNED": (0.5, 5.46),
               "WFOV_UNBINNED": (0.25, 2.21), "WFOV_2X2BINNED": (0.25, 2.88)}
RANGE_MARGIN_M = 0.05  # kept free beyond the calibration poses' own height span


def depth_range_m(kind: str, depth_mode: str = "NFOV_UNBINNED") -> tuple[float, float] | None:
    """(min, max) distance a live camera measures; None for cameras without one (replay, simulation)."""
    if kind == "kinect2":
        return KINECT2_RANGE_M
    if kind == "k4a":
        return K4A_RANGE_M[depth_mode]
    return None


def allowed_board_distance_m(kind: str, depth_mode: str, z_span_m: float) -> tuple[float, float] | None:
    """Board-centre distances at the calibration centre that keep every pose inside the range."""
    rng = depth_range_m(kind, depth_mode)
    if rng is None:
        return None
    slack = z_span_m / 2.0 + RANGE_MARGIN_M
    return rng[0] + slack, rng[1] - slack


def check_board_distance(distance_m: float, kind: str, depth_mode: str, z_span_m: float) -> None:
    """Raise BenchbotError when a board `distance_m` from the camera is outside what it can range."""
    allowed, camera_range = allowed_board_distance_m(kind, depth_mode, z_span_m), depth_range_m(kind, depth_mode)
    if allowed is None or camera_range is None:
        return
    lo, hi = allowed
    if distance_m < lo:
        raise BenchbotError(f"the board at the calibration centre is {distance_m:.2f} m from the {kind} camera: "
                            f"closer than its {camera_range[0]} m minimum range allows "
                            f"(need ≥ {lo:.2f} m)",
                            f"lower calibration_center_m (or --center) by ≥ {lo - distance_m:.2f} m, "
                            "away from the camera")
    if distance_m > hi:
        raise BenchbotError(f"the board at the calibration centre is {distance_m:.2f} m from the {kind} camera, "
                            f"beyond its range (need ≤ {hi:.2f} m)",
                            f"move calibration_center_m (or --center) ≥ {distance_m - hi:.2f} m closer to the camera")


def measure_board_distance(arm: Any, camera: Any, board: Any, center_m: Sequence[float], speed_mps: float,
                           settle: Callable[[], None] | None = None) -> float:
    """Hold the board untilted at the centre, detect it; its centre's distance from the camera (m)."""
    from benchbot.calibration.board import detect_board
    from benchbot.calibration.procedure import TOOL_DOWN, intensity_source
    from benchbot.core.types import Pose

    arm.move_linear(Pose(np.asarray(center_m, float), TOOL_DOWN, "base"), speed_mps, 0.3)
    if settle is not None:
        settle()
    obs = detect_board(intensity_source(camera)(), board, camera.intrinsics)
    if obs is None:
        raise BenchbotError("the calibration board is not found with the arm at the calibration centre",
                            "check that the board faces the camera, is lit and in its view there "
                            "(calibration_center_m or --center)")
    t = obs.T_camera_board
    centre = t[:3, :3] @ board.corner_points().mean(axis=0) + t[:3, 3]
    return float(np.linalg.norm(centre))

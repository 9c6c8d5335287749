"""The CLI workflows `benchbot calibrate` and `benchbot check-calibration` on a hardware config."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchbot.calibration.board import BoardSpec
from benchbot.calibration.calfile import Calibration, require_calibration, save_calibration
from benchbot.calibration.handeye import HandEyeResult
from benchbot.calibration.procedure import (
    DEFAULT_TILT_DEG,
    MAX_TILT_DEG,
    POSE_Z_SPAN_M,
    calibration_poses,
    run_calibration,
)
from benchbot.calibration.touch import CheckReport, run_touch_check
from benchbot.config.hardware import load_hardware
from benchbot.core.errors import BenchbotError
from benchbot.devices.cameras import make_camera
from benchbot.devices.safety import DEFAULT_MAX_TILT_DEG, make_gated_arm


def calibrate_hardware(hw_path: str | Path, out: str | Path | None = None, n_poses: int = 12,
                       tilt_deg: float = DEFAULT_TILT_DEG, center_m: Sequence[float] | None = None,
                       board: BoardSpec | None = None, speed_mps: float = 0.1, settle_s: float = 0.5,
                       arm_factory: Callable[..., Any] | None = None,
                       camera_factory: Callable[[Any], Any] | None = None,
                       sleep: Callable[[float], None] | None = None) -> tuple[Calibration, HandEyeResult, Path]:
    """`benchbot calibrate`: home, hold the board at the centre (`--center` or the config's
    calibration_center_m) and refuse if the camera cannot range it there, wave it through `n_poses`
    poses tilted `tilt_deg`, home, solve and save the calibration (to `out`, else the config's
    `calibration:` path, else calibration.yaml beside the config). The safety gate allows the tilt.
    `arm_factory(hw, **safety_limit_overrides)` builds the gated arm (default: make_gated_arm)."""
    import time

    from benchbot.calibration.camera_range import check_board_distance, measure_board_distance

    hw = load_hardware(hw_path)
    center = center_m if center_m is not None else hw.calibration_center_m
    if center is None:
        raise BenchbotError("no calibration centre: where should the robot show the board to the camera?",
                            "set calibration_center_m in the hardware YAML or pass --center x,y,z")
    if not 0.0 < tilt_deg <= MAX_TILT_DEG:
        raise BenchbotError(f"calibration tilt {tilt_deg}° outside (0, {MAX_TILT_DEG:.0f}]°",
                            f"use --tilt {DEFAULT_TILT_DEG:.0f} (≥ 35° constrains the camera rotation well)")
    board = board or BoardSpec()
    path = Path(out) if out else Path(hw.calibration) if hw.calibration else Path(hw_path).parent / "calibration.yaml"
    pause = sleep or time.sleep
    camera = (camera_factory or make_camera)(hw)
    try:
        arm = (arm_factory or make_gated_arm)(hw, max_tilt_deg=max(DEFAULT_MAX_TILT_DEG, tilt_deg))
        try:
            arm.home()
            poses = calibration_poses(center, n_poses, tilt_deg)
            distance = measure_board_distance(arm, camera, board, center, speed_mps, lambda: pause(settle_s))
            try:
                check_board_distance(distance, hw.camera.kind, hw.camera.depth_mode, POSE_Z_SPAN_M)
            except BenchbotError:
                arm.home()
                raise
            serial = hw.camera.serial or getattr(camera, "serial", None)
            cal, res = run_calibration(arm, camera, poses, board, speed_mps=speed_mps,
                                       settle=lambda: pause(settle_s), camera_serial=serial,
                                       camera_kind=hw.camera.kind)
            arm.home()
        finally:
            arm.close()
    finally:
        camera.close()
    save_calibration(path, cal)
    cal.path = path
    return cal, res, path


def check_hardware(hw_path: str | Path, operator: Any, indices: Sequence[int] = (0, 5, 18, 23),
                   board: BoardSpec | None = None, hover_m: float = 0.03,
                   arm_factory: Callable[[Any], Any] | None = None,
                   camera_factory: Callable[[Any], Any] | None = None) -> CheckReport:
    """`benchbot check-calibration`: touch chosen corners of the board lying on the table (guiding
    the TCP by hand in freedrive) and compare with the calibration's prediction (default corners:
    the four outer ones of a 7×5 ChArUco)."""

    hw = load_hardware(hw_path)
    cal = require_calibration(hw)
    board = board or cal.board or BoardSpec()
    camera = (camera_factory or make_camera)(hw)
    try:
        arm = (arm_factory or make_gated_arm)(hw)
        try:
            arm.home()
            report = run_touch_check(arm, camera, board, cal, operator, indices, hover_m)
            arm.home()
        finally:
            arm.close()
    finally:
        camera.close()
    return report

"""The calibration file: where the camera is in the robot base frame (`benchbot calibrate` writes
it, runs on real hardware read it through `require_calibration`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from benchbot.calibration.board import BoardSpec
from benchbot.calibration.handeye import HandEyeResult
from benchbot.config.hardware import EXAMPLE, HardwareConfig
from benchbot.config.protocol import _read_yaml, validation_error, write_yaml_atomic
from benchbot.core.errors import BenchbotError
from benchbot.core.types import Intrinsics


class _CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    T_base_camera: tuple[tuple[float, float, float, float], ...]
    method: str
    residual_mm: float = Field(ge=0.0)
    residual_max_mm: float | None = Field(None, ge=0.0)
    residual_deg: float = Field(ge=0.0)
    residual_max_deg: float | None = Field(None, ge=0.0)
    n_poses: int = Field(ge=1)
    created_at: str
    camera_serial: str | None = None
    camera_kind: str | None = None
    intrinsics: dict[str, float] | None = None
    board: BoardSpec | None = None
    T_gripper_board: tuple[tuple[float, float, float, float], ...] | None = None
    notes: str = ""

    @field_validator("T_base_camera", "T_gripper_board")
    @classmethod
    def _rigid(cls, v: Any) -> Any:
        if v is None:
            return v
        m = np.asarray(v, float)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise ValueError("must be a 4×4 homogeneous transform (last row 0 0 0 1)")
        r = m[:3, :3]
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
            raise ValueError("rotation part is not a proper rotation matrix")
        return v


@dataclass
class Calibration:
    """Where the camera is in the robot base frame: p_base = T_base_camera · p_camera."""

    T_base_camera: np.ndarray
    method: str
    residual_mm: float
    residual_deg: float
    n_poses: int
    created_at: str
    camera_serial: str | None = None
    camera_kind: str | None = None
    residual_max_mm: float | None = None
    residual_max_deg: float | None = None
    intrinsics: dict[str, float] | None = None
    board: BoardSpec | None = None
    T_gripper_board: np.ndarray | None = None
    notes: str = ""
    path: Path | None = None

    def age_days(self, now: Any = None) -> float | None:
        import datetime as dt

        try:
            t = dt.datetime.fromisoformat(self.created_at)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        now = now or dt.datetime.now(dt.UTC)
        return (now - t).total_seconds() / 86400.0


def calibration_from_result(res: HandEyeResult, n_poses: int, camera_serial: str | None = None,
                            camera_kind: str | None = None, intrinsics: Intrinsics | None = None,
                            board: BoardSpec | None = None) -> Calibration:
    from benchbot.devices.cameras.recording import utc_now

    return Calibration(res.T_base_camera, res.method, res.residual_mm, res.residual_deg, n_poses, utc_now(),
                       camera_serial, camera_kind, res.residual_max_mm, res.residual_max_deg,
                       intrinsics.to_dict() if intrinsics else None, board, res.T_gripper_board)


def save_calibration(path: str | Path, cal: Calibration) -> Path:
    """Write a calibration YAML (atomically: temp file then rename)."""
    path = Path(path)
    data: dict[str, Any] = {
        "T_base_camera": [[round(float(v), 9) for v in row] for row in cal.T_base_camera],
        "method": cal.method, "residual_mm": round(float(cal.residual_mm), 4),
        "residual_max_mm": None if cal.residual_max_mm is None else round(float(cal.residual_max_mm), 4),
        "residual_deg": round(float(cal.residual_deg), 5),
        "residual_max_deg": None if cal.residual_max_deg is None else round(float(cal.residual_max_deg), 5),
        "n_poses": int(cal.n_poses), "created_at": cal.created_at, "camera_serial": cal.camera_serial,
        "camera_kind": cal.camera_kind, "intrinsics": cal.intrinsics,
        "board": cal.board.model_dump() if cal.board else None,
        "T_gripper_board": None if cal.T_gripper_board is None else
        [[round(float(v), 9) for v in row] for row in cal.T_gripper_board],
        "notes": cal.notes,
    }
    _CalibrationFile.model_validate(data)  # never write what we could not read back
    return write_yaml_atomic(path, data, "camera-to-robot-base calibration (benchbot calibrate): "
                                         "p_base = T_base_camera @ p_camera")


def load_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration YAML; raises BenchbotError (one line) on any problem."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise BenchbotError(f"{path}: expected a mapping at the top level", "re-run `benchbot calibrate`")
    try:
        f = _CalibrationFile.model_validate(data)
    except ValidationError as e:
        err = validation_error(path, e, EXAMPLE)
        raise BenchbotError(err.message, "fix the file or re-run `benchbot calibrate`") from None
    return Calibration(np.asarray(f.T_base_camera, float), f.method, f.residual_mm, f.residual_deg, f.n_poses,
                       f.created_at, f.camera_serial, f.camera_kind, f.residual_max_mm, f.residual_max_deg,
                       f.intrinsics, f.board, None if f.T_gripper_board is None else np.asarray(f.T_gripper_board),
                       f.notes, path)


def require_calibration(cfg: HardwareConfig) -> Calibration:
    """The camera-to-base calibration for a run on this hardware; raises BenchbotError when it is
    missing or invalid (runs on real hardware must not start without one)."""
    if not cfg.calibration:
        raise BenchbotError("no camera-to-robot calibration in the hardware config",
                            "run `benchbot calibrate --hardware <hw.yaml>` and set 'calibration:' to its output")
    p = Path(cfg.calibration)
    if not p.is_file():
        raise BenchbotError(f"calibration file {p} not found",
                            "run `benchbot calibrate --hardware <hw.yaml>` (or fix the 'calibration:' path)")
    cal = load_calibration(p)
    if cal.camera_serial and cfg.camera.serial and cal.camera_serial != cfg.camera.serial:
        raise BenchbotError(f"calibration {p} was made for camera {cal.camera_serial}, the config uses "
                            f"{cfg.camera.serial}", "run `benchbot calibrate --hardware <hw.yaml>` for this camera")
    return cal

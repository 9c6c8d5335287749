"""`benchbot record`: capture frames from the configured camera into a recording folder."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchbot.calibration.calfile import load_calibration
from benchbot.config.hardware import load_hardware
from benchbot.core.interfaces import Camera
from benchbot.devices.cameras import make_camera
from benchbot.devices.cameras.recording import record
from benchbot.perception.table import TablePlane


def record_from_hardware(hw_path: str | Path, out: str | Path, n_frames: int, interval_s: float = 0.0,
                         fmt: str = "png", notes: str = "",
                         camera_factory: Callable[..., Camera] | None = None) -> Path:
    """Capture `n_frames` from the configured camera into `out`. With a calibration, the camera
    pose and table distance go into intrinsics.yaml too."""
    hw = load_hardware(hw_path)
    extra: dict[str, Any] = {}
    if hw.calibration and Path(hw.calibration).is_file():
        t = load_calibration(hw.calibration).T_base_camera
        extra["T_camera_world"] = {"from_frame": "camera", "to_frame": "robot_base",
                                   "translation": [float(v) for v in t[:3, 3]],
                                   "rotation": [[float(v) for v in row] for row in t[:3, :3]]}
        plane = TablePlane.from_calibration(t, hw.table_z_m)
        if plane is not None:
            extra["table_distance_m"] = round(plane.axis_distance_m, 4)
    camera = (camera_factory or make_camera)(hw)
    try:
        meta = {"camera_kind": hw.camera.kind, "serial": hw.camera.serial or getattr(camera, "serial", None),
                "source": f"benchbot record --hardware {hw_path}", "notes": notes,
                "median_frames": hw.camera.median_frames}
        return record(camera, out, n_frames, interval_s, meta, fmt=fmt, extra_intrinsics=extra)  # type: ignore[arg-type]
    finally:
        camera.close()

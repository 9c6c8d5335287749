"""Depth cameras behind `benchbot.core.interfaces.Camera`, built from the hardware config.

`CAMERA_KINDS` maps a config `camera.kind` to its factory: either a callable
`factory(cfg: CameraConfig, **context) -> Camera` or a lazy "module:function" string (so hardware
packages are only imported when that kind is used). Other backends plug in with
`register_camera_kind` (the MuJoCo camera: kind "mujoco", module benchbot.devices.cameras.mujoco,
function `from_config(cfg, **context)`, context e.g. the running simulation).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from benchbot.config.hardware import CameraConfig, HardwareConfig
from benchbot.config.robot import CAMERA_KIND_NAMES
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Camera

CameraFactory = Callable[..., Camera]

CAMERA_KINDS: dict[str, str | CameraFactory] = {
    "replay": "benchbot.devices.cameras.replay:replay_from_config",
    "kinect2": "benchbot.devices.cameras.kinect2:from_config",
    "k4a": "benchbot.devices.cameras.k4a:from_config",
    "k4a-playback": "benchbot.devices.cameras.k4a:playback_from_config",
    "mujoco": "benchbot.devices.cameras.mujoco:from_config",
}


def register_camera_kind(kind: str, factory: str | CameraFactory) -> None:
    """Add or replace a camera kind (a callable or a lazy "module:function" string); hardware
    configs may name it from then on."""
    CAMERA_KINDS[kind] = factory
    CAMERA_KIND_NAMES.add(kind)


def _resolve(kind: str) -> CameraFactory:
    if kind not in CAMERA_KINDS:
        raise BenchbotError(f"unknown camera kind '{kind}'", f"use one of: {', '.join(sorted(CAMERA_KINDS))}")
    entry = CAMERA_KINDS[kind]
    if callable(entry):
        return entry
    module, _, name = entry.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise BenchbotError(f"camera kind '{kind}' is not available in this install ({module} is missing)",
                            "update benchbot or pick another camera kind") from None
    return getattr(mod, name)


def make_camera(cfg: CameraConfig | HardwareConfig, **context: Any) -> Camera:
    """Build the camera of a hardware config (`HardwareConfig` or its `CameraConfig`).
    With `median_frames > 1` a live camera is wrapped in a `MedianCamera`."""
    cam_cfg = cfg.camera if isinstance(cfg, HardwareConfig) else cfg
    if cam_cfg.median_frames > 1 and cam_cfg.kind == "replay":
        raise BenchbotError("camera.median_frames > 1 does not apply to a replay (it would mix recorded frames)",
                            "set camera.median_frames: 1; record with median_frames instead")
    camera = _resolve(cam_cfg.kind)(cam_cfg, **context)
    if cam_cfg.median_frames > 1:
        from benchbot.devices.cameras.averaging import MedianCamera

        camera = MedianCamera(camera, cam_cfg.median_frames)
    return camera


__all__ = ["CAMERA_KINDS", "make_camera", "register_camera_kind"]

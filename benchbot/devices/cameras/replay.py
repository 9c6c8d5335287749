"""The replay camera: plays a recording folder (`benchbot.devices.cameras.recording`) back as a
`Camera`, frame by frame or a chosen frame per placement."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Literal

from benchbot.config.hardware import CameraConfig
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.interfaces import Camera
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras.recording import Recording, default_recording_path, read_recording


class ReplayCamera(Camera):
    """A `Camera` that plays a recording back.

    order "cycle": frames in order, wrapping around; "once": raise DeviceError after the last one.
    `select(key)` picks the frame returned by the next `capture()`: an int picks frame key % n, a
    string (a placement id) picks a stable frame derived from its hash, so the same placement
    replays the same frame for every method.
    """

    def __init__(self, source: str | Path | Recording | None = None,
                 order: Literal["cycle", "once"] = "cycle") -> None:
        if order not in ("cycle", "once"):
            raise BenchbotError(f"unknown replay order '{order}'", "use 'cycle' or 'once'")
        rec = source if isinstance(source, Recording) else read_recording(source or default_recording_path())
        self._recording = rec
        self.intrinsics: Intrinsics = rec.intrinsics
        self.order = order
        self._next = 0
        self._closed = False

    @property
    def recording(self) -> Recording:
        return self._recording

    def __len__(self) -> int:
        return len(self.recording)

    def select(self, key: int | str) -> int:
        """Make the next capture return the frame for `key`; returns that frame's index."""
        n = len(self.recording)
        if isinstance(key, str):
            index = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n
        else:
            index = int(key) % n
        self._next = index
        return index

    def capture(self) -> DepthFrame:
        t0 = time.perf_counter()
        if self._closed:
            raise DeviceError("replay camera is closed", "create a new camera")
        n = len(self.recording)
        if self._next >= n:
            if self.order == "once":
                raise DeviceError(f"recording {self.recording.folder} has no frames left ({n} played)",
                                  "use order='cycle' or record more frames")
            self._next = 0
        frame = self.recording.frame(self._next)
        frame.captured_at = t0
        self._next += 1
        return frame

    def connect(self) -> None:
        self._closed = False  # a recording on disk: reopening is free

    @property
    def is_connected(self) -> bool:
        return not self._closed

    def close(self) -> None:
        self._closed = True


def replay_from_config(cfg: CameraConfig, **_: Any) -> ReplayCamera:
    """Factory for camera kind "replay" (cfg: hardware CameraConfig; no recording = the default)."""
    return ReplayCamera(cfg.recording or default_recording_path(), order=cfg.order)

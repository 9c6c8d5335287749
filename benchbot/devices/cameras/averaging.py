"""Temporal median of several depth frames: cuts sensor noise and fills flickering holes."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Camera
from benchbot.core.types import DepthFrame


def median_depth(depths: Sequence[np.ndarray], min_valid_fraction: float = 0.5) -> np.ndarray:
    """Per-pixel median over the frames where that pixel is valid (finite and > 0).

    A pixel stays invalid (0) unless it is valid in more than `min_valid_fraction` of the frames,
    so a hole that shows up in most frames is not filled from a single lucky reading.
    """
    if len(depths) == 0:
        raise BenchbotError("no frames to average", "capture at least one frame")
    stack = np.stack([np.asarray(d, np.float32) for d in depths])
    valid = np.isfinite(stack) & (stack > 0)
    stack = np.where(valid, stack, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        med = np.nanmedian(stack, axis=0)
    enough = valid.sum(axis=0) > min_valid_fraction * len(depths)
    return np.where(enough & np.isfinite(med), med, 0.0).astype(np.float32)


class MedianCamera(Camera):
    """Wraps a camera: each `capture()` grabs `n` frames and returns their per-pixel median.
    `captured_at` is the first frame's (capture started then). Other attributes (serial,
    capture_ir, ...) are those of the wrapped camera."""

    def __init__(self, camera: Camera, n: int, min_valid_fraction: float = 0.5) -> None:
        if n < 1:
            raise BenchbotError(f"median_frames must be ≥ 1 (got {n})", "set camera.median_frames to 1 or more")
        self.camera = camera
        self.n = n
        self.min_valid_fraction = min_valid_fraction
        self.intrinsics = camera.intrinsics

    def capture(self) -> DepthFrame:
        frames = [self.camera.capture() for _ in range(self.n)]
        first = frames[0]
        depth = median_depth([f.depth_m for f in frames], self.min_valid_fraction)
        meta = {**first.meta, "median_of": self.n}
        return DepthFrame(depth, first.intrinsics, first.captured_at, meta)

    @property
    def recording(self) -> Any:
        return self.camera.recording

    def connect(self) -> None:
        self.camera.connect()

    @property
    def is_connected(self) -> bool:
        return self.camera.is_connected

    def close(self) -> None:
        self.camera.close()

    def __getattr__(self, name: str) -> Any:
        if name == "camera":  # not yet set (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.camera, name)

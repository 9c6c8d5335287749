"""Simulated overhead depth camera: renders the MuJoCo scene (Kinect v2 intrinsics, 70 cm above the
table) and optionally applies the Kinect-like noise/missing-pixel model."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchbot.config.hardware import CameraConfig
from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras.base import OpenedOnBuild
from benchbot.perception.table import TablePlane
from benchbot.sim.noise import DepthNoise
from benchbot.sim.scene import sim_intrinsics
from benchbot.sim.world import SimWorld


class MujocoCamera(OpenedOnBuild):
    """Camera backend over a `SimWorld`. `noise=None` gives clean rendered depth."""

    def __init__(self, world: SimWorld, noise: DepthNoise | None = DepthNoise(), seed: int = 0) -> None:
        self.world = world
        self.noise = noise
        self.seed = seed
        self.intrinsics: Intrinsics = sim_intrinsics()

    def capture(self) -> DepthFrame:
        captured_at = time.perf_counter()
        depth = self.world.render_depth()
        if self.noise is not None:
            log = self.world.log  # noise seeded per placement and capture: reruns see the same frame
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, *log.noise_key, log.captures])
            log.captures += 1
            depth = self.noise.apply(depth, rng)
        plane = TablePlane.overhead(self.world.camera_height_m, "pose")
        meta: dict[str, Any] = {"source": "mujoco", "table_distance_m": plane.axis_distance_m, "table_plane": plane,
                                "sim_time_s": self.world.current().time, "noise": self.noise is not None}
        return DepthFrame(depth, self.intrinsics, captured_at, meta)

    def _release(self) -> None:
        pass  # the workcell closes the simulation


def from_config(cfg: CameraConfig, *, world: SimWorld | None = None, workcell: Any = None,
                **context: Any) -> MujocoCamera:
    """Factory for camera kind "mujoco": needs the running simulation (`world=` or `workcell=`)."""
    if workcell is not None:
        return workcell.camera
    if world is None:
        raise BenchbotError("camera kind 'mujoco' needs the physics workcell",
                            "run with --backend mujoco (the simulation builds its own camera)")
    return MujocoCamera(world)

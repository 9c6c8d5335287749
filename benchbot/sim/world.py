"""The simulated workcell state shared by the MuJoCo camera, arm, gripper and stage: one compiled
scene per object (cached), the current `Sim`, renderers, and per-trial bookkeeping."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbot.config.protocol import ObjectSpec
from benchbot.core.errors import BenchbotError
from benchbot.sim.physics import Sim
from benchbot.sim.scene import build_model

DEPTH_GROUPS = (0,)  # table + object visuals; the gripper is not in the depth image (arm at home)
VIEW_GROUPS = (0, 1, 2)


@dataclass
class TrialLog:
    """What the physics saw during one trial (reset by `place`)."""

    start_com_z: float = 0.0
    max_com_z: float = 0.0
    grip_contact: bool = False  # both pads touched the object at the end of the last grip
    grip_force_n: float = 0.0
    last_motion_end_s: float = 0.0
    noise_key: tuple[int, ...] = (0,)  # seeds the camera noise of this placement's captures
    captures: int = 0
    blocked: bool = False  # a move ended with the wrist far from its target (hit something)
    frames: list[tuple[str, np.ndarray]] = field(default_factory=list)


class SimWorld:
    """Scenes for a set of objects; `load(object_id)` makes that object's scene current."""

    def __init__(self, objects: dict[str, ObjectSpec], camera_height_m: float = 0.70,
                 record_video: bool = False) -> None:
        self.objects = objects
        self.camera_height_m = camera_height_m
        self.record_video = record_video
        self._sims: dict[str | None, Sim] = {}
        self._renderers: dict[tuple[int, str], Any] = {}  # mujoco.Renderer (untyped)
        self.sim: Sim | None = None
        self.log = TrialLog()

    def load(self, object_id: str | None) -> Sim:
        if object_id is not None and object_id not in self.objects:
            raise BenchbotError(f"unknown object '{object_id}' for the physics backend",
                                "add it to objects.yaml with a sim_mesh")
        if object_id not in self._sims:
            spec = self.objects[object_id] if object_id else None
            model, info = build_model(spec, self.camera_height_m, with_arm=self.record_video)
            self._sims[object_id] = Sim(model, info)
        return self._set(object_id)

    def use(self, model, info, key: str | None = None) -> Sim:
        """Make a scene compiled elsewhere (e.g. with extra test geometry) current."""
        self._sims[key] = Sim(model, info)
        return self._set(key)

    def _set(self, key: str | None) -> Sim:
        self.sim = self._sims[key]
        self.sim.frame_hook = self._tick
        return self.sim

    def current(self) -> Sim:
        if self.sim is None:
            raise BenchbotError("no object has been placed in the physics scene yet",
                                "call stage.place(placement) before capturing or moving")
        return self.sim

    def _tick(self, sim: Sim) -> None:
        if sim.has_object:
            z = float(sim.data.xipos[sim.object_body][2])
            if z > self.log.max_com_z:
                self.log.max_com_z = z

    def mark_motion_end(self) -> None:
        self.log.last_motion_end_s = self.current().time

    # -- rendering -------------------------------------------------------------------------
    def _renderer(self, kind: str, size: tuple[int, int]):
        import mujoco

        sim = self.current()
        key = (id(sim.model), kind)
        if key not in self._renderers:
            try:
                r = mujoco.Renderer(sim.model, size[0], size[1])
            except Exception as e:  # no GL platform
                raise BenchbotError(f"MuJoCo cannot render offscreen ({e})",
                                    "apt-get install libegl1 libgl1-mesa-dri and set MUJOCO_GL=egl "
                                    "(or install libosmesa6 and set MUJOCO_GL=osmesa)") from None
            if kind == "depth":
                r.enable_depth_rendering()
            self._renderers[key] = r
        return self._renderers[key]

    @staticmethod
    def _option(groups: tuple[int, ...]):
        import mujoco

        opt = mujoco.MjvOption()
        opt.geomgroup[:] = 0
        for g in groups:
            opt.geomgroup[g] = 1
        return opt

    def render_depth(self, groups: tuple[int, ...] = DEPTH_GROUPS) -> np.ndarray:
        """Clean depth (z along the optical axis, metres) from the depth camera, float32 H×W."""
        intr = self.current().info.intrinsics
        r = self._renderer("depth", (intr.height, intr.width))
        r.update_scene(self.current().data, camera="depth", scene_option=self._option(groups))
        return np.asarray(r.render(), dtype=np.float32).copy()

    def render_geom_ids(self, groups: tuple[int, ...] = DEPTH_GROUPS) -> np.ndarray:
        """Which geom each depth-camera pixel sees (int32 H×W, −1: none)."""
        import mujoco

        intr = self.current().info.intrinsics
        r = self._renderer("depth", (intr.height, intr.width))  # one GL context per scene: switch modes
        r.disable_depth_rendering()
        r.enable_segmentation_rendering()
        try:
            r.update_scene(self.current().data, camera="depth", scene_option=self._option(groups))
            seg = r.render()
        finally:
            r.disable_segmentation_rendering()
            r.enable_depth_rendering()
        return np.where(seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM), seg[..., 0], -1).astype(np.int32)

    def forget(self, key: str | None) -> None:
        """Drop a scene and close its renderers (scenes compiled once per image)."""
        sim = self._sims.pop(key, None)
        if sim is None:
            return
        for k in [k for k in self._renderers if k[0] == id(sim.model)]:
            self._renderers.pop(k).close()
        if self.sim is sim:
            self.sim = None

    def render_view(self, camera: str = "overview", size: tuple[int, int] = (360, 480)) -> np.ndarray:
        """RGB picture of the scene (gripper included) from a named camera."""
        r = self._renderer(f"rgb{size}", size)
        r.update_scene(self.current().data, camera=camera, scene_option=self._option(VIEW_GROUPS))
        return r.render().copy()

    def keyframe(self, label: str) -> None:
        if self.record_video and self.sim is not None:
            from benchbot.sim.arm_view import pose_arm

            pose_arm(self.sim)
            self.log.frames.append((label, self.render_view()))

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
        self._sims.clear()
        self.sim = None


def placement_rng(seed: int, placement_id: str) -> np.random.Generator:
    """The generator for one placement: same (seed, id) → same pose, for every method."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(placement_id.encode())])

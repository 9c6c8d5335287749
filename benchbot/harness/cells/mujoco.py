"""The physics workcell: MuJoCo camera, arm, gripper and stage behind the harness interfaces."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbot.config.protocol import LoadedProtocol
from benchbot.core.interfaces import Arm, Camera, Gripper
from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits
from benchbot.harness.cells.mujoco_stage import PhysicsStage
from benchbot.harness.workcell import Workcell
from benchbot.perception.table import TablePlane
from benchbot.sim.noise import DepthNoise
from benchbot.sim.scene import camera_pose_base
from benchbot.sim.world import SimWorld

WORKSPACE_MIN_M = (0.20, -0.40, 0.0)
WORKSPACE_MAX_M = (0.80, 0.40, 0.60)


@dataclass
class PhysicsCell:
    """The MuJoCo devices, stage and world of one simulation (`build_mujoco_workcell` puts them
    behind the harness `Workcell`). `t_base_camera`: 4×4, base ← camera."""

    camera: Camera
    arm: Arm
    gripper: Gripper
    stage: PhysicsStage
    t_base_camera: np.ndarray
    table_z_m: float
    workspace_min_m: tuple[float, float, float]
    workspace_max_m: tuple[float, float, float]
    world: SimWorld

    @property
    def table_plane(self) -> TablePlane:
        """The table as the simulated camera sees it (its pose is exact)."""
        return TablePlane.from_camera_pose(self.t_base_camera, self.table_z_m)

    @property
    def table_distance_m(self) -> float:
        """Camera to table along the optical axis."""
        return self.table_plane.axis_distance_m

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time (pass as `execute_grasp(..., sleep=workcell.sleep)`)."""
        if self.world is not None and self.world.sim is not None and seconds > 0:
            self.world.sim.step(seconds)

    def save_keyframes(self, path: str | Path) -> Path | None:
        """Save the last trial's keyframes (needs record_video=True) as one PNG strip."""
        if self.world is None or not self.world.log.frames:
            return None
        from benchbot.harness.cells.keyframes import save_strip

        return save_strip(self.world.log.frames, path)

    def close(self) -> None:
        with ExitStack() as stack:  # the world last, every close runs even if one raises
            if self.world is not None:
                stack.callback(self.world.close)
            for dev in (self.camera, self.arm, self.gripper):
                stack.callback(dev.close)


def make_physics_workcell(loaded_protocol: LoadedProtocol, *, seed: int, noise: bool = True,
                          record_video: bool = False) -> PhysicsCell:
    """Build the MuJoCo workcell for a protocol: its objects, camera height, motion and success rule."""
    from benchbot.devices.arms.mujoco import MujocoArm
    from benchbot.devices.cameras.mujoco import MujocoCamera
    from benchbot.devices.grippers.mujoco import MujocoGripper

    proto = loaded_protocol.protocol
    height = proto.camera.height_above_table_m
    world = SimWorld(dict(loaded_protocol.objects), height, record_video=record_video)
    camera = MujocoCamera(world, DepthNoise() if noise else None, seed=seed)
    arm = MujocoArm(world)
    gripper = MujocoGripper(world)
    stage = PhysicsStage(world, proto.motion, proto.success)
    return PhysicsCell(camera, arm, gripper, stage, camera_pose_base(height), 0.0,
                    WORKSPACE_MIN_M, WORKSPACE_MAX_M, world)


def build_mujoco_workcell(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    """The harness workcell of `--backend mujoco`: the physics cell behind the safety gate."""
    # cfg.seed is the run's seed (the runner passes a resumed run's stored seed): depth noise follows it
    sim = make_physics_workcell(loaded, seed=cfg.seed if cfg.seed is not None else loaded.protocol.seed)
    try:
        limits = SafetyLimits.from_protocol(loaded.protocol.motion, workspace_min_m=sim.workspace_min_m,
                                            workspace_max_m=sim.workspace_max_m, table_z_m=sim.table_z_m,
                                            jaw_opening_m=loaded.protocol.gripper.opening_m)
    except BaseException:
        sim.close()
        raise
    gate = SafetyGate(limits)
    arm = GatedArm(sim.arm, gate)

    def connect(wc: Workcell) -> None:
        wc.attach(arm)
        wc.attach(sim.gripper).activate()

    wc = Workcell("mujoco", limits, connect, camera=sim.camera, arm=arm,
                         gripper=sim.gripper, stage=sim.stage, t_base_camera=sim.t_base_camera,
                         table_prior=sim.table_plane,
                         table_z_m=sim.table_z_m,
                         describe={"camera": "MuJoCo depth render (Kinect v2 intrinsics)", "arm": "MuJoCo",
                                   "gripper": "MuJoCo 2F-85"},
                         sleep=sim.sleep)
    wc.on_close(sim.close)
    return wc

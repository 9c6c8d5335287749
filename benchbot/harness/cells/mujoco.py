"""The physics workcell: MuJoCo camera, arm, gripper and stage behind the harness interfaces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchbot.config.protocol import LoadedProtocol
from benchbot.core.interfaces import Arm, Camera, Gripper, Stage
from benchbot.harness.cells.mujoco_stage import PhysicsStage
from benchbot.sim.noise import DepthNoise
from benchbot.sim.scene import camera_pose_base
from benchbot.sim.world import SimWorld

WORKSPACE_MIN_M = (0.20, -0.40, 0.0)
WORKSPACE_MAX_M = (0.80, 0.40, 0.60)


@dataclass
class Workcell:
    """Everything the harness needs from one backend. `t_base_camera`: 4×4, base ← camera."""

    camera: Camera
    arm: Arm
    gripper: Gripper
    stage: Stage
    t_base_camera: np.ndarray
    table_z_m: float
    workspace_min_m: tuple[float, float, float]
    workspace_max_m: tuple[float, float, float]
    world: SimWorld | None = None
    table_distance_m: float = 0.70  # camera to table along the optical axis

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
        for dev in (self.camera, self.arm, self.gripper):
            dev.close()
        if self.world is not None:
            self.world.close()


def make_physics_workcell(loaded_protocol: LoadedProtocol, *, seed: int, noise: bool = True,
                          record_video: bool = False) -> Workcell:
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
    return Workcell(camera, arm, gripper, stage, camera_pose_base(height), 0.0,
                    WORKSPACE_MIN_M, WORKSPACE_MAX_M, world, table_distance_m=height)

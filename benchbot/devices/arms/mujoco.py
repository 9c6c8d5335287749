"""Simulated arm: the gripper's 6-DoF servoed wrist in MuJoCo. `move_linear` steps physics while the
servo set-point travels the straight line at the commanded speed (trapezoidal profile)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchbot.core.errors import DeviceError
from benchbot.core.interfaces import Arm
from benchbot.core.logs import CommandLog
from benchbot.core.types import Pose
from benchbot.sim.scene import HOME_POSITION, TOOL_DOWN
from benchbot.sim.world import SimWorld

if TYPE_CHECKING:
    from benchbot.devices.safety import SafetyGate

HOME_POSE = Pose(np.array(HOME_POSITION), TOOL_DOWN, "base")
HOME_SPEED_MPS, HOME_ACCEL_MPS2 = 0.25, 0.5
TRACKING_LIMIT_M = 0.02  # servo lag beyond this after a move = blocked (protective stop on a UR)


class MujocoArm(Arm):
    """Arm backend over a `SimWorld` (poses in the base frame, TCP = fingertip centre)."""

    def __init__(self, world: SimWorld, home_pose: Pose = HOME_POSE, gate: SafetyGate | None = None) -> None:
        self.world = world
        self.home_pose = home_pose
        self.gate = gate
        self.connected = False
        self.log = CommandLog(__name__)  # the latest commands (bounded); the run log keeps them all
        self.max_tracking_error_m = 0.0  # largest end-of-move servo lag since the last placement

    def connect(self) -> None:
        self.connected = True

    @property
    def is_connected(self) -> bool:
        return self.connected

    def home(self) -> None:
        self.move_linear(self.home_pose, HOME_SPEED_MPS, HOME_ACCEL_MPS2)

    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None:
        if not self.connected:
            raise DeviceError("mujoco arm: move while not connected", "call connect() first")
        if pose.frame != "base":
            raise DeviceError(f"mujoco arm: pose in frame '{pose.frame}', expected 'base'",
                              "convert the pose to the robot base frame")
        if not (np.all(np.isfinite(pose.position_m)) and np.all(np.isfinite(pose.rotation))):
            raise DeviceError("mujoco arm: non-finite pose", "check the grasp")
        if speed_mps <= 0 or accel_mps2 <= 0:
            raise DeviceError("mujoco arm: speed and acceleration must be positive", "check the motion settings")
        sim = self.world.current()
        if self.gate is not None:
            self.gate.check(pose, speed_mps, accel_mps2, start=sim.target_pose())
        t0 = sim.time
        sim.move_linear(pose, speed_mps, accel_mps2)
        err = float(np.linalg.norm(sim.tool_pose().position_m - np.asarray(pose.position_m, float)))
        self.max_tracking_error_m = max(self.max_tracking_error_m, err)
        self.world.mark_motion_end()
        if err > TRACKING_LIMIT_M:
            self.world.log.blocked = True
        self.world.keyframe("move")
        self.log.append({"cmd": "move_linear", "pose": pose.as_record(5),
                         "sim_s": round(sim.time - t0, 4), "tracking_error_m": round(err, 5)})

    def current_pose(self) -> Pose:
        return self.world.current().tool_pose()

    def stop(self) -> None:
        sim = self.world.current()
        sim.set_wrist_target(sim.joint_target(sim.tool_pose()))
        self.log.append({"cmd": "stop"})

    def close(self) -> None:
        self.connected = False

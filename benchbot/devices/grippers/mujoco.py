"""Simulated Robotiq 2F-85: a force-limited parallel jaw in MuJoCo. `grip` closes at the commanded
speed until the fingers stall on an object (gOBJ) or close fully; force 0..1 maps to 20–235 N."""
from __future__ import annotations

from benchbot.core.errors import DeviceError
from benchbot.core.interfaces import Gripper
from benchbot.core.types import GripperStatus
from benchbot.sim.world import SimWorld

MIN_OBJECT_OPENING_M = 0.001  # a stall wider than this with both pads in contact = object detected


class MujocoGripper(Gripper):
    """Gripper backend over a `SimWorld`."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.activated = False
        self._object_detected = False
        self.connected = False

    def connect(self) -> None:
        self.connected = True  # the simulation is the device: nothing to open

    @property
    def is_connected(self) -> bool:
        return self.connected

    def activate(self) -> None:
        self.activated = True

    def _check(self) -> None:
        if not self.activated:
            raise DeviceError("mujoco gripper: not activated", "call activate() first")

    def open(self, width_m: float) -> GripperStatus:
        self._check()
        sim = self.world.current()
        g = sim.info.gripper
        width = min(max(float(width_m), 0.0), g.max_opening_m)
        sim.set_grip_force(g.max_force_n)
        sim.set_opening_target(width)
        t0 = sim.time
        while sim.time - t0 < 1.0:  # open at full speed until the fingers are there
            sim.step(0.02)
            if abs(sim.opening_m() - width) < 5e-4 and sim.finger_speed() < 1e-3:
                break
        self._object_detected = False
        self.world.keyframe("open")
        return self.status()

    def grip(self, force: float = 1.0, speed: float = 1.0) -> GripperStatus:
        self._check()
        sim = self.world.current()
        g = sim.info.gripper
        force_n = g.min_force_n + min(max(force, 0.0), 1.0) * (g.max_force_n - g.min_force_n)
        speed_mps = g.min_speed_mps + min(max(speed, 0.0), 1.0) * (g.max_speed_mps - g.min_speed_mps)
        sim.close_fingers(speed_mps, force_n)
        c = sim.contacts()
        self._object_detected = c.left and c.right and sim.opening_m() > MIN_OBJECT_OPENING_M
        self.world.log.grip_contact = c.left or c.right
        self.world.log.grip_force_n = abs(float(sim.data.actuator_force[sim.grip_act]))  # squeeze along the jaw
        self.world.keyframe("grip")
        return self.status()

    def status(self) -> GripperStatus:
        sim = self.world.current()
        c = sim.contacts()
        holding = self._object_detected and c.left and c.right
        return GripperStatus(activated=self.activated, moving=sim.finger_speed() > 5e-3,
                             object_detected=holding, position_m=sim.opening_m(), fault=None)

    def close(self) -> None:
        self.connected = False
        self.activated = False

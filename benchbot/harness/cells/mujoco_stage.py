"""Physics stage: places each trial's object by a seeded drop and judges the attempt from the
simulated object state (the outcome source of the MuJoCo backend)."""
from __future__ import annotations

import zlib

from benchbot.config.protocol import Motion, Success
from benchbot.core.interfaces import Execution, Judgement
from benchbot.core.types import DepthFrame, Grasp, Placement
from benchbot.sim.placement import drop_object
from benchbot.sim.world import SimWorld, TrialLog, placement_rng


class PhysicsStage:
    """`place` drops the object (same placement id and seed → same pose, for every method);
    `judge` finishes the hold in physics and checks the object's height gain."""

    outcome_source = "physics"

    def __init__(self, world: SimWorld, motion: Motion, success: Success) -> None:
        self.world = world
        self.hold_s = motion.hold_s
        self.min_lift_m = success.min_lift_m
        self.poses: dict[str, tuple[float, float, float]] = {}

    def place(self, placement: Placement) -> None:
        sim = self.world.load(placement.object_id)
        pose = drop_object(sim, placement_rng(placement.seed, placement.placement_id))
        self.poses[placement.placement_id] = pose
        z = float(sim.data.xipos[sim.object_body][2])
        key = (placement.seed & 0xFFFFFFFF, zlib.crc32(placement.placement_id.encode()))
        self.world.log = TrialLog(start_com_z=z, max_com_z=z, last_motion_end_s=sim.time, noise_key=key)
        self.world.keyframe("placed")

    def prepare(self, frame: DepthFrame, grasp: Grasp, opening_m: float) -> None:
        """Nothing to set up: the physics meets whatever the grasp meets."""

    def pose_of(self, placement: Placement) -> tuple[float, float, float] | None:
        """(x, y, yaw) of the object's centre of mass after the drop, base frame."""
        return self.poses.get(placement.placement_id)

    def judge(self, placement: Placement, execution: Execution) -> Judgement:
        sim = self.world.current()
        log = self.world.log
        remaining = self.hold_s - (sim.time - log.last_motion_end_s)
        if remaining > 0:  # the harness slept in wall time: hold in physics now
            sim.step(remaining)
        z = float(sim.data.xipos[sim.object_body][2])
        lifted = z - log.start_com_z
        execution.lifted_m = lifted
        self.world.keyframe("hold")
        note = f"lifted {lifted:.3f} m; grip {log.grip_force_n:.0f} N"
        if lifted >= self.min_lift_m:
            return Judgement("success", "physics", None, note)
        if not log.grip_contact:
            cause = "collision" if log.blocked else "missed"
        elif log.max_com_z - log.start_com_z >= self.min_lift_m:
            cause = "dropped"
        else:
            cause = "slipped"
        return Judgement("failure", "physics", cause, note)

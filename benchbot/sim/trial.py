"""Fast physics labelling of one grasp: restore a settled scene, optionally perturb it, start the free
gripper just above the object, approach, close, lift, hold, and check that the object came along."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from benchbot.core.types import GraspPose, Pose
from benchbot.sim.physics import Sim


@dataclass(frozen=True)
class TrialSettings:
    """Short-trial motion for data generation (the benchmark uses the protocol's motion instead)."""

    approach_speed_mps: float = 0.25
    lift_speed_mps: float = 0.50
    accel_mps2: float = 5.0
    lift_m: float = 0.07
    hold_s: float = 0.2
    min_lift_m: float = 0.05
    grip_force_n: float = 127.5  # protocol force 0.5 on the 2F-85 scale (20–235 N)
    grip_speed_mps: float = 0.15
    clearance_m: float = 0.015  # fingertips start this far above the object's top


@dataclass(frozen=True)
class Perturbation:
    """Object pose jitter (m, rad) and a pad-friction factor applied before one trial."""

    dx: float = 0.0
    dy: float = 0.0
    dyaw: float = 0.0
    friction_scale: float = 1.0


def sample_perturbations(rng: np.random.Generator, n: int, pos_sigma_m: float = 0.003,
                         yaw_sigma_rad: float = np.radians(3.0),
                         friction_range: tuple[float, float] = (0.6, 1.1)) -> list[Perturbation]:
    """The nominal trial followed by `n` random perturbations (Dex-Net-style robustness)."""
    out = [Perturbation()]
    for _ in range(n):
        dx, dy = rng.normal(0.0, pos_sigma_m, 2)
        out.append(Perturbation(float(dx), float(dy), float(rng.normal(0.0, yaw_sigma_rad)),
                                float(rng.uniform(*friction_range))))
    return out


def _apply(sim: Sim, p: Perturbation, base_friction: np.ndarray) -> None:
    if p.dx or p.dy or p.dyaw:
        com = sim.data.xipos[sim.object_body].copy()
        pos = sim.object_position()
        rz = Rotation.from_euler("z", p.dyaw)
        q = sim.object_quat()
        new_q = (rz * Rotation.from_quat([q[1], q[2], q[3], q[0]])).as_quat()
        new_pos = rz.apply(pos - com) + com + np.array([p.dx, p.dy, 0.0])  # yaw about the COM
        sim.set_object_pose(new_pos, np.array([new_q[3], *new_q[:3]]))
    for g, f in zip(sim.pad_geoms, base_friction, strict=True):
        sim.model.geom_friction[g, 0] = f * p.friction_scale


def run_trial(sim: Sim, settled: tuple[np.ndarray, np.ndarray], grasp: GraspPose,
              settings: TrialSettings = TrialSettings(),
              perturbation: Perturbation = Perturbation()) -> tuple[bool, float]:
    """Execute one base-frame grasp from the `settled` state. Returns (success, lift of the COM)."""
    sim.restore_state(settled)
    base_friction = sim.model.geom_friction[list(sim.pad_geoms), 0].copy()
    try:
        _apply(sim, perturbation, base_friction)
        z0 = float(sim.data.xipos[sim.object_body][2])
        tool = grasp.tool_pose()
        approach = tool.rotation[:, 2]
        top = float(sim.object_points_world()[:, 2].max())
        tip = tool.position_m + sim.info.gripper.tip_below_tcp_m * approach
        # back off along the approach until the fingertips clear the object's top
        up = max(-approach[2], 0.2)
        back = max(0.02, (top + settings.clearance_m - tip[2]) / up)
        start = Pose(tool.position_m - back * approach, tool.rotation, "base")
        sim.teleport(start)
        sim.data.qpos[sim.finger_qadr] = 0.0
        sim.data.qvel[sim.finger_dadr] = 0.0
        sim.set_opening_target(sim.info.gripper.max_opening_m)
        sim.mj.mj_forward(sim.model, sim.data)
        if sim.gripper_touches_object():  # cannot even get there: a collision, not a grasp
            return False, 0.0
        sim.move_linear(tool, settings.approach_speed_mps, settings.accel_mps2, settle_s=0.02)
        sim.close_fingers(settings.grip_speed_mps, settings.grip_force_n)
        c = sim.contacts()
        if not (c.left and c.right):
            return False, float(sim.data.xipos[sim.object_body][2]) - z0
        lift = Pose(tool.position_m + np.array([0.0, 0.0, settings.lift_m]), tool.rotation, "base")
        sim.move_linear(lift, settings.lift_speed_mps, settings.accel_mps2, settle_s=0.0)
        sim.step(settings.hold_s)
        gain = float(sim.data.xipos[sim.object_body][2]) - z0
        c = sim.contacts()
        return bool(gain >= settings.min_lift_m and c.left and c.right), gain
    finally:
        sim.model.geom_friction[list(sim.pad_geoms), 0] = base_friction

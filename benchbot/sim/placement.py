"""Seeded random placement: the paper's "shake the object under a box, lift the box" as a drop with a
random orientation (random yaw and resting face) near the table centre, then physics settling."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..types import Pose
from .physics import Sim
from .scene import HOME_POSITION, TABLE_CENTER_XY, TOOL_DOWN

DROP_RADIUS_M = 0.05  # the box's footprint around the table centre
KEEP_RADIUS_M = 0.15  # a rolling object is put back inside this radius


def settle(sim: Sim, max_s: float = 3.0, still_speed: float = 2e-3) -> float:
    """Step until the object is still for 0.1 s (or max_s); return the sim time spent."""
    t0, still = sim.time, 0
    while sim.time - t0 < max_s:
        sim.step(0.02)
        still = still + 1 if sim.object_speed() < still_speed else 0
        if still >= 5:
            break
    return sim.time - t0


def reset(sim: Sim) -> None:
    """Fresh state: gripper at home and open, object parked."""
    sim.mj.mj_resetData(sim.model, sim.data)
    sim.teleport(Pose(np.array(HOME_POSITION), TOOL_DOWN))
    sim.set_opening_target(sim.info.gripper.max_opening_m)
    sim.data.qpos[sim.finger_qadr] = 0.0
    sim.mj.mj_forward(sim.model, sim.data)


def drop_object(sim: Sim, rng: np.random.Generator, radius_m: float = DROP_RADIUS_M) -> tuple[float, float, float]:
    """Reset, drop the object with a random orientation near the table centre, settle.
    Returns (x, y, yaw) of the object's centre of mass (table frame = base frame)."""
    reset(sim)
    quat_xyzw = Rotation.random(random_state=rng).as_quat()
    quat = np.array([quat_xyzw[3], *quat_xyzw[:3]])
    r = radius_m * np.sqrt(rng.random())
    a = rng.uniform(0, 2 * np.pi)
    xy = np.array(TABLE_CENTER_XY) + r * np.array([np.cos(a), np.sin(a)])
    sim.set_object_pose(np.array([0.0, 0.0, 0.0]), quat)
    pts = sim.object_points_world()
    com = sim.data.xipos[sim.object_body]
    # put the centre of mass over xy, lowest point 2 cm above the table
    offset = np.array([xy[0] - com[0], xy[1] - com[1], 0.02 - pts[:, 2].min()])
    sim.set_object_pose(offset, quat)
    settle(sim)
    com = sim.data.xipos[sim.object_body]
    d = com[:2] - np.array(TABLE_CENTER_XY)
    if np.linalg.norm(d) > KEEP_RADIUS_M:  # rolled away: put it back (as the operator would)
        shift = d * (1 - KEEP_RADIUS_M / np.linalg.norm(d))
        sim.set_object_pose(sim.object_position() - np.array([shift[0], shift[1], 0.0]), sim.object_quat())
        settle(sim, max_s=1.0)
    sim.data.qvel[sim.obj_dadr:sim.obj_dadr + 6] = 0.0
    sim.mj.mj_forward(sim.model, sim.data)
    com = sim.data.xipos[sim.object_body]
    rot = sim.data.xmat[sim.object_body].reshape(3, 3)
    yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(com[0]), float(com[1]), yaw

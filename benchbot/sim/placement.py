"""Seeded random placement: the paper's "shake the object under a box, lift the box" as a drop with a
random orientation (random yaw and resting face) near the table centre, then physics settling."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from benchbot.core.types import Pose
from benchbot.sim.physics import Sim
from benchbot.sim.scene import HOME_POSITION, TABLE_CENTER_XY, TOOL_DOWN

DROP_RADIUS_M = 0.05  # the box's footprint around the table centre
KEEP_RADIUS_M = 0.15  # a rolling object is put back inside this radius


def settle(sim: Sim, max_s: float = 3.0, still_speed: float = 2e-3, objects: Sequence[int] | None = None) -> float:
    """Step until the object (or every object in `objects`) is still for 0.1 s (or max_s); return the
    sim time spent."""
    t0, still = sim.time, 0
    while sim.time - t0 < max_s:
        sim.step(0.02)
        speed = sim.object_speed() if objects is None else max(_speed(sim, k) for k in objects)
        still = still + 1 if speed < still_speed else 0
        if still >= 5:
            break
    return sim.time - t0


def _speed(sim: Sim, k: int) -> float:
    _, d = sim.object_dofs(k)
    return float(np.linalg.norm(sim.data.qvel[d:d + 6]))


def reset(sim: Sim) -> None:
    """Fresh state: gripper at home and open, object parked."""
    sim.mj.mj_resetData(sim.model, sim.data)
    sim.teleport(Pose(np.array(HOME_POSITION), TOOL_DOWN))
    sim.set_opening_target(sim.info.gripper.max_opening_m)
    sim.data.qpos[sim.finger_qadr] = 0.0
    sim.mj.mj_forward(sim.model, sim.data)


def _release(sim: Sim, rng: np.random.Generator, radius_m: float,
             floor_z: float | Callable[[np.ndarray], float] = 0.0) -> None:
    """Put the selected object with a random orientation over a random point within `radius_m` of the
    table centre, its lowest point 2 cm above `floor_z` (a callable gives the floor under its footprint)."""
    quat_xyzw = Rotation.random(random_state=rng).as_quat()
    quat = np.array([quat_xyzw[3], *quat_xyzw[:3]])
    r = radius_m * np.sqrt(rng.random())
    a = rng.uniform(0, 2 * np.pi)
    xy = np.array(TABLE_CENTER_XY) + r * np.array([np.cos(a), np.sin(a)])
    sim.set_object_pose(np.array([0.0, 0.0, 0.0]), quat)
    pts = sim.object_points_world()
    com = sim.data.xipos[sim.object_body]
    floor = floor_z(pts[:, :2] - com[:2] + xy) if callable(floor_z) else floor_z
    # put the centre of mass over xy, lowest point 2 cm above the floor
    offset = np.array([xy[0] - com[0], xy[1] - com[1], floor + 0.02 - pts[:, 2].min()])
    sim.set_object_pose(offset, quat)


def _keep_near(sim: Sim) -> bool:
    """Put the selected object back within KEEP_RADIUS_M if it rolled away (as the operator would)."""
    com = sim.data.xipos[sim.object_body]
    d = com[:2] - np.array(TABLE_CENTER_XY)
    if np.linalg.norm(d) <= KEEP_RADIUS_M:
        return False
    shift = d * (1 - KEEP_RADIUS_M / np.linalg.norm(d))
    sim.set_object_pose(sim.object_position() - np.array([shift[0], shift[1], 0.0]), sim.object_quat())
    return True


def drop_object(sim: Sim, rng: np.random.Generator, radius_m: float = DROP_RADIUS_M) -> tuple[float, float, float]:
    """Reset, drop the object with a random orientation near the table centre, settle.
    Returns (x, y, yaw) of the object's centre of mass (table frame = base frame)."""
    reset(sim)
    _release(sim, rng, radius_m)
    settle(sim)
    if _keep_near(sim):
        settle(sim, max_s=1.0)
    sim.data.qvel[sim.obj_dadr:sim.obj_dadr + 6] = 0.0
    sim.mj.mj_forward(sim.model, sim.data)
    com = sim.data.xipos[sim.object_body]
    rot = sim.data.xmat[sim.object_body].reshape(3, 3)
    yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(com[0]), float(com[1]), yaw


def drop_clutter(sim: Sim, rng: np.random.Generator, radius_m: float) -> None:
    """Reset and drop every object of the scene, one after the other, within `radius_m` of the table
    centre; each is released 2 cm above whatever already lies under it. Objects not yet dropped float
    (gravity compensated) where the scene parked them. Selects object 0 at the end."""
    reset(sim)
    n = len(sim.object_bodies)
    sim.model.body_gravcomp[sim.object_bodies] = 1.0
    placed: list[int] = []
    try:
        for k in range(n):
            sim.select_object(k)
            sim.model.body_gravcomp[sim.object_body] = 0.0
            _release(sim, rng, radius_m, lambda xy: _floor_under(sim, placed, xy))
            placed.append(k)
            settle(sim, max_s=2.0, objects=placed)
        for k in placed:
            sim.select_object(k)
            if _keep_near(sim):
                settle(sim, max_s=1.0, objects=placed)
    finally:
        sim.model.body_gravcomp[sim.object_bodies] = 0.0
    for k in range(n):
        _, d = sim.object_dofs(k)
        sim.data.qvel[d:d + 6] = 0.0
    sim.select_object(0)
    sim.mj.mj_forward(sim.model, sim.data)


def _floor_under(sim: Sim, placed: list[int], xy: np.ndarray, margin_m: float = 0.01) -> float:
    """Highest point of the placed objects inside the bounding box of the footprint `xy` (N×2)."""
    lo, hi = xy.min(axis=0) - margin_m, xy.max(axis=0) + margin_m
    top = 0.0
    current = sim.object_bodies.index(sim.object_body)
    for k in placed:
        sim.select_object(k)
        pts = sim.object_points_world()
        inside = ((pts[:, :2] >= lo) & (pts[:, :2] <= hi)).all(axis=1)
        if inside.any():
            top = max(top, float(pts[inside, 2].max()))
    sim.select_object(current)
    return top

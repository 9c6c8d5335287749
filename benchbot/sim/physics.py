"""Stepping the workcell: wrist servo targets, straight-line moves, grip, contacts, state save/restore."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from benchbot.core.types import Pose
from benchbot.sim.scene import HOME_POSITION, TOOL_DOWN, SceneInfo

CONTROL_DT = 0.01  # servo set-points are updated at 100 Hz


def wrist_angles(rotation: np.ndarray) -> np.ndarray:
    """Tool rotation (base frame) → wrist hinge angles [yaw, pitch, roll] (R = DOWN·Rz·Ry·Rx)."""
    rel = TOOL_DOWN.T @ np.asarray(rotation, float)
    return Rotation.from_matrix(rel).as_euler("ZYX")


def _unwrap_to(angles: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Add multiples of 2π so each angle is closest to the reference."""
    return ref + (angles - ref + np.pi) % (2 * np.pi) - np.pi


def trapezoid_s(t: np.ndarray, duration: float, distance: float, speed: float, accel: float) -> np.ndarray:
    """Normalised path coordinate s(t) ∈ [0, 1] of a trapezoidal profile over `distance`."""
    if distance <= 0 or duration <= 0:
        return np.ones_like(t)
    ramp_t = speed / accel
    if 2 * ramp_t > duration:  # triangular profile
        ramp_t = duration / 2
        speed = accel * ramp_t
    t = np.clip(t, 0, duration)
    d = np.where(t < ramp_t, 0.5 * accel * t**2,
                 np.where(t < duration - ramp_t, 0.5 * accel * ramp_t**2 + speed * (t - ramp_t),
                          distance - 0.5 * accel * (duration - t) ** 2))
    return np.clip(d / distance, 0, 1)


def move_duration(distance: float, speed: float, accel: float) -> float:
    if distance <= 0:
        return 0.0
    if distance >= speed**2 / accel:
        return distance / speed + speed / accel
    return 2.0 * math.sqrt(distance / accel)


@dataclass
class ContactState:
    left: bool  # left pad touches the object
    right: bool
    normal_force_n: float  # total normal force between pads and object
    gripper_table: bool  # any gripper geom touches the table


class Sim:
    """One compiled scene and its state. All motion steps real physics (mj_step)."""

    def __init__(self, model, info: SceneInfo) -> None:
        import mujoco

        self.mj = mujoco
        self.model = model
        self.info = info
        self.data = mujoco.MjData(model)
        m = model
        name = lambda kind, n: mujoco.mj_name2id(m, kind, n)  # noqa: E731
        obj = mujoco.mjtObj
        J, A, G, B = obj.mjOBJ_JOINT, obj.mjOBJ_ACTUATOR, obj.mjOBJ_GEOM, obj.mjOBJ_BODY
        self.wrist_qadr = np.array([m.jnt_qposadr[name(J, j)] for j in ("wx", "wy", "wz", "wyaw", "wpitch", "wroll")])
        self.wrist_dadr = np.array([m.jnt_dofadr[name(J, j)] for j in ("wx", "wy", "wz", "wyaw", "wpitch", "wroll")])
        self.wrist_act = np.array([name(A, f"a_{j}") for j in ("wx", "wy", "wz", "wyaw", "wpitch", "wroll")])
        self.grip_act = name(A, "a_grip")
        self.finger_qadr = np.array([m.jnt_qposadr[name(J, j)] for j in ("left_finger", "right_finger")])
        self.finger_dadr = np.array([m.jnt_dofadr[name(J, j)] for j in ("left_finger", "right_finger")])
        self.tcp_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "tcp")
        self.table_geom = name(G, "table")
        self.pad_geoms = (name(G, "left_pad"), name(G, "right_pad"))
        self.gripper_body = name(B, "gripper")
        gripper_bodies = {name(B, b) for b in ("gripper", "left_finger", "right_finger")}
        self.gripper_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] in gripper_bodies}
        self.object_bodies = [b for b in (name(B, "object" + (f"_{k}" if k else "")) for k in range(16)) if b >= 0]
        self.has_object = bool(self.object_bodies)
        if self.has_object:
            self.select_object(0)
        else:
            self.object_body, self.object_geoms = -1, set[int]()
        self.frame_hook: Callable[[Sim], None] | None = None  # called every control tick (video)
        self._target_q = np.zeros(6)
        self.teleport(Pose(np.array(HOME_POSITION), TOOL_DOWN))
        self.set_opening_target(info.gripper.max_opening_m)
        mujoco.mj_forward(m, self.data)

    # -- time ------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    def step(self, seconds: float) -> None:
        """Advance physics by `seconds`, calling the frame hook every control tick."""
        n = max(0, int(round(seconds / CONTROL_DT)))
        k = max(1, int(round(CONTROL_DT / self.model.opt.timestep)))
        for _ in range(n):
            self.mj.mj_step(self.model, self.data, nstep=k)
            if self.frame_hook:
                self.frame_hook(self)

    # -- wrist -----------------------------------------------------------------------------
    def tool_pose(self) -> Pose:
        """Measured TCP pose in the base frame."""
        d = self.data
        return Pose(d.site_xpos[self.tcp_site].copy(), d.site_xmat[self.tcp_site].reshape(3, 3).copy(), "base")

    def target_pose(self) -> Pose:
        """The pose the wrist servos are commanded to."""
        q = self._target_q
        rot = TOOL_DOWN @ Rotation.from_euler("ZYX", q[3:]).as_matrix()
        return Pose(q[:3].copy(), rot, "base")

    def joint_target(self, pose: Pose) -> np.ndarray:
        """Wrist joint set-points [x, y, z, yaw, pitch, roll] for a tool pose (angles unwrapped)."""
        ang = _unwrap_to(wrist_angles(pose.rotation), self._target_q[3:])
        return np.concatenate([np.asarray(pose.position_m, float), ang])

    def set_wrist_target(self, q: np.ndarray) -> None:
        self._target_q = np.asarray(q, float).copy()
        self.data.ctrl[self.wrist_act] = self._target_q

    def teleport(self, pose: Pose) -> None:
        """Put the wrist at `pose` at rest, instantly (used for resets, not during a trial)."""
        q = self.joint_target(pose)
        self.data.qpos[self.wrist_qadr] = q
        self.data.qvel[self.wrist_dadr] = 0.0
        self.set_wrist_target(q)
        self.mj.mj_forward(self.model, self.data)

    def move_linear(self, pose: Pose, speed: float, accel: float, settle_s: float = 0.05,
                    stop_on_contact: Callable[[], bool] | None = None) -> None:
        """Straight-line tool move (position lerp + rotation slerp) with a trapezoidal profile."""
        start = self.target_pose()
        p0, p1 = start.position_m, np.asarray(pose.position_m, float)
        rots = Rotation.from_matrix(np.stack([start.rotation, pose.rotation]))
        angle = float(np.linalg.norm((rots[0].inv() * rots[1]).as_rotvec()))
        dist = max(float(np.linalg.norm(p1 - p0)), angle * 0.15)  # 0.15 m per rad for rotations
        dur = move_duration(dist, speed, accel)
        ts = np.arange(CONTROL_DT, dur + CONTROL_DT, CONTROL_DT)
        s = trapezoid_s(ts, dur, dist, speed, accel)
        slerp = Slerp([0.0, 1.0], rots)
        eul = (Rotation.from_matrix(TOOL_DOWN.T) * slerp(s)).as_euler("ZYX")
        ref = self._target_q[3:]
        eul = np.unwrap(np.vstack([ref, eul]), axis=0)[1:]  # continuous from the current angles
        pos = p0 + s[:, None] * (p1 - p0)
        k = max(1, int(round(CONTROL_DT / self.model.opt.timestep)))
        for i in range(len(ts)):
            self.set_wrist_target(np.concatenate([pos[i], eul[i]]))
            self.mj.mj_step(self.model, self.data, nstep=k)
            if self.frame_hook:
                self.frame_hook(self)
            if stop_on_contact is not None and stop_on_contact():
                return
        self.set_wrist_target(self.joint_target(pose) if not len(ts) else self._target_q)
        self.step(settle_s)

    # -- fingers ---------------------------------------------------------------------------
    def opening_m(self) -> float:
        """Current opening between the pads."""
        return float(self.info.gripper.max_opening_m - self.data.qpos[self.finger_qadr].sum())

    def set_opening_target(self, width_m: float) -> None:
        self.data.ctrl[self.grip_act] = self.info.gripper.max_opening_m - width_m

    def set_grip_force(self, force_n: float) -> None:
        self.model.actuator_forcerange[self.grip_act] = (-force_n, force_n)

    def finger_speed(self) -> float:
        return float(np.abs(self.data.qvel[self.finger_dadr]).sum())

    def close_fingers(self, speed_mps: float, force_n: float, max_s: float = 1.5) -> None:
        """Ramp the closing set-point at `speed_mps` with the force limit `force_n` until the fingers
        stall on an object (and the force has built up) or are fully closed."""
        g = self.info.gripper
        self.set_grip_force(force_n)
        ctrl = float(self.data.ctrl[self.grip_act])
        k = max(1, int(round(CONTROL_DT / self.model.opt.timestep)))
        kp = float(self.model.actuator_gainprm[self.grip_act, 0])
        squeeze = 1.2 * force_n / kp  # set-point lead that saturates the force limit
        still = 0
        for _ in range(int(max_s / CONTROL_DT)):
            closing = float(self.data.qpos[self.finger_qadr].sum())
            c = self.contacts()
            if c.left and c.right:  # both pads on the object: build up the grip force (as the 2F-85)
                ctrl = max(ctrl, min(0.15, closing + squeeze))
            else:
                ctrl = min(0.15, ctrl + speed_mps * CONTROL_DT)
            self.data.ctrl[self.grip_act] = ctrl
            self.mj.mj_step(self.model, self.data, nstep=k)
            if self.frame_hook:
                self.frame_hook(self)
            closing = float(self.data.qpos[self.finger_qadr].sum())
            if closing >= g.max_opening_m - 1e-3:
                break  # fully closed: nothing between the fingers
            still = still + 1 if self.finger_speed() < 2e-3 and ctrl - closing > squeeze / 1.5 else 0
            if still >= 3:
                break

    # -- object ----------------------------------------------------------------------------
    def object_dofs(self, k: int) -> tuple[int, int]:
        """(qpos address, dof address) of object k's free joint."""
        jid = self.model.body_jntadr[self.object_bodies[k]]
        return int(self.model.jnt_qposadr[jid]), int(self.model.jnt_dofadr[jid])

    def select_object(self, k: int) -> None:
        """Make object k of the scene the one the object methods, contacts and trials refer to."""
        m = self.model
        self.object_body = self.object_bodies[k]
        self.object_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] == self.object_body and m.geom_contype[g]}
        self.obj_qadr, self.obj_dadr = self.object_dofs(k)
        if self.info.object_points:
            self.info.object_top_local = self.info.object_points[k]

    def object_position(self) -> np.ndarray:
        return self.data.qpos[self.obj_qadr:self.obj_qadr + 3].copy()

    def object_quat(self) -> np.ndarray:
        return self.data.qpos[self.obj_qadr + 3:self.obj_qadr + 7].copy()

    def set_object_pose(self, pos: np.ndarray, quat: np.ndarray) -> None:
        self.data.qpos[self.obj_qadr:self.obj_qadr + 3] = pos
        self.data.qpos[self.obj_qadr + 3:self.obj_qadr + 7] = quat / np.linalg.norm(quat)
        self.data.qvel[self.obj_dadr:self.obj_dadr + 6] = 0.0
        self.mj.mj_forward(self.model, self.data)

    def object_points_world(self) -> np.ndarray:
        """Object hull points in the base frame."""
        b = self.object_body
        return self.info.object_top_local @ self.data.xmat[b].reshape(3, 3).T + self.data.xpos[b]

    def object_bottom_z(self) -> float:
        return float(self.object_points_world()[:, 2].min())

    def object_speed(self) -> float:
        return float(np.linalg.norm(self.data.qvel[self.obj_dadr:self.obj_dadr + 6]))

    # -- contacts --------------------------------------------------------------------------
    def contacts(self) -> ContactState:
        d, m = self.data, self.model
        left = right = table = False
        force = 0.0
        f6 = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            pair = {g1, g2}
            if pair & self.gripper_geoms and self.table_geom in pair:
                table = True
            if not (pair & self.object_geoms):
                continue
            hit_left, hit_right = self.pad_geoms[0] in pair, self.pad_geoms[1] in pair
            if hit_left or hit_right:
                self.mj.mj_contactForce(m, d, i, f6)
                force += abs(f6[0])
                left |= hit_left
                right |= hit_right
        return ContactState(left, right, force, table)

    def gripper_touches_object(self) -> bool:
        d = self.data
        for i in range(d.ncon):
            c = d.contact[i]
            pair = {int(c.geom1), int(c.geom2)}
            if pair & self.gripper_geoms and pair & self.object_geoms:
                return True
        return False

    # -- state -----------------------------------------------------------------------------
    def save_state(self) -> tuple[np.ndarray, np.ndarray]:
        spec = self.mj.mjtState.mjSTATE_INTEGRATION
        state = np.empty(self.mj.mj_stateSize(self.model, spec))
        self.mj.mj_getState(self.model, self.data, state, spec)
        return state, self._target_q.copy()

    def restore_state(self, saved: tuple[np.ndarray, np.ndarray]) -> None:
        state, target = saved
        self.mj.mj_setState(self.model, self.data, state, self.mj.mjtState.mjSTATE_INTEGRATION)
        self._target_q = target.copy()
        self.mj.mj_forward(self.model, self.data)

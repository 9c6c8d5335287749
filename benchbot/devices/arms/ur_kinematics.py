"""UR5 kinematics: DH forward kinematics, a numerical inverse, and joint-space paths (for the RTDE
emulator, the kinematic dry-run arm and the homing check).

Standard DH parameters of the UR5 (CB3), as published by Universal Robots. Poses are 4×4
matrices in the robot base frame; UR pose vectors are [x, y, z, rx, ry, rz] (axis-angle).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from benchbot.config.robot import ROBOTIQ_2F85_TCP_OFFSET, UR5_HOME_JOINTS_RAD  # noqa: F401 (re-exported)
from benchbot.core.types import Pose

Vector = np.ndarray | Sequence[float]  # joint angles (rad) or a pose vector: anything np.asarray reads as 6 floats

UR5_D = (0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823)
UR5_A = (0.0, -0.425, -0.39225, 0.0, 0.0, 0.0)
UR5_ALPHA = (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)


def pose_to_matrix(pose: Vector) -> np.ndarray:
    """UR's [x, y, z, rx, ry, rz] → 4×4 (the controller emulator's side of the RTDE edge)."""
    return Pose.from_rotvec(pose).as_matrix()


def matrix_to_pose(m: np.ndarray) -> np.ndarray:
    """4×4 → UR's [x, y, z, rx, ry, rz]."""
    return np.asarray(Pose.from_matrix(m).as_rotvec())


def joint_frames(q: Vector) -> list[np.ndarray]:
    """Base → DH frame i (4×4) after each of the six joints; the last one is the tool flange."""
    t = np.eye(4)
    frames = []
    for theta, d, a, alpha in zip(np.asarray(q, float), UR5_D, UR5_A, UR5_ALPHA, strict=True):
        ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
        t = t @ np.array([[ct, -st * ca, st * sa, a * ct],
                          [st, ct * ca, -ct * sa, a * st],
                          [0.0, sa, ca, d],
                          [0.0, 0.0, 0.0, 1.0]])
        frames.append(t)
    return frames


def flange_fk(q: Vector) -> np.ndarray:
    """Base → tool flange (4×4) for joint angles q (rad)."""
    return joint_frames(q)[-1]


def tcp_fk(q: Vector, tcp_offset: Vector) -> np.ndarray:
    """Base → TCP (4×4): flange pose composed with the TCP offset pose vector."""
    return flange_fk(q) @ pose_to_matrix(tcp_offset)


def arm_points(q: Vector,
               tcp_offset: Vector) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The TCP (4×4) and the base-frame centres of the wrist-2 and wrist-3 joints and of the flange:
    what a homing check watches besides the tool."""
    frames = joint_frames(q)
    points = {"wrist 2": frames[3][:3, 3], "wrist 3": frames[4][:3, 3], "flange": frames[5][:3, 3]}
    return frames[5] @ pose_to_matrix(tcp_offset), points


def joint_path(q_from: Vector, q_to: Vector,
               max_step_rad: float = 0.01) -> np.ndarray:
    """Samples (n × 6, both ends included) of the straight joint-space line a moveJ follows,
    no joint moving more than `max_step_rad` between samples."""
    a, b = np.asarray(q_from, float), np.asarray(q_to, float)
    n = max(1, int(math.ceil(float(np.max(np.abs(b - a))) / max_step_rad)))
    return a + np.linspace(0.0, 1.0, n + 1)[:, None] * (b - a)


def _error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """6-vector (position, rotation-vector) error taking `current` to `target`, base frame."""
    rot = Rotation.from_matrix(target[:3, :3] @ current[:3, :3].T).as_rotvec()
    return np.concatenate([target[:3, 3] - current[:3, 3], rot])


def tcp_ik(target: np.ndarray, q_seed: np.ndarray, tcp_offset: Vector,
           max_iter: int = 200, tol: float = 1e-7) -> np.ndarray | None:
    """Joint angles reaching the 4×4 TCP `target`, found by damped least squares from `q_seed`
    (the solution nearest the current configuration, each joint within ±π of its seed, as a
    controller keeps joints continuous along a move); None when it does not converge."""
    seed = np.asarray(q_seed, dtype=float)
    q = seed.copy()
    offset = pose_to_matrix(tcp_offset)
    eps, damping = 1e-6, 1e-4
    for _ in range(max_iter):
        current = flange_fk(q) @ offset
        err = _error(current, target)
        if np.linalg.norm(err) < tol:
            return seed + (q - seed + np.pi) % (2 * np.pi) - np.pi
        jac = np.empty((6, 6))
        for i in range(6):
            dq = q.copy()
            dq[i] += eps
            jac[:, i] = _error(current, flange_fk(dq) @ offset) / eps
        step = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), err)
        norm = np.linalg.norm(step)
        q += step if norm < 0.5 else step * (0.5 / norm)
    return None


def home_path_samples(q_now: Vector, home_joints_rad: Vector,
                      tcp_offset: Vector) -> list[tuple[Pose, dict[str, np.ndarray]]]:
    """TCP pose and wrist/flange centres along the joint-space line of a moveJ from q_now to home."""
    path = []
    for q in joint_path(q_now, home_joints_rad):
        tcp, points = arm_points(q, tcp_offset)
        path.append((Pose.from_matrix(tcp), points))
    return path


def profile_duration_s(distance: float, speed: float, accel: float) -> float:
    """Duration of a trapezoidal (or triangular) speed profile."""
    if distance <= 0 or speed <= 0 or accel <= 0:
        return 0.0
    if distance >= speed**2 / accel:
        return distance / speed + speed / accel
    return 2.0 * math.sqrt(distance / accel)

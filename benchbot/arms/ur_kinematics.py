"""UR5 kinematics for the RTDE emulator: DH forward kinematics and a numerical inverse.

Standard DH parameters of the UR5 (CB3), as published by Universal Robots. Poses are 4×4
matrices in the robot base frame; UR pose vectors are [x, y, z, rx, ry, rz] (axis-angle).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

UR5_D = (0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823)
UR5_A = (0.0, -0.425, -0.39225, 0.0, 0.0, 0.0)
UR5_ALPHA = (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)


def pose_to_matrix(pose: np.ndarray | list[float]) -> np.ndarray:
    """[x, y, z, rx, ry, rz] → 4×4."""
    p = np.asarray(pose, dtype=float)
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(p[3:6]).as_matrix()
    m[:3, 3] = p[:3]
    return m


def matrix_to_pose(m: np.ndarray) -> np.ndarray:
    """4×4 → [x, y, z, rx, ry, rz]."""
    return np.concatenate([m[:3, 3], Rotation.from_matrix(m[:3, :3]).as_rotvec()])


def flange_fk(q: np.ndarray | list[float]) -> np.ndarray:
    """Base → tool flange (4×4) for joint angles q (rad)."""
    t = np.eye(4)
    for theta, d, a, alpha in zip(np.asarray(q, float), UR5_D, UR5_A, UR5_ALPHA):
        ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
        t = t @ np.array([[ct, -st * ca, st * sa, a * ct],
                          [st, ct * ca, -ct * sa, a * st],
                          [0.0, sa, ca, d],
                          [0.0, 0.0, 0.0, 1.0]])
    return t


def tcp_fk(q: np.ndarray | list[float], tcp_offset: np.ndarray | list[float]) -> np.ndarray:
    """Base → TCP (4×4): flange pose composed with the TCP offset pose vector."""
    return flange_fk(q) @ pose_to_matrix(tcp_offset)


def _error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """6-vector (position, rotation-vector) error taking `current` to `target`, base frame."""
    rot = Rotation.from_matrix(target[:3, :3] @ current[:3, :3].T).as_rotvec()
    return np.concatenate([target[:3, 3] - current[:3, 3], rot])


def tcp_ik(target: np.ndarray, q_seed: np.ndarray, tcp_offset: np.ndarray | list[float],
           max_iter: int = 200, tol: float = 1e-7) -> np.ndarray | None:
    """Joint angles reaching the 4×4 TCP `target`, found by damped least squares from `q_seed`
    (the solution nearest the current configuration); None when it does not converge."""
    q = np.asarray(q_seed, dtype=float).copy()
    offset = pose_to_matrix(tcp_offset)
    eps, damping = 1e-6, 1e-4
    for _ in range(max_iter):
        current = flange_fk(q) @ offset
        err = _error(current, target)
        if np.linalg.norm(err) < tol:
            return (q + np.pi) % (2 * np.pi) - np.pi
        jac = np.empty((6, 6))
        for i in range(6):
            dq = q.copy()
            dq[i] += eps
            jac[:, i] = _error(current, flange_fk(dq) @ offset) / eps
        step = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), err)
        norm = np.linalg.norm(step)
        q += step if norm < 0.5 else step * (0.5 / norm)
    return None


def profile_duration_s(distance: float, speed: float, accel: float) -> float:
    """Duration of a trapezoidal (or triangular) speed profile."""
    if distance <= 0 or speed <= 0 or accel <= 0:
        return 0.0
    if distance >= speed**2 / accel:
        return distance / speed + speed / accel
    return 2.0 * math.sqrt(distance / accel)

"""The camera-to-robot-base (eye-to-hand) solver. The board, the calibration file, the motion, the
touch check and the CLI workflows are its neighbours in benchbot.calibration.

Setup: the camera is fixed; a calibration board is held rigidly by the gripper. For every arm
pose i we know A_i = T_base_gripper (from the robot) and B_i = T_camera_board (board detected in
the camera image). With X = T_base_camera and Y = T_gripper_board, every pose gives

    A_i · Y = X · B_i

Solved in closed form (rotation: null space of the stacked Kronecker system, Shah 2013;
translation: linear least squares), then refined by Levenberg–Marquardt on board-sized point
residuals. (OpenCV's calibrateHandEye/calibrateRobotWorldHandEye are not in the OpenCV 5 wheel
this project pins, so the solver lives here; OpenCV detects the board and runs solvePnP.)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from benchbot.core.errors import BenchbotError
from benchbot.core.geometry import make_transform, rotation_angle_deg, transform_points

MIN_POSES = 3


def _project_so3(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return r


# ---------------------------------------------------------------- the solver

@dataclass
class HandEyeResult:
    T_base_camera: np.ndarray
    T_gripper_board: np.ndarray
    residual_mm: float  # RMS over poses of |t(A·Y) − t(X·B)|
    residual_max_mm: float
    residual_deg: float  # RMS over poses of the angle of (A·Y)⁻¹·(X·B)
    residual_max_deg: float
    per_pose_mm: list[float] = field(default_factory=list)  # every pose, rejected ones included
    per_pose_deg: list[float] = field(default_factory=list)
    method: str = "shah+lm"
    rejected: list[int] = field(default_factory=list)  # pose indices left out as outliers


def _residuals(a: list[np.ndarray], b: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mm, deg = [], []
    for ai, bi in zip(a, b, strict=True):
        lhs, rhs = ai @ y, x @ bi
        mm.append(1000.0 * float(np.linalg.norm(lhs[:3, 3] - rhs[:3, 3])))
        deg.append(rotation_angle_deg(lhs[:3, :3].T @ rhs[:3, :3]))
    return np.array(mm), np.array(deg)


def _check_transforms(name: str, ts: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    for i, t in enumerate(ts):
        m = np.asarray(t, float)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise BenchbotError(f"{name}[{i}] is not a finite 4×4 transform", "pass homogeneous 4×4 matrices")
        if not np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-4) or np.linalg.det(m[:3, :3]) < 0:
            raise BenchbotError(f"{name}[{i}] has an invalid rotation", "pass proper rotation matrices")
        out.append(m)
    return out


def solve_hand_eye(T_base_gripper: Sequence[np.ndarray], T_camera_board: Sequence[np.ndarray],
                   refine: bool = True, board_size_m: float = 0.2, reject_outliers: bool = True) -> HandEyeResult:
    """Eye-to-hand calibration from paired poses (gripper in base, board in camera).

    Returns X = T_base_camera and Y = T_gripper_board with per-pose residuals. Raises
    BenchbotError when there are too few poses or they do not constrain the solution
    (the board must be tilted about at least two different axes across poses).
    With `reject_outliers`, poses that disagree badly with the others (a mis-detected or
    flipped board: > max(3× median, 5 mm) or > max(3× median, 1°)) are dropped one at a time,
    at most a quarter of them; their indices are in `result.rejected`.
    """
    a = _check_transforms("T_base_gripper", T_base_gripper)
    b = _check_transforms("T_camera_board", T_camera_board)
    if len(a) != len(b):
        raise BenchbotError(f"{len(a)} gripper poses but {len(b)} board poses",
                            "pair every arm pose with one board pose")
    if len(a) < MIN_POSES:
        raise BenchbotError(f"only {len(a)} calibration poses (need ≥ {MIN_POSES}, 10–20 recommended)",
                            "add arm poses where the board is visible")
    keep, rejected = list(range(len(a))), list[int]()
    while True:
        x, y, method = _solve([a[i] for i in keep], [b[i] for i in keep], refine, board_size_m)
        mm, deg = _residuals(a, b, x, y)
        if not reject_outliers or len(keep) <= MIN_POSES + 1 or len(rejected) >= len(a) // 4:
            break
        mm_scale, deg_scale = max(np.median(mm[keep]), 1e-9), max(np.median(deg[keep]), 1e-9)
        worst = max(keep, key=lambda i: mm[i] / mm_scale + deg[i] / deg_scale)
        if mm[worst] <= max(3 * np.median(mm[keep]), 5.0) and deg[worst] <= max(3 * np.median(deg[keep]), 1.0):
            break
        keep.remove(worst)
        rejected.append(worst)
    km, kd = mm[keep], deg[keep]
    return HandEyeResult(x, y, float(np.sqrt(np.mean(km**2))), float(km.max()), float(np.sqrt(np.mean(kd**2))),
                         float(kd.max()), mm.round(3).tolist(), deg.round(4).tolist(), method, sorted(rejected))


def _solve(a: list[np.ndarray], b: list[np.ndarray], refine: bool,
           board_size_m: float) -> tuple[np.ndarray, np.ndarray, str]:
    # Rotation: R_A·R_Y − R_X·R_B = 0, with vec(R_A·R_Y) = (I⊗R_A)·vec(R_Y) and vec(R_X·R_B) = (R_Bᵀ⊗I)·vec(R_X)
    eye = np.eye(3)
    rows = [np.hstack([np.kron(eye, ai[:3, :3]), -np.kron(bi[:3, :3].T, eye)]) for ai, bi in zip(a, b, strict=True)]
    _, s, vt = np.linalg.svd(np.vstack(rows))
    if s[-2] < 1e-3 * s[0]:
        raise BenchbotError("calibration poses do not constrain the camera rotation (all rotations share one axis)",
                            "tilt the board about at least two different axes between poses")
    v = vt[-1]
    ry, rx = v[:9].reshape(3, 3, order="F"), v[9:].reshape(3, 3, order="F")
    det = np.linalg.det(rx)
    scale = np.sign(det) / abs(det) ** (1.0 / 3.0)
    rx, ry = _project_so3(rx * scale), _project_so3(ry * scale)

    # Translation: R_A·t_Y − t_X = R_X·t_B − t_A
    lhs = np.vstack([np.hstack([ai[:3, :3], -eye]) for ai in a])
    rhs = np.concatenate([rx @ bi[:3, 3] - ai[:3, 3] for ai, bi in zip(a, b, strict=True)])
    sol, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    x, y = make_transform(rx, sol[3:]), make_transform(ry, sol[:3])
    if not refine:
        return x, y, "shah"
    x, y = _refine(a, b, x, y, board_size_m)
    return x, y, "shah+lm"


def _refine(a: list[np.ndarray], b: list[np.ndarray], x0: np.ndarray, y0: np.ndarray,
            size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt on the distance between board points mapped through both chains."""
    pts = np.array([[0, 0, 0], [size_m, 0, 0], [0, size_m, 0], [0, 0, size_m]], float)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (make_transform(Rotation.from_rotvec(p[0:3]).as_matrix(), p[3:6]),
                make_transform(Rotation.from_rotvec(p[6:9]).as_matrix(), p[9:12]))

    def fun(p: np.ndarray) -> np.ndarray:
        x, y = unpack(p)
        return np.concatenate([(transform_points(ai @ y, pts) - transform_points(x @ bi, pts)).ravel()
                               for ai, bi in zip(a, b, strict=True)])

    p0 = np.concatenate([Rotation.from_matrix(x0[:3, :3]).as_rotvec(), x0[:3, 3],
                         Rotation.from_matrix(y0[:3, :3]).as_rotvec(), y0[:3, 3]])
    res = least_squares(fun, p0, method="lm", xtol=1e-12, ftol=1e-12)
    return unpack(res.x)

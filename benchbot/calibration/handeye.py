"""Camera-to-robot-base (eye-to-hand) calibration, its file format and its check.

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

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.types import Intrinsics, Pose

MIN_POSES = 3
DEFAULT_TILT_DEG = 35.0  # board tilt of the calibration poses: ≥ 35° constrains the rotation well
MAX_TILT_DEG = 60.0
POSE_Z_SPAN_M = 0.06  # the calibration poses step up and down by half of this around the centre
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])  # tool z straight down, tool x along base x
_ARUCO_DICTS = ("DICT_4X4_50", "DICT_4X4_100", "DICT_5X5_50", "DICT_5X5_100", "DICT_6X6_50", "DICT_6X6_100")


# ---------------------------------------------------------------- small rigid-transform helpers

def make_transform(rotation: np.ndarray, translation: Sequence[float]) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return m


def invert(t: np.ndarray) -> np.ndarray:
    r, p = t[:3, :3], t[:3, 3]
    return make_transform(r.T, -r.T @ p)


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, float)
    return p @ t[:3, :3].T + t[:3, 3]


def rotation_angle_deg(r: np.ndarray) -> float:
    c = (np.trace(r) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


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
    for ai, bi in zip(a, b):
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
        raise BenchbotError(f"{len(a)} gripper poses but {len(b)} board poses", "pair every arm pose with one board pose")
    if len(a) < MIN_POSES:
        raise BenchbotError(f"only {len(a)} calibration poses (need ≥ {MIN_POSES}, 10–20 recommended)",
                            "add arm poses where the board is visible")
    keep, rejected = list(range(len(a))), []
    while True:
        x, y, method = _solve([a[i] for i in keep], [b[i] for i in keep], refine, board_size_m)
        mm, deg = _residuals(a, b, x, y)
        if not reject_outliers or len(keep) <= MIN_POSES + 1 or len(rejected) >= len(a) // 4:
            break
        worst = max(keep, key=lambda i: mm[i] / max(np.median(mm[keep]), 1e-9) + deg[i] / max(np.median(deg[keep]), 1e-9))
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
    rows = [np.hstack([np.kron(eye, ai[:3, :3]), -np.kron(bi[:3, :3].T, eye)]) for ai, bi in zip(a, b)]
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
    rhs = np.concatenate([rx @ bi[:3, 3] - ai[:3, 3] for ai, bi in zip(a, b)])
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
                               for ai, bi in zip(a, b)])

    p0 = np.concatenate([Rotation.from_matrix(x0[:3, :3]).as_rotvec(), x0[:3, 3],
                         Rotation.from_matrix(y0[:3, :3]).as_rotvec(), y0[:3, 3]])
    res = least_squares(fun, p0, method="lm", xtol=1e-12, ftol=1e-12)
    return unpack(res.x)


# ---------------------------------------------------------------- boards and their detection

class BoardSpec(BaseModel):
    """A calibration board. checkerboard: cols × rows *inner corners*; charuco: cols × rows
    *squares* with ArUco markers (unambiguous orientation: recommended)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["charuco", "checkerboard"] = "charuco"
    cols: int = Field(7, ge=2, le=50)
    rows: int = Field(5, ge=2, le=50)
    square_m: float = Field(0.05, gt=0.0, le=0.5)  # 7×5 × 50 mm squares fit an A3 sheet
    marker_m: float = Field(0.037, gt=0.0, le=0.5)  # charuco only
    dictionary: str = "DICT_5X5_100"  # charuco only

    @field_validator("dictionary")
    @classmethod
    def _known_dict(cls, v: str) -> str:
        if v not in _ARUCO_DICTS:
            raise ValueError(f"unknown ArUco dictionary '{v}' (use one of {', '.join(_ARUCO_DICTS)})")
        return v

    @model_validator(mode="after")
    def _marker_fits(self) -> "BoardSpec":
        if self.kind == "charuco" and self.marker_m >= self.square_m:
            raise ValueError("marker_m must be smaller than square_m")
        return self

    def cv_board(self):
        import cv2

        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, d)

    def corner_points(self) -> np.ndarray:
        """Board-frame (x right, y down, z into the board) coordinates of the detectable corners."""
        if self.kind == "charuco":
            return np.asarray(self.cv_board().getChessboardCorners(), float)
        g = np.mgrid[0:self.cols, 0:self.rows].T.reshape(-1, 2) * self.square_m
        return np.hstack([g, np.zeros((len(g), 1))])

    def image(self, px_per_square: int = 100, margin_px: int = 50) -> np.ndarray:
        """A printable image of the board (uint8). Checkerboard: (cols+1) × (rows+1) squares."""
        if self.kind == "charuco":
            size = (self.cols * px_per_square + 2 * margin_px, self.rows * px_per_square + 2 * margin_px)
            return self.cv_board().generateImage(size, marginSize=margin_px)
        nx, ny = self.cols + 1, self.rows + 1
        sq = (np.add.outer(np.arange(ny), np.arange(nx)) % 2 == 0).astype(np.uint8) * 255
        img = np.kron(sq, np.ones((px_per_square, px_per_square), np.uint8))
        return np.pad(img, margin_px, constant_values=255)

    def image_origin_px(self, px_per_square: int = 100, margin_px: int = 50) -> float:
        """Pixel coordinate (pixel-centre convention) of the board frame's origin in `image()`."""
        offset = margin_px if self.kind == "charuco" else margin_px + px_per_square
        return offset - 0.5


def save_board_image(path: str | Path, board: BoardSpec, dpi: int = 300, margin_m: float = 0.01) -> Path:
    """Write a printable PNG of the board whose squares measure `board.square_m` when printed at
    100 % scale (the DPI is stored in the file). Measure a printed square and fix square_m if needed."""
    from PIL import Image

    px_per_square = max(10, int(round(board.square_m / 0.0254 * dpi)))
    margin_px = int(round(margin_m / 0.0254 * dpi))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(board.image(px_per_square, margin_px)).save(path, dpi=(dpi, dpi))
    return path


@dataclass
class BoardObservation:
    T_camera_board: np.ndarray
    image_points: np.ndarray  # (N, 2) x=col, y=row
    object_points: np.ndarray  # (N, 3) board frame
    reprojection_px: float


def _camera_matrix(intr: Intrinsics) -> np.ndarray:
    return np.array([[intr.fx, 0, intr.cx], [0, intr.fy, intr.cy], [0, 0, 1.0]])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale an IR/intensity image to uint8 for detection (robust to the IR's wide range)."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    f = np.nan_to_num(img.astype(np.float32))
    lo, hi = np.percentile(f, 1), np.percentile(f, 99)
    if hi <= lo:
        return np.zeros(f.shape, np.uint8)
    return (np.clip((f - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def detect_board(image: np.ndarray, board: BoardSpec, intr: Intrinsics,
                 dist: np.ndarray | None = None, min_corners: int = 6) -> BoardObservation | None:
    """Find the board in an intensity image (e.g. the Kinect's IR image) and its pose in the
    camera frame by solvePnP. None when the board is not found."""
    import cv2

    gray = to_uint8(image)
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    if board.kind == "charuco":
        corners, ids, *_ = cv2.aruco.CharucoDetector(board.cv_board()).detectBoard(gray)
        if corners is None or ids is None or len(ids) < min_corners:
            return None
        obj, img = board.cv_board().matchImagePoints(corners, ids)
    else:
        found, corners = cv2.findChessboardCornersSB(gray, (board.cols, board.rows))
        if not found:
            return None
        obj, img = board.corner_points().astype(np.float32), corners
    obj = np.asarray(obj, np.float64).reshape(-1, 3)
    img = np.asarray(img, np.float64).reshape(-1, 2)
    k = _camera_matrix(intr)
    d = np.zeros(5) if dist is None else np.asarray(dist, float)
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, d, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, d)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    t = make_transform(cv2.Rodrigues(rvec)[0], tvec.ravel())
    return BoardObservation(t, img, obj, err)


# ---------------------------------------------------------------- the calibration file

class _CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    T_base_camera: tuple[tuple[float, float, float, float], ...]
    method: str
    residual_mm: float = Field(ge=0.0)
    residual_max_mm: float | None = Field(None, ge=0.0)
    residual_deg: float = Field(ge=0.0)
    residual_max_deg: float | None = Field(None, ge=0.0)
    n_poses: int = Field(ge=1)
    created_at: str
    camera_serial: str | None = None
    camera_kind: str | None = None
    intrinsics: dict[str, float] | None = None
    board: BoardSpec | None = None
    T_gripper_board: tuple[tuple[float, float, float, float], ...] | None = None
    notes: str = ""

    @field_validator("T_base_camera", "T_gripper_board")
    @classmethod
    def _rigid(cls, v: Any) -> Any:
        if v is None:
            return v
        m = np.asarray(v, float)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise ValueError("must be a 4×4 homogeneous transform (last row 0 0 0 1)")
        r = m[:3, :3]
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
            raise ValueError("rotation part is not a proper rotation matrix")
        return v


@dataclass
class Calibration:
    """Where the camera is in the robot base frame: p_base = T_base_camera · p_camera."""

    T_base_camera: np.ndarray
    method: str
    residual_mm: float
    residual_deg: float
    n_poses: int
    created_at: str
    camera_serial: str | None = None
    camera_kind: str | None = None
    residual_max_mm: float | None = None
    residual_max_deg: float | None = None
    intrinsics: dict[str, float] | None = None
    board: BoardSpec | None = None
    T_gripper_board: np.ndarray | None = None
    notes: str = ""
    path: Path | None = None

    def age_days(self, now: Any = None) -> float | None:
        import datetime as dt

        try:
            t = dt.datetime.fromisoformat(self.created_at)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        now = now or dt.datetime.now(dt.timezone.utc)
        return (now - t).total_seconds() / 86400.0


def calibration_from_result(res: HandEyeResult, n_poses: int, camera_serial: str | None = None,
                            camera_kind: str | None = None, intrinsics: Intrinsics | None = None,
                            board: BoardSpec | None = None) -> Calibration:
    from benchbot.devices.cameras.recording import utc_now

    return Calibration(res.T_base_camera, res.method, res.residual_mm, res.residual_deg, n_poses, utc_now(),
                       camera_serial, camera_kind, res.residual_max_mm, res.residual_max_deg,
                       intrinsics.to_dict() if intrinsics else None, board, res.T_gripper_board)


def save_calibration(path: str | Path, cal: Calibration) -> Path:
    """Write a calibration YAML (atomically: temp file then rename)."""
    path = Path(path)
    data: dict[str, Any] = {
        "T_base_camera": [[round(float(v), 9) for v in row] for row in cal.T_base_camera],
        "method": cal.method, "residual_mm": round(float(cal.residual_mm), 4),
        "residual_max_mm": None if cal.residual_max_mm is None else round(float(cal.residual_max_mm), 4),
        "residual_deg": round(float(cal.residual_deg), 5),
        "residual_max_deg": None if cal.residual_max_deg is None else round(float(cal.residual_max_deg), 5),
        "n_poses": int(cal.n_poses), "created_at": cal.created_at, "camera_serial": cal.camera_serial,
        "camera_kind": cal.camera_kind, "intrinsics": cal.intrinsics,
        "board": cal.board.model_dump() if cal.board else None,
        "T_gripper_board": None if cal.T_gripper_board is None else
        [[round(float(v), 9) for v in row] for row in cal.T_gripper_board],
        "notes": cal.notes,
    }
    _CalibrationFile.model_validate(data)  # never write what we could not read back
    from benchbot.config.protocol import write_yaml_atomic

    return write_yaml_atomic(path, data, "camera-to-robot-base calibration (benchbot calibrate): "
                                         "p_base = T_base_camera @ p_camera")


def load_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration YAML; raises BenchbotError (one line) on any problem."""
    from benchbot.config.hardware import _validation_error
    from benchbot.config.protocol import _read_yaml

    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise BenchbotError(f"{path}: expected a mapping at the top level", "re-run `benchbot calibrate`")
    try:
        f = _CalibrationFile.model_validate(data)
    except ValidationError as e:
        err = _validation_error(path, e)
        raise BenchbotError(err.message, "fix the file or re-run `benchbot calibrate`") from None
    return Calibration(np.asarray(f.T_base_camera, float), f.method, f.residual_mm, f.residual_deg, f.n_poses,
                       f.created_at, f.camera_serial, f.camera_kind, f.residual_max_mm, f.residual_max_deg,
                       f.intrinsics, f.board, None if f.T_gripper_board is None else np.asarray(f.T_gripper_board),
                       f.notes, path)


# ---------------------------------------------------------------- checking a calibration

@dataclass
class CheckReport:
    """Touch-point check: where the TCP touched vs where the calibration predicts the point."""

    predicted_base_m: np.ndarray  # (N, 3)
    measured_base_m: np.ndarray  # (N, 3)
    errors_mm: np.ndarray  # (N,) Euclidean
    errors_xyz_mm: np.ndarray  # (N, 3) measured − predicted

    @property
    def mean_mm(self) -> float:
        return float(self.errors_mm.mean())

    @property
    def max_mm(self) -> float:
        return float(self.errors_mm.max())

    def ok(self, tolerance_mm: float = 5.0) -> bool:
        return self.max_mm <= tolerance_mm

    def rows(self) -> list[dict[str, float]]:
        return [{"point": i, "error_mm": round(float(e), 2), "dx_mm": round(float(d[0]), 2),
                 "dy_mm": round(float(d[1]), 2), "dz_mm": round(float(d[2]), 2)}
                for i, (e, d) in enumerate(zip(self.errors_mm, self.errors_xyz_mm))]


def check_calibration(T_base_camera: np.ndarray, points_camera_m: np.ndarray,
                      touched_base_m: np.ndarray) -> CheckReport:
    """Compare points seen by the camera (camera frame), mapped through the calibration, with the
    same points touched by the TCP (base frame)."""
    pc = np.asarray(points_camera_m, float).reshape(-1, 3)
    pb = np.asarray(touched_base_m, float).reshape(-1, 3)
    if len(pc) != len(pb) or len(pc) == 0:
        raise BenchbotError(f"{len(pc)} camera points but {len(pb)} touched points", "touch every listed point once")
    pred = transform_points(np.asarray(T_base_camera, float), pc)
    diff = (pb - pred) * 1000.0
    return CheckReport(pred, pb, np.linalg.norm(diff, axis=1), diff)


# ---------------------------------------------------------------- moving a real (or dry-run) arm

ImageSource = Callable[[], np.ndarray]


def intensity_source(camera: Any) -> ImageSource:
    """The camera's IR/intensity image grabber (`capture_ir()`), for board detection."""
    grab = getattr(camera, "capture_ir", None)
    if grab is None:
        raise BenchbotError(f"camera {type(camera).__name__} gives no IR/intensity image for board detection",
                            "calibrate with a kinect2 or k4a camera")
    return grab


def calibration_poses(center_m: Sequence[float], n: int = 12, tilt_deg: float = DEFAULT_TILT_DEG,
                      radius_m: float = 0.08, z_span_m: float = POSE_Z_SPAN_M,
                      base_rotation: np.ndarray | None = None) -> list[Pose]:
    """Arm poses around `center_m` (base frame, where the camera sees the board), with the tool
    tilted about varying horizontal axes and turned about its own axis: what a good hand-eye
    calibration needs. base_rotation: the tool orientation at zero tilt (default: pointing down)."""
    base = TOOL_DOWN if base_rotation is None else np.asarray(base_rotation, float)
    c = np.asarray(center_m, float)
    poses = []
    for i in range(n):
        phi = 2.0 * math.pi * i / n
        axis = np.array([math.cos(phi), math.sin(phi), 0.0])
        tilt = Rotation.from_rotvec(math.radians(tilt_deg) * axis)
        twist = Rotation.from_rotvec([0.0, 0.0, math.radians(25.0 * math.sin(3 * phi))])
        r = tilt.as_matrix() @ base @ twist.as_matrix()
        p = c + np.array([radius_m * math.cos(phi + 0.7), radius_m * math.sin(phi + 0.7),
                          z_span_m * (i % 3 - 1) / 2.0])
        poses.append(Pose(p, r, "base"))
    return poses


@dataclass
class CollectedPoses:
    T_base_gripper: list[np.ndarray] = field(default_factory=list)
    T_camera_board: list[np.ndarray] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # pose indices where the board was not seen
    reprojection_px: list[float] = field(default_factory=list)


def collect_poses(arm: Any, images: ImageSource, poses: Sequence[Pose], board: BoardSpec, intr: Intrinsics,
                  speed_mps: float = 0.1, accel_mps2: float = 0.3, settle: Callable[[], None] | None = None,
                  dist: np.ndarray | None = None) -> CollectedPoses:
    """Move the arm through `poses`; at each, grab an image, detect the board, and pair the
    arm's reported pose with the board pose. Poses must already be safe (caller gates them)."""
    out = CollectedPoses()
    for i, pose in enumerate(poses):
        arm.move_linear(pose, speed_mps, accel_mps2)
        if settle is not None:
            settle()
        obs = detect_board(images(), board, intr, dist)
        if obs is None:
            out.skipped.append(i)
            continue
        out.T_base_gripper.append(arm.current_pose().as_matrix())
        out.T_camera_board.append(obs.T_camera_board)
        out.reprojection_px.append(obs.reprojection_px)
    return out


def run_calibration(arm: Any, camera: Any, poses: Sequence[Pose], board: BoardSpec, intr: Intrinsics | None = None,
                    speed_mps: float = 0.1, accel_mps2: float = 0.3, settle: Callable[[], None] | None = None,
                    camera_serial: str | None = None, camera_kind: str | None = None) -> tuple[Calibration, HandEyeResult]:
    """The whole `benchbot calibrate` motion: collect poses with `arm` and `camera`, solve, and
    return the calibration (not yet saved) with the solver's details."""
    intr = intr or camera.intrinsics
    got = collect_poses(arm, intensity_source(camera), poses, board, intr, speed_mps, accel_mps2, settle)
    if len(got.T_base_gripper) < MIN_POSES:
        raise DeviceError(f"board seen in only {len(got.T_base_gripper)} of {len(poses)} poses",
                          "check that the board is in view, lit, and matches the board settings")
    res = solve_hand_eye(got.T_base_gripper, got.T_camera_board)
    cal = calibration_from_result(res, len(got.T_base_gripper) - len(res.rejected), camera_serial, camera_kind,
                                  intr, board)
    return cal, res


def board_points_in_camera(obs: BoardObservation, board: BoardSpec, indices: Sequence[int] | None = None) -> np.ndarray:
    """Camera-frame positions of the board's corners (all, or the listed corner ids, detected or
    not) from the board pose of a detection."""
    pts = board.corner_points()
    return transform_points(obs.T_camera_board, pts if indices is None else pts[list(indices)])


def run_touch_check(arm: Any, camera: Any, board: BoardSpec, cal: Calibration, operator: Any,
                    indices: Sequence[int] = (0, -1), hover_m: float = 0.03, speed_mps: float = 0.05,
                    accel_mps2: float = 0.3, tool_rotation: np.ndarray | None = None,
                    intr: Intrinsics | None = None) -> CheckReport:
    """`benchbot check-calibration`: detect the board lying on the table, move the TCP to hover
    `hover_m` above each chosen corner as predicted by the calibration, switch the arm to freedrive
    (ur_rtde teachMode: no pendant jogging, which remote control forbids) for the operator to guide
    the TCP onto the corner by hand, read back where the TCP really is, and lift straight up."""
    intr = intr or camera.intrinsics
    obs = detect_board(intensity_source(camera)(), board, intr)
    if obs is None:
        raise DeviceError("calibration board not found in the camera image",
                          "lay the board flat on the table in view of the camera")
    cam_pts = board_points_in_camera(obs, board, indices)
    pred = transform_points(cal.T_base_camera, cam_pts)
    rot = TOOL_DOWN if tool_rotation is None else tool_rotation
    touched = []
    for k, p in zip(indices, pred):
        arm.move_linear(Pose(p + np.array([0.0, 0.0, hover_m]), rot, "base"), speed_mps, accel_mps2)
        touched.append(_touch_by_hand(arm, operator, k, hover_m))
        here = arm.current_pose()
        arm.move_linear(Pose(here.position_m + np.array([0.0, 0.0, hover_m]), here.rotation, "base"),
                        speed_mps, accel_mps2)
    return check_calibration(cal.T_base_camera, cam_pts, np.array(touched))


def _touch_by_hand(arm: Any, operator: Any, corner: int, hover_m: float) -> np.ndarray:
    """Freedrive on, the operator guides the TCP onto the corner and confirms, freedrive off
    (the arm then holds still); the TCP position there."""
    arm.start_freedrive()
    try:
        ok = operator.confirm(f"Freedrive is on: guide the TCP by hand onto board corner {corner} (it hovers "
                              f"{hover_m * 1000:.0f} mm above the predicted point), hold it there and confirm")
    finally:
        arm.end_freedrive()
    if not ok:
        raise BenchbotError("calibration check cancelled by the operator", "run it again when ready")
    return arm.current_pose().position_m


# ---------------------------------------------------------------- the CLI workflows

def calibrate_hardware(hw_path: str | Path, out: str | Path | None = None, n_poses: int = 12,
                       tilt_deg: float = DEFAULT_TILT_DEG, center_m: Sequence[float] | None = None,
                       board: BoardSpec | None = None, speed_mps: float = 0.1, settle_s: float = 0.5,
                       arm_factory: Callable[..., Any] | None = None,
                       camera_factory: Callable[[Any], Any] | None = None,
                       sleep: Callable[[float], None] | None = None) -> tuple[Calibration, HandEyeResult, Path]:
    """`benchbot calibrate`: home, hold the board at the centre (`--center` or the config's
    calibration_center_m) and refuse if the camera cannot range it there, wave it through `n_poses`
    poses tilted `tilt_deg`, home, solve and save the calibration (to `out`, else the config's
    `calibration:` path, else calibration.yaml beside the config). The safety gate allows the tilt.
    `arm_factory(hw, **safety_limit_overrides)` builds the gated arm (default: make_gated_arm)."""
    import time

    from benchbot.calibration.camera_range import check_board_distance, measure_board_distance
    from benchbot.config.hardware import load_hardware, make_gated_arm
    from benchbot.devices.cameras import make_camera
    from benchbot.devices.safety import DEFAULT_MAX_TILT_DEG

    hw = load_hardware(hw_path)
    center = center_m if center_m is not None else hw.calibration_center_m
    if center is None:
        raise BenchbotError("no calibration centre: where should the robot show the board to the camera?",
                            "set calibration_center_m in the hardware YAML or pass --center x,y,z")
    if not 0.0 < tilt_deg <= MAX_TILT_DEG:
        raise BenchbotError(f"calibration tilt {tilt_deg}° outside (0, {MAX_TILT_DEG:.0f}]°",
                            f"use --tilt {DEFAULT_TILT_DEG:.0f} (≥ 35° constrains the camera rotation well)")
    board = board or BoardSpec()
    path = Path(out) if out else Path(hw.calibration) if hw.calibration else Path(hw_path).parent / "calibration.yaml"
    pause = sleep or time.sleep
    camera = (camera_factory or make_camera)(hw)
    try:
        arm = (arm_factory or make_gated_arm)(hw, max_tilt_deg=max(DEFAULT_MAX_TILT_DEG, tilt_deg))
        try:
            arm.home()
            poses = calibration_poses(center, n_poses, tilt_deg)
            distance = measure_board_distance(arm, camera, board, center, speed_mps, lambda: pause(settle_s))
            try:
                check_board_distance(distance, hw.camera.kind, hw.camera.depth_mode, POSE_Z_SPAN_M)
            except BenchbotError:
                arm.home()
                raise
            serial = hw.camera.serial or getattr(camera, "serial", None)
            cal, res = run_calibration(arm, camera, poses, board, speed_mps=speed_mps,
                                       settle=lambda: pause(settle_s), camera_serial=serial,
                                       camera_kind=hw.camera.kind)
            arm.home()
        finally:
            arm.close()
    finally:
        camera.close()
    save_calibration(path, cal)
    cal.path = path
    return cal, res, path


def check_hardware(hw_path: str | Path, operator: Any, indices: Sequence[int] = (0, 5, 18, 23),
                   board: BoardSpec | None = None, hover_m: float = 0.03,
                   arm_factory: Callable[[Any], Any] | None = None,
                   camera_factory: Callable[[Any], Any] | None = None) -> CheckReport:
    """`benchbot check-calibration`: touch chosen corners of the board lying on the table (guiding
    the TCP by hand in freedrive) and compare with the calibration's prediction (default corners:
    the four outer ones of a 7×5 ChArUco)."""
    from benchbot.config.hardware import load_hardware, make_gated_arm, require_calibration
    from benchbot.devices.cameras import make_camera

    hw = load_hardware(hw_path)
    cal = require_calibration(hw)
    board = board or cal.board or BoardSpec()
    camera = (camera_factory or make_camera)(hw)
    try:
        arm = (arm_factory or make_gated_arm)(hw)
        try:
            arm.home()
            report = run_touch_check(arm, camera, board, cal, operator, indices, hover_m)
            arm.home()
        finally:
            arm.close()
    finally:
        camera.close()
    return report

"""The one table model: a plane in the camera frame, fitted robustly to a depth frame (RANSAC).

Every part of benchbot that needs the table (detectors, the GQ-CNN evaluator, `detect`, `eval`,
the runner's camera pose, the rectified view) reads it through `table_plane(frame)`: the plane
stored in `frame.meta["table_plane"]`, else one fitted to the frame (deterministic) and stored there.
Where the camera pose is known instead (hand-eye calibration, a simulated camera) the plane comes
from `TablePlane.from_camera_pose`; every camera-to-table distance benchbot stores or uses
(`table_distance_m` keys, the workcell's, `benchbot record`'s) is this plane's `axis_distance_m`.

Camera frame: x right (+col), y down (+row), z forward. The plane is {p : n·p + d = 0} with the unit
normal n pointing toward the camera and d > 0 the perpendicular camera-to-plane distance, so the
height of a point above the table is n·p + d.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.perception.geometry import deproject

META_KEY = "table_plane"


@dataclass(frozen=True, eq=False)
class TablePlane:
    """normal: unit, camera frame, toward the camera; distance_m: perpendicular camera-to-plane
    distance. source: fit | pose | overhead; inlier_frac / rms_m: quality of a fit."""

    normal: np.ndarray
    distance_m: float
    source: str = "fit"
    inlier_frac: float | None = None
    rms_m: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(n))
        if not (np.isfinite(norm) and norm > 0 and np.isfinite(self.distance_m)):
            raise BenchbotError("table plane with a zero or non-finite normal/distance", "refit the table")
        n, d = n / norm, float(self.distance_m)
        if d < 0:  # orient toward the camera (the camera sits above the table)
            n, d = -n, -d
        object.__setattr__(self, "normal", n)
        object.__setattr__(self, "distance_m", d)

    # -- constructors ------------------------------------------------------------------------
    @staticmethod
    def overhead(distance_m: float, source: str = "overhead") -> TablePlane:
        """A camera looking straight down at a table `distance_m` away."""
        return TablePlane(np.array([0.0, 0.0, -1.0]), float(distance_m), source)

    @staticmethod
    def from_camera_pose(t_base_camera: np.ndarray, table_z_m: float = 0.0) -> TablePlane:
        """The table z = table_z_m of the base frame (z up), seen by a camera at pose T_base_camera."""
        t = np.asarray(t_base_camera, dtype=np.float64)
        up_cam = t[:3, :3].T @ np.array([0.0, 0.0, 1.0])  # base +z in camera coordinates
        height = float(t[2, 3] - table_z_m)
        if height <= 0:
            raise BenchbotError(f"the camera is {height:.3f} m above the table (not above it)",
                                "check the calibration and table_z_m")
        return TablePlane(up_cam, height, "pose")

    @staticmethod
    def from_calibration(t_base_camera: np.ndarray, table_z_m: float) -> TablePlane | None:
        """`from_camera_pose`, or None when the calibrated camera is not above the table looking at
        it (for writers that record the distance only when there is one)."""
        try:
            plane = TablePlane.from_camera_pose(t_base_camera, table_z_m)
        except BenchbotError:
            return None
        return plane if plane.axis_meets_table else None

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TablePlane:
        return TablePlane(np.asarray(d["normal"], float), float(d["distance_m"]), str(d.get("source", "fit")),
                          d.get("inlier_frac"), d.get("rms_m"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"normal": [round(float(v), 7) for v in self.normal],
                               "distance_m": round(self.distance_m, 6), "source": self.source,
                               "tilt_deg": round(self.tilt_deg, 3), "axis_distance_m": round(self.axis_distance_m, 6)}
        if self.inlier_frac is not None:
            out["inlier_frac"] = round(float(self.inlier_frac), 4)
        if self.rms_m is not None:
            out["rms_m"] = round(float(self.rms_m), 6)
        return out

    # -- geometry ----------------------------------------------------------------------------
    def height_m(self, points_m: np.ndarray) -> np.ndarray:
        """Height of camera-frame points [..., 3] above the table (negative below it)."""
        return np.asarray(points_m, float) @ self.normal + self.distance_m

    def heights(self, depth_m: np.ndarray, intr: Intrinsics) -> np.ndarray:
        """Height of every pixel above the table, H×W metres (NaN where the depth is invalid)."""
        d = np.asarray(depth_m, dtype=np.float64)
        d = d[..., 0] if d.ndim == 3 else d
        pixel = np.indices(d.shape)
        h = self.height_m(deproject(intr, pixel[0], pixel[1], d))
        h[~(np.isfinite(d) & (d > 0))] = np.nan
        return h

    def ray_depth_m(self, intr: Intrinsics, row: np.ndarray | float, col: np.ndarray | float,
                    height_m: float = 0.0) -> np.ndarray:
        """Depth z where the ray of pixel (row, col) meets the plane `height_m` above the table
        (NaN where the ray misses it: parallel, or behind the camera)."""
        r = np.asarray(row, float)
        c = np.asarray(col, float)
        along = ((c - intr.cx) / intr.fx) * self.normal[0] + ((r - intr.cy) / intr.fy) * self.normal[1] + self.normal[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (height_m - self.distance_m) / along
        return np.where(np.isfinite(z) & (z > 0), z, np.nan)

    def depth_map(self, intr: Intrinsics, height_m: float = 0.0) -> np.ndarray:
        """Depth of the table (or of a plane `height_m` above it) at every pixel, H×W float64."""
        rows, cols = np.indices((intr.height, intr.width))
        return self.ray_depth_m(intr, rows, cols, height_m)

    @property
    def axis_distance_m(self) -> float:
        """Camera-to-table distance along the optical axis (where the axis meets the plane)."""
        return float(self.distance_m / max(-self.normal[2], 1e-6))

    @property
    def axis_meets_table(self) -> bool:
        """Whether the optical axis meets the table in front of the camera (else axis_distance_m is meaningless)."""
        return bool(-self.normal[2] > 1e-6)

    @property
    def tilt_deg(self) -> float:
        """Angle between the optical axis and the table normal."""
        return float(np.degrees(np.arccos(np.clip(-self.normal[2], -1.0, 1.0))))


# ---------------------------------------------------------------- fitting

def _least_squares(points: np.ndarray) -> tuple[np.ndarray, float]:
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    n = vt[2]
    return n, -float(n @ centre)


def fit_table(frame: DepthFrame, *, stride: int = 4, iters: int = 256, inlier_m: float = 0.004,
              max_tilt_deg: float = 45.0, min_inlier_frac: float = 0.3, seed: int = 0,
              mask: np.ndarray | None = None) -> TablePlane:
    """The table plane of a depth frame: RANSAC over planes facing the camera (tilt ≤ max_tilt_deg),
    scored by inliers within `inlier_m`, then least squares on the inliers (twice). Deterministic
    for a given seed. `mask` (H×W bool) limits the fit to those pixels. Raises BenchbotError when
    the best plane holds less than `min_inlier_frac` of the valid pixels (no table in view)."""
    d = np.asarray(frame.depth_m, dtype=np.float64)
    d = d[..., 0] if d.ndim == 3 else d
    rows, cols = np.mgrid[0:d.shape[0]:stride, 0:d.shape[1]:stride]
    z = d[rows, cols]
    ok = np.isfinite(z) & (z > 0)
    if mask is not None:
        ok &= np.asarray(mask, bool)[rows, cols]
    pts = deproject(frame.intrinsics, rows[ok], cols[ok], z[ok])
    fix = "the table must fill most of the camera's view (check the camera height, aim and depth units)"
    if len(pts) < 50:
        raise BenchbotError("too few valid depth pixels to find the table plane", fix)
    rng = np.random.default_rng(seed)
    tri = pts[rng.integers(0, len(pts), size=(iters, 3))]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normals, axis=1)
    good = norm > 1e-12
    normals, tri = normals[good] / norm[good, None], tri[good]
    normals *= np.where(normals[:, 2] > 0, -1.0, 1.0)[:, None]  # toward the camera
    facing = -normals[:, 2] >= np.cos(np.radians(max_tilt_deg))
    if not facing.any():
        raise BenchbotError("no plane facing the camera in the depth frame", fix)
    normals, tri = normals[facing], tri[facing]
    offsets = -np.einsum("ij,ij->i", normals, tri[:, 0])
    probe = pts[rng.choice(len(pts), min(len(pts), 3000), replace=False)]  # score hypotheses on a subset
    counts = (np.abs(probe @ normals.T + offsets) < inlier_m).sum(axis=0)
    best = int(np.argmax(counts))
    n, off = normals[best], offsets[best]
    for _ in range(3):  # refine: least squares on the inliers of the current plane
        inl = np.abs(pts @ n + off) < inlier_m
        if inl.sum() < 3:
            break
        n, off = _least_squares(pts[inl])
    res = pts @ n + off
    inl = np.abs(res) < inlier_m
    frac = float(inl.mean())
    if frac < min_inlier_frac:
        raise BenchbotError(f"no table plane found (the best plane holds {100 * frac:.0f} % of the depth pixels)", fix)
    return TablePlane(n, off, "fit", frac, float(np.sqrt(np.mean(res[inl] ** 2))))


def table_plane(frame: DepthFrame) -> TablePlane:
    """The frame's table plane: `frame.meta["table_plane"]` (a TablePlane or its dict), else the
    plane fitted to the frame, stored in its meta for every later reader."""
    got = frame.meta.get(META_KEY)
    if isinstance(got, TablePlane):
        return got
    if isinstance(got, dict):
        plane = TablePlane.from_dict(got)
    else:
        plane = fit_table(frame)
    frame.meta[META_KEY] = plane
    return plane

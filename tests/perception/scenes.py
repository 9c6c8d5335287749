"""Exact synthetic depth frames: boxes on a table (z = 0, z up) ray-cast from any camera pose."""
from __future__ import annotations

import numpy as np

from benchbot.core.types import DepthFrame, Intrinsics

PRIME = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


def look_at(eye: np.ndarray, target: np.ndarray, up_hint: np.ndarray | None = None) -> np.ndarray:
    """T_table_camera (OpenCV camera: x right, y down, z forward) of a camera at `eye` looking at `target`."""
    if up_hint is None:
        up_hint = np.array([1.0, 0.0, 0.0])
    z = target - eye
    z = z / np.linalg.norm(z)
    x = up_hint - np.dot(up_hint, z) * z  # image +col along up_hint, projected
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, :3] = np.column_stack([x, y, z])
    t[:3, 3] = eye
    return t


def tilted_camera(tilt_deg: float, distance_m: float = 0.7, azimuth_deg: float = 0.0,
                  target: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A camera `distance_m` from the table point `target`, its axis `tilt_deg` from the vertical."""
    t, a = np.radians(tilt_deg), np.radians(azimuth_deg)
    tgt = np.array([target[0], target[1], 0.0])
    eye = tgt + distance_m * np.array([np.sin(t) * np.cos(a), np.sin(t) * np.sin(a), np.cos(t)])
    return look_at(eye, tgt, np.array([-np.sin(a), np.cos(a), 0.0]))


def render(t_table_camera: np.ndarray, boxes: list[tuple[float, float, float, float, float, float]],
           intr: Intrinsics = PRIME) -> np.ndarray:
    """Depth (z along the optical axis) of the table and boxes (cx, cy, yaw, length, width, height)."""
    rows, cols = np.indices((intr.height, intr.width), dtype=np.float64)
    d_cam = np.stack([(cols - intr.cx) / intr.fx, (rows - intr.cy) / intr.fy, np.ones_like(rows)], -1)
    r, o = t_table_camera[:3, :3], t_table_camera[:3, 3]
    d = d_cam @ r.T  # ray directions in the table frame, per unit of camera z
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(d[..., 2] < 0, -o[2] / d[..., 2], np.inf)
        for cx, cy, yaw, length, width, height in boxes:
            c, s = np.cos(yaw), np.sin(yaw)
            rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # table → box frame
            ob = rot @ (o - np.array([cx, cy, 0.0]))
            db = d @ rot.T
            lo = np.array([-length / 2, -width / 2, 0.0])
            hi = np.array([length / 2, width / 2, height])
            t1, t2 = (lo - ob) / db, (hi - ob) / db
            tn = np.nanmax(np.minimum(t1, t2), axis=-1)
            tf = np.nanmin(np.maximum(t1, t2), axis=-1)
            hit = (tn <= tf) & (tn > 0)
            best = np.where(hit & (tn < best), tn, best)
    return np.where(np.isfinite(best), best, 0.0).astype(np.float32)


def scene_frame(tilt_deg: float, boxes, intr: Intrinsics = PRIME, **kw) -> tuple[DepthFrame, np.ndarray]:
    t = tilted_camera(tilt_deg, **kw)
    return DepthFrame(render(t, boxes, intr), intr), t

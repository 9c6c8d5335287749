"""Table-plane removal: which pixels belong to objects standing on the table.

1. Deproject a grid of valid pixels to camera-frame points (`geometry.deproject`).
2. RANSAC a plane (the table is the dominant plane), then refine it by least squares on its inliers.
3. Object pixels = height above the plane in (min_height_m, max_height_m).
4. Clean with a morphological opening, drop small blobs and (optionally) blobs touching the image
   border (robot fingers, table edges), then dilate a little so depth edges are included.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.types import Intrinsics
from benchbot.perception.geometry import deproject


@dataclass(frozen=True)
class Plane:
    """height(p) = normal · p + offset_m; normal is unit and points toward the camera."""

    normal: np.ndarray
    offset_m: float

    def height(self, points_m: np.ndarray) -> np.ndarray:
        return points_m @ self.normal + self.offset_m

    def distance_along_axis_m(self) -> float:
        """Camera-to-plane distance along the optical axis (where the axis meets the plane)."""
        return float(self.offset_m / max(abs(self.normal[2]), 1e-6))

    def tilt_deg(self) -> float:
        """Angle between the optical axis and the plane normal."""
        return float(np.degrees(np.arccos(min(1.0, abs(self.normal[2])))))


def _plane_from(points: np.ndarray) -> Plane:
    """Least-squares plane through points (N×3), oriented toward the camera origin."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    n = vt[2]
    d = -float(n @ centre)
    if d < 0:
        n, d = -n, -d
    return Plane(n, d)


def fit_table_plane(depth_m: np.ndarray, intr: Intrinsics, *, stride: int = 4, iters: int = 200,
                    inlier_m: float = 0.004, seed: int = 0) -> Plane:
    """Fit the dominant plane of a depth image (RANSAC, then least squares on the inliers)."""
    d = np.asarray(depth_m, dtype=np.float64)
    if d.ndim == 3:
        d = d[:, :, 0]
    rows, cols = np.mgrid[0:d.shape[0]:stride, 0:d.shape[1]:stride]
    z = d[rows, cols]
    ok = np.isfinite(z) & (z > 0)
    pts = deproject(intr, rows[ok], cols[ok], z[ok])
    if len(pts) < 50:
        raise BenchbotError("too few valid depth pixels to find the table plane",
                            "check the camera view: the table must fill most of the image")
    rng = np.random.default_rng(seed)
    tri = pts[rng.integers(0, len(pts), size=(iters, 3))]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normals, axis=1)
    good = norm > 1e-12
    normals = normals[good] / norm[good, None]
    offsets = -np.einsum("ij,ij->i", normals, tri[good, 0])
    probe = pts[rng.choice(len(pts), min(len(pts), 3000), replace=False)]  # score hypotheses on a subset
    counts = (np.abs(probe @ normals.T + offsets) < inlier_m).sum(axis=0)
    best = int(np.argmax(counts))
    inl = np.abs(pts @ normals[best] + offsets[best]) < inlier_m
    plane = _plane_from(pts[inl])
    for _ in range(2):  # refine: re-select inliers around the least-squares plane
        inl = np.abs(plane.height(pts)) < inlier_m
        plane = _plane_from(pts[inl])
    return plane


def height_map(depth_m: np.ndarray, intr: Intrinsics, plane: Plane) -> np.ndarray:
    """Height of every pixel above `plane` in metres (NaN where the depth is invalid)."""
    d = np.asarray(depth_m, dtype=np.float64)
    if d.ndim == 3:
        d = d[:, :, 0]
    rows, cols = np.indices(d.shape)
    h = plane.height(deproject(intr, rows, cols, d))
    h[~(np.isfinite(d) & (d > 0))] = np.nan
    return h


def object_mask(depth_m: np.ndarray, intr: Intrinsics, *, plane: Plane | None = None,
                min_height_m: float = 0.005, max_height_m: float = 0.15, min_area_px: int = 150,
                open_px: int = 5, dilate_px: int = 2, drop_border: bool = True) -> np.ndarray:
    """Boolean H×W mask of the pixels of objects lying on the table (may be all False)."""
    if plane is None:
        plane = fit_table_plane(depth_m, intr)
    h = height_map(depth_m, intr, plane)
    with np.errstate(invalid="ignore"):
        raw = (h > min_height_m).astype(np.uint8)
    if open_px > 1:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_px, open_px))
        raw = cv2.morphologyEx(raw, cv2.MORPH_OPEN, k)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(raw, connectivity=8)
    # Tallest point of each blob (robust: 98th percentile): robot parts and clutter above
    # max_height_m are not objects to grasp.
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(n + 1))
    hv = np.nan_to_num(h.ravel()[order], nan=0.0)
    keep = np.zeros(n, bool)
    hgt, wid = raw.shape
    for i in range(1, n):
        x, y, w, hh, area = stats[i]
        touches = x == 0 or y == 0 or x + w >= wid or y + hh >= hgt
        tall = np.percentile(hv[starts[i]:starts[i + 1]], 98) > max_height_m
        keep[i] = area >= min_area_px and not tall and not (drop_border and touches)
    mask = keep[labels].astype(np.uint8)
    if dilate_px > 0 and mask.any():
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        mask = cv2.dilate(mask, k)
    return mask.astype(bool)

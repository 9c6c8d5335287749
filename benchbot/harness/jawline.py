"""Geometric grasp model for replayed frames: what lies between the jaws along the jaw line.

Used by `--sim` replay runs, where no physics exists: the emulated gripper is told the object
width measured here, and the attempt is judged `simulated` (never mixed with operator outcomes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchbot.core.types import DepthFrame, Grasp


@dataclass(frozen=True)
class JawLine:
    object_width_m: float | None  # width of the solid run between the jaws; None = nothing there
    collision: bool                # a finger would land on something above the fingertip depth
    reason: str


def _profile(depth: np.ndarray, grasp: Grasp, half_px: float, step_px: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    h, w = depth.shape
    # beyond the farthest image corner every sample is off-image (inf): a degenerate grasp (depth
    # near 0 → millions of px per metre) must not build a gigantic profile; results are unchanged
    reach = max(np.hypot(grasp.row - r, grasp.col - c) for r in (0, h) for c in (0, w)) + step_px
    half_px = min(half_px, float(reach))
    t = np.arange(-half_px, half_px + step_px, step_px)
    cols = np.rint(grasp.col + t * np.cos(grasp.angle_rad)).astype(int)
    rows = np.rint(grasp.row - t * np.sin(grasp.angle_rad)).astype(int)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    z = np.full(t.shape, np.inf)
    z[inside] = depth[rows[inside], cols[inside]]
    z[~np.isfinite(z) | (z <= 0)] = np.inf
    return t, z


def measure(frame: DepthFrame, grasp: Grasp, opening_m: float, finger_m: float = 0.02,
            clearance_m: float = 0.005) -> JawLine:
    """Measure the object between the jaws of `grasp` (fingertips at depth `grasp.depth_m`)."""
    f = 0.5 * (frame.intrinsics.fx + frame.intrinsics.fy)
    px_per_m = f / grasp.depth_m
    half_open = 0.5 * opening_m * px_per_m
    t, z = _profile(frame.depth_m, grasp, half_open + finger_m * px_per_m)
    solid = z < grasp.depth_m  # surface above the fingertips: between the jaws it is squeezed
    inner = np.abs(t) <= half_open
    fingers = ~inner
    if np.any(solid[fingers] & (z[fingers] < grasp.depth_m - clearance_m)):
        return JawLine(None, True, "a finger would land on a surface above the grasp depth")
    if not np.any(solid[inner]):
        return JawLine(None, False, "nothing between the jaws")
    # the jaws close from both sides and stop at the first solid surface each meets
    idx = np.flatnonzero(solid & inner)
    lo, hi = idx[0], idx[-1]
    width_m = (t[hi] - t[lo]) / px_per_m
    if abs(t[lo]) >= half_open - 1 or abs(t[hi]) >= half_open - 1:
        return JawLine(None, True, "the object is wider than the gripper opening")
    return JawLine(float(width_m), False, "object between the jaws")

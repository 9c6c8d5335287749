"""Table-plane removal: which pixels belong to objects standing on the table.

1. The frame's table plane (`table.table_plane`: the one fitted and stored in the frame's meta).
2. Object pixels = height above the plane in (min_height_m, max_height_m).
3. Clean with a morphological opening, drop small blobs and (optionally) blobs touching the image
   border (robot fingers, table edges), then dilate a little so depth edges are included.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from benchbot.core.types import DepthFrame
from benchbot.perception.geometry import deproject, project
from benchbot.perception.table import TablePlane, table_plane


def object_mask(frame: DepthFrame, *, plane: TablePlane | None = None, min_height_m: float = 0.005,
                max_height_m: float = 0.15, min_area_px: int = 150, open_px: int = 5, dilate_px: int = 2,
                drop_border: bool = True) -> np.ndarray:
    """Boolean H×W mask of the pixels of objects lying on the table (may be all False)."""
    plane = plane or table_plane(frame)
    h = plane.heights(frame.depth_m, frame.intrinsics)
    with np.errstate(invalid="ignore"):
        raw: np.ndarray = (h > min_height_m).astype(np.uint8)
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


def isolate_largest_object(frame: DepthFrame, plane: TablePlane | None = None, margin_px: int = 3,
                           pick_px: np.ndarray | None = None) -> tuple[DepthFrame, tuple[float, float] | None]:
    """The frame with every object blob but the largest replaced by the table (its depth along their
    rays, blobs grown by `margin_px`), and the pixel (row, col) of that object's centre on the table
    (the middle of its points dropped onto the table: nearly the same physical point from any camera
    angle); the frame itself and None when no object is found. `pick_px` (N×2 rows, cols; training
    data): keep instead the blob holding most of these pixels (the largest when none holds one)."""
    plane = plane or table_plane(frame)
    mask = object_mask(frame, plane=plane, dilate_px=0)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return frame, None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if pick_px is not None and len(pick_px):
        rc = np.clip(np.rint(np.asarray(pick_px, float)).astype(int), 0, np.array(labels.shape) - 1)
        votes = np.bincount(labels[rc[:, 0], rc[:, 1]], minlength=n)[1:]
        k = 1 + int(np.argmax(votes)) if votes.max() > 0 else k
    rows, cols = np.nonzero(labels == k)
    pts = deproject(frame.intrinsics, rows, cols, np.asarray(frame.depth_m, np.float64)[rows, cols])
    feet = pts - plane.height_m(pts)[:, None] * plane.normal  # dropped onto the table
    u = np.array([1.0, 0.0, 0.0]) - plane.normal[0] * plane.normal  # two axes in the table plane
    u /= np.linalg.norm(u)
    v = np.cross(plane.normal, u)
    # middle of the footprint's extent (0.5–99.5 %): the sides a tilted camera also sees stay inside it
    lo, hi = np.percentile(feet @ np.column_stack([u, v]), [0.5, 99.5], axis=0)
    mid = 0.5 * (lo + hi)
    foot = feet.mean(axis=0) + (mid[0] - feet.mean(axis=0) @ u) * u + (mid[1] - feet.mean(axis=0) @ v) * v
    r, c = project(frame.intrinsics, foot)
    centre = (float(r), float(c))
    others = (labels > 0) & (labels != k)
    if not others.any():
        return frame, centre
    size = 2 * margin_px + 1
    others = cv2.dilate(others.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool) & (labels != k)
    depth = np.asarray(frame.depth_m, np.float32).copy()
    table = plane.depth_map(frame.intrinsics)
    hide = others & np.isfinite(table)
    depth[hide] = table[hide]
    return dataclasses.replace(frame, depth_m=depth, meta=dict(frame.meta)), centre

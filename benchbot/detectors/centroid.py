"""`centroid`: an honestly simple baseline — grasp the largest object at its centroid, jaws across
its principal axis. No learning; useful as a floor for every learned detector."""
from __future__ import annotations

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp
from benchbot.perception.segment import object_mask
from benchbot.perception.table import table_plane


class NoObjectFound(BenchbotError):
    pass


class CentroidDetector:
    name = "centroid"

    def __init__(self, margin_m: float = 0.01, min_clearance_m: float = 0.008) -> None:
        self.margin_m = margin_m
        self.min_clearance_m = min_clearance_m

    def detect(self, frame: DepthFrame) -> Grasp:
        depth = np.asarray(frame.depth_m, dtype=np.float64)
        intr = frame.intrinsics
        plane = table_plane(frame)
        mask = object_mask(frame, plane=plane)
        if not mask.any():
            raise NoObjectFound("centroid: no object found above the table", "check the object is in view")
        import cv2

        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        rows, cols = np.nonzero(labels == biggest)
        r0, c0 = rows.mean(), cols.mean()
        cov = np.cov(np.stack([cols - c0, rows - r0]))
        evals, evecs = np.linalg.eigh(cov)
        minor = evecs[:, 0]  # (dcol, drow): across the object
        angle = float(np.arctan2(-minor[1], minor[0]))
        extent = np.ptp((cols - c0) * minor[0] + (rows - r0) * minor[1])
        heights = plane.heights(depth, intr)
        top = float(np.nanpercentile(heights[labels == biggest], 90))
        # fingertips halfway down the object, at least min_clearance above the table, on the ray
        # through the grasp centre: solve plane.height(t · ray) = h for the depth t
        h = max(self.min_clearance_m, 0.5 * top)
        z = float(plane.ray_depth_m(intr, r0, c0, height_m=h))
        f = 0.5 * (intr.fx + intr.fy)
        width_px = float(extent + 2 * self.margin_m * f / z)
        return Grasp(row=float(r0), col=float(c0), angle_rad=angle, width_px=width_px, depth_m=z, score=None)

"""A Kinect-like depth noise model for rendered depth: axial noise growing with depth, missing pixels
at depth edges (flying pixels / shadowing) and sparse random dropouts. Invalid pixels are 0."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthNoise:
    """Parameters (defaults roughly after Nguyen et al. 2012 and Kinect v2 frames at ~0.7 m)."""

    sigma_base_m: float = 0.0012  # axial σ(z) = base + quad·(z − 0.4)²
    sigma_quad: float = 0.0019
    edge_jump_m: float = 0.008  # depth step that marks an edge
    edge_drop_prob: float = 0.5  # chance each edge pixel is missing
    edge_width_px: int = 1  # edges are dilated by this many pixels
    random_drop_prob: float = 0.002  # isolated dropouts anywhere

    def apply(self, depth_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A noisy copy of a clean depth image (float32, metres)."""
        d = np.asarray(depth_m, dtype=np.float32)
        sigma = self.sigma_base_m + self.sigma_quad * (d - 0.4) ** 2
        out = d + (rng.standard_normal(d.shape).astype(np.float32) * sigma.astype(np.float32))
        edges = depth_edges(d, self.edge_jump_m, self.edge_width_px)
        drop = (edges & (rng.random(d.shape) < self.edge_drop_prob)) | (rng.random(d.shape) < self.random_drop_prob)
        out[drop] = 0.0
        return out.astype(np.float32)


def depth_edges(depth_m: np.ndarray, jump_m: float, width_px: int = 1) -> np.ndarray:
    """Pixels next to a depth discontinuity larger than `jump_m` (both sides), dilated by width_px."""
    import cv2

    d = np.asarray(depth_m, dtype=np.float32)
    dx = np.abs(np.diff(d, axis=1)) > jump_m
    dy = np.abs(np.diff(d, axis=0)) > jump_m
    e = np.zeros(d.shape, dtype=bool)
    e[:, 1:] |= dx
    e[:, :-1] |= dx
    e[1:, :] |= dy
    e[:-1, :] |= dy
    if width_px > 1:
        k = np.ones((2 * width_px - 1, 2 * width_px - 1), np.uint8)
        e = cv2.dilate(e.astype(np.uint8), k).astype(bool)
    return e

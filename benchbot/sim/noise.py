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


def smooth_uniform(shape: tuple[int, int], rng: np.random.Generator, sigma_px: float) -> np.ndarray:
    """Uniform(0, 1) values with spatial correlation of about `sigma_px` (blurred Gaussian noise through
    the normal CDF): thresholding it gives ragged blobs instead of salt-and-pepper pixels."""
    import cv2
    from scipy.special import ndtr

    g: np.ndarray = rng.standard_normal(shape).astype(np.float32)
    if sigma_px > 0:
        g = cv2.GaussianBlur(g, (0, 0), sigma_px)
        g = g / max(float(g.std()), 1e-6)
    return ndtr(g).astype(np.float32)


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: tuple[int, int] = (3, 4)) -> np.ndarray:
    """A smooth zero-mean, unit-std random surface (a cubic-upsampled coarse grid of Gaussians)."""
    import cv2

    coarse = rng.standard_normal(cells).astype(np.float32)
    f = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    f -= f.mean()
    return f / max(float(f.std()), 1e-6)


def edge_distance_px(depth_m: np.ndarray, jump_m: float) -> np.ndarray:
    """Distance (pixels) of every pixel to the nearest depth discontinuity larger than `jump_m`."""
    import cv2

    e = depth_edges(depth_m, jump_m)
    if not e.any():
        return np.full(e.shape, np.inf, np.float32)
    return cv2.distanceTransform((~e).astype(np.uint8), cv2.DIST_L2, 3)


def occluded_in_second_view(depth_m: np.ndarray, fb_px_m: float, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(occluded, outside) masks for a second view (projector or second imager) `fb_px_m` = focal ×
    baseline away along the rows. side "left": the second view sits at +x, so near objects hide what is
    to their left and a band of width f·b/z on the image's left is outside it; "right": mirrored."""
    z = np.where(depth_m > 0, depth_m, np.inf).astype(np.float64)
    cols = np.arange(z.shape[1], dtype=np.float64)[None, :]
    if side == "right":  # mirror, solve as "left", mirror back
        occ, out = occluded_in_second_view(depth_m[:, ::-1], fb_px_m, "left")
        return occ[:, ::-1], out[:, ::-1]
    u = cols - fb_px_m / z  # column in the second view
    right_min = np.minimum.accumulate(u[:, ::-1], axis=1)[:, ::-1]  # min over c' >= c
    nxt = np.full_like(u, np.inf)
    nxt[:, :-1] = right_min[:, 1:]
    return nxt < u, u < 0


@dataclass(frozen=True)
class SensorNoise:
    """One depth sensor's artefacts, applied to a clean render in this order: smooth low-frequency
    distortion, axial noise σ(z) = sigma_a + sigma_b·z², flying pixels at edges (ToF), quantisation
    (disparity steps of `disparity_q` in 1/z, then `depth_unit_m`), then invalid pixels: second-view
    shadows (structured light / stereo), edge dropouts p0·exp(−d/λ) by distance d to an edge, speckle
    blobs, fixed image-border bands with ragged edges, radial or hexagonal field-of-view loss, range."""

    sigma_a_m: float = 0.0
    sigma_b_per_m: float = 0.0
    lowfreq_sigma_m: float = 0.0
    flying_prob: float = 0.0  # share of pixels within flying_width_px of an edge that take a mixed depth
    flying_width_px: float = 1.0
    disparity_q_per_m: float = 0.0  # step of 1/z (1/m) between disparity levels; 0: none
    depth_unit_m: float = 0.0  # output rounding; 0: float output
    shadow_fb_px_m: float = 0.0  # focal (px) × baseline (m) of the second view; 0: no shadows
    shadow_side: str = "left"
    shadow_band: bool = False  # pixels outside the second view are invalid (RealSense's left band)
    edge_jump_m: float = 0.01
    edge_drop_p0: float = 0.0
    edge_drop_decay_px: float = 1.0
    speckle_prob: float = 0.0
    speckle_sigma_px: float = 1.0
    band_px: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, right, top, bottom
    band_jitter_px: float = 0.0
    radial_t50: float = 0.0  # tan(angle from the axis) where half of the pixels are lost; 0: none
    radial_width: float = 0.05
    radial_pmax: float = 0.0
    hexagon: bool = False  # Azure Kinect NFOV: corners outside the illuminated hexagon are lost
    min_range_m: float = 0.0
    max_range_m: float = 10.0

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    def apply(self, depth_m: np.ndarray, intr, rng: np.random.Generator) -> np.ndarray:
        """A noisy copy of a clean depth render (float32 metres, 0 = invalid) for intrinsics `intr`."""
        clean = np.asarray(depth_m, dtype=np.float32)
        h, w = clean.shape
        z = clean.astype(np.float64)
        if self.lowfreq_sigma_m:
            z = z + self.lowfreq_sigma_m * smooth_field((h, w), rng)
        z = z + rng.standard_normal((h, w)) * (self.sigma_a_m + self.sigma_b_per_m * z ** 2)
        dist = edge_distance_px(clean, self.edge_jump_m)
        if self.flying_prob:
            z = _flying(z, clean, dist < self.flying_width_px, self.flying_prob, rng, self.flying_width_px)
        if self.disparity_q_per_m:
            q, phase = self.disparity_q_per_m, rng.random()  # the disparity grid's offset varies per unit
            z = 1.0 / ((np.round(1.0 / (z * q) - phase) + phase) * q)
        if self.depth_unit_m:
            z = np.round(z / self.depth_unit_m) * self.depth_unit_m
        drop = ~((z >= self.min_range_m) & (z <= self.max_range_m))
        if self.shadow_fb_px_m:
            occ, outside = occluded_in_second_view(clean, self.shadow_fb_px_m, self.shadow_side)
            drop |= occ | (outside if self.shadow_band else False)
        if self.edge_drop_p0:
            drop |= rng.random((h, w)) < self.edge_drop_p0 * np.exp(-dist / self.edge_drop_decay_px)
        if self.speckle_prob:
            drop |= smooth_uniform((h, w), rng, self.speckle_sigma_px) < self.speckle_prob
        drop |= self._field_of_view(intr, (h, w), rng)
        out = np.where(drop, 0.0, z).astype(np.float32)
        return out

    def _field_of_view(self, intr, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        h, w = shape
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        lost = np.zeros(shape, bool)
        if any(self.band_px):
            j = self.band_jitter_px * (2 * smooth_uniform(shape, rng, 4.0) - 1)
            left, right, top, bottom = self.band_px
            lost |= (cols < left + j) | (cols > w - 1 - right - j) | (rows < top + j) | (rows > h - 1 - bottom - j)
        xn, yn = (cols - intr.cx) / intr.fx, (rows - intr.cy) / intr.fy
        if self.radial_t50:
            p = self.radial_pmax / (1 + np.exp(-(np.hypot(xn, yn) - self.radial_t50) / self.radial_width))
            lost |= smooth_uniform(shape, rng, 2.0) < p
        if self.hexagon:  # vertices at (±1, 0) and (±0.55, ±1) of the half-frame, flat top and bottom
            xh, yh = np.abs(cols - intr.cx) / (w / 2), np.abs(rows - intr.cy) / (h / 2)
            lost |= xh > 1.0 - 0.45 * yh
        return lost


def _flying(z: np.ndarray, clean: np.ndarray, edge: np.ndarray, prob: float, rng: np.random.Generator,
            reach_px: float = 1.0) -> np.ndarray:
    """Time-of-flight mixed pixels: near an edge a pixel's return mixes both sides, so the depth ramps
    across the edge (the clean depth blurred over `reach_px`) instead of stepping; noise is kept."""
    import cv2

    ramp = cv2.GaussianBlur(clean, (0, 0), reach_px).astype(np.float64)
    pick = edge & (rng.random(z.shape) < prob)
    return np.where(pick, z + ramp - clean, z)

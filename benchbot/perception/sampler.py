"""Antipodal grasp candidates from a depth image (Dex-Net 2.0's `AntipodalDepthImageGraspSampler`).

Pipeline, with the dex-net_2.0 policy settings as defaults (`SamplerConfig`):
  1. depth edges: gaussian blur (σ=1) → bilinear ×1/2 → |∇depth| > 0.0025 → pixel coordinates ×2
     (bit-exact to Berkeley's reference edge set);
  2. surface normals at the edges: the blurred depth's image gradient, normalised;
  3. all edge pairs closer than the gripper's opening (in pixels at the nearest object depth) whose
     normals are opposed and lie in each other's friction cone (μ = 0.8: 2-D force closure);
  4. up to `max_rejection_samples` random pairs, kept when the 3-D contact distance fits the
     gripper, the centre is `min_dist_from_boundary` px inside the image, and the centre depth is
     valid; depth = centre depth + U(min_depth_offset, max_depth_offset);
  5. greedy rejection of grasps closer than `min_grasp_dist` to an accepted one
     (distance = centre px + angle_dist_weight × axis angle difference), until n are accepted.
Everything is vectorised except step 5's greedy pass (over the conflicting pairs a k-d tree finds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from benchbot.core.types import DepthFrame, Grasp
from benchbot.perception.geometry import deproject


@dataclass(frozen=True)
class SamplerConfig:
    """Dex-Net 2.0 policy sampling settings (cfg/examples/replication/dex-net_2.0.yaml).
    Dex-Net used gripper_width 0.05 m (ABB YuMi); the default here is the Robotiq 2F-85."""

    max_width_m: float = 0.085
    friction_coef: float = 0.8
    depth_grad_thresh: float = 0.0025
    gaussian_sigma: float = 1.0
    downsample: int = 2
    max_rejection_samples: int = 4000
    min_dist_from_boundary: int = 45
    min_grasp_dist: float = 2.5
    angle_dist_weight: float = 5.0
    min_depth_offset_m: float = 0.005
    max_depth_offset_m: float = 0.04
    depth_win: int = 1
    max_edge_pixels: int = 6000  # random subset beyond this (whole noisy frames); Dex-Net: no cap


@dataclass
class Candidates:
    """Antipodal grasp candidates as arrays (row/col pixel order everywhere).

    p1, p2: contact pixels (N×2); n1, n2: unit outward normals at them (N×2, [drow, dcol]);
    center (N×2), angle_rad (N,) CCW from +col, depth_m (N,), width_px (N,) = gripper opening
    in pixels at the grasp depth, contact_width_m (N,) = 3-D distance between the contacts."""

    p1: np.ndarray
    p2: np.ndarray
    n1: np.ndarray
    n2: np.ndarray
    center: np.ndarray
    angle_rad: np.ndarray
    depth_m: np.ndarray
    width_px: np.ndarray
    contact_width_m: np.ndarray
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.angle_rad)

    def grasps(self, scores: np.ndarray | None = None) -> list[Grasp]:
        out = []
        for i in range(len(self)):
            s = None if scores is None else float(scores[i])
            out.append(Grasp(float(self.center[i, 0]), float(self.center[i, 1]), float(self.angle_rad[i]),
                             float(self.width_px[i]), float(self.depth_m[i]), s))
        return out

    @staticmethod
    def empty(stats: dict | None = None) -> Candidates:
        z2, z1 = np.zeros((0, 2)), np.zeros(0)
        return Candidates(z2, z2, z2, z2, z2, z1, z1, z1, z1, stats or {})


def _as_2d(depth: np.ndarray) -> np.ndarray:
    d = np.asarray(depth)
    return d[:, :, 0] if d.ndim == 3 else d


def smooth_depth(depth_m: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian-blurred float32 depth (scipy's reflect border, as in Dex-Net)."""
    d = np.nan_to_num(_as_2d(depth_m).astype(np.float32), nan=0.0)
    return ndimage.gaussian_filter(d, sigma=sigma) if sigma > 0 else d


def _downsample_bilinear(img: np.ndarray, rate: int) -> np.ndarray:
    """skimage-style bilinear ×1/rate (no anti-aliasing), float64 math, float32 result."""
    h, w = img.shape
    if h % rate == 0 and w % rate == 0:  # cv2 is exact here (no border samples needed)
        out = cv2.resize(img.astype(np.float64), (w // rate, h // rate), interpolation=cv2.INTER_LINEAR)
    else:
        import skimage.transform as skt

        shape = tuple((np.asarray(img.shape, np.float32) / rate).astype(int))
        out = skt.resize(img.astype(np.float64), shape, order=1, anti_aliasing=False, mode="constant")
    return out.astype(np.float32)


def edge_pixels(depth_m: np.ndarray, *, sigma: float = 1.0, downsample: int = 2, grad_thresh: float = 0.0025,
                seg_mask: np.ndarray | None = None, smoothed: np.ndarray | None = None) -> np.ndarray:
    """Depth-edge pixels (N×2 int16 [row, col], row-major order) as Dex-Net computes them."""
    s = smooth_depth(depth_m, sigma) if smoothed is None else smoothed
    small = _downsample_bilinear(s, downsample) if downsample > 1 else s.astype(np.float32)
    gy, gx = np.gradient(small)
    mag = np.hypot(gx.astype(np.float64), gy.astype(np.float64))
    rows, cols = np.nonzero((mag > grad_thresh) | (small == 0))
    px = (np.stack([rows, cols], axis=1) * downsample).astype(np.int16)
    if seg_mask is not None:
        m = _as_2d(seg_mask) > 0
        px = px[m[px[:, 0], px[:, 1]]]
    return px


def surface_normals(smoothed: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Unit image-gradient directions [drow, dcol] at `pixels` (pointing to larger depth)."""
    s32 = smoothed.astype(np.float32)
    gr, gc = np.gradient(s32, axis=0), np.gradient(s32, axis=1)
    n = np.stack([gr[pixels[:, 0], pixels[:, 1]], gc[pixels[:, 0], pixels[:, 1]]], axis=1).astype(np.float64)
    norm = np.linalg.norm(n, axis=1)
    flat = norm == 0
    n[flat] = (1.0, 0.0)
    norm[flat] = 1.0
    return n / norm[:, None]


def in_friction_cone(p1: np.ndarray, p2: np.ndarray, n1: np.ndarray, n2: np.ndarray, mu: float) -> np.ndarray:
    """2-D force closure of contact pairs: the contact line lies inside both friction cones."""
    v = (p1 - p2).astype(np.float64)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    alpha = np.arctan(mu)
    beta1 = np.arccos(np.clip(np.sum(n1 * v, axis=1), -1, 1))
    beta2 = np.arccos(np.clip(np.sum(n2 * -v, axis=1), -1, 1))
    return (beta1 < alpha) & (beta2 < alpha)


def _angle_ccw(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Jaw axis angle CCW from +col (rows grow downward), folded into (-π/2, π/2]."""
    d = (p2 - p1).astype(np.float64)
    a = np.arctan2(-d[:, 0], d[:, 1])
    a = np.where(a > np.pi / 2, a - np.pi, a)
    return np.where(a <= -np.pi / 2, a + np.pi, a)


def _spread_out(center: np.ndarray, angle: np.ndarray, n: int, min_dist: float, w: float) -> np.ndarray:
    """Indices kept by greedy rejection: dist = |Δcentre| + w·Δangle(axis) must exceed min_dist.
    Only centres closer than min_dist can reject: the k-d tree lists those pairs, the distance is
    checked on all of them at once, and the greedy pass walks each candidate's earlier conflicts."""
    if min_dist <= 0:
        return np.arange(min(n, len(angle)))
    pairs = cKDTree(center).query_pairs(float(min_dist) * (1 + 1e-9), output_type="ndarray")  # i < j
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        dist = np.hypot(center[j, 0] - center[i, 0], center[j, 1] - center[i, 1]) \
            + w * np.arccos(np.minimum(1.0, np.abs(np.cos(angle[j] - angle[i]))))
        for t in np.nonzero(np.abs(dist - min_dist) < 1e-9)[0]:  # borderline: the scalar formula decides
            (r, c), a = center[j[t]].tolist(), float(angle[j[t]])
            (r2, c2), a2 = center[i[t]].tolist(), float(angle[i[t]])
            dist[t] = math.hypot(r - r2, c - c2) + w * math.acos(min(1.0, abs(math.cos(a - a2))))
        pairs = pairs[dist < min_dist]
    pairs = pairs[np.argsort(pairs[:, 1], kind="stable")]
    starts = np.searchsorted(pairs[:, 1], np.arange(len(angle) + 1)).tolist()
    earlier = pairs[:, 0].tolist()
    kept = [False] * len(angle)
    out: list[int] = []
    for k in range(len(angle)):
        if not any(kept[e] for e in earlier[starts[k]:starts[k + 1]]):
            kept[k] = True
            out.append(k)
            if len(out) >= n:
                break
    return np.asarray(out, dtype=np.int64)


def _opposed_pairs(normals: np.ndarray, pairs: np.ndarray, mu: float) -> np.ndarray:
    """Pairs whose normals are opposed within the friction cone: n1·n2 < -cos(atan μ).
    A 1024-step angle lookup discards most pairs cheaply; the survivors get the exact test."""
    limit = -np.cos(np.arctan(mu))
    theta = np.arctan2(normals[:, 0], normals[:, 1])
    q = np.round(theta * (1024 / (2 * np.pi))).astype(np.int32) & 1023
    table = np.cos(np.arange(1024) * (2 * np.pi / 1024)) < limit + 0.01
    pairs = pairs[table[(q[pairs[:, 0]] - q[pairs[:, 1]]) & 1023]]
    dot = np.einsum("ij,ij->i", normals[pairs[:, 0]], normals[pairs[:, 1]])
    return pairs[dot < limit]


def antipodal_candidates(frame: DepthFrame, n: int, *, config: SamplerConfig = SamplerConfig(),
                         seg_mask: np.ndarray | None = None,
                         rng: np.random.Generator | int | None = None) -> Candidates:
    """Up to `n` antipodal candidates (arrays). `seg_mask` limits the edges to an object mask;
    None = whole image (see `sample_antipodal` for automatic table removal)."""
    rng = np.random.default_rng(rng)
    cfg = config
    intr = frame.intrinsics
    depth = _as_2d(frame.depth_m)
    smoothed = smooth_depth(depth, cfg.gaussian_sigma)
    edges = edge_pixels(depth, sigma=cfg.gaussian_sigma, downsample=cfg.downsample,
                        grad_thresh=cfg.depth_grad_thresh, seg_mask=seg_mask, smoothed=smoothed)
    stats: dict = {"edge_pixels": int(len(edges))}
    valid = np.isfinite(smoothed) & (smoothed > 0)
    region = valid if seg_mask is None else valid & (_as_2d(seg_mask) > 0)
    if len(edges) < 2 or n <= 0 or not region.any():
        return Candidates.empty(stats)
    if len(edges) > cfg.max_edge_pixels:
        edges = edges[np.sort(rng.choice(len(edges), cfg.max_edge_pixels, replace=False))]
    normals = surface_normals(smoothed, edges)

    # Candidate pairs: within the gripper opening at the nearest object depth, opposed normals.
    min_depth = float(smoothed[region].min()) + cfg.min_depth_offset_m
    max_px = cfg.max_width_m * 0.5 * (intr.fx + intr.fy) / min_depth
    pairs = cKDTree(edges.astype(np.float64)).query_pairs(max_px, output_type="ndarray")
    if len(pairs):
        pairs = _opposed_pairs(normals, pairs, cfg.friction_coef)
    if len(pairs):
        pairs = pairs[in_friction_cone(edges[pairs[:, 0]], edges[pairs[:, 1]],
                                       normals[pairs[:, 0]], normals[pairs[:, 1]], cfg.friction_coef)]
    stats["antipodal_pairs"] = int(len(pairs))
    if len(pairs) == 0:
        return Candidates.empty(stats)
    pick = rng.choice(len(pairs), size=min(cfg.max_rejection_samples, len(pairs)), replace=False)
    pairs = pairs[pick]
    p1, p2 = edges[pairs[:, 0]].astype(np.int64), edges[pairs[:, 1]].astype(np.int64)

    # 3-D contact distance must fit in the gripper.
    x1 = deproject(intr, p1[:, 0], p1[:, 1], smoothed[p1[:, 0], p1[:, 1]])
    x2 = deproject(intr, p2[:, 0], p2[:, 1], smoothed[p2[:, 0], p2[:, 1]])
    contact_w = np.linalg.norm(x2 - x1, axis=1)
    centre = (p1 + p2) / 2.0
    h, w = depth.shape
    b = cfg.min_dist_from_boundary
    ok = (contact_w <= cfg.max_width_m) & (centre[:, 0] >= b) & (centre[:, 1] >= b) \
        & (centre[:, 0] <= h - b) & (centre[:, 1] <= w - b)
    # Centre depth: min over a small window of the blurred depth (Dex-Net: 2×2 window).
    cr, cc = np.floor(centre[:, 0]).astype(np.int64), np.floor(centre[:, 1]).astype(np.int64)
    k = max(cfg.depth_win, 1)
    win = np.full(len(cr), np.inf)
    for dr in range(-k, k):
        for dc in range(-k, k):
            rr, ccol = np.clip(cr + dr, 0, h - 1), np.clip(cc + dc, 0, w - 1)
            win = np.minimum(win, np.where(valid[rr, ccol], smoothed[rr, ccol], 0.0))
    ok &= np.isfinite(win) & (win > 0)
    stats["feasible"] = int(ok.sum())
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        return Candidates.empty(stats)
    offset_span_m = cfg.max_depth_offset_m - cfg.min_depth_offset_m
    depth_s = win[idx] + cfg.min_depth_offset_m + offset_span_m * rng.random(len(idx))
    angle = _angle_ccw(p1[idx], p2[idx])
    keep = _spread_out(centre[idx], angle, n, cfg.min_grasp_dist, cfg.angle_dist_weight)
    sel = idx[keep]
    depth_s = depth_s[keep]
    f = 0.5 * (intr.fx + intr.fy)
    return Candidates(p1=p1[sel], p2=p2[sel], n1=normals[pairs[sel, 0]], n2=normals[pairs[sel, 1]],
                      center=centre[sel], angle_rad=angle[keep], depth_m=depth_s,
                      width_px=cfg.max_width_m * f / depth_s, contact_width_m=contact_w[sel], stats=stats)


def sample_antipodal(frame: DepthFrame, n: int, *, max_width_m: float = 0.085,
                     seg_mask: np.ndarray | None = None, rng: np.random.Generator | int | None = None,
                     config: SamplerConfig | None = None) -> list[Grasp]:
    """Up to `n` antipodal grasps on the objects of `frame` (an inpainted depth frame).

    With `seg_mask=None` the objects are found by table-plane removal (`segment.object_mask`);
    pass an all-True mask to sample on the whole image. Deterministic for a given `rng` seed."""
    from dataclasses import replace

    from benchbot.perception.segment import object_mask

    cfg = replace(config or SamplerConfig(), max_width_m=max_width_m)
    if seg_mask is None:
        seg_mask = object_mask(frame)
    return antipodal_candidates(frame, n, config=cfg, seg_mask=seg_mask, rng=rng).grasps()

"""`prop-gqcnn`: Dex-Net 2.0's grasping policy — antipodal proposals ranked by a GQ-CNN.

Two policies (option `policy`):
  * "ranking" (the GQ-STN paper's Prop+GQ-CNN baseline): sample up to `num_candidates` (1000)
    antipodal grasps on the objects and return the one with the highest GQ-CNN quality q;
  * "cem" (Dex-Net's CrossEntropyRobustGraspingPolicy, dex-net_2.0.yaml): 250 seed samples, then
    3 iterations of: score, keep the top 25 % (elite), fit a Gaussian mixture (components = 40 %
    of the elite, reg_covar 0.01) to their normalised [jaw point 1, jaw point 2, depth] vectors,
    draw 50 new grasps; finally return the best of the last draw.

Objects are found by table-plane removal (`perception.segment`, on the frame's one table plane)
unless `frame.meta["seg_mask"]` holds a mask. q comes from the shared robustness evaluator's batched
`qualities` (GQCNN-4.0-PJ by default; run by ONNX Runtime when installed, else torch) and is returned
as `Grasp.score`.
Detection is deterministic for a given `seed`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp
from benchbot.perception.inpaint import inpaint_frame
from benchbot.perception.sampler import Candidates, SamplerConfig, antipodal_candidates
from benchbot.perception.segment import object_mask
from benchbot.perception.table import table_plane

Scorer = Callable[[DepthFrame, Sequence[Grasp]], np.ndarray]


class NoGraspFound(BenchbotError):
    """No object or no antipodal grasp candidate in view."""


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy policy settings (dex-net_2.0.yaml)."""

    num_seed_samples: int = 250
    num_gmm_samples: int = 50
    num_iters: int = 3
    gmm_refit_p: float = 0.25
    gmm_component_frac: float = 0.4
    gmm_reg_covar: float = 0.01


@dataclass
class DetectionInfo:
    """What the last `detect` call did (for overlays, logs and the benchmark)."""

    policy: str
    num_candidates: int = 0
    num_scored: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    top: list[Grasp] = field(default_factory=list)  # best grasps of the final scoring, best first
    sampler_stats: dict[str, Any] = field(default_factory=dict)


# --- a small Gaussian mixture (EM, full covariances), as sklearn's GaussianMixture is not a dependency ---

def _kmeans_labels(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 20) -> np.ndarray:
    """k-means++ seeding and Lloyd iterations → labels (initialises the mixture like sklearn)."""
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1.0 / len(x))
        centres.append(x[rng.choice(len(x), p=p)])
    c = np.asarray(centres)
    labels = np.zeros(len(x), np.int64)
    for _ in range(iters):
        labels = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        new = np.array([x[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return labels


def _estimate(x: np.ndarray, resp: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nk = resp.sum(0) + 10 * np.finfo(float).eps
    means = resp.T @ x / nk[:, None]
    covs = np.empty((resp.shape[1], x.shape[1], x.shape[1]))
    for j in range(resp.shape[1]):
        d = x - means[j]
        covs[j] = (resp[:, j, None] * d).T @ d / nk[j] + reg * np.eye(x.shape[1])
    return nk / len(x), means, covs


def _log_resp(x: np.ndarray, w: np.ndarray, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, float]:
    logp = np.empty((len(x), len(w)))
    for j in range(len(w)):
        chol = np.linalg.cholesky(covs[j])
        sol = np.linalg.solve(chol, (x - means[j]).T)
        logp[:, j] = (np.log(w[j]) - 0.5 * (sol ** 2).sum(0) - np.log(np.diag(chol)).sum()
                      - 0.5 * x.shape[1] * math.log(2 * math.pi))
    top = logp.max(1, keepdims=True)
    norm = top + np.log(np.exp(logp - top).sum(1, keepdims=True))
    return logp - norm, float(norm.mean())


def fit_gmm(x: np.ndarray, k: int, rng: np.random.Generator, reg_covar: float = 0.01,
            max_iter: int = 100, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM fit of a k-component full-covariance Gaussian mixture → (weights, means, covariances)."""
    k = max(1, min(k, len(x)))
    resp = np.eye(k)[_kmeans_labels(x, k, rng)] if k > 1 else np.ones((len(x), 1))
    _, means, covs = _estimate(x, resp, reg_covar)
    w = np.full(k, 1.0 / k)  # Dex-Net passes uniform initial weights
    prev = -np.inf
    for _ in range(max_iter):
        log_resp, ll = _log_resp(x, w, means, covs)
        w, means, covs = _estimate(x, np.exp(log_resp), reg_covar)
        if abs(ll - prev) < tol:
            break
        prev = ll
    return w, means, covs


def sample_gmm(w: np.ndarray, means: np.ndarray, covs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    counts = rng.multinomial(n, w / w.sum())
    parts = [rng.multivariate_normal(means[j], covs[j], size=c) for j, c in enumerate(counts) if c > 0]
    return np.concatenate(parts) if parts else np.zeros((0, means.shape[1]))


# --- grasp ↔ feature vector (Berkeley's Grasp2D.feature_vec: jaw end points and depth) ---

def grasp_features(c: Candidates) -> np.ndarray:
    axis = np.stack([-np.sin(c.angle_rad), np.cos(c.angle_rad)], axis=1)  # (drow, dcol)
    half = 0.5 * c.width_px[:, None]
    return np.concatenate([c.center - half * axis, c.center + half * axis, c.depth_m[:, None]], axis=1)


def grasps_from_features(v: np.ndarray, frame: DepthFrame, cfg: SamplerConfig) -> Candidates:
    """Feature vectors → candidates (centre kept inside the boundary margin, depth > 0)."""
    h, w = frame.shape
    b = cfg.min_dist_from_boundary
    p1, p2 = v[:, 0:2], v[:, 2:4]
    centre = (p1 + p2) / 2
    centre[:, 0] = np.clip(centre[:, 0], b, h - b)
    centre[:, 1] = np.clip(centre[:, 1], b, w - b)
    d = p2 - p1
    angle = np.arctan2(-d[:, 0], d[:, 1])
    angle = np.where(angle > np.pi / 2, angle - np.pi, angle)
    angle = np.where(angle <= -np.pi / 2, angle + np.pi, angle)
    depth = np.maximum(v[:, 4], 1e-3)
    f = 0.5 * (frame.intrinsics.fx + frame.intrinsics.fy)
    nan2 = np.full((len(v), 2), np.nan)
    return Candidates(p1=p1, p2=p2, n1=nan2, n2=nan2, center=centre, angle_rad=angle, depth_m=depth,
                      width_px=cfg.max_width_m * f / depth, contact_width_m=np.full(len(v), np.nan))


def _take(c: Candidates, idx: np.ndarray) -> Candidates:
    return Candidates(c.p1[idx], c.p2[idx], c.n1[idx], c.n2[idx], c.center[idx], c.angle_rad[idx],
                      c.depth_m[idx], c.width_px[idx], c.contact_width_m[idx], c.stats)


def _pick_runtime(runtime: str, bf16: bool) -> str:
    """'auto' → ONNX Runtime when installed (same q as torch, 2–3× faster on CPU here), else torch.
    bf16 autocast is a torch feature, so it selects torch."""
    if runtime not in ("auto", "torch", "onnx"):
        raise BenchbotError(f"unknown GQ-CNN runtime {runtime!r}", "use 'auto', 'torch' or 'onnx'")
    if bf16 and runtime == "onnx":
        raise BenchbotError("bf16 autocast needs the torch runtime", "drop bf16 or use runtime='torch'")
    if runtime != "auto":
        return runtime
    if bf16:
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


class PropGQCNN:
    """Antipodal proposals + GQ-CNN ranking (`policy="ranking"`) or cross-entropy search (`"cem"`)."""

    name = "prop-gqcnn"

    def __init__(self, policy: str = "ranking", num_candidates: int = 1000, seed: int = 0,
                 max_width_m: float = 0.085, model: str = "gqcnn-4.0-pj", runtime: str = "auto", bf16: bool = False,
                 scorer: Scorer | None = None,
                 sampler: SamplerConfig | None = None, cem: CEMConfig | None = None, top_k: int = 10) -> None:
        if policy not in ("ranking", "cem"):
            raise BenchbotError(f"unknown prop-gqcnn policy {policy!r}", "use 'ranking' or 'cem'")
        if num_candidates < 1:
            raise BenchbotError(f"num_candidates must be ≥ 1, got {num_candidates}", "use e.g. 1000")
        self.policy = policy
        self.num_candidates = int(num_candidates)
        self.seed = int(seed)
        self.sampler = dataclasses.replace(sampler or SamplerConfig(), max_width_m=max_width_m)
        self.cem = cem or CEMConfig()
        self.bf16 = bool(bf16)
        self.top_k = top_k
        self.evaluator = None
        self.runtime = "custom"
        if scorer is None:
            from benchbot.models.robustness import load_evaluator

            self.runtime = _pick_runtime(runtime, self.bf16)
            self.evaluator = load_evaluator(model, runtime=self.runtime)
            scorer = self.evaluator.qualities
        self._scorer = scorer
        self.last_info: DetectionInfo | None = None

    # -- steps ---------------------------------------------------------------------------------
    def _prepare(self, frame: DepthFrame) -> tuple[DepthFrame, np.ndarray]:
        """Frame with its table plane in meta (for the crop scale) and the object mask."""
        if not frame.valid_mask.all():  # the harness inpaints; be safe with raw frames too
            frame = inpaint_frame(frame)
        frame = dataclasses.replace(frame, meta=dict(frame.meta))
        plane = table_plane(frame)
        mask = frame.meta.get("seg_mask")
        if mask is None:
            mask = object_mask(frame, plane=plane)
        mask = np.asarray(mask)
        mask = (mask[:, :, 0] if mask.ndim == 3 else mask) > 0
        if mask.shape != frame.shape:
            raise BenchbotError(f"seg_mask shape {mask.shape} differs from the frame {frame.shape}",
                                "give a mask of the frame's size")
        if not mask.any():
            raise NoGraspFound("no object found on the table (table-plane removal left nothing)",
                               "put the object in the camera's view, or check the camera height/intrinsics")
        return frame, mask

    def _score(self, frame: DepthFrame, c: Candidates) -> np.ndarray:
        ctx: Any = contextlib.nullcontext()
        if self.bf16:
            import torch

            ctx = torch.autocast("cpu", dtype=torch.bfloat16)
        with ctx:
            q = np.asarray(self._scorer(frame, c.grasps()), dtype=np.float64)
        return np.where(np.isfinite(q), q, -np.inf)

    def _sample(self, frame: DepthFrame, mask: np.ndarray, n: int, rng: np.random.Generator) -> Candidates:
        c = antipodal_candidates(frame, n, config=self.sampler, seg_mask=mask, rng=rng)
        if len(c) == 0:
            raise NoGraspFound(f"no antipodal grasp fits the {self.sampler.max_width_m * 1000:.0f} mm gripper "
                               f"on the object ({c.stats})",
                               "check that the object is in view, not too wide, and the depth is inpainted")
        return c

    def _cem(self, frame: DepthFrame, mask: np.ndarray, rng: np.random.Generator,
             info: DetectionInfo) -> tuple[Candidates, np.ndarray]:
        cfg = self.cem
        cands = self._sample(frame, mask, cfg.num_seed_samples, rng)
        info.num_candidates = len(cands)
        info.sampler_stats = dict(cands.stats)
        for _ in range(cfg.num_iters):
            q = self._score(frame, cands)
            info.num_scored += len(cands)
            n_elite = max(int(math.ceil(cfg.gmm_refit_p * len(cands))), 1)
            elite = np.argsort(-q, kind="stable")[:n_elite]
            x = grasp_features(_take(cands, elite))
            mean, std = x.mean(0), x.std(0)
            std[std == 0] = 1.0
            k = max(int(math.ceil(cfg.gmm_component_frac * n_elite)), 1)
            gmm = fit_gmm((x - mean) / std, k, rng, cfg.gmm_reg_covar)
            v = sample_gmm(*gmm, cfg.num_gmm_samples, rng) * std + mean
            cands = grasps_from_features(v, frame, self.sampler)
        q = self._score(frame, cands)
        info.num_scored += len(cands)
        return cands, q

    # -- Detector interface ----------------------------------------------------------------------
    def detect(self, frame: DepthFrame) -> Grasp:
        """Best grasp on the (inpainted) frame; `score` = its GQ-CNN q. Raises NoGraspFound."""
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        info = DetectionInfo(self.policy)
        frame, mask = self._prepare(frame)
        t1 = time.perf_counter()
        if self.policy == "ranking":
            cands = self._sample(frame, mask, self.num_candidates, rng)
            info.num_candidates = len(cands)
            t2 = time.perf_counter()
            q = self._score(frame, cands)
            info.num_scored = len(cands)
        else:
            t2 = t1
            cands, q = self._cem(frame, mask, rng, info)
        t3 = time.perf_counter()
        info.sampler_stats = info.sampler_stats or dict(cands.stats)
        order = np.argsort(-q, kind="stable")
        if not np.isfinite(q[order[0]]):
            raise NoGraspFound("the GQ-CNN could not score any candidate", "check the depth frame")
        best = _take(cands, order[: max(self.top_k, 1)])
        info.top = best.grasps(q[order[: max(self.top_k, 1)]])
        info.timings_s = {"segment": t1 - t0, "sample": t2 - t1, "score": t3 - t2, "total": t3 - t0}
        self.last_info = info
        return info.top[0]

"""`gqstn-refine`, `multigrasp-refine`: the one-shot grasp, then a small local search of the frozen
GQ-CNN around it (cross-entropy method, 128 evaluations by default).

The search moves the grasp in the rectified view (centre, angle, gripper depth; the opening is
kept), maps every candidate back to the frame exactly and scores it with the robustness evaluator on
the frame — the same q the runner records. Round 1 scores the one-shot grasp itself and samples
around it; each later round samples a Gaussian fitted to the best `elite_frac` of the previous one.
The best grasp ever scored is returned, its q as `score`. Detection time includes the search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp
from benchbot.detectors.gqstn import GQSTNDetector
from benchbot.detectors.multigrasp import MultiGraspDetector
from benchbot.perception.rectify import Rectified


@dataclass(frozen=True)
class RefineConfig:
    """Search settings; sigma_px is in the pixels of the view the search moves in."""

    evaluations: int = 128
    rounds: int = 4
    elite_frac: float = 0.2
    sigma_px: float = 6.0
    sigma_angle_deg: float = 12.0
    sigma_depth_m: float = 0.006
    seed: int = 0

    def __post_init__(self) -> None:
        if not (1 <= self.rounds <= self.evaluations <= 4096):
            raise BenchbotError(f"refine: {self.evaluations} evaluations in {self.rounds} rounds",
                                "use 1 ≤ rounds ≤ evaluations ≤ 4096 (e.g. 128 in 4)")
        if not (0 < self.elite_frac <= 1 and self.sigma_px > 0 and self.sigma_angle_deg > 0 and self.sigma_depth_m > 0):
            raise BenchbotError("refine: elite_frac must be in (0, 1] and the sigmas positive", "use the defaults")


def _circular_half_turn_mean(angles: np.ndarray) -> float:
    return float(0.5 * math.atan2(np.sin(2 * angles).mean(), np.cos(2 * angles).mean()))


def refine_grasp(frame: DepthFrame, grasp: Grasp, evaluator: RobustnessEvaluator, rect: Rectified | None,
                 cfg: RefineConfig = RefineConfig()) -> tuple[Grasp, dict[str, Any]]:
    """The best grasp the search finds around `grasp` (frame pixels), with its q as score."""
    rng = np.random.default_rng(cfg.seed)
    base = rect.to_virtual(grasp) if rect is not None else grasp
    mean = np.array([base.row, base.col, base.angle_rad, base.depth_m])
    std = np.array([cfg.sigma_px, cfg.sigma_px, math.radians(cfg.sigma_angle_deg), cfg.sigma_depth_m])
    floor = 0.1 * std
    per_round = [cfg.evaluations // cfg.rounds + (1 if r < cfg.evaluations % cfg.rounds else 0)
                 for r in range(cfg.rounds)]
    best, best_q, start_q, scored = grasp, -np.inf, float("nan"), 0
    for r, n in enumerate(per_round):
        x = mean + std * rng.standard_normal((n, 4))
        if r == 0:
            x[0] = mean  # the one-shot grasp itself
        x[:, 3] = np.maximum(x[:, 3], 1e-3)
        cands = [Grasp(float(a), float(b), float(c), base.width_px, float(d)) for a, b, c, d in x]
        on_frame = [rect.to_real(g) for g in cands] if rect is not None else cands
        q = np.asarray(evaluator.qualities(frame, on_frame), dtype=np.float64)
        scored += n
        q = np.where(np.isfinite(q), q, -np.inf)
        if r == 0:
            start_q = float(q[0]) if np.isfinite(q[0]) else float("nan")
        k = int(np.argmax(q))
        if q[k] > best_q:
            best, best_q = on_frame[k], float(q[k])
        elite = x[np.argsort(-q, kind="stable")[:max(2, math.ceil(cfg.elite_frac * n))]]
        mean = np.array([elite[:, 0].mean(), elite[:, 1].mean(), _circular_half_turn_mean(elite[:, 2]),
                         elite[:, 3].mean()])
        spread = elite.std(axis=0)
        spread[2] = math.sqrt(max(-0.5 * math.log(max(np.hypot(np.sin(2 * elite[:, 2]).mean(),
                                                                 np.cos(2 * elite[:, 2]).mean()), 1e-12)), 0.0))
        std = np.maximum(spread, floor)
    info = {"evaluations": scored, "start_q": start_q, "best_q": best_q if np.isfinite(best_q) else float("nan")}
    score = best_q if np.isfinite(best_q) else None
    return replace(best, score=score), info


class _Refining:
    """Mixin: the parent detector's grasp, then `refine_grasp` (options: evaluations, rounds, seed;
    the rest go to the parent detector)."""

    def __init__(self, evaluations: int = 128, rounds: int = 4, seed: int = 0, **options: Any) -> None:
        self.refine = RefineConfig(evaluations=int(evaluations), rounds=int(rounds), seed=int(seed))
        super().__init__(**options)
        _ = self.evaluator  # type: ignore[attr-defined]  # loaded now, not inside the first (timed) detection

    def detect(self, frame: DepthFrame) -> Grasp:
        g = super().detect(frame)  # type: ignore[misc]
        rect = self.last_info.rectified  # type: ignore[attr-defined]
        best, info = refine_grasp(frame, g, self.evaluator, rect, self.refine)  # type: ignore[attr-defined]
        self.last_info.extra["refine"] = {**info, "one_shot": g.to_dict()}  # type: ignore[attr-defined]
        return best


class GQSTNRefine(_Refining, GQSTNDetector):
    """`gqstn-refine`: GQ-STN (one pass) + local GQ-CNN search."""

    name = "gqstn-refine"


class MultiGraspRefine(_Refining, MultiGraspDetector):
    """`multigrasp-refine`: MultiGrasp's most confident grasp + local GQ-CNN search."""

    name = "multigrasp-refine"

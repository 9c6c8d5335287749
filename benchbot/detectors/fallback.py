"""`gqstn-fallback`: GQ-STN first; when the robustness evaluator says its grasp is not robust,
fall back to the sampling-based prop-gqcnn detector (slower, searches many candidates).

`last_info` records which detector answered and the GQ-STN grasp's q, for logs and reports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbot.core.interfaces import Detector, RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp
from benchbot.detectors.gqstn import GQSTNDetector


class GQSTNFallback:
    name = "gqstn-fallback"
    forwards_options_to = "prop-gqcnn"  # other keyword options configure the fallback detector

    def __init__(self, weights: str | Path | None = None, device: str = "cpu",
                 evaluator: RobustnessEvaluator | None = None, fallback: Detector | None = None,
                 primary: Detector | None = None, **fallback_options: Any) -> None:
        self.primary = primary if primary is not None else GQSTNDetector(weights=weights, device=device)
        if evaluator is None:
            from benchbot.models.robustness import load_evaluator

            evaluator = load_evaluator()
        self.evaluator = evaluator
        self._fallback = fallback
        self._fallback_options = fallback_options
        self.last_info: dict[str, Any] = {}

    @property
    def fallback(self) -> Detector:
        if self._fallback is None:  # built on first use: prop-gqcnn is heavy
            from benchbot.detectors.prop_gqcnn import PropGQCNN

            self._fallback = PropGQCNN(**self._fallback_options)
        return self._fallback

    def detect(self, frame: DepthFrame) -> Grasp:
        g = self.primary.detect(frame)
        q = float(self.evaluator.quality(frame, g)) if g.is_finite() else float("nan")
        if q == q and q >= self.evaluator.threshold:
            self.last_info = {"used": "gqstn", "gqstn_q": q}
            return g
        self.last_info = {"used": "prop-gqcnn", "gqstn_q": q}
        return self.fallback.detect(frame)

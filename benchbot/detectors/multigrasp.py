"""`multigrasp`: the MultiGrasp baseline (Redmon & Angelova, ResNet features) behind Detector.

Same frame handling as `gqstn` (the rectified training view, the grasp mapped back exactly); the most
confident grid cell's grasp is returned, `score` = that cell's confidence. Needs a trained checkpoint
(`weights=` / --weights, or the shipped benchbot/data/weights/multigrasp/multigrasp.pt); refuses to
run otherwise.
"""
from __future__ import annotations

from pathlib import Path

import torch

from benchbot.core.interfaces import RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp
from benchbot.detectors.gqstn import OneShotDetector, OneShotInfo
from benchbot.models.multigrasp import MultiGrasp, decode, decoded_to_grasp


class MultiGraspDetector(OneShotDetector):
    name = "multigrasp"
    model: MultiGrasp

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", source_size: int | None = None,
                 normalise_view: bool = True, evaluator: RobustnessEvaluator | None = None,
                 focus: str = "largest") -> None:
        super().__init__("multigrasp", weights, device, source_size, normalise_view, evaluator, focus)

    @torch.inference_mode()
    def detect(self, frame: DepthFrame) -> Grasp:
        t, box, rect = self.square(frame)
        row6 = decode(self.model(t), t, self.model.cfg)[0].cpu().double()
        g = self.on_frame(decoded_to_grasp(row6, box), rect)
        self.last_info = OneShotInfo([g], [g.score if g.score is not None else float("nan")], rect)
        return g

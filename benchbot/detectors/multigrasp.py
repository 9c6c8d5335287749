"""`multigrasp`: the MultiGrasp baseline (Redmon & Angelova, ResNet features) behind Detector.

Same frame handling as `gqstn` (including the training-view normalisation); the most confident grid
cell's grasp is returned, `score` = that cell's confidence. Needs a trained checkpoint (`weights=` /
--weights, or the shipped benchbot/data/weights/multigrasp/multigrasp.pt); refuses to run otherwise.
"""
from __future__ import annotations

from pathlib import Path

import torch

from benchbot.core.types import DepthFrame, Grasp
from benchbot.detectors.gqstn import OneShotDetector
from benchbot.models.multigrasp import MultiGrasp, decode, decoded_to_grasp


class MultiGraspDetector(OneShotDetector):
    name = "multigrasp"
    model: MultiGrasp

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", source_size: int | None = None,
                 normalise_view: bool = True) -> None:
        super().__init__("multigrasp", weights, device, source_size, normalise_view)

    @torch.inference_mode()
    def detect(self, frame: DepthFrame) -> Grasp:
        t, box = self.tensor(frame)
        row6 = decode(self.model(t), t, self.model.cfg)[0].cpu().double()
        return decoded_to_grasp(row6, box)

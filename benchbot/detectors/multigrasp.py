"""`multigrasp`: the MultiGrasp baseline (Redmon & Angelova, ResNet features) behind Detector.

Same frame handling as `gqstn` (including the training-view normalisation); the most confident grid
cell's grasp is returned, `score` = that cell's confidence. Needs a trained checkpoint (`weights=` /
--weights, or the shipped benchbot/data/weights/multigrasp/multigrasp.pt); refuses to run otherwise.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..models.checkpoint import load_model, resolve_weights
from ..models.multigrasp import MultiGrasp, decode, decoded_to_grasp
from ..types import DepthFrame, Grasp
from .gqstn import frame_tensor


class MultiGraspDetector:
    name = "multigrasp"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", source_size: int | None = None,
                 normalise_view: bool = True) -> None:
        path = resolve_weights("multigrasp", weights)
        model, self.meta = load_model(path, "multigrasp")
        assert isinstance(model, MultiGrasp)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.source_size = int(source_size or self.meta.get("source_size") or 0)
        self.view = self.meta.get("view") if normalise_view else None
        self.weights = path

    @torch.inference_mode()
    def detect(self, frame: DepthFrame) -> Grasp:
        t, box = frame_tensor(frame, self.source_size, self.device, self.view)
        row6 = decode(self.model(t), t, self.model.cfg)[0].cpu().double()
        return decoded_to_grasp(row6, box)

"""`gqstn`: the GQ-STN one-shot detector (Gariépy et al. 2019) behind the Detector interface.

The frame is padded to a square (edge-replicated depth), resized to the size the model was trained
on, run once; the predicted (x, y, θ, s, z) are mapped back to the frame's pixels. `score` is the
frozen GQ-CNN's P(robust) of the GQ-STN's own crop. Needs a trained checkpoint: `weights=` (the CLI's
--weights) or the shipped benchbot/data/weights/gqstn/gqstn.pt; without one it refuses to run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.checkpoint import load_model, resolve_weights
from ..models.gqstn import GQSTN, GQSTNOutput, Letterbox, letterbox, params_to_grasp
from ..types import DepthFrame, Grasp


def frame_tensor(frame: DepthFrame, source_size: int, device: torch.device) -> tuple[torch.Tensor, Letterbox]:
    """Square, resized depth tensor 1×1×S×S (metres) and the frame ↔ square mapping."""
    sq, box = letterbox(frame.depth_m)
    t = torch.from_numpy(sq)[None, None].to(device)
    if source_size and source_size != box.side:
        t = F.interpolate(t, size=(source_size, source_size), mode="bilinear", align_corners=False)
    return t, box


class GQSTNDetector:
    name = "gqstn"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", classifier: nn.Module | None = None,
                 source_size: int | None = None) -> None:
        path = resolve_weights("gqstn", weights)
        model, self.meta = load_model(path, "gqstn", classifier=classifier)
        assert isinstance(model, GQSTN)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.source_size = int(source_size or self.meta.get("source_size") or 0)
        self.weights = path
        self.last_output: GQSTNOutput | None = None

    @torch.inference_mode()
    def detect(self, frame: DepthFrame) -> Grasp:
        t, box = frame_tensor(frame, self.source_size, self.device)
        out = self.model(t)
        self.last_output = out
        p = out.robust_prob()
        score = float(p[0]) if p is not None else None
        return params_to_grasp(out.params()[0].cpu().numpy().astype(np.float64), box, score)

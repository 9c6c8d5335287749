"""MultiGrasp (Redmon & Angelova, ICRA 2015) with a ResNet feature extractor instead of AlexNet.

The image is divided into a G×G grid (G = 7). Each cell predicts
(confidence, x, y, sin 2θ, cos 2θ, w, h) plus z, the gripper depth: x, y are the grasp centre
inside the cell (0..1), w, h the rectangle size as fractions of the image side. z is our addition
(the paper's rectangles have no depth, but the frozen GQ-CNN that judges robustness needs one);
it is predicted relative to the image's mean depth, in units of `depth_norm_m`.

Loss (Redmon & Angelova): the cells holding a ground-truth grasp centre are trained toward
confidence 1 and regress that grasp; every other cell is trained toward confidence 0. We use a
logistic (BCE) loss on the confidence and squared error on the regression.
Decoding: the most confident cell's grasp is the prediction.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchbot.core.errors import check_number
from benchbot.core.types import Grasp
from benchbot.models.gqstn import Letterbox, wrap_half_turn
from benchbot.models.resnet import ResNet, check_backbone

N_OUT = 8  # conf, x, y, sin2θ, cos2θ, w, h, z


@dataclass(frozen=True)
class MultiGraspConfig:
    backbone_depth: int = 34
    backbone_width: int = 64
    input_size: int = 224
    grid: int = 7
    depth_norm_m: float = 0.05
    noobj_weight: float = 1.0  # weight of the confidence loss on cells without a grasp

    def __post_init__(self) -> None:  # configs come from files and flags: refuse what cannot be built
        check_backbone(self.backbone_depth, self.backbone_width, self.input_size)
        check_number("grid", self.grid, 1, 64, integer=True)
        check_number("depth_norm_m", self.depth_norm_m, 1e-4, 10.0)
        check_number("noobj_weight", self.noobj_weight, 0.0, 1e3)

    @staticmethod
    def paper(**kw: Any) -> MultiGraspConfig:
        return MultiGraspConfig(**{**dict(backbone_depth=34, backbone_width=64, input_size=224), **kw})

    @staticmethod
    def small(**kw: Any) -> MultiGraspConfig:
        return MultiGraspConfig(**{**dict(backbone_depth=18, backbone_width=16, input_size=112), **kw})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MultiGrasp(nn.Module):
    """forward(depth B×1×S×S metres, square) → raw grid B×G×G×8 (see module doc)."""

    def __init__(self, cfg: MultiGraspConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = ResNet(cfg.backbone_depth, cfg.backbone_width, in_channels=1)
        self.head = nn.Conv2d(self.trunk.feature_dim, N_OUT, 1)

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if depth.shape[-1] != cfg.input_size or depth.shape[-2] != cfg.input_size:
            depth = F.interpolate(depth, size=(cfg.input_size, cfg.input_size), mode="bilinear", align_corners=False)
        mean = depth.mean(dim=(1, 2, 3), keepdim=True)
        fmap = self.trunk.feature_map((depth - mean) / cfg.depth_norm_m)
        if fmap.shape[-1] != cfg.grid:
            fmap = F.adaptive_avg_pool2d(fmap, cfg.grid)
        return self.head(fmap).permute(0, 2, 3, 1)  # B×G×G×8


def encode_targets(grasps: np.ndarray, side: int, mean_depth_m: float, cfg: MultiGraspConfig) -> np.ndarray:
    """Ground-truth grid G×G×8 for one image. grasps: K×6 [row, col, angle, width_px, depth_m, metric]
    in square-image pixels; in each cell the highest-metric grasp is the target (conf = 1)."""
    g = cfg.grid
    out = np.zeros((g, g, N_OUT), np.float32)
    best = np.full((g, g), -np.inf)
    for row, col, ang, width, z, metric in grasps:
        gx, gy = (col + 0.5) / side * g, (row + 0.5) / side * g
        i, j = min(max(int(gy), 0), g - 1), min(max(int(gx), 0), g - 1)
        if metric <= best[i, j]:
            continue
        best[i, j] = metric
        w = width / side
        out[i, j] = [1.0, gx - j, gy - i, math.sin(2 * ang), math.cos(2 * ang), w, w / 5.0,
                     (z - mean_depth_m) / cfg.depth_norm_m]
    return out


def multigrasp_loss(pred: torch.Tensor, target: torch.Tensor, cfg: MultiGraspConfig
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Confidence BCE on all cells + squared error of the regression on cells with a grasp."""
    obj = target[..., 0]
    weight = torch.where(obj > 0, torch.ones_like(obj), torch.full_like(obj, cfg.noobj_weight))
    l_conf = F.binary_cross_entropy_with_logits(pred[..., 0], obj, weight=weight, reduction="sum")
    reg = torch.cat([torch.sigmoid(pred[..., 1:3]), pred[..., 3:]], dim=-1)
    l_reg = (((reg - target[..., 1:]) ** 2).sum(-1) * obj).sum()
    n = pred.shape[0]
    loss = (l_conf + l_reg) / n
    return loss, {"loss": float(loss.detach()), "l_conf": float(l_conf.detach()) / n,
                  "l_reg": float(l_reg.detach()) / n}


def decode(pred: torch.Tensor, depth: torch.Tensor, cfg: MultiGraspConfig) -> torch.Tensor:
    """Best cell of each image → B×6 [x, y, θ, w, z, confidence] with x, y as in GQ-STN
    (fraction of the side from the centre), w a fraction of the side, z in metres."""
    b, g = pred.shape[0], cfg.grid
    flat = pred.reshape(b, g * g, N_OUT)
    k = flat[..., 0].argmax(dim=1)
    cell = flat[torch.arange(b), k]
    i, j = (k // g).to(pred.dtype), (k % g).to(pred.dtype)
    x = (j + torch.sigmoid(cell[:, 1])) / g - 0.5
    y = (i + torch.sigmoid(cell[:, 2])) / g - 0.5
    theta = torch.atan2(cell[:, 3], cell[:, 4]) / 2
    w = cell[:, 5].clamp_min(1e-4)
    z = depth.mean(dim=(1, 2, 3)) + cell[:, 7] * cfg.depth_norm_m
    return torch.stack([x, y, theta, w, z, torch.sigmoid(cell[:, 0])], dim=-1)


def decoded_to_grasp(row6: np.ndarray | torch.Tensor, box: Letterbox) -> Grasp:
    x, y, theta, w, z, conf = (float(v) for v in row6[:6])
    r, c = box.to_frame((y + 0.5) * box.side - 0.5, (x + 0.5) * box.side - 0.5)
    return Grasp(r, c, float(wrap_half_turn(theta)), w * box.side / box.scale, z - box.depth_offset_m, conf)

import math

import numpy as np
import pytest
import torch

from benchbot.models.gqstn import Letterbox
from benchbot.models.multigrasp import (
    MultiGrasp,
    MultiGraspConfig,
    decode,
    decoded_to_grasp,
    encode_targets,
    multigrasp_loss,
)

CFG = MultiGraspConfig(backbone_depth=18, backbone_width=4, input_size=64)


def test_output_grid_shape() -> None:
    out = MultiGrasp(CFG).eval()(0.7 + 0.01 * torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 7, 7, 8)


def test_encode_picks_cell_and_best_grasp() -> None:
    grasps = np.array([[10.0, 50.0, 0.3, 8.0, 0.71, 0.2],
                       [11.0, 52.0, -0.4, 6.0, 0.72, 0.9],  # same cell, higher metric → target
                       [60.0, 3.0, 0.0, 5.0, 0.69, 0.5]], np.float32)
    t = encode_targets(grasps, side=64, mean_depth_m=0.7, cfg=CFG)
    assert t[..., 0].sum() == 2
    # (row 11, col 52) → gy = 11.5/64·7 = 1.258, gx = 52.5/64·7 = 5.742 → cell (1, 5)
    assert t[1, 5, 0] == 1 and t[6, 0, 0] == 1
    assert t[1, 5, 1:3] == pytest.approx([5.742 - 5, 1.258 - 1], abs=1e-3)
    assert t[1, 5, 3:5] == pytest.approx([math.sin(-0.8), math.cos(-0.8)], abs=1e-6)
    assert t[1, 5, 5:8] == pytest.approx([6 / 64, 6 / 64 / 5, 0.4], abs=1e-5)


def test_decode_inverts_encode() -> None:
    grasps = np.array([[40.0, 20.0, 1.0, 9.0, 0.66, 1.0]], np.float32)
    t = torch.from_numpy(encode_targets(grasps, 64, 0.7, CFG))[None]
    pred = t.clone()
    pred[..., 0] = torch.where(t[..., 0] > 0, 10.0, -10.0)
    pred[..., 1:3] = torch.logit(t[..., 1:3].clamp(1e-4, 1 - 1e-4))
    depth = torch.full((1, 1, 64, 64), 0.7)
    row6 = decode(pred, depth, CFG)[0]
    g = decoded_to_grasp(row6, Letterbox(64, 0, 0))
    assert (g.row, g.col, g.angle_rad, g.width_px, g.depth_m) == pytest.approx((40.0, 20.0, 1.0, 9.0, 0.66), abs=1e-3)
    assert g.score == pytest.approx(1.0, abs=1e-4)


def test_loss_lower_for_correct_prediction() -> None:
    torch.manual_seed(0)
    grasps = np.array([[30.0, 30.0, 0.5, 8.0, 0.7, 1.0]], np.float32)
    t = torch.from_numpy(encode_targets(grasps, 64, 0.7, CFG))[None]
    good = t.clone()
    good[..., 0] = torch.where(t[..., 0] > 0, 8.0, -8.0)
    good[..., 1:3] = torch.logit(t[..., 1:3].clamp(1e-4, 1 - 1e-4))
    bad = torch.randn_like(t)
    l_good, parts = multigrasp_loss(good, t, CFG)
    assert l_good.item() < 0.05 and parts["l_reg"] < 1e-6
    assert multigrasp_loss(bad, t, CFG)[0].item() > 10 * l_good.item()

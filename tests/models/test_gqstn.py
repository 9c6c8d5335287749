import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from benchbot.core.types import Intrinsics
from benchbot.models.gqstn import (
    GQSTN,
    GQSTNConfig,
    Letterbox,
    affine,
    dexnet_centred,
    gqstn_loss,
    grasp_to_params,
    letterbox,
    params_to_grasp,
    params_to_grasp_pose,
    robustness_loss,
    sample,
    wrap_half_turn,
)

TINY = GQSTNConfig(backbone_depth=18, backbone_width=4, input_size=64, crop_size=32, scale_mean=0.3,
                   depth_mean_m=0.7)


class StandIn(nn.Module):
    """A tiny GQ-CNN-like classifier (crop, z) → logits, frozen by the GQ-STN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5)
        self.fc = nn.Linear(5, 2)

    def forward(self, crop: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.conv(crop - z[:, :, None, None])).mean(dim=(2, 3))
        return self.fc(torch.cat([f, z], dim=1))


def ramp(side: int) -> torch.Tensor:
    """Linear image f(row, col) = 0.5 + 0.01·col + 0.001·row: bilinear sampling reproduces it exactly."""
    r, c = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                          indexing="ij")
    return (0.5 + 0.01 * c + 0.001 * r).reshape(1, 1, side, side)


def f(row: float, col: float) -> float:
    return 0.5 + 0.01 * col + 0.001 * row


def set_head(loc, a: float, b: float) -> None:
    with torch.no_grad():
        loc.head.weight.zero_()
        loc.head.bias.copy_(torch.tensor([a, b]))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_translation_stn_matches_hand_computation() -> None:
    img = ramp(64)
    out = sample(img, affine(torch.tensor([0.125], dtype=torch.float64), torch.tensor([-0.0625], dtype=torch.float64),
                             None, None), 64)
    # x = 0.125 → 8 px right, y = −0.0625 → 4 px up: output (r, c) shows source (r − 4, c + 8)
    for r, c in [(10, 10), (32, 20), (50, 40)]:
        assert out[0, 0, r, c].item() == pytest.approx(f(r - 4, c + 8), abs=1e-9)


def test_full_cascade_matches_hand_computation() -> None:
    model = GQSTN(TINY).eval().double()
    set_head(model.loc_trans, logit(0.625), logit(0.4375))  # x = 0.125, y = −0.0625
    set_head(model.loc_rot, 0.3, 0.0)  # β = 0, α > 0 → atan2 = π/2 → θ = π/4
    set_head(model.loc_scale, math.log(0.5 / TINY.scale_mean), 0.7)  # s = 0.5, z = 0.7
    img = ramp(64)
    out = model(img)
    assert out.x.item() == pytest.approx(0.125) and out.y.item() == pytest.approx(-0.0625)
    assert out.theta.item() == pytest.approx(math.pi / 4)
    assert out.s.item() == pytest.approx(0.5) and out.z.item() == pytest.approx(0.7)
    # grasp centre in source pixels: col = (0.125 + 0.5)·64 − 0.5 = 39.5, row = (0.4375)·64 − 0.5 = 27.5
    r0, c0 = 27.5, 39.5
    co, si = math.cos(math.pi / 4), math.sin(math.pi / 4)
    # rotation stage: output pixel offset (du, dv) from centre ↦ source offset (du cos + dv sin, −du sin + dv cos)
    for r, c in [(31, 40), (20, 25), (40, 31)]:
        du, dv = c - 31.5, r - 31.5
        expect = f(r0 - du * si + dv * co, c0 + du * co + dv * si)
        assert out.rot_image[0, 0, r, c].item() == pytest.approx(expect, abs=1e-7)
    # crop (32 px covering s·64 = 32 source px): one crop pixel = one source pixel, rotated by θ;
    # crop pixel (16, 16) is the grasp centre (Dex-Net centre-crop convention)
    for r, c in [(0, 0), (16, 31), (8, 20), (16, 16)]:
        du, dv = c - 16, r - 16
        expect = f(r0 - du * si + dv * co, c0 + du * co + dv * si)
        assert out.crop[0, 0, r, c].item() == pytest.approx(expect, abs=1e-7)
    # the crop's +col axis points along the jaw axis (cos θ, −sin θ) in (col, row): up-right for θ = 45°
    assert out.crop[0, 0, 16, 31].item() > out.crop[0, 0, 16, 0].item()


def test_params_grasp_round_trip_through_letterbox() -> None:
    depth = np.full((48, 64), 0.7, np.float32)
    depth[5, 5] = np.nan
    sq, box = letterbox(depth)
    assert sq.shape == (64, 64) and box == Letterbox(64, 8, 0) and np.isfinite(sq).all()
    row, col = box.to_square(20.0, 30.0)
    p = grasp_to_params(row, col, 2.0, 10.0, 0.65, box.side)
    g = params_to_grasp(p, box, score=0.9)
    assert (g.row, g.col, g.width_px, g.depth_m, g.score) == pytest.approx((20.0, 30.0, 10.0, 0.65, 0.9))
    assert g.angle_rad == pytest.approx(2.0 - math.pi)  # same grasp, wrapped into [−π/2, π/2)
    assert wrap_half_turn(math.pi / 2) == pytest.approx(-math.pi / 2)


def test_gradients_reach_first_stn_and_classifier_stays_frozen() -> None:
    torch.manual_seed(0)
    clf = StandIn()
    before = [p.clone() for p in clf.parameters()]
    model = GQSTN(TINY, clf).train()
    assert not clf.training
    depth = 0.7 + 0.02 * torch.rand(2, 1, 64, 64)
    target = torch.tensor([[0.1, 0.0, 0.3, 0.3, 0.7], [-0.1, 0.1, -0.5, 0.25, 0.68]])
    out = model(depth)
    loss, parts = gqstn_loss(out, target, TINY, xi=0.0)  # robustness loss only
    loss.backward()
    assert set(parts) == {"loss", "l_loc", "l_rob"}
    g = model.loc_trans.head.weight.grad
    assert g is not None and g.abs().sum() > 0  # from the GQ-CNN back through three samplers
    assert model.loc_trans.trunk.stem[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in clf.parameters())
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, clf.parameters(), strict=True))
    assert not any(k.startswith("classifier.") for k in model.trainable_state_dict())


def test_teacher_forcing_uses_ground_truth_downstream() -> None:
    model = GQSTN(TINY).eval().double()
    img = ramp(64)
    teacher = torch.tensor([[0.125, -0.0625, 0.0]], dtype=torch.float64)
    out = model(img, teacher=teacher)
    # translation image centred at the ground truth, whatever the trans net predicted
    assert out.trans_image[0, 0, 10, 10].item() == pytest.approx(f(10 - 4, 10 + 8), abs=1e-9)
    assert out.rot_image[0, 0, 10, 10].item() == pytest.approx(f(10 - 4, 10 + 8), abs=1e-9)


def test_localization_loss_zero_at_target_and_angle_periodic() -> None:
    model = GQSTN(TINY).eval()
    out = model(0.7 + 0.01 * torch.rand(1, 1, 64, 64))
    p = out.params().detach()
    loss, _ = gqstn_loss(out, p, TINY, xi=1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-9)
    p2 = p.clone()
    p2[0, 2] += math.pi  # same grasp half a turn round
    assert gqstn_loss(out, p2, TINY, xi=1.0)[0].item() == pytest.approx(0.0, abs=1e-9)
    p2[0, 0] += 0.1
    assert gqstn_loss(out, p2, TINY, xi=1.0)[0].item() == pytest.approx(0.01, rel=1e-4)


def test_position_sigma_measures_the_centre_in_its_units() -> None:
    cfg = replace(TINY, position_sigma=0.05)
    out = GQSTN(cfg).eval()(0.7 + 0.01 * torch.rand(1, 1, 64, 64))
    p = out.params().detach()
    p[0, 0] += 0.1  # two sigmas off in x → (0.1 / 0.05)² = 4
    p[0, 1] -= 0.05  # one sigma in y → 1
    assert gqstn_loss(out, p, cfg, xi=1.0)[0].item() == pytest.approx(5.0, rel=1e-4)


def test_translation_refinement_adds_the_residual_of_each_pass() -> None:
    cfg = replace(TINY, trans_refine=2)
    model = GQSTN(cfg).eval()
    with torch.no_grad():
        model.loc_trans.head.weight.zero_()  # the net says "0.1 right, 0.05 up" whatever it sees
        model.loc_trans.head.bias.copy_(torch.logit(torch.tensor([0.6, 0.45])))
    out = model(0.7 + 0.01 * torch.rand(2, 1, 64, 64))
    assert out.x.tolist() == pytest.approx([0.3, 0.3], abs=1e-6)  # 3 passes × 0.1
    assert out.y.tolist() == pytest.approx([-0.15, -0.15], abs=1e-6)


def test_crop_matches_dexnet_crop_geometry() -> None:
    crops = pytest.importorskip("benchbot.perception.crops")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    depth = (0.7 + 0.02 * np.sin(xx / 7.0) * np.cos(yy / 11.0) + 1e-4 * rng.standard_normal((128, 128))
             ).astype(np.float32)
    row, col, ang = 60.0, 70.0, 0.6
    ref = crops.extract_crops(depth, [row], [col], [ang], crops.CropSpec("t", 32, 32), 1.0, interp="bilinear")
    x, y = (col + 0.5) / 128 - 0.5, (row + 0.5) / 128 - 0.5
    theta = affine(torch.tensor([x]), torch.tensor([y]), torch.tensor([ang]), torch.tensor([32 / 128]))
    ours = sample(torch.from_numpy(depth)[None, None], dexnet_centred(theta, 32), 32)
    assert torch.allclose(ours, ref, atol=2e-4)


def test_params_to_metres() -> None:
    box = Letterbox(64, 8, 0)
    intr = Intrinsics(500.0, 500.0, 32.0, 24.0, 64, 48)
    # centre of the square image = frame pixel (23.5, 31.5); s = 0.3 → width 6.4 px → 6.4·0.8/500 m
    pose = params_to_grasp_pose(np.array([0.0, 0.0, 0.0, 0.3, 0.8]), box, intr)
    assert pose.center_m == pytest.approx([(31.5 - 32) * 0.8 / 500, (23.5 - 24) * 0.8 / 500, 0.8])
    assert pose.width_m == pytest.approx(6.4 * 0.8 / 500)
    assert pose.jaw_axis == pytest.approx([1.0, 0.0, 0.0])


def test_robustness_loss_alone_trains_the_stns_toward_robust_crops() -> None:
    torch.manual_seed(0)
    model = GQSTN(TINY, StandIn()).train()
    depth = 0.7 + 0.02 * torch.rand(2, 1, 64, 64)
    depth[:, :, 20:40, 10:30] = 0.65
    target = torch.zeros(2, 5)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(8):
        loss, parts = gqstn_loss(model(depth), target, TINY, xi=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["l_rob"])
    assert losses[-1] < losses[0]


def test_normalised_view_resamples_to_the_training_scale() -> None:
    from benchbot.models.gqstn import normalised_view

    rr, cc = np.mgrid[0:48, 0:64]
    depth = (0.7 + 0.001 * rr + 0.0005 * cc).astype(np.float32)  # linear: bilinear sampling is exact
    sq, box = normalised_view(depth, 1.0, 64)
    ref, ref_box = letterbox(depth)
    assert np.array_equal(sq, ref) and box.to_square(3, 5) == ref_box.to_square(3, 5)
    sq, box = normalised_view(depth, 0.5, 40)  # a camera twice as close (or twice the focal length)
    assert sq.shape == (40, 40) and box.scale == 0.5
    for r2, c2 in [(20, 20), (12, 9), (27, 30)]:
        r, c = box.to_frame(r2, c2)
        assert 0 <= r <= 47 and 0 <= c <= 63
        assert sq[r2, c2] == pytest.approx(0.7 + 0.001 * r + 0.0005 * c, abs=1e-5)
    assert box.to_frame(*box.to_square(11.5, 40.25)) == pytest.approx((11.5, 40.25))
    # the frame centre maps to the square centre; widths come back in frame pixels
    assert box.to_square(23.5, 31.5) == pytest.approx((19.5, 19.5))
    g = params_to_grasp(np.array([0.0, 0.0, 0.3, 0.3, 0.7]), box)
    assert (g.row, g.col, g.width_px) == pytest.approx((23.5, 31.5, 0.3 * 40 / 3 / 0.5))


def test_fixed_crop_scale_cuts_the_classifier_footprint_and_ignores_s() -> None:
    from dataclasses import replace

    torch.manual_seed(0)
    model = GQSTN(replace(TINY, crop_scale=0.25), StandIn())
    depth = 0.7 + 0.01 * torch.rand(2, 1, 32, 32)
    out = model(depth)
    assert not torch.allclose(out.s, torch.full_like(out.s, 0.25))  # s is still predicted (gripper width)
    expect = sample(depth, dexnet_centred(affine(out.x, out.y, out.theta, torch.full_like(out.s, 0.25)),
                                          TINY.crop_size), TINY.crop_size)
    assert torch.allclose(out.crop, expect, atol=1e-6)
    robustness_loss(out).backward()
    assert model.loc_scale.head.weight.grad[0].abs().sum() == 0  # no L_rob gradient into w_s
    assert model.loc_scale.head.weight.grad[1].abs().sum() > 0  # but into z


def test_coordinate_channels_feed_the_localization_nets() -> None:
    from dataclasses import replace

    torch.manual_seed(0)
    model = GQSTN(replace(TINY, coord_channels=True), StandIn())
    assert model.loc_trans.trunk.stem[0].in_channels == 3
    depth = torch.full((1, 1, 32, 32), 0.7)
    out = model(depth)
    assert torch.isfinite(out.params()).all()
    # a flat image still has a position signal: the trunk sees the coordinate maps
    feats = model.loc_trans.trunk(torch.cat([torch.zeros(1, 1, 64, 64), torch.zeros(1, 2, 64, 64)], 1))
    assert not torch.allclose(model.loc_trans(torch.zeros(1, 1, 64, 64)), model.loc_trans.head(feats))

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.detectors.fallback import GQSTNFallback
from benchbot.detectors.gqstn import GQSTNDetector
from benchbot.detectors.multigrasp import MultiGraspDetector
from benchbot.models import checkpoint
from benchbot.models.checkpoint import save_model
from benchbot.models.gqstn import GQSTN, GQSTNConfig
from benchbot.models.multigrasp import MultiGrasp, MultiGraspConfig

CFG = GQSTNConfig(backbone_depth=18, backbone_width=4, input_size=32, crop_size=16, scale_mean=0.3)


class StandIn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)  # every instance has the same weights
        self.fc = nn.Linear(2, 2)

    def forward(self, crop: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([crop.mean(dim=(1, 2, 3))[:, None], z], dim=1))


def frame(h: int = 48, w: int = 64) -> DepthFrame:
    return DepthFrame(np.full((h, w), 0.75, np.float32), Intrinsics(500, 500, w / 2, h / 2, w, h))


def set_head(loc, a: float, b: float) -> None:
    with torch.no_grad():
        loc.head.weight.zero_()
        loc.head.bias.copy_(torch.tensor([a, b]))


@pytest.fixture
def no_shipped(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tmp_path / "none")


@pytest.mark.parametrize("cls,kind", [(GQSTNDetector, "gqstn"), (MultiGraspDetector, "multigrasp")])
def test_refuses_without_trained_weights(no_shipped, cls, kind) -> None:
    with pytest.raises(BenchbotError) as e:
        cls()
    msg = e.value.one_line()
    assert f"benchbot train {kind}" in msg and "--weights" in msg and "random" in msg
    with pytest.raises(BenchbotError, match="does not exist"):
        cls(weights="/nonexistent/x.pt")


def test_wrong_files_give_one_line_errors(tmp_path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchbotError) as e:
        GQSTNDetector(weights=junk)
    assert "\n" not in e.value.one_line()
    other = tmp_path / "mg.pt"
    save_model(MultiGrasp(MultiGraspConfig(backbone_width=4, input_size=32)), other)
    with pytest.raises(BenchbotError, match="benchbot-gqstn"):
        GQSTNDetector(weights=other)
    torch.save({"format": "benchbot-gqstn", "version": 1, "kind": "gqstn", "config": CFG.to_dict(),
                "state_dict": {"loc_trans.head.weight": torch.zeros(3)}, "meta": {}}, tmp_path / "bad.pt")
    with pytest.raises(BenchbotError, match="does not match"):
        GQSTNDetector(weights=tmp_path / "bad.pt", classifier=StandIn())


def test_detect_maps_back_to_frame_pixels(tmp_path) -> None:
    model = GQSTN(CFG)
    set_head(model.loc_trans, math.log(0.625 / 0.375), 0.0)  # x = 0.125, y = 0
    set_head(model.loc_rot, 0.3, 0.0)  # θ = π/4
    set_head(model.loc_scale, math.log(0.375 / 0.3), 0.7)  # s = 0.375 → width = 0.375·64/3 = 8 px
    path = save_model(model, tmp_path / "gqstn.pt", {"source_size": 32})
    det = GQSTNDetector(weights=path, classifier=StandIn(), score_with="classifier")
    g = det.detect(frame())
    # square side 64 (48 rows padded by 8 on top): centre col (0.625·64 − 0.5), row 0.5·64 − 0.5 − 8
    assert (g.row, g.col) == pytest.approx((23.5, 39.5), abs=1e-4)
    assert g.angle_rad == pytest.approx(math.pi / 4, abs=1e-5)
    assert (g.width_px, g.depth_m) == pytest.approx((8.0, 0.7), abs=1e-4)
    assert 0.0 <= g.score <= 1.0 and det.last_output.crop.shape == (1, 1, 16, 16)


@pytest.mark.parametrize("k", range(8))
def test_symmetric_views_map_back_to_the_same_grasp(k) -> None:
    from benchbot.detectors.gqstn import dihedral_batch, undo_dihedral
    from benchbot.models.gqstn import grasp_to_params
    from benchbot.train.data import dihedral

    side = 20
    img = torch.arange(side * side, dtype=torch.float32).reshape(1, 1, side, side)
    rows = np.array([[5.0, 13.0, 0.4, 6.0, 0.7, 1.0]])  # row, col, angle, width, depth, metric
    view, moved = dihedral(img, rows, k, side)
    assert torch.equal(dihedral_batch(img)[k:k + 1], view)
    back = undo_dihedral(grasp_to_params(*moved[0, :5], side), k)
    want = grasp_to_params(*rows[0, :5], side)
    assert back[[0, 1, 3, 4]] == pytest.approx(want[[0, 1, 3, 4]], abs=1e-6)
    assert math.cos(2 * (back[2] - want[2])) == pytest.approx(1.0, abs=1e-9)  # same angle mod π


def test_symmetries_keep_the_view_the_classifier_rates_best(tmp_path) -> None:
    model = GQSTN(CFG)
    set_head(model.loc_trans, math.log(0.625 / 0.375), 0.0)  # x = 0.125 in every view
    path = save_model(model, tmp_path / "gqstn.pt", {"source_size": 32})
    f = frame()
    f.depth_m[:, 40:] = 0.70  # a step on the right: the views differ
    det = GQSTNDetector(weights=path, classifier=StandIn(), symmetries=8, score_with="classifier")
    g = det.detect(f)
    p = det.last_output.robust_prob()
    assert p.shape == (8,) and g.score == pytest.approx(float(p.max()))
    # x = +0.125 in view k is 8 px right of the centre there; back on the frame it is 8 px from the
    # centre along one axis
    assert math.hypot(g.row - 23.5 - 0.0, g.col - 31.5) == pytest.approx(8.0, abs=1e-3)
    with pytest.raises(BenchbotError, match="symmetries"):
        GQSTNDetector(weights=path, classifier=StandIn(), symmetries=4)


def test_detect_sees_the_rectified_training_view(tmp_path) -> None:
    model = GQSTN(CFG)
    set_head(model.loc_trans, math.log(0.625 / 0.375), 0.0)  # x = 0.125, y = 0 in the training view
    set_head(model.loc_rot, 0.3, 0.0)
    set_head(model.loc_scale, math.log(0.375 / 0.3), 0.7)  # s = 0.375 of the view's side, z = 0.7 m
    # trained 0.75 m above the table with 250 px/m there and 64-px squares; this camera: 667 px/m at 0.75 m
    view = {"px_per_m": 250.0, "side": 64, "table_distance_m": 0.75}
    path = save_model(model, tmp_path / "gqstn.pt", {"source_size": 32, "view": view})
    f = frame(96, 128)  # flat table 0.75 m away, principal point (48, 64)
    det = GQSTNDetector(weights=path, classifier=StandIn(), score_with="classifier")
    g = det.detect(f)
    assert float(det.last_output.crop.mean()) == pytest.approx(0.75, abs=1e-5)  # the table at the training height
    assert det.last_info.rectified.frame.depth_m.shape == (64, 64)
    # the view is centred on the table point seen at the frame centre (47.5, 63.5); the grasp is 5 cm
    # above the table (z = 0.7 in the view: depth 0.70 here) and 8 view px right of it, i.e.
    # 8 · 0.7 / 187.5 m (the view camera's focal length is 250 px/m · 0.75 m)
    cx = cy = -0.5 * 0.75 / 500  # that table point, x and y (m)
    dx = 8 * 0.7 / (250 * 0.75)
    assert g.depth_m == pytest.approx(0.70, abs=1e-6)
    assert (g.row, g.col) == pytest.approx((500 * cy / 0.7 + 48, 500 * (cx + dx) / 0.7 + 64), abs=1e-4)
    assert g.angle_rad == pytest.approx(math.pi / 4, abs=1e-6)
    width_m = 0.375 * 64 / 3 * 0.7 / (250 * 0.75)  # 8 view px at 0.7 m in the view camera
    assert g.width_px == pytest.approx(width_m * 500 / 0.7, abs=1e-4)
    plain = GQSTNDetector(weights=path, classifier=StandIn(), normalise_view=False, score_with="classifier").detect(f)
    assert plain.width_px == pytest.approx(0.375 * 128 / 3, abs=1e-3)


def test_multigrasp_detector_returns_a_grasp(tmp_path) -> None:
    path = save_model(MultiGrasp(MultiGraspConfig(backbone_width=4, input_size=32)), tmp_path / "mg.pt")
    g = MultiGraspDetector(weights=path).detect(frame())
    assert isinstance(g, Grasp) and g.is_finite() and 0.0 <= g.score <= 1.0


class Fixed:
    def __init__(self, name: str, g: Grasp) -> None:
        self.name, self.g, self.calls = name, g, 0

    def detect(self, frame):
        self.calls += 1
        return self.g


class Judge:
    name, threshold = "stand-in", 0.5

    def __init__(self, q: float) -> None:
        self.q = q

    def quality(self, frame, grasp) -> float:
        return self.q


def test_fallback_only_when_not_robust() -> None:
    a, b = Grasp(1, 2, 0, 5, 0.7, 0.9), Grasp(3, 4, 0, 5, 0.7)
    prim, fb = Fixed("gqstn", a), Fixed("prop-gqcnn", b)
    det = GQSTNFallback(primary=prim, fallback=fb, evaluator=Judge(0.8))
    assert det.detect(frame()) == a and fb.calls == 0 and det.last_info["used"] == "gqstn"
    det = GQSTNFallback(primary=prim, fallback=fb, evaluator=Judge(0.2))
    assert det.detect(frame()) == b and fb.calls == 1 and det.last_info == {"used": "prop-gqcnn", "gqstn_q": 0.2}


@pytest.mark.parametrize("extra", [{}, {"crop_scale": 0.3, "coord_channels": True}])
def test_onnx_runtime_matches_torch(tmp_path, extra) -> None:
    from dataclasses import replace

    pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    model = GQSTN(replace(CFG, **extra))
    with torch.no_grad():  # non-trivial transforms: random heads
        for loc in (model.loc_trans, model.loc_rot):
            loc.head.weight.normal_(std=0.5)
    path = save_model(model, tmp_path / "gqstn.pt", {"source_size": 40})
    f = frame()
    f.depth_m[10:30, 20:40] = 0.7
    a = GQSTNDetector(weights=path, classifier=StandIn(), score_with="classifier").detect(f)
    b = GQSTNDetector(weights=path, classifier=StandIn(), runtime="onnx", score_with="classifier").detect(f)
    assert (b.row, b.col, b.angle_rad, b.width_px, b.depth_m, b.score) == pytest.approx(
        (a.row, a.col, a.angle_rad, a.width_px, a.depth_m, a.score), abs=1e-4)


def test_gqstn_sym8_is_a_registered_method_on_the_shipped_weights() -> None:
    from benchbot.detectors import available_detectors, load_detector

    assert "gqstn-sym8" in available_detectors()
    det = load_detector("gqstn-sym8")
    assert det.name == "gqstn-sym8" and det.symmetries == 8 and det.weights == load_detector("gqstn").weights

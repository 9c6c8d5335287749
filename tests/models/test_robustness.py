"""Robustness evaluator (frozen GQ-CNN on grasps) and threshold calibration."""
import numpy as np
import pytest
import torch

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.models.robustness import (
    OFF_FRAME,
    SCALE_BIN,
    GQCNNEvaluator,
    calibrate_threshold,
    load_evaluator,
    quality_summary,
    threshold_stats,
)
from benchbot.models.weights import load_gqcnn
from benchbot.perception.crops import DEXNET4, extract_crops, scale_factor
from benchbot.perception.table import TablePlane, table_plane

PRIME = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


@pytest.fixture(scope="module")
def scene(shared_data):
    im = np.load(shared_data / "depth_frames" / "gqcnn_primesense_single" / "depth_0.npy")[..., 0]
    d = shared_data / "dexnet_sample" / "reference_outputs"
    xy = np.load(d / "crop_grasp_centers_xy.npy")
    ang = -np.load(d / "crop_grasp_angles_rad.npy")
    grasps = [Grasp(float(y), float(x), float(a), 30.0, float(im[int(y), int(x)]) + 0.01)
              for (x, y), a in zip(xy, ang, strict=True)]
    return DepthFrame(im, PRIME), grasps  # 12.7° tilt: the table plane gives each grasp its own scale


@pytest.fixture(scope="module")
def evaluator():
    return load_evaluator()


def test_is_a_robustness_evaluator(evaluator):
    assert isinstance(evaluator, RobustnessEvaluator)
    assert evaluator.name == "gqcnn-4.0-pj" and evaluator.threshold == 0.5 and evaluator.crop == DEXNET4


def test_qualities_equal_model_on_crops(evaluator, scene):
    frame, grasps = scene
    q = evaluator.qualities(frame, grasps)
    plane = table_plane(frame)
    exp = []
    for g in grasps:  # each crop at the camera scale of the table under its centre (0.5 % bins)
        s = scale_factor(PRIME, float(plane.ray_depth_m(PRIME, g.row, g.col)), evaluator.model.cfg.px_per_m)
        crop = extract_crops(frame.depth_m, [g.row], [g.col], [g.angle_rad], DEXNET4,
                             scale=float(np.exp(np.round(np.log(s) / SCALE_BIN) * SCALE_BIN)))
        with torch.no_grad():
            exp.append(float(evaluator.model.quality(crop, torch.tensor([g.depth_m]))[0]))
        assert 0.85 < s < 1.0
    np.testing.assert_allclose(q, exp, atol=1e-6)
    assert evaluator.last_table_distance_m == pytest.approx(plane.axis_distance_m)
    assert np.all((q >= 0) & (q <= 1))
    assert evaluator.quality(frame, grasps[4]) == pytest.approx(q[4], abs=1e-6)


def test_describe_records_the_setup(evaluator, scene):
    frame, grasps = scene
    evaluator.qualities(frame, grasps[:1])
    d = evaluator.describe()
    assert d["evaluator"] == "gqcnn-4.0-pj" and d["crop"] == "96to96" and d["runtime"] == "torch"
    assert d["threshold"] == 0.5 and d["scale_policy"] == "per grasp from the table plane"
    assert 0.70 < d["last_table_distance_m"] < 0.75 and 0.88 < d["last_scale"] < 0.97


def test_scale_sources(evaluator, scene):
    frame, grasps = scene
    fixed = GQCNNEvaluator(evaluator.model, scale=1.0)
    q1 = fixed.qualities(frame, grasps[:6])
    assert fixed.last_scale == 1.0
    assert not np.allclose(q1, evaluator.qualities(frame, grasps[:6]), atol=1e-4)  # the factor matters
    rows = np.array([50.0, 240.0, 430.0])
    s = evaluator.scales_for(frame, rows, np.full(3, 320.0))
    assert s[0] > s[1] > s[2] and s[0] / s[2] > 1.1  # tilted table: its top rows are farther, larger scale
    given = DepthFrame(frame.depth_m, PRIME, meta={"table_plane": TablePlane.overhead(0.8)})
    assert np.allclose(evaluator.scales_for(given, rows, rows), scale_factor(PRIME, 0.8, evaluator.model.cfg.px_per_m))
    arg = GQCNNEvaluator(evaluator.model, table_distance_m=0.9)
    arg.qualities(frame, grasps[:1])
    assert arg.last_table_distance_m == 0.9  # a fixed distance beats the plane


def test_crop_off_the_frame_is_not_scored(evaluator, scene):
    frame, grasps = scene
    g = grasps[0]
    edge = [Grasp(10.0, 320.0, 0.0, 30.0, 0.7), Grasp(240.0, 635.0, 0.7, 30.0, 0.7), g]
    q, why = evaluator.assess(frame, edge)
    assert np.isnan(q[:2]).all() and why[:2] == [OFF_FRAME, OFF_FRAME]
    assert np.isfinite(q[2]) and why[2] is None
    assert np.isnan(evaluator.quality(frame, edge[0]))
    # the footprint decides: a crop that just fits is scored (0.5·96/s px from the centre, at 45° √2 more)
    s = float(evaluator.scales_for(frame, np.array([240.0]), np.array([320.0]))[0])
    half = 0.5 * 96 / s
    assert np.isfinite(evaluator.quality(frame, Grasp(240.0, half + 0.5, 0.0, 30.0, 0.7)))
    assert np.isnan(evaluator.quality(frame, Grasp(240.0, half + 0.5, np.pi / 4, 30.0, 0.7)))


def test_non_finite_grasp_gives_nan(evaluator, scene):
    frame, grasps = scene
    bad = Grasp(float("nan"), 10.0, 0.0, 20.0, 0.7)
    q = evaluator.qualities(frame, [grasps[0], bad])
    assert np.isfinite(q[0]) and np.isnan(q[1])
    assert not evaluator.is_robust(q[1])
    assert evaluator.qualities(frame, []).shape == (0,)


def test_invalid_configurations(evaluator):
    with pytest.raises(BenchbotError):
        GQCNNEvaluator(evaluator.model, crop="96to32")
    with pytest.raises(BenchbotError):
        GQCNNEvaluator(evaluator.model, crop="12to3")
    with pytest.raises(BenchbotError):
        GQCNNEvaluator(evaluator.model, threshold=1.5)


def test_model_is_frozen_after_wrapping():
    m = load_gqcnn("gqcnn-4.0-pj")
    m.train().requires_grad_(True)
    GQCNNEvaluator(m)
    assert not m.training and not any(p.requires_grad for p in m.parameters())


def test_calibrate_threshold_separable():
    q = np.array([0.1, 0.2, 0.3, 0.4, 0.05])
    s = np.array([False, False, True, True, False])
    cal = calibrate_threshold(q, s)
    assert cal.threshold == pytest.approx(0.25)
    assert cal.best.balanced_accuracy == 1.0 and cal.best.youden_j == 1.0
    assert cal.nominal.threshold == 0.5 and cal.nominal.robust_rate == 0.0 and cal.nominal.balanced_accuracy == 0.5
    assert cal.n == 5 and cal.n_success == 2
    assert cal.to_dict()["best"]["threshold"] == pytest.approx(0.25)


def test_calibrate_threshold_noisy_and_errors():
    rng = np.random.default_rng(1)
    s = rng.random(400) < 0.5
    q = np.clip(np.where(s, 0.6, 0.3) + rng.normal(0, 0.1, 400), 0, 1)
    cal = calibrate_threshold(q, s)
    assert 0.35 < cal.threshold < 0.55
    assert cal.best.balanced_accuracy >= threshold_stats(q, s, 0.5).balanced_accuracy
    with pytest.raises(BenchbotError):
        calibrate_threshold([0.2, 0.3], [True, True])
    with pytest.raises(BenchbotError):
        calibrate_threshold([0.2, 0.3], [True])


def test_quality_summary():
    s = quality_summary([0.1, 0.6, 0.9, float("nan")], threshold=0.5)
    assert s["n"] == 3 and s["robust_rate"] == pytest.approx(2 / 3) and s["p50"] == pytest.approx(0.6)
    assert quality_summary([])["n"] == 0


def test_onnx_runtime_matches_torch(evaluator, scene, shared_data):
    pytest.importorskip("onnxruntime")
    frame, grasps = scene
    onnx_ev = load_evaluator(runtime="onnx")
    assert onnx_ev.name == "gqcnn-4.0-pj"
    np.testing.assert_allclose(onnx_ev.qualities(frame, grasps), evaluator.qualities(frame, grasps), atol=1e-5)
    with pytest.raises(BenchbotError):
        load_evaluator(runtime="tensorrt")


def test_scale_factor_makes_q_camera_independent(evaluator, scene):
    # the same scene seen by a lower-resolution camera (image and intrinsics scaled by 0.72, like a
    # Kinect v2 at 0.7 m): with the derived factor, q matches the original camera's q closely;
    # with scale 1 the crops cover a wider area and q drifts away
    import cv2

    frame, grasps = scene
    k = 0.72
    small = cv2.resize(frame.depth_m, None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR)
    small_frame = DepthFrame(small, PRIME.scaled(k))
    moved = [Grasp((g.row + 0.5) * k - 0.5, (g.col + 0.5) * k - 0.5, g.angle_rad, g.width_px * k, g.depth_m)
             for g in grasps]
    q_ref = evaluator.qualities(frame, grasps)
    q_factor = evaluator.qualities(small_frame, moved)
    rows, cols = np.array([g.row for g in grasps]), np.array([g.col for g in grasps])
    q_plain = GQCNNEvaluator(evaluator.model, scale=float(np.median(evaluator.scales_for(frame, rows, cols)))
                             ).qualities(small_frame, moved)
    err_factor = np.abs(q_factor - q_ref).mean()
    err_plain = np.abs(q_plain - q_ref).mean()
    assert err_factor < 0.5 * err_plain

"""Robustness evaluator (frozen GQ-CNN on grasps) and threshold calibration."""
import numpy as np
import pytest
import torch

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.models.robustness import (
    GQCNNEvaluator,
    calibrate_threshold,
    estimate_table_distance,
    load_evaluator,
    quality_summary,
    threshold_stats,
)
from benchbot.models.weights import load_gqcnn
from benchbot.perception.crops import DEXNET4, extract_crops, scale_factor

PRIME = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


@pytest.fixture(scope="module")
def scene(shared_data):
    im = np.load(shared_data / "depth_frames" / "gqcnn_primesense_single" / "depth_0.npy")[..., 0]
    d = shared_data / "dexnet_sample" / "reference_outputs"
    xy = np.load(d / "crop_grasp_centers_xy.npy")
    ang = -np.load(d / "crop_grasp_angles_rad.npy")
    grasps = [Grasp(float(y), float(x), float(a), 30.0, float(im[int(y), int(x)]) + 0.01) for (x, y), a in zip(xy, ang)]
    return DepthFrame(im, PRIME, meta={"table_distance_m": 0.713}), grasps


@pytest.fixture(scope="module")
def evaluator():
    return load_evaluator()


def test_is_a_robustness_evaluator(evaluator):
    assert isinstance(evaluator, RobustnessEvaluator)
    assert evaluator.name == "gqcnn-4.0-pj" and evaluator.threshold == 0.5 and evaluator.crop == DEXNET4


def test_qualities_equal_model_on_crops(evaluator, scene):
    frame, grasps = scene
    q = evaluator.qualities(frame, grasps)
    s = scale_factor(PRIME, 0.713, evaluator.model.cfg.px_per_m)
    assert evaluator.last_scale == pytest.approx(s) and 0.88 < s < 0.95
    crops = extract_crops(frame.depth_m, [g.row for g in grasps], [g.col for g in grasps],
                          [g.angle_rad for g in grasps], DEXNET4, scale=s)
    z = torch.tensor([g.depth_m for g in grasps])
    with torch.no_grad():
        exp = evaluator.model.quality(crops, z).numpy()
    np.testing.assert_allclose(q, exp, atol=1e-6)
    assert np.all((q >= 0) & (q <= 1))
    assert evaluator.quality(frame, grasps[4]) == pytest.approx(q[4], abs=1e-6)


def test_describe_records_the_setup(evaluator, scene):
    frame, grasps = scene
    evaluator.qualities(frame, grasps[:1])
    d = evaluator.describe()
    assert d["evaluator"] == "gqcnn-4.0-pj" and d["crop"] == "96to96" and d["runtime"] == "torch"
    assert d["threshold"] == 0.5 and d["last_table_distance_m"] == 0.713 and 0.88 < d["last_scale"] < 0.95


def test_scale_sources(evaluator, scene):
    frame, grasps = scene
    fixed = GQCNNEvaluator(evaluator.model, scale=1.0)
    q1 = fixed.qualities(frame, grasps[:6])
    assert fixed.last_scale == 1.0
    assert not np.allclose(q1, evaluator.qualities(frame, grasps[:6]), atol=1e-4)  # the factor matters
    bare = DepthFrame(frame.depth_m, PRIME)  # no table distance → median depth estimate
    est = GQCNNEvaluator(evaluator.model)
    est.qualities(bare, grasps[:2])
    assert est.last_table_distance_m == pytest.approx(estimate_table_distance(bare))
    assert 0.65 < est.last_table_distance_m < 0.8
    arg = GQCNNEvaluator(evaluator.model, table_distance_m=0.9)
    arg.qualities(frame, grasps[:1])
    assert arg.last_table_distance_m == 0.9  # argument beats frame.meta


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
    with pytest.raises(BenchbotError):
        estimate_table_distance(DepthFrame(np.zeros((4, 4), np.float32), PRIME))


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
    small_frame = DepthFrame(small, PRIME.scaled(k), meta={"table_distance_m": 0.713})
    moved = [Grasp((g.row + 0.5) * k - 0.5, (g.col + 0.5) * k - 0.5, g.angle_rad, g.width_px * k, g.depth_m) for g in grasps]
    q_ref = evaluator.qualities(frame, grasps)
    q_factor = evaluator.qualities(small_frame, moved)
    q_plain = GQCNNEvaluator(evaluator.model, scale=evaluator.scale_for(frame)).qualities(small_frame, moved)
    err_factor = np.abs(q_factor - q_ref).mean()
    err_plain = np.abs(q_plain - q_ref).mean()
    assert err_factor < 0.5 * err_plain

"""prop-gqcnn: ranking and cross-entropy policies, on real frames with the shipped GQ-CNN."""
import numpy as np
import pytest
from PIL import Image

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Detector
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.detectors.prop_gqcnn import (
    NoGraspFound,
    PropGQCNN,
    fit_gmm,
    grasp_features,
    grasps_from_features,
    sample_gmm,
)
from benchbot.perception.sampler import SamplerConfig, antipodal_candidates

SINGLE = "depth_frames/gqcnn_primesense_single"
INTR = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


def _frame(shared_data, i=0, with_mask=False):
    d = np.load(shared_data / SINGLE / f"depth_{i}.npy")[..., 0]
    meta = {}
    if with_mask:
        meta["seg_mask"] = np.array(Image.open(shared_data / SINGLE / f"segmask_{i}.png")) > 0
    return DepthFrame(d, INTR, meta=meta)


def _gt_mask(shared_data, i):
    return np.array(Image.open(shared_data / SINGLE / f"segmask_{i}.png")) > 0


def _near(target_rc, target_angle=None):
    """A stand-in GQ-CNN: q peaks at a given centre (and angle)."""
    def score(frame, grasps):
        q = []
        for g in grasps:
            d = np.hypot(g.row - target_rc[0], g.col - target_rc[1])
            a = 0.0 if target_angle is None else abs(np.sin(g.angle_rad - target_angle))
            q.append(np.exp(-d / 10.0) * (1 - 0.5 * a))
        return np.array(q)
    return score


def test_ranking_picks_the_top_scored_candidate(shared_data):
    frame = _frame(shared_data, 0, with_mask=True)
    det = PropGQCNN(scorer=_near((260, 350)), seed=1)
    assert isinstance(det, Detector) and det.name == "prop-gqcnn"
    g = det.detect(frame)
    info = det.last_info
    assert info.num_scored == info.num_candidates > 100
    assert g.score == max(x.score for x in info.top) == info.top[0].score
    # it is the best of all candidates drawn with the same seed
    mask = frame.meta["seg_mask"]
    c = antipodal_candidates(frame, 1000, config=SamplerConfig(), seg_mask=mask, rng=np.random.default_rng(1))
    q = _near((260, 350))(frame, c.grasps())
    assert g.score == pytest.approx(q.max())
    assert "seg_mask" in frame.meta and "table_plane" not in frame.meta  # input not modified


def test_cem_climbs_towards_the_optimum(shared_data):
    frame = _frame(shared_data, 0)
    target = (255.0, 345.0)
    det = PropGQCNN(policy="cem", scorer=_near(target, 0.3), seed=0)
    g = det.detect(frame)
    assert det.last_info.num_scored == 250 + 3 * 50
    ranking = PropGQCNN(scorer=_near(target, 0.3), num_candidates=250, seed=0).detect(frame)
    assert g.score >= ranking.score - 0.05
    assert np.hypot(g.row - target[0], g.col - target[1]) < 15


def test_deterministic_per_seed_and_seed_matters(shared_data):
    frame = _frame(shared_data, 0)
    score = _near((250, 350))
    for policy in ("ranking", "cem"):
        a = PropGQCNN(policy=policy, scorer=score, seed=5).detect(frame)
        b = PropGQCNN(policy=policy, scorer=score, seed=5).detect(frame)
        assert a == b
    c1 = PropGQCNN(policy="cem", scorer=score, seed=5).detect(frame)
    c2 = PropGQCNN(policy="cem", scorer=score, seed=6).detect(frame)
    assert c1 != c2


def test_no_object_raises_no_grasp_found():
    rows, cols = np.indices((480, 640))
    flat = DepthFrame((0.7 + 0.0001 * rows).astype(np.float32), INTR)
    det = PropGQCNN(scorer=_near((0, 0)))
    with pytest.raises(NoGraspFound) as e:
        det.detect(flat)
    assert isinstance(e.value, BenchbotError) and e.value.fix


def test_bad_options_raise():
    with pytest.raises(BenchbotError):
        PropGQCNN(policy="greedy", scorer=_near((0, 0)))
    with pytest.raises(BenchbotError):
        PropGQCNN(num_candidates=0, scorer=_near((0, 0)))


def test_gmm_recovers_two_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal([0, 0], 0.3, (300, 2)), rng.normal([5, 5], 0.3, (100, 2))])
    w, means, covs = fit_gmm(x, 2, rng, reg_covar=1e-6)
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(means[order], [[0, 0], [5, 5]], atol=0.1)
    np.testing.assert_allclose(w[order], [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(np.sqrt(covs[order][:, [0, 1], [0, 1]]), 0.3, atol=0.05)
    s = sample_gmm(w, means, covs, 1000, rng)
    assert s.shape == (1000, 2) and 0.2 < (s[:, 0] > 2.5).mean() < 0.3


def test_features_round_trip(shared_data):
    frame = _frame(shared_data, 0, with_mask=True)
    c = antipodal_candidates(frame, 50, seg_mask=frame.meta["seg_mask"], rng=0)
    back = grasps_from_features(grasp_features(c), frame, SamplerConfig())
    np.testing.assert_allclose(back.center, c.center, atol=1e-9)
    np.testing.assert_allclose(back.depth_m, c.depth_m)
    np.testing.assert_allclose(np.cos(2 * (back.angle_rad - c.angle_rad)), 1.0, atol=1e-9)


# --- the real GQ-CNN (shipped GQCNN-4.0-PJ weights); few candidates to stay fast ----------------

@pytest.fixture(scope="module")
def real_detector():
    return PropGQCNN(num_candidates=60, seed=0)


@pytest.mark.parametrize("i", [0, 6])
def test_real_gqcnn_grasp_lies_on_the_object(shared_data, real_detector, i):
    frame = _frame(shared_data, i)  # objects found by table-plane removal
    g = real_detector.detect(frame)
    assert 0.0 <= g.score <= 1.0 and g.is_finite()
    gt = _gt_mask(shared_data, i)
    r, c = int(round(g.row)), int(round(g.col))
    assert gt[r - 3:r + 4, c - 3:c + 4].any()  # centre on the object
    # both jaws (at the gripper opening) lie off the object: the grasp spans it
    ax = np.array([-np.sin(g.angle_rad), np.cos(g.angle_rad)])
    for s in (-1, 1):
        jr, jc = np.round(np.array([g.row, g.col]) + s * 0.5 * g.width_px * ax).astype(int)
        assert not gt[jr, jc]
    assert abs(g.depth_m - 0.72) < 0.06
    assert real_detector.last_info.num_scored <= 60


def test_real_gqcnn_score_is_the_evaluator_quality(shared_data, real_detector):
    frame = _frame(shared_data, 0)
    g = real_detector.detect(frame)
    q = real_detector.evaluator.quality(frame, g)  # the same table plane, fitted again on the same frame
    assert q == pytest.approx(g.score, abs=1e-6)


def test_runtimes_agree(shared_data):
    pytest.importorskip("onnxruntime")
    frame = _frame(shared_data, 4, with_mask=True)
    a = PropGQCNN(num_candidates=40, seed=2, runtime="onnx")
    b = PropGQCNN(num_candidates=40, seed=2, runtime="torch")
    ga, gb = a.detect(frame), b.detect(frame)
    assert a.runtime == "onnx" and b.runtime == "torch"
    assert (ga.row, ga.col, ga.angle_rad, ga.depth_m) == (gb.row, gb.col, gb.angle_rad, gb.depth_m)
    assert ga.score == pytest.approx(gb.score, abs=1e-4)
    with pytest.raises(BenchbotError):
        PropGQCNN(runtime="onnx", bf16=True)
    with pytest.raises(BenchbotError):
        PropGQCNN(runtime="tensorflow")


def test_registered_under_its_name():
    from benchbot.detectors import available_detectors, load_detector

    assert "prop-gqcnn" in available_detectors()
    det = load_detector("prop-gqcnn", scorer=_near((0, 0)), policy="cem", seed=3)
    assert isinstance(det, PropGQCNN) and det.policy == "cem" and det.seed == 3


def test_real_gqcnn_on_the_kinect_frame_is_deterministic(shared_data, real_detector):
    import yaml

    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.segment import object_mask

    folder = shared_data / "depth_frames/gqcnn_kinect2_overhead"
    y = yaml.safe_load((folder / "intrinsics.yaml").read_text())
    intr = Intrinsics(y["fx"], y["fy"], y["cx"], y["cy"], y["width"], y["height"])
    frame = inpaint_frame(DepthFrame(np.load(folder / "depth_0.npy")[..., 0], intr))  # 8.5 % holes
    g1 = real_detector.detect(frame)
    g2 = real_detector.detect(frame)
    assert g1 == g2
    mask = object_mask(frame, dilate_px=0)
    r, c = int(round(g1.row)), int(round(g1.col))
    assert mask[r - 3:r + 4, c - 3:c + 4].any()  # on the (only) object
    assert abs(g1.depth_m - 0.67) < 0.04  # the table is 0.69 m away; grasp depth is on the object


def test_the_frames_table_plane_reaches_the_scorer(shared_data):
    from benchbot.perception.table import TablePlane

    seen = []

    def score(frame, grasps):
        seen.append(frame.meta["table_plane"])
        return np.zeros(len(grasps))

    frame = _frame(shared_data, 0)
    PropGQCNN(scorer=score, num_candidates=20).detect(frame)
    assert abs(seen[-1].distance_m - 0.713) < 0.005 and abs(seen[-1].tilt_deg - 12.7) < 0.5  # fitted
    given = TablePlane.from_dict(seen[-1].to_dict())
    frame.meta["table_plane"] = given
    PropGQCNN(scorer=score, num_candidates=20).detect(frame)
    assert seen[-1] is given  # a frame's plane is used as it is


def test_raw_frame_with_holes_is_inpainted_first(shared_data):
    frame = _frame(shared_data, 0)
    clean = PropGQCNN(scorer=_near((260, 350)), seed=1).detect(frame)
    holes = frame.depth_m.copy()
    holes[::9, ::7] = 0
    holes[200:210, 100:300] = np.nan
    raw = PropGQCNN(scorer=_near((260, 350)), seed=1).detect(DepthFrame(holes, INTR))
    assert np.hypot(raw.row - clean.row, raw.col - clean.col) < 10

import math

import numpy as np
import pytest
import torch

from benchbot.models.gqstn import letterbox
from benchbot.models.robustness import GQCNNEvaluator
from benchbot.models.weights import load_gqcnn
from benchbot.train.data import G_METRIC, G_ROBUST, ImageIndex, dihedral, prepare_image
from benchbot.train.targets import cached_scores, crop_footprint_px


@pytest.mark.parametrize("k", range(8))
@pytest.mark.parametrize("angle", [0.0, math.pi / 4, -math.pi / 4, math.atan2(1, 2), -math.pi / 2])
def test_dihedral_keeps_jaw_endpoints_on_the_same_pixels(k, angle) -> None:
    side = 21
    img = torch.arange(side * side, dtype=torch.float32).reshape(1, 1, side, side)
    L = 2 * math.sqrt(5) if angle == math.atan2(1, 2) else (3 * math.sqrt(2) if abs(angle) == math.pi / 4 else 4.0)
    rows = np.array([[9.0, 8.0, angle, 5.0, 0.7, 1.0]])

    def ends(t: torch.Tensor, r: np.ndarray) -> set[float]:
        row, col, a = r[0, :3]
        out = set()
        for sgn in (-1, 1):
            pr, pc = row - sgn * L * math.sin(a), col + sgn * L * math.cos(a)
            assert abs(pr - round(pr)) < 1e-6 and abs(pc - round(pc)) < 1e-6
            out.add(float(t[0, 0, round(pr), round(pc)]))
        return out

    t2, r2 = dihedral(img, rows, k, side)
    assert float(t2[0, 0, round(r2[0, 0]), round(r2[0, 1])]) == float(img[0, 0, 9, 8])  # centre pixel
    assert ends(t2, r2) == ends(img, rows)
    assert -math.pi / 2 <= r2[0, 2] < math.pi / 2
    assert k == 0 or not torch.equal(t2, img)


def test_augmented_sample_target_follows_the_image(dataset) -> None:
    idx = ImageIndex(dataset)
    ref = idx.images("train")[0]
    depth = next(idx.iter_depth([ref]))[1]
    g = idx.grasps[ref.image]
    plain = prepare_image(depth, g, None)
    _, box = letterbox(depth)
    for k in range(1, 8):
        s = prepare_image(depth, g, None, symmetry=k)
        sq = plain["depth"][None]
        rows = np.array([[*box.to_square(*idx.best_grasp(ref.image)[1:3]), idx.best_grasp(ref.image)[3], 0, 0, 0]])
        t, _ = dihedral(sq, rows, k, box.side)
        assert torch.equal(s["depth"], t[0])
        assert s["target"][3:].tolist() == pytest.approx(plain["target"][3:].tolist())  # scale, depth unchanged


class FakeEvaluator:
    """Rates a grasp by its column (right-most best); counts calls."""

    name = "fake"
    threshold = 0.5

    def __init__(self) -> None:
        self.calls = 0

    def qualities(self, frame, grasps):
        self.calls += 1
        return np.array([g.col / 100.0 for g in grasps])


def test_classifier_scores_pick_the_target_and_are_cached(dataset, tmp_path) -> None:
    idx = ImageIndex(dataset)
    for g in idx.grasps.values():  # make every grasp robust so the choice matters
        g[:, G_ROBUST] = 1
    ev = FakeEvaluator()
    scores = cached_scores(idx, ev, tmp_path / "scores.npz")
    assert ev.calls == len(idx.refs) and set(scores) == set(idx.grasps)
    idx.scores = scores
    for image, g in idx.grasps.items():
        assert idx.best_grasp(image)[2] == g[:, 2].max()  # highest column, not highest metric
    again = cached_scores(idx, ev, tmp_path / "scores.npz")
    assert ev.calls == len(idx.refs) and all(np.array_equal(again[k], scores[k]) for k in scores)
    idx.scores = None
    first = next(iter(idx.grasps))
    assert idx.best_grasp(first)[G_METRIC] == idx.grasps[first][:, G_METRIC].max()


def test_crop_footprint_matches_the_evaluator(dataset) -> None:
    idx = ImageIndex(dataset)
    assert crop_footprint_px(idx, 96, 450.0) is None  # the fixture records no camera
    idx.meta = {"camera_intrinsics": {"fx": 364.0, "fy": 364.0, "cx": 31.5, "cy": 23.5},
                "table_distance_m": 0.7}
    gqcnn = load_gqcnn("gqcnn-4.0-pj")
    ev = GQCNNEvaluator(gqcnn, table_distance_m=0.7)
    px = crop_footprint_px(idx, 96, gqcnn.cfg.px_per_m)
    from benchbot.core.types import DepthFrame
    from benchbot.train.evaluate import frame_intrinsics

    intr, _ = frame_intrinsics(idx.meta, idx.height, idx.width)
    frame = DepthFrame(np.full((48, 64), 0.7, np.float32), intr, 0.0, {})
    assert px == pytest.approx(96 / ev.scales_for(frame, np.array([24.0]), np.array([32.0]))[0])
    assert idx.target_scale(12.0) == pytest.approx(36.0 / idx.side)  # s = 3·w, the paper's convention


def test_region_of_interest_view_targets_map_back(dataset) -> None:
    from benchbot.models.gqstn import normalised_view, params_to_grasp
    from benchbot.train.data import ImageStream

    idx = ImageIndex(dataset)
    idx.view_side = 40  # central 40×40 of the 48×64 frames
    stream = ImageStream(idx, "train", shuffle=False)
    assert 0 < len(stream.refs) <= len(idx.images("train"))
    for s in stream:
        best = idx.best_grasp(s["image"])
        assert s["depth"].shape == (1, 40, 40) and idx.in_view(best[1], best[2])
        _, box = normalised_view(np.zeros((48, 64), np.float32), 1.0, 40)
        g = params_to_grasp(s["target"].numpy(), box)
        assert (g.row, g.col, g.angle_rad) == pytest.approx((best[1], best[2], best[3]), abs=1e-4)
    assert idx.to_square(23.5, 31.5) == (19.5, 19.5)
    assert not idx.in_view(0, 0) and idx.in_view(4, 12)


def test_search_candidates_move_and_turn_each_seed() -> None:
    from benchbot.train.targets import SearchConfig, search_candidates

    seeds = np.array([[0, 10.0, 20.0, 1.5, 12.0, 0.7, 0.9, 1, 3], [0, 30.0, 5.0, 0.0, 8.0, 0.72, 0.4, 1, 3]])
    c = search_candidates(seeds, SearchConfig(offset_px=2.0, steps=1, n_angles=4))
    assert c.shape == (2 * 9 * 4, 9)
    assert np.array_equal(c[0], seeds[0]) and np.array_equal(c[36], seeds[1])  # each seed itself first
    first = c[:36]
    assert sorted({(r, k) for r, k in first[:, 1:3]}) == [(r, k) for r in (8.0, 10.0, 12.0) for k in (18.0, 20.0, 22.0)]
    assert np.allclose(sorted(set(np.round(first[:, 3], 6))),
                       sorted(np.round((1.5 + np.arange(4) * np.pi / 4 + np.pi / 2) % np.pi - np.pi / 2, 6)))
    assert (first[:, 4] == 12.0).all() and (c[36:, 5] == 0.72).all()  # width and depth are the seed's


def test_searched_targets_take_the_best_rated_candidate_and_are_cached(dataset, tmp_path) -> None:
    from benchbot.train.targets import SearchConfig, cached_search

    idx = ImageIndex(dataset)
    ev = FakeEvaluator()  # right-most column rates best
    scores = cached_scores(idx, ev, tmp_path / "scores.npz")
    cfg = SearchConfig(seeds=1, offset_px=3.0, steps=1, n_angles=2)
    calls = ev.calls
    found = cached_search(idx, ev, scores, tmp_path / "search.npz", cfg)
    assert ev.calls - calls == len(idx.images(None))
    for image, row in found.items():
        seed = idx.robust_grasps(image)[0]  # one robust grasp per fixture image
        assert row[2] == pytest.approx(seed[2] + 3.0) and row[1] in (seed[1] - 3, seed[1], seed[1] + 3)
        assert row[G_METRIC] == pytest.approx(row[2] / 100.0)
    assert cached_search(idx, ev, scores, tmp_path / "search.npz", cfg).keys() == found.keys()
    assert ev.calls - calls == len(idx.images(None))  # second call read the cache
    idx.targets = found
    image = next(iter(found))
    assert np.array_equal(idx.best_grasp(image), found[image])


def test_command_line_model_overrides() -> None:
    from benchbot.core.errors import BenchbotError
    from benchbot.train.loop import model_overrides

    assert model_overrides("gqstn", coords=True, position_sigma=0.025, refine=1) == {
        "coord_channels": True, "position_sigma": 0.025, "trans_refine": 1}
    assert model_overrides("multigrasp", input_size=224) == {"input_size": 224}
    with pytest.raises(BenchbotError, match="GQ-STN options"):
        model_overrides("multigrasp", refine=1)
    with pytest.raises(BenchbotError, match="position-sigma"):
        model_overrides("gqstn", position_sigma=0.0)
    with pytest.raises(BenchbotError, match="refine"):
        model_overrides("gqstn", refine=-1)

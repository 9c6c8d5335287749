import json
import math

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.types import Grasp
from benchbot.train.data import ImageIndex
from benchbot.train.evaluate import (
    Outcome,
    angle_difference,
    area,
    clip,
    evaluate_detectors,
    jaccard,
    rectangle,
    rectangle_correct,
    summarise,
)


def test_polygon_clipping_hand_cases() -> None:
    a = rectangle(0, 0, 0.0, 10.0)  # 10 × 2
    assert area(a) == pytest.approx(20.0)
    assert jaccard(a, a) == pytest.approx(1.0)
    assert jaccard(a, rectangle(0, 5, 0.0, 10.0)) == pytest.approx(10 / 30)  # half along the jaw axis
    assert jaccard(a, rectangle(0, 50, 0.0, 10.0)) == 0.0
    assert jaccard(a, rectangle(0, 0, math.pi / 2, 10.0)) == pytest.approx(4 / 36)  # a cross
    sq, diamond = rectangle(0, 0, 0.0, 2.0, 2.0), rectangle(0, 0, math.pi / 4, 2.0, 2.0)
    octagon = 8 * (math.sqrt(2) - 1)
    assert area(clip(sq, diamond)) == pytest.approx(octagon)
    assert jaccard(sq, diamond) == pytest.approx(octagon / (8 - octagon))
    assert jaccard(diamond[::-1], sq) == pytest.approx(jaccard(sq, diamond))  # orientation-independent


def test_rectangle_jaw_axis_direction() -> None:
    r = rectangle(10, 20, math.pi / 2, 10.0)  # jaw axis straight up the image (−row)
    assert sorted(np.round(r[:, 1], 6)) == [5, 5, 15, 15] and sorted(np.round(r[:, 0], 6)) == [19, 19, 21, 21]


def test_angle_difference_is_modulo_half_turn() -> None:
    assert angle_difference(1.5, -1.5) == pytest.approx(math.pi - 3)
    assert angle_difference(0.2, 0.2 + math.pi) == pytest.approx(0.0)


def test_rectangle_metric_uses_closest_ground_truth() -> None:
    gts = np.array([[0, 20, 20, 0.0, 12, 0.7, 1, 1, 0], [0, 40, 40, 1.0, 12, 0.7, 1, 1, 0]], float)
    assert rectangle_correct(Grasp(21, 20, math.radians(25), 12, 0.7), gts)[0]
    ok, da, j = rectangle_correct(Grasp(21, 20, math.radians(35), 12, 0.7), gts)
    assert not ok and da == pytest.approx(math.radians(35))
    # right angle for the far ground truth, but the closest one decides
    assert not rectangle_correct(Grasp(22, 22, 1.0, 12, 0.7), gts)[0]
    # shifted along the jaw axis by d: IoU = (12 − d) / (12 + d) → 7 px: 0.263 (correct), 8 px: 0.2
    assert rectangle_correct(Grasp(20, 27, 0.0, 12, 0.7), gts)[2] == pytest.approx(5 / 19)
    assert rectangle_correct(Grasp(20, 27, 0.0, 12, 0.7), gts)[0]
    assert not rectangle_correct(Grasp(20, 28, 0.0, 12, 0.7), gts)[0]
    assert not rectangle_correct(Grasp(float("nan"), 0, 0, 1, 1), gts)[0]


def test_cross_tab_shares() -> None:
    outs = [Outcome(True, True, 0.9, 1), Outcome(True, False, 0.1, 1), Outcome(False, True, 0.8, 1),
            Outcome(False, True, 0.7, 1), Outcome(False, False, float("nan"), float("nan"), failed=True)]
    r = summarise("m", outs)
    assert (r.n_images, r.n_failed) == (5, 1)
    assert r.rectangle_pct == pytest.approx(40) and r.robust_pct == pytest.approx(60)
    assert r.rect_not_robust_pct == pytest.approx(50) and r.robust_not_rect_pct == pytest.approx(200 / 3)


class Oracle:
    """Returns the image's best ground-truth grasp (looked up by image index)."""

    name = "oracle"

    def __init__(self, index: ImageIndex) -> None:
        self.index = index

    def detect(self, frame):
        g = self.index.best_grasp(frame.meta["image"])
        return Grasp(g[1], g[2], g[3], g[4], g[5], 1.0)


class Corner:
    name = "corner"

    def detect(self, frame):
        return Grasp(0.0, 0.0, 0.0, 12.0, 0.75)


class DepthEvaluator:
    """Stand-in robustness evaluator: robust when the gripper depth is below 0.73 m."""

    name = "stand-in"
    threshold = 0.5

    def quality(self, frame, grasp) -> float:
        return 1.0 if grasp.depth_m < 0.73 else 0.0


def test_table_on_hand_built_dataset(dataset) -> None:
    index = ImageIndex(dataset)
    t = evaluate_detectors({"oracle": Oracle(index), "corner": Corner()}, dataset, DepthEvaluator())
    by = {r.method: r for r in t.rows}
    n = len(index.images("val"))
    assert by["oracle"].n_images == by["corner"].n_images == n == t.info["images"]
    assert by["oracle"].rectangle_pct == 100 and by["oracle"].robust_pct == 100
    assert by["corner"].rectangle_pct == 0 and by["corner"].robust_pct == 0
    assert by["oracle"].rect_not_robust_pct == 0 and math.isnan(by["corner"].robust_not_rect_pct)
    md = t.render("md")
    assert "| oracle | 100.0 | 100.0 |" in md and "46.7 / 92.4 (rectangle / robust)" in md
    assert t.render("csv").splitlines()[0].startswith("method,n_images")
    assert json.loads(t.render("json"))["results"][1]["method"] == "corner"
    assert t.info["intrinsics"].startswith("assumed")


def test_camera_of_benchbot_datasets_is_read_from_meta() -> None:
    from benchbot.sim.datagen import GenConfig, _meta
    from benchbot.sim.scene import sim_intrinsics
    from benchbot.train.evaluate import frame_intrinsics, table_distance

    cfg = GenConfig(1, 0, 1, 1, ())
    meta = json.loads(json.dumps(_meta(cfg, 1, 1, {}, 0.0)))  # as written to meta.json
    intr, note = frame_intrinsics(meta, 424, 512)
    assert note == "meta.json" and (intr.fx, intr.cx) == (sim_intrinsics().fx, sim_intrinsics().cx)
    assert table_distance(meta) == cfg.camera_height_m and table_distance({}) is None
    assert table_distance({"config": {"camera_height_m": 0.6}}) == 0.6


def test_split_all_scores_every_image_and_unknown_splits_are_refused(dataset) -> None:
    index = ImageIndex(dataset)
    t = evaluate_detectors({"oracle": Oracle(index)}, dataset, DepthEvaluator(), split="all")
    assert t.info["images"] == len(index.images(None)) > len(index.images("val"))
    with pytest.raises(BenchbotError, match="unknown split"):
        evaluate_detectors({"oracle": Oracle(index)}, dataset, DepthEvaluator(), split="test")

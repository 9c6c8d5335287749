"""gqstn-refine / multigrasp-refine: a small CEM search of the evaluator around the one-shot grasp."""
import math

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp
from benchbot.detectors.refine import RefineConfig, refine_grasp
from benchbot.perception.rectify import View, rectify
from benchbot.perception.table import fit_table

from ..perception.scenes import PRIME, render, tilted_camera


class Peak:
    """Stand-in evaluator: q peaks at a centre, an angle (mod π) and a depth; counts evaluations."""

    name, threshold = "peak", 0.5

    def __init__(self, row, col, angle, depth):
        self.target, self.calls = (row, col, angle, depth), 0

    def qualities(self, frame, grasps):
        self.calls += len(grasps)
        r, c, a, d = self.target
        return np.array([math.exp(-math.hypot(g.row - r, g.col - c) / 20 - (1 - math.cos(2 * (g.angle_rad - a))) * 2
                                  - abs(g.depth_m - d) / 0.01) for g in grasps])


def test_search_climbs_within_its_budget_and_is_deterministic():
    frame = DepthFrame(np.full((480, 640), 0.7, np.float32), PRIME)
    start = Grasp(240.0, 320.0, 0.0, 40.0, 0.66, 0.1)
    ev = Peak(250.0, 332.0, 0.35, 0.67)
    best, info = refine_grasp(frame, start, ev, None)
    assert ev.calls == info["evaluations"] == 128
    assert info["start_q"] == pytest.approx(ev.qualities(frame, [start])[0])
    assert best.score == pytest.approx(info["best_q"]) and best.score > 2 * info["start_q"]
    assert math.hypot(best.row - 250, best.col - 332) < math.hypot(10, 12) and best.width_px == 40.0
    again, _ = refine_grasp(frame, start, Peak(250.0, 332.0, 0.35, 0.67), None)
    assert again == best
    other, _ = refine_grasp(frame, start, Peak(250.0, 332.0, 0.35, 0.67), None, RefineConfig(seed=1))
    assert other != best
    few, info = refine_grasp(frame, start, ev, None, RefineConfig(evaluations=10, rounds=3))
    assert info["evaluations"] == 10


def test_search_in_the_rectified_view_scores_grasps_on_the_frame():
    t = tilted_camera(15.0, 0.66)
    frame = DepthFrame(render(t, [(0.0, 0.0, 0.3, 0.1, 0.04, 0.05)]), PRIME)
    rect = rectify(frame, fit_table(frame), View(520.6, 208, 0.7))
    start = rect.to_real(Grasp(103.5, 103.5, 0.3, 25.0, 0.66))
    seen = []

    class Judge(Peak):
        def qualities(self, f, grasps):
            seen.extend(grasps)
            assert f is frame
            return super().qualities(f, grasps)

    ev = Judge(start.row + 8, start.col - 5, start.angle_rad + 0.2, start.depth_m)
    best, info = refine_grasp(frame, start, ev, rect)
    assert len(seen) == 128 and best.score == pytest.approx(max(ev.qualities(frame, seen)))
    # every candidate is a table-parallel grasp: its virtual view round-trips
    for g in seen[:20]:
        back = rect.to_real(rect.to_virtual(g))
        assert (back.row, back.col) == pytest.approx((g.row, g.col), abs=1e-6)


def test_bad_options():
    with pytest.raises(BenchbotError):
        RefineConfig(evaluations=3, rounds=4)
    with pytest.raises(BenchbotError):
        RefineConfig(elite_frac=0.0)


def test_shipped_gqstn_refine_on_the_kinect_frame():
    from benchbot.core.paths import RECORDINGS_DIR
    from benchbot.detectors import available_detectors, load_detector
    from benchbot.devices.cameras.recording import read_recording
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.workspace import prepare_frame, recording_workspace

    assert {"gqstn-refine", "multigrasp-refine"} <= set(available_detectors())
    rec = read_recording(RECORDINGS_DIR / "kinect2_overhead")
    seen = prepare_frame(inpaint_frame(rec.frame(0)), recording_workspace(rec))
    det = load_detector("gqstn-refine")
    g = det.detect(seen)
    info = det.last_info.extra["refine"]
    one = info["one_shot"]
    assert info["evaluations"] == 128 and g.score == pytest.approx(det.evaluator.quality(seen, g), abs=1e-6)
    assert g.score >= one["score"] and math.hypot(g.row - one["row"], g.col - one["col"]) < 40

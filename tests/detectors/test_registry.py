import numpy as np
import pytest

import benchbot.detectors as registry
from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp, Intrinsics


class _Middle:
    name = "middle"

    def __init__(self, margin: int = 0):
        self.margin = margin

    def detect(self, frame):
        h, w = frame.shape
        return Grasp(h / 2, w / 2, 0.0, 10.0 + self.margin, float(np.median(frame.depth_m)))


class _EntryPoint:
    name = "middle"

    def load(self):
        return _Middle


def test_third_party_detector_is_found_through_entry_points(monkeypatch):
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: [_EntryPoint()] if group == registry.ENTRY_POINT_GROUP else [])
    assert "middle" in registry.available_detectors()
    det = registry.load_detector("middle", margin=5)
    g = det.detect(DepthFrame(np.full((20, 30), 0.7, np.float32), Intrinsics(100, 100, 15, 10, 30, 20)))
    assert (g.row, g.col, g.width_px) == (10, 15, 15)


def test_unknown_detector_names_the_known_ones():
    with pytest.raises(BenchbotError) as e:
        registry.load_detector("nope")
    assert "unknown detector 'nope'" in e.value.one_line() and "centroid" in e.value.one_line()


def test_learned_detectors_refuse_without_weights_instead_of_falling_back():
    with pytest.raises(BenchbotError) as e:
        registry.load_detector("multigrasp", weights="/nonexistent/multigrasp.pt")
    assert "random" in e.value.one_line() and "benchbot train" in e.value.one_line()

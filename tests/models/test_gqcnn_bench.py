"""Smoke test of the GQ-CNN benchmark function (no timing assertions)."""
import math

import numpy as np

from benchbot.bench.gqcnn import dense_grasps, run_benchmark
from benchbot.core.types import DepthFrame, Intrinsics


def test_run_benchmark_returns_labelled_figures(capsys):
    figs = run_benchmark(n=8, repeats=1, onnx=False)
    labels = [k for k, _ in figs]
    assert any("96to32" in k for k in labels) and any("gqcnn-4.0-pj" in k for k in labels)
    assert any("gqcnn-2.0" in k for k in labels)
    assert all(math.isfinite(v) and v > 0 for _, v in figs)
    assert "load average" in capsys.readouterr().out


def test_dense_grasps_only_on_objects():
    d = np.full((200, 200), 0.7, np.float32)
    d[90:110, 90:110] = 0.65
    f = DepthFrame(d, Intrinsics(500, 500, 100, 100, 200, 200))
    gs = dense_grasps(f, step_px=5, n_angles=4, margin_px=20)
    assert gs and all(90 <= g.row < 110 and 90 <= g.col < 110 for g in gs)
    assert all(abs(g.depth_m - 0.665) < 1e-6 for g in gs)

"""The perception benchmark runs end to end (figures printed, not asserted: no timed assertions)."""
import numpy as np

from benchbot.bench.perception import run_benchmark, synthetic_scene


def test_synthetic_scene_has_holes_and_objects():
    raw, clean = synthetic_scene()
    assert 0.1 < (raw == 0).mean() < 0.2 and (clean > 0).all()
    assert clean.min() < 0.69  # boxes above the table


def test_benchmark_without_gqcnn_on_synthetic_scene(capsys):
    res = run_benchmark(data=None, repeats=1, candidates=200, with_gqcnn=False)
    assert res["source"] == "synthetic table scene"
    assert res["sampler_candidates"] > 0
    assert all(np.isfinite(res[k]) and res[k] > 0 for k in ("inpaint_s", "segment_s", "sampler_s"))
    assert "sampler" in capsys.readouterr().out

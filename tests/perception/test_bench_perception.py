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


def test_shipped_recordings_repeats_every_frame_and_reports_each_pass():
    from benchbot.bench.perception import shipped_line, shipped_recordings

    calls = []

    def scorer(frame, grasps):  # everything but the GQ-CNN (kept fast): q peaks at the first candidate
        calls.append(len(grasps))
        return np.linspace(1.0, 0.0, len(grasps))

    res = shipped_recordings(repeats=2, scorer=scorer)
    assert res["shipped_frames"] == 21 and len(calls) == 42 and len(res["shipped_passes"]) == 2
    assert res["shipped_runtime"] == "custom" and res["shipped_max_scored"] == max(calls)
    assert all(w > 0 and c > 0 for w, c in res["shipped_passes"])
    line = shipped_line(res)
    assert "21 shipped frames × 2" in line and "s CPU" in line

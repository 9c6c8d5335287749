"""One table model and one q: the runner stores the table plane with each detection, and the q of a
grasp is the same in `run`, in `detect` and in the detector's own score."""
import json

import numpy as np
import pytest

from benchbot.devices.cameras.recording import default_recording_path
from benchbot.devices.cameras.replay import ReplayCamera
from benchbot.harness.detect import detect_one
from benchbot.harness.runner import RunConfig, Runner
from benchbot.results.store import Store

from .conftest import write_protocol


def test_run_detect_and_detector_score_agree(tmp_path):
    proto = write_protocol(tmp_path, methods=("gqstn", "gqstn-refine"), objects=("soup-can",), trials=1)
    cfg = RunConfig(protocol_path=proto, db_path=tmp_path / "r.db", results_dir=tmp_path / "res", backend="replay")
    summary = Runner(cfg).run()
    assert summary.finals == 2
    with Store(tmp_path / "r.db", readonly=True) as store:
        attempts = store.tables(summary.run_id)["attempts"]
        trials = store.trials(summary.run_id)
    for _, a in attempts.iterrows():
        assert np.isfinite(a["q_robust"]) and a["score"] == pytest.approx(a["q_robust"], abs=1e-6)
        seen = json.loads(a["perception"])
        plane = seen["table_plane"]
        assert plane["source"] == "fit" and plane["tilt_deg"] == pytest.approx(3.4, abs=0.2)
        assert plane["distance_m"] == pytest.approx(0.663, abs=0.002)
        assert seen["workspace"]["spec"] == "auto+polygon_px" and 0.5 < seen["workspace"]["kept_frac"] < 0.95
        # `benchbot detect` on the frame this trial replayed gives the same grasp and the same q
        trial = next(t for t in trials if t.trial_id == a["trial_id"])
        index = ReplayCamera(default_recording_path()).select(trial.placement_id)
        res = detect_one(default_recording_path(), a["method"], index=index, overlay=None)
        assert (res["grasp"]["row"], res["grasp"]["col"]) == pytest.approx((a["row"], a["col"]), abs=1e-6)
        assert res["q_robust"] == pytest.approx(a["q_robust"], abs=1e-6)
        assert res["perception"]["table_plane"] == plane


def test_q_is_null_with_a_reason_when_the_crop_leaves_the_frame(tmp_path):
    from benchbot.core.types import Grasp
    from benchbot.models.robustness import OFF_FRAME, load_evaluator, robustness_of

    frame = ReplayCamera(default_recording_path()).capture()
    q, why = robustness_of(load_evaluator(), frame, Grasp(5.0, 320.0, 0.0, 40.0, 0.64))
    assert q is None and why == OFF_FRAME
    q, why = robustness_of(load_evaluator(), frame, Grasp(240.0, 320.0, 0.0, 40.0, 0.64))
    assert q is not None and why is None


def test_prop_gqcnn_score_is_the_runs_q_and_detects_q(tmp_path):
    """prop-gqcnn ranks by the GQ-CNN q (ONNX Runtime when installed); the runner and `detect` score
    with the torch evaluator on the frame the detector saw: the same q, to the runtimes' agreement."""
    proto = write_protocol(tmp_path, methods=("prop-gqcnn",), objects=("soup-can",), trials=1)
    cfg = RunConfig(protocol_path=proto, db_path=tmp_path / "r.db", results_dir=tmp_path / "res", backend="replay")
    summary = Runner(cfg).run()
    assert summary.finals == 1
    with Store(tmp_path / "r.db", readonly=True) as store:
        a = store.tables(summary.run_id)["attempts"].iloc[0]
        trial = store.trials(summary.run_id)[0]
    assert 0.0 < a["q_robust"] <= 1.0 and a["score"] == pytest.approx(a["q_robust"], abs=2e-5)
    index = ReplayCamera(default_recording_path()).select(trial.placement_id)
    res = detect_one(default_recording_path(), "prop-gqcnn", index=index, overlay=None)
    assert (res["grasp"]["row"], res["grasp"]["col"]) == pytest.approx((a["row"], a["col"]), abs=1e-6)
    assert res["grasp"]["score"] == pytest.approx(a["score"], abs=1e-9)  # the detector is deterministic
    assert res["q_robust"] == pytest.approx(a["q_robust"], abs=1e-9)

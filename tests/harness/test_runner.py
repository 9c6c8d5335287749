"""The trial loop end to end on the replay workcell (real Modbus emulator, dry-run arm)."""
from pathlib import Path

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Judgement
from benchbot.core.logs import RUN_LOG_NAME
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.harness.lock import RunLock
from benchbot.harness.operator import ScriptedOperator
from benchbot.harness.runner import RunConfig, Runner, validate_grasp
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store


def _cfg(tmp: Path, protocol: Path, **kw) -> RunConfig:
    return RunConfig(protocol_path=protocol, db_path=tmp / "r.db", results_dir=tmp / "res", backend="replay",
                     evaluator="none", **kw)


def test_full_run_records_every_trial_once_with_artifacts(tmp_path, small_protocol):
    summary = Runner(_cfg(tmp_path, small_protocol)).run()
    assert summary.pending == 0 and summary.finals == 6 and not summary.resumed
    with Store(tmp_path / "r.db", readonly=True) as store:
        t = store.tables(summary.run_id)
        assert sorted(t["trials"]["status"]) == ["done"] * 6
        attempts = t["attempts"]
        assert len(attempts) == 6 and set(attempts["outcome_source"]) == {"simulated"}
        assert attempts["detect_s"].notna().all() and (attempts["detect_s"] > 0).all()
        paths = store.artifact_paths(summary.run_id)
        assert store.get_run(summary.run_id).status == "finished"
    assert len(paths) == 18  # raw, inpainted, overlay per attempt
    on_disk = {p.relative_to(tmp_path / "res").as_posix() for p in (tmp_path / "res").rglob("*") if p.is_file()}
    assert on_disk == paths | {f"{summary.run_id}/{RUN_LOG_NAME}"}  # the artifacts and the run's log
    raw = [p for p in paths if p.endswith("_raw.npy")][0]
    assert np.load(tmp_path / "res" / raw).ndim == 2


def test_method_filter_then_resume_runs_the_rest(tmp_path, protocol_writer):
    proto = protocol_writer(tmp_path, methods=("centroid", "prop-gqcnn"), objects=("soup-can",), trials=2)
    first = Runner(_cfg(tmp_path, proto, method="centroid")).run()
    with Store(tmp_path / "r.db", readonly=True) as store:
        pending = store.trials(first.run_id, pending_only=True)
    assert {t.method for t in pending} <= {"prop-gqcnn"}
    again = Runner(_cfg(tmp_path, proto, method="centroid")).run()
    assert again.resumed and again.run_id == first.run_id and again.recorded == 0


def test_unknown_method_is_refused_before_anything_is_written(tmp_path, small_protocol):
    with pytest.raises(BenchbotError, match="not in protocol"):
        Runner(_cfg(tmp_path, small_protocol, method="gqstn")).run()
    assert not (tmp_path / "r.db").exists()


def test_second_writer_is_refused(tmp_path, small_protocol):
    with RunLock(tmp_path / "r.db"):
        with pytest.raises(BenchbotError, match="in use"):
            Runner(_cfg(tmp_path, small_protocol)).run()


def test_max_trials_then_resume_completes_without_duplicates(tmp_path, small_protocol):
    a = Runner(_cfg(tmp_path, small_protocol, max_trials=4)).run()
    assert a.pending == 2
    b = Runner(_cfg(tmp_path, small_protocol)).run()
    assert b.resumed and b.run_id == a.run_id and b.finals == 2 and b.pending == 0
    with Store(tmp_path / "r.db", readonly=True) as store:
        att = store.tables(a.run_id)["attempts"]
    assert att["trial_id"].is_unique and len(att) == 6


class _OperatorStage:
    """Replay stage that leaves judging to the operator (as real hardware does)."""

    outcome_source = "operator"

    def __init__(self, inner):
        self.inner = inner

    def place(self, placement):
        self.inner.place(placement)

    def prepare(self, *a):
        self.inner.prepare(*a)

    def judge(self, placement, execution):
        return None


def test_redo_keeps_voided_attempt_and_reruns_trial(tmp_path, protocol_writer):
    proto = protocol_writer(tmp_path, objects=("soup-can",), trials=1)

    def factory(backend, loaded, cfg):
        wc = build_workcell("replay", loaded, cfg)
        wc.stage = _OperatorStage(wc.stage)
        return wc

    trial_id = "soup-can/1/centroid"
    op = ScriptedOperator({trial_id: [Judgement("redo", "scripted", None, "object moved"),
                                      Judgement("failure", "scripted", "slipped", None)]})
    s = Runner(_cfg(tmp_path, proto), operator=op, workcell_factory=factory).run()
    assert s.voided == 1 and s.finals == 1
    with Store(tmp_path / "r.db", readonly=True) as store:
        att = store.tables(s.run_id)["attempts"].sort_values("attempt_no")
    assert list(att["status"]) == ["voided", "final"]
    assert list(att["cause"])[1] == "slipped"


def test_invalid_grasps_are_rejected_with_a_reason():
    f = DepthFrame(np.full((10, 10), 0.7, np.float32), Intrinsics(100, 100, 5, 5, 10, 10))
    assert "NaN" in validate_grasp(Grasp(float("nan"), 1, 0, 5, 0.7), f)
    assert "outside" in validate_grasp(Grasp(50, 1, 0, 5, 0.7), f)
    assert "positive" in validate_grasp(Grasp(5, 5, 0, -1, 0.7), f)
    assert validate_grasp(Grasp(5, 5, 0, 5, 0.7), f) is None

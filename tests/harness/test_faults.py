"""Device faults during a run: the attempt ends `aborted` with its reason, the cell recovers and
the run goes on — or, if it cannot recover, stops with the remaining trials pending."""
import numpy as np

from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store


def _cfg(tmp, proto):
    return RunConfig(protocol_path=proto, db_path=tmp / "r.db", results_dir=tmp / "res", backend="replay",
                     evaluator="none")


class _FaultAt:
    """Wraps the replay stage: calls `inject(workcell)` when the n-th placement happens."""

    def __init__(self, wc, n, inject):
        self.wc, self.inner, self.n, self.inject, self.count = wc, wc.stage, n, inject, 0
        self.outcome_source = self.inner.outcome_source

    def place(self, placement):
        self.count += 1
        self.inner.place(placement)
        if self.count == self.n:
            self.inject(self.wc)

    def prepare(self, *a):
        self.inner.prepare(*a)

    def judge(self, placement, execution):
        return self.inner.judge(placement, execution)


def _factory(n, inject):
    def factory(backend, loaded, cfg):
        wc = build_workcell("replay", loaded, cfg)
        wc.stage = _FaultAt(wc, n, inject)
        return wc
    return factory


def _attempts(tmp, run_id):
    with Store(tmp / "r.db", readonly=True) as store:
        return store.tables(run_id)["attempts"].sort_values("seq"), store.trials(run_id, pending_only=True)


def test_protective_stop_aborts_one_trial_then_the_run_goes_on(tmp_path, small_protocol):
    s = Runner(_cfg(tmp_path, small_protocol),
               workcell_factory=_factory(2, lambda wc: wc.arm.arm.inject("protective_stop"))).run()
    att, pending = _attempts(tmp_path, s.run_id)
    assert s.aborted == 1 and s.finals == 5 and not pending
    aborted = att[att["status"] == "aborted"]
    assert len(aborted) == 1 and "protective stop" in aborted.iloc[0]["reason"].lower()


def test_gripper_fault_code_is_stored_and_cleared_by_reactivation(tmp_path, small_protocol):
    s = Runner(_cfg(tmp_path, small_protocol),
               workcell_factory=_factory(3, lambda wc: wc.stage.inner.emulator.inject_fault(0x0E))).run()
    att, pending = _attempts(tmp_path, s.run_id)
    assert s.aborted == 1 and s.finals == 5 and not pending
    assert "overcurrent" in att[att["status"] == "aborted"].iloc[0]["reason"].lower()


def test_unrecoverable_gripper_stops_the_run_with_trials_pending(tmp_path, small_protocol):
    def dead(wc):
        wc.stage.inner.emulator.set_unresponsive(True)
        wc.gripper.config.retries = 0
        wc.gripper.config.timeout_s = 0.2

    s = Runner(_cfg(tmp_path, small_protocol), workcell_factory=_factory(2, dead)).run()
    att, pending = _attempts(tmp_path, s.run_id)
    assert s.interrupted and s.aborted == 1 and s.finals == 1
    assert len(pending) == 4  # nothing else was touched: resume later


def test_camera_without_valid_pixels_aborts_the_trial(tmp_path, small_protocol):
    def blind(wc):
        real = wc.camera.capture

        def capture():
            frame = real()
            frame.depth_m = np.zeros_like(frame.depth_m)
            wc.camera.capture = real  # one bad frame
            return frame
        wc.camera.capture = capture

    s = Runner(_cfg(tmp_path, small_protocol), workcell_factory=_factory(1, blind)).run()
    att, _ = _attempts(tmp_path, s.run_id)
    assert s.aborted == 1 and s.finals == 5
    assert "no valid depth" in att[att["status"] == "aborted"].iloc[0]["reason"]

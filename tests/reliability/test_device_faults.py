"""Device faults through the emulated gripper (real Modbus client ↔ pymodbus 2F-85 emulator), the
dry-run arm and the replay camera, injected mid-run of a non-interactive `--sim` Runner.

Each fault ends its trial `aborted` with the reason stored, the arm is stopped (safe state) and
the cell recovers (unlock, re-activate, home) so the run goes on; nothing recorded is lost; the
gripper client's retries are bounded. A transient Modbus disconnect is absorbed by the client's
reconnect. A fault the cell cannot recover from stops the run with the remaining trials pending.
(Complements tests/harness/test_faults.py: protective stop, gFLT, dead gripper, blind camera.)"""
from __future__ import annotations

import time

import numpy as np
import pytest

from benchbot.core.errors import DeviceError
from benchbot.devices.grippers.robotiq_registers import Command
from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store


@pytest.fixture
def proto(tmp_path, rel):
    return rel.write_protocol(tmp_path)  # 3 objects × 2 trials × centroid = 6 trials


class _At:
    """Wraps the replay stage: `inject(wc)` runs at the n-th placement (or right before the n-th
    execution with when="prepare")."""

    def __init__(self, wc, n, inject, when):
        self.wc, self.inner, self.n, self.inject, self.when = wc, wc.stage, n, inject, when
        self.outcome_source = self.inner.outcome_source
        self.counts = {"place": 0, "prepare": 0}

    def _tick(self, what):
        self.counts[what] += 1
        if what == self.when and self.counts[what] == self.n:
            self.inject(self.wc)

    def place(self, placement):
        self.inner.place(placement)
        self._tick("place")

    def prepare(self, *a):
        self.inner.prepare(*a)
        self._tick("prepare")

    def judge(self, placement, execution):
        return self.inner.judge(placement, execution)


def _run(tmp, proto, n, inject, when="place"):
    cells = []

    def factory(backend, loaded, cfg):
        wc = build_workcell("replay", loaded, cfg)
        wc.stage = _At(wc, n, inject, when)
        cells.append(wc)
        return wc

    cfg = RunConfig(protocol_path=proto, db_path=tmp / "r.db", results_dir=tmp / "res", backend="replay",
                    evaluator="none")
    summary = Runner(cfg, workcell_factory=factory).run()
    with Store(tmp / "r.db", readonly=True) as store:
        att = store.tables(summary.run_id)["attempts"].sort_values("seq")
    return summary, att, cells[0]


def _aborted_reason(att) -> str:
    ab = att[att["status"] == "aborted"]
    assert len(ab) == 1, att[["trial_id", "status", "reason"]]
    return ab.iloc[0]["reason"]


def _arm_log(wc):
    return wc.arm.arm.log  # the dry-run arm behind the safety gate


def _stopped_then_homed(log) -> bool:
    faulted = [i for i, e in enumerate(log) if e.get("fault")]
    start = faulted[0] if faulted else 0
    cmds = [e["cmd"] for e in log[start:]]
    return "stop" in cmds and "home" in cmds[cmds.index("stop"):]


def test_unreachable_pose_aborts_the_trial_and_the_run_goes_on(tmp_path, proto, rel):
    s, att, wc = _run(tmp_path, proto, 2, lambda wc: wc.arm.arm.inject("unreachable"))
    assert (s.finals, s.aborted, s.pending) == (5, 1, 0)
    assert "unreachable" in _aborted_reason(att) and _aborted_reason(att).startswith("device fault")
    assert _stopped_then_homed(_arm_log(wc))
    rel.check_consistency(tmp_path / "r.db", tmp_path / "res", complete=True)


def test_modbus_disconnect_mid_trial_is_absorbed_by_a_bounded_reconnect(tmp_path, proto):
    clients = []

    def drop(wc):
        real = wc.gripper._make_client

        def counting():
            clients.append(1)
            return real()
        wc.gripper._make_client = counting
        wc.stage.inner.emulator.drop_connections()  # right before the grasp: open/grip must reconnect
        time.sleep(0.3)

    s, att, wc = _run(tmp_path, proto, 2, drop, when="prepare")
    assert (s.finals, s.aborted, s.pending) == (6, 0, 0)
    assert 1 <= len(clients) <= wc.gripper.config.retries + 1  # reconnected, within the retry bound


def test_modbus_timeout_mid_trial_aborts_with_bounded_retries_then_recovers(tmp_path, proto):
    def silence(wc):
        emu = wc.stage.inner.emulator
        wc.gripper.config.timeout_s = 0.2
        emu.set_unresponsive(True)
        real_safe = wc.safe_state

        def safe_state():  # the cable is back by the time the arm has stopped
            real_safe()
            emu.set_unresponsive(False)
        wc.safe_state = safe_state

    s, att, wc = _run(tmp_path, proto, 3, silence, when="prepare")
    assert (s.finals, s.aborted, s.pending) == (5, 1, 0)
    reason = _aborted_reason(att)
    assert "lost contact with the Robotiq gripper" in reason and "3 attempts" in reason, reason
    assert "stop" in [e["cmd"] for e in _arm_log(wc)]


def test_gripper_not_activated_aborts_once_then_reactivation_recovers(tmp_path, proto):
    def deactivate(wc):
        wc.gripper.write_command(Command(act=False))  # e.g. a power blip reset the 2F-85

    s, att, wc = _run(tmp_path, proto, 2, deactivate)
    assert (s.finals, s.aborted, s.pending) == (5, 1, 0), att[["trial_id", "status", "reason"]]
    assert "not activated" in _aborted_reason(att)


def test_gripper_fault_code_other_than_overcurrent_is_stored(tmp_path, proto):
    s, att, wc = _run(tmp_path, proto, 4, lambda wc: wc.stage.inner.emulator.inject_fault(0x0B))
    assert (s.finals, s.aborted, s.pending) == (5, 1, 0)
    reason = _aborted_reason(att).lower()
    assert reason.startswith("device fault") and ("0x0b" in reason or "fault" in reason)


def test_no_object_detected_is_a_judged_failure_not_a_fault(tmp_path, proto):
    def empty(wc):
        wc.stage.inner.emulator.set_object_width(None)  # the jaws close on nothing: gOBJ=3
        wc.stage.inner._collision = None

    s, att, wc = _run(tmp_path, proto, 1, empty, when="prepare")
    assert (s.finals, s.aborted, s.pending) == (6, 0, 0)
    first = att[att["seq"] == att["seq"].min()].iloc[0]
    assert first["status"] == "final" and not bool(first["success"]) and first["cause"] == "missed"


@pytest.mark.parametrize("how", ["raises DeviceError", "returns None", "all NaN", "all zero"])
def test_camera_without_a_usable_frame_aborts_the_trial(tmp_path, proto, how):
    def blind(wc):
        real = wc.camera.capture

        def capture():
            wc.camera.capture = real  # one bad capture
            if how == "raises DeviceError":
                raise DeviceError("replay camera: no frame within 2 s", "check the camera cable")
            if how == "returns None":
                return None
            frame = real()
            frame.depth_m = np.full_like(frame.depth_m, np.nan if how == "all NaN" else 0.0)
            return frame
        wc.camera.capture = capture

    s, att, wc = _run(tmp_path, proto, 2, blind)
    assert (s.finals, s.aborted, s.pending) == (5, 1, 0)
    reason = _aborted_reason(att)
    assert reason.startswith("device fault") and ("frame" in reason or "depth" in reason), reason
    assert "stop" in [e["cmd"] for e in _arm_log(wc)]


def test_arm_connection_lost_stops_the_run_with_trials_pending(tmp_path, proto, rel):
    s, att, wc = _run(tmp_path, proto, 3, lambda wc: wc.arm.arm.inject("disconnect"))
    assert s.interrupted and s.aborted == 1 and s.finals == 2 and s.pending == 3
    assert "connection to the robot lost" in _aborted_reason(att)
    rel.check_consistency(tmp_path / "r.db", tmp_path / "res")

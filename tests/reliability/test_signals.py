"""SIGTERM, SIGHUP and Ctrl-C delivered inside a chosen phase of a real `benchbot run` subprocess.

SIGTERM, SIGHUP or a first Ctrl-C: the attempt in progress finishes and is committed, then the run
stops (exit 130) saying how to resume. A second Ctrl-C: the attempt in progress is dropped —
nothing of it is committed, even when it lands inside the attempt's open database transaction —
and the run still says how to resume. Then a plain resume completes the schedule with nothing lost.
A signal during start-up (devices connecting) stops the run before it starts, writing nothing;
signals during wind-down (recording the stop, closing the devices) never cut it short."""
from __future__ import annotations

import signal
import time

import pytest

# (phase, n-th call, signals, attempts committed by this session beyond the n-th attempt's start)
CASES = [
    ("detect", 2, [signal.SIGTERM], 2),          # finishes the 2nd attempt
    ("motion", 3, [signal.SIGINT], 1),           # first Ctrl-C mid-motion: the attempt finishes
    ("write-file", 2, [signal.SIGTERM], 1),      # mid artifact write: finishes
    ("write-db", 1, [signal.SIGINT, signal.SIGINT], 0),  # second Ctrl-C inside the transaction: rolled back
    ("motion", 2, [signal.SIGINT, signal.SIGINT], 0),    # second Ctrl-C mid-motion: dropped
    ("capture", 2, [signal.SIGINT, signal.SIGINT], 1),   # dropped while capturing the 2nd attempt
    ("detect", 1, [signal.SIGHUP], 1),           # SIGHUP (terminal closed) behaves like SIGTERM
]


def _args(proto):
    return ["run", "--sim", "-p", str(proto), "--db", "r.db", "--results", "res", "--no-robustness"]


def _send(session, sigs) -> None:
    for k, sig in enumerate(sigs):
        if k:
            time.sleep(0.3)
        session.signal(sig)


def _resume_hint(text: str) -> bool:
    return "benchbot run --resume" in " ".join(text.split())


@pytest.mark.slow
def test_sigterm_and_ctrl_c_in_each_phase_finish_or_drop_the_attempt(tmp_path, rel, capsys):
    proto = rel.write_protocol(tmp_path, objects=rel.ALL_OBJECTS, trials=3)
    db, res = tmp_path / "r.db", tmp_path / "res"
    kept: dict = {}
    done = 0
    for i, (phase, nth, sigs, committed) in enumerate(CASES):
        s = rel.Session.start(tmp_path, _args(proto), phase=phase, nth=nth, hold_s=1.5, tag=f"{i}")
        assert s.next_event() == ("phase", phase)
        _send(s, sigs)
        rc = s.wait(timeout_s=120)
        text = s.text()
        assert rc == 130, text[-2000:]
        assert _resume_hint(text), text[-2000:]
        assert "Traceback" not in text, text[-3000:]
        figures = rel.check_consistency(db, res)
        rel.assert_kept(kept, figures["attempts"])
        kept = figures["attempts"]
        assert figures["done"] == done + committed, (phase, sigs, figures["done"], done)
        done = figures["done"]
    # hardware code path: SIGTERM while the operator prompt waits; the answer still completes the attempt
    hw = rel.write_dryrun_hardware(tmp_path)
    hw_args = ["run", "--hardware", str(hw), "-p", str(proto), "--db", "h.db", "--results", "hres",
               "--no-robustness"]
    s = rel.Session.start(tmp_path, hw_args, tag="hw")
    while True:
        kind, what = s.next_event()
        assert kind == "prompt", s.text()[-2000:]
        if what == "outcome":
            s.signal(signal.SIGTERM)
            time.sleep(0.3)
            s.answer("s")
        else:
            s.answer("")
        if what == "note":
            break
    assert s.wait(timeout_s=120) == 130
    assert _resume_hint(s.text())
    hw_fig = rel.check_consistency(tmp_path / "h.db", tmp_path / "hres")
    assert hw_fig["done"] == 1 and hw_fig["pending"] == hw_fig["trials"] - 1
    # a plain resume completes everything
    s = rel.Session.start(tmp_path, _args(proto), tag="final")
    assert s.wait() == 0, s.text()[-2000:]
    figures = rel.check_consistency(db, res, complete=True)
    rel.assert_kept(kept, figures["attempts"])
    with capsys.disabled():
        print(f"\n[signals] interruptions={len(CASES) + 1} trials={figures['trials']} "
              f"lost={figures['trials'] - figures['finished']} duplicated={figures['duplicated']}")
    assert figures["duplicated"] == 0 and figures["finished"] == figures["trials"]


@pytest.mark.parametrize("sigs", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]], ids=["SIGTERM", "Ctrl-C twice"])
def test_a_signal_during_start_up_stops_before_the_run_starts_and_writes_nothing(tmp_path, rel, sigs):
    proto = rel.write_protocol(tmp_path, trials=1)
    args = _args(proto)
    s = rel.Session.start(tmp_path, [*args, "--max-trials", "1"], tag="first")
    assert s.wait(timeout_s=120) == 0, s.text()[-2000:]
    before = rel.tree_hash(tmp_path / "r.db", tmp_path / "res")
    s = rel.Session.start(tmp_path, args, phase="activate", nth=1, hold_s=1.5, tag="startup")
    assert s.next_event() == ("phase", "activate")  # connecting the gripper, after the lock was taken
    _send(s, sigs)
    rc = s.wait(timeout_s=120)
    text = s.text()
    assert rc == 130 and "Traceback" not in text, text[-3000:]
    assert "stopped before the run started: nothing was written" in " ".join(text.split()), text[-2000:]
    assert rel.tree_hash(tmp_path / "r.db", tmp_path / "res") == before
    s = rel.Session.start(tmp_path, args, tag="resume")  # the lock was released, the devices closed
    assert s.wait(timeout_s=120) == 0, s.text()[-2000:]
    assert rel.check_consistency(tmp_path / "r.db", tmp_path / "res", complete=True)["done"] == 3


def test_signals_during_wind_down_never_cut_it_short(tmp_path, rel):
    proto = rel.write_protocol(tmp_path, trials=1)
    # held 1.5 s inside the 2nd detection, then inside recording "interrupted", then closing the devices
    s = rel.Session.start(tmp_path, _args(proto), phase="detect,event,close", nth="2,2,1", hold_s=1.5)
    plan = {"detect": [signal.SIGTERM], "event": [signal.SIGINT, signal.SIGINT],
            "close": [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]}
    seen = []
    while True:
        kind, what = s.next_event()
        if kind == "exit":
            break
        assert kind == "phase", s.text()[-2000:]
        seen.append(what)
        _send(s, plan[what])
    rc = s.wait(timeout_s=120)
    text = s.text()
    assert seen == ["detect", "event", "close"], text[-3000:]
    assert rc == 130 and "Traceback" not in text, text[-3000:]
    assert _resume_hint(text), text[-2000:]
    figures = rel.check_consistency(tmp_path / "r.db", tmp_path / "res")
    assert figures["done"] == 2
    from benchbot.results.store import Store

    with Store(tmp_path / "r.db", readonly=True) as store:
        (run,) = store.list_runs()
        assert [e["kind"] for e in store.events(run["run_id"])][-1] == "interrupted"
    s = rel.Session.start(tmp_path, _args(proto), tag="resume")
    assert s.wait(timeout_s=120) == 0, s.text()[-2000:]
    assert rel.check_consistency(tmp_path / "r.db", tmp_path / "res", complete=True)["done"] == 3

"""Crash safety, proven by killing real `benchbot run` subprocesses inside each phase of a trial.

The kill moments are targeted, not only random: `phase_wrapper.py` (test code) wraps one phase
function of the subprocess — capture, inpaint, detect, arm motion, gripper motion, the middle of
an artifact file write, the open SQLite transaction of an attempt — announces when it is inside
it, and holds there until the test's SIGKILL lands. A second loop runs the hardware code path
(`run --hardware` on a dry-run bench) with the real ConsoleOperator answering over a pipe, and
kills it between an operator prompt and its answer; its answers include redo (voided attempts).
After every kill the database and the results folder are checked, and every committed attempt
must survive unchanged; after the last resume every scheduled trial has exactly one final
outcome and the folder holds exactly the files the database knows.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

SIM_KILLS = 42
HW_KILLS = 16
# calls of each phase function per attempt (to spread the kill over the attempt's n-th call)
CALLS_PER_ATTEMPT = {"capture": 1, "inpaint": 1, "detect": 1, "motion": 4, "grip": 1, "write-file": 3,
                     "write-db": 1, "random": 1}


def _sim_args(proto: Path, new: bool = False) -> list[str]:
    return ["run", "--sim", "-p", str(proto), "--db", "r.db", "--results", "res", "--no-robustness",
            *(["--new"] if new else [])]


def _hw_args(proto: Path, hw: Path, new: bool = False) -> list[str]:
    return ["run", "--hardware", str(hw), "-p", str(proto), "--db", "h.db", "--results", "hres",
            "--no-robustness", *(["--new"] if new else [])]


def _operator_answer(rng: random.Random, prompt: str, final: bool = False) -> str:
    if prompt == "outcome":
        return rng.choices(["s", "f", "r", "a"], weights=[45, 25, 25 if not final else 10, 5])[0]
    if prompt == "cause":
        return rng.choice(["slipped", "missed", "collision", "dropped", ""])
    if prompt == "note":
        return rng.choice(["", "", "wobbly"])
    return ""  # object placed / planned grasp / fix the cause: Enter = go


def _sim_loop(rel, work: Path, rng: random.Random, kills_by: Counter) -> dict:
    proto = rel.write_protocol(work, objects=rel.ALL_OBJECTS, trials=5)
    db, res = work / "r.db", work / "res"
    plan = []
    while len(plan) < SIM_KILLS:
        cycle = list(CALLS_PER_ATTEMPT)
        rng.shuffle(cycle)
        plan += cycle
    kept: dict = {}
    finished_early = 0
    new = False
    for i, phase in enumerate(plan[:SIM_KILLS]):
        if phase == "random":
            s = rel.Session.start(work, _sim_args(proto, new), tag=f"{i}")
            time.sleep(rng.uniform(0.3, 2.0))
            alive = s.proc.poll() is None
            s.kill()
            landed = "random" if alive else None
        else:
            nth = rng.randint(1, 2 * CALLS_PER_ATTEMPT[phase])
            s = rel.Session.start(work, _sim_args(proto, new), phase=phase, nth=nth, tag=f"{i}")
            kind, what = s.next_event()
            landed = what if kind == "phase" else None
            if landed == "write-file":
                assert list(res.rglob("*.tmp")), "the kill should land with a half-written .tmp file"
            s.kill()
        new = False
        if landed:
            kills_by[f"sim:{landed}"] += 1
        else:  # the run ended before the phase came round: it must have finished cleanly
            assert s.proc.returncode == 0, s.text()[-2000:]
            finished_early += 1
        figures = rel.check_consistency(db, res)
        rel.assert_kept(kept, figures["attempts"])
        kept = figures["attempts"]
        if figures["runs"] and figures["pending"] == 0:
            new = True  # all done: the next sessions kill a fresh run
    s = rel.Session.start(work, _sim_args(proto), tag="final")
    assert s.wait() == 0, s.text()[-3000:]
    figures = rel.check_consistency(db, res, complete=True)
    rel.assert_kept(kept, figures["attempts"])
    assert finished_early <= 4
    return figures


def _hw_loop(rel, work: Path, rng: random.Random, kills_by: Counter) -> dict:
    proto = rel.write_protocol(work, objects=("soup-can", "banana", "sponge", "mug"), trials=3)
    hw = rel.write_dryrun_hardware(work)
    db, res = work / "h.db", work / "hres"
    kept: dict = {}
    new = False
    for i in range(HW_KILLS):
        if i % 4 == 3:  # a phase kill while the operator answers normally
            phase = ("motion", "write-db", "detect", "capture")[(i // 4) % 4]
            s = rel.Session.start(work, _hw_args(proto, hw, new), phase=phase, nth=rng.randint(1, 2), tag=f"h{i}")
            target = None
        else:  # kill while a prompt waits for its answer
            s = rel.Session.start(work, _hw_args(proto, hw, new), tag=f"h{i}")
            target = rng.randint(1, 7)
        landed = None
        while landed is None:
            kind, what = s.next_event()
            if kind == "exit":
                break
            if kind == "phase":
                landed = what
            elif target is not None and len(s.prompts) == target:
                landed = f"prompt-{what}"
            else:
                s.answer(_operator_answer(rng, what))
        s.kill()
        new = False
        if landed:
            kills_by[f"hw:{landed}"] += 1
        else:
            assert s.proc.returncode == 0, s.text()[-2000:]
        figures = rel.check_consistency(db, res)
        rel.assert_kept(kept, figures["attempts"])
        kept = figures["attempts"]
        if figures["runs"] and figures["pending"] == 0:
            new = True
    s = rel.Session.start(work, _hw_args(proto, hw), tag="hfinal")
    while True:
        kind, what = s.next_event()
        if kind == "exit":
            break
        s.answer(_operator_answer(rng, what, final=True))
    assert s.proc.wait() == 0, s.text()[-3000:]
    figures = rel.check_consistency(db, res, complete=True)
    rel.assert_kept(kept, figures["attempts"])
    return figures


@pytest.mark.slow
def test_sigkill_inside_every_phase_loses_and_duplicates_nothing(tmp_path, rel, capsys):
    rng = random.Random(20261125)
    kills_by: Counter = Counter()
    sim = _sim_loop(rel, tmp_path / "sim", rng, kills_by)
    hw = _hw_loop(rel, tmp_path / "hw", rng, kills_by)
    kills = sum(kills_by.values())
    trials = sim["trials"] + hw["trials"]
    lost = trials - sim["finished"] - hw["finished"]
    duplicated = sim["duplicated"] + hw["duplicated"]
    voided = sim["voided"] + hw["voided"]
    with capsys.disabled():
        print(f"\n[crash-safety] kills={kills} trials={trials} lost={lost} duplicated={duplicated} "
              f"voided_kept={voided} runs={sim['runs'] + hw['runs']}\n[crash-safety] kills by phase: "
              + ", ".join(f"{k}={v}" for k, v in sorted(kills_by.items())))
    assert kills >= 50 and lost == 0 and duplicated == 0
    for phase in ("capture", "inpaint", "detect", "motion", "grip", "write-file", "write-db"):
        assert kills_by[f"sim:{phase}"] >= 3, kills_by
    assert sum(v for k, v in kills_by.items() if k.startswith("hw:prompt-")) >= 8, kills_by
    assert hw["voided"] >= 1  # redo attempts were committed, survived the kills and stayed voided

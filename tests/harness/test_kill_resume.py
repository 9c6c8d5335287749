"""Kill a real `benchbot run --sim` subprocess at random moments, resume it, and check that no
trial is lost or duplicated and that artifacts on disk match the database."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchbot.results.store import Store

KILLS = 20


def _start(tmp: Path, proto: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchbot.cli", "run", "--sim", "-p", str(proto), "--db", str(tmp / "r.db"),
           "--results", str(tmp / "res"), "--no-robustness"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200"})


def _check_consistent(tmp: Path, complete: bool) -> dict:
    """Checks every run in the DB (a run that finished between kills is followed by a new one)."""
    figures = {"trials": 0, "done": 0, "finals": 0}
    with Store(tmp / "r.db", readonly=True) as store:
        run_ids = [r["run_id"] for r in store.list_runs()]
        if not run_ids:
            raise ValueError("no run committed yet")
        tables = [store.tables(run_id) for run_id in run_ids]
        known = set().union(*(store.artifact_paths(run_id) for run_id in run_ids))
    on_disk = {p.relative_to(tmp / "res").as_posix() for p in (tmp / "res").rglob("*") if p.is_file()
               and not p.name.endswith(".tmp")}
    assert known <= on_disk, "a DB row points at a missing file"
    if complete:
        assert on_disk == known, "orphan files left after a completed resume"
    for t in tables:
        trials, att = t["trials"], t["attempts"]
        finals = att[att["status"] == "final"]
        assert finals["trial_id"].is_unique, "a trial was recorded twice"
        assert set(finals["trial_id"]) == set(trials[trials["status"] == "done"]["trial_id"])
        if complete:
            assert (trials["status"] == "done").all()
        figures["trials"] += len(trials)
        figures["done"] += int((trials["status"] == "done").sum())
        figures["finals"] += len(finals)
    return figures


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path, protocol_writer, capsys):
    proto = protocol_writer(tmp_path, objects=("soup-can", "banana", "sponge", "mug", "marker", "clamp"),
                            trials=5)
    rng = random.Random(7)
    kills = finished_early = 0
    while kills < KILLS:
        proc = _start(tmp_path, proto)
        time.sleep(rng.uniform(0.2, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr.read().decode()
            finished_early += 1
            if finished_early > 3:
                break
        if (tmp_path / "r.db").exists():
            try:
                _check_consistent(tmp_path, complete=False)
            except ValueError:  # killed before the run row was committed: nothing to check yet
                pass
    proc = _start(tmp_path, proto)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    figures = _check_consistent(tmp_path, complete=True)
    lost = figures["trials"] - figures["done"]
    duplicated = figures["finals"] - figures["done"]
    with capsys.disabled():
        print(f"\n[kill-resume] kills={kills} trials={figures['trials']} lost={lost} duplicated={duplicated}")
    assert kills >= KILLS and lost == 0 and duplicated == 0


def test_sigterm_finishes_the_current_attempt_and_says_how_to_resume(tmp_path, protocol_writer):
    proto = protocol_writer(tmp_path, objects=("soup-can", "banana", "sponge", "mug"), trials=5)
    proc = _start(tmp_path, proto)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some trials are committed
        if (tmp_path / "res").exists() and len(list((tmp_path / "res").rglob("*_overlay.png"))) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    assert rc == 130, stderr
    assert "benchbot run --resume" in " ".join(stderr.split())
    partial = _check_consistent(tmp_path, complete=False)
    assert 0 < partial["done"] < partial["trials"]
    proc = _start(tmp_path, proto)
    assert proc.wait(timeout=300) == 0
    assert _check_consistent(tmp_path, complete=True)["done"] == partial["trials"]

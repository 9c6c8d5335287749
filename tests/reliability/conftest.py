"""Shared helpers of the reliability tests: small protocols, a dry-run hardware config, a driver
for `benchbot` subprocesses (phase-targeted signals, a scripted operator on a pipe) and the
database ↔ results-folder consistency check."""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from benchbot.core.logs import is_run_log

REPO = Path(__file__).resolve().parents[2]
WRAPPER = Path(__file__).resolve().parent / "phase_wrapper.py"
ALL_OBJECTS = ("soup-can", "banana", "sponge", "mug", "marker", "clamp")


def write_protocol(folder: Path, *, objects=("soup-can", "banana", "sponge"), methods=("centroid",), trials=2,
                   name="protocol.yaml", **over) -> Path:
    data = yaml.safe_load((REPO / "protocols" / "baselines.yaml").read_text())
    data.update(objects=list(objects), methods=list(methods), trials_per_object=trials,
                objects_file=str(REPO / "objects.yaml"))
    data["motion"]["hold_s"] = 0.0
    data.update(over)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def write_dryrun_hardware(folder: Path, **over) -> Path:
    """A hardware config with no physical device: dry-run arm, in-process gripper emulator, replayed
    frames. `benchbot run --hardware` on it asks a (console) operator, as on the real bench."""
    data = {"name": "dry-bench", "robot": {"kind": "dryrun"}, "gripper": {"kind": "dryrun"},
            "camera": {"kind": "replay"}}
    data.update(over)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write_partial_run(base: Path) -> Path:
    """A results DB (`base/r.db`) and folder (`base/res`) holding one unfinished --sim run of
    3 centroid trials, 2 done; the protocol is `base/p.yaml`."""
    from benchbot.harness.runner import RunConfig, Runner

    proto = write_protocol(base, trials=1, name="p.yaml")
    Runner(RunConfig(protocol_path=proto, db_path=base / "r.db", results_dir=base / "res", backend="replay",
                     evaluator="none", max_trials=2)).run()
    return base


@pytest.fixture
def protocol_writer():
    return write_protocol


# ---------------------------------------------------------------- subprocess driver

PROMPTS = {  # what the ConsoleOperator prints right before it reads a line from stdin
    "placed": re.compile(r"Object placed and hands clear\? \[Enter\] go · \[a\] abort the run "),
    "review": re.compile(r"Execute this grasp\? .*?abort the run "),
    "outcome": re.compile(r"Outcome\? .*?abort the trial "),
    "cause": re.compile(r"Cause\? .*?\(Enter = other\) "),
    "note": re.compile(r"Note \(optional, Enter = none\): "),
    "fix": re.compile(r"Fix the cause.*?abort the run "),
}
MARKER = re.compile(r"@@IN-PHASE (\S+)@@")


@dataclass
class Session:
    """One `benchbot run` subprocess whose stderr goes to a file the test reads as it grows."""

    proc: subprocess.Popen
    log: Path
    pos: int = 0
    prompts: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path, run_args: list[str], *, phase: str = "none", nth: int = 1, hold_s: float = 60.0,
              tag: str = "s") -> Session:
        log = workdir / f"stderr-{tag}.txt"
        cmd = [sys.executable, str(WRAPPER), phase, str(nth), str(hold_s), "--", *run_args]
        with open(log, "wb") as f:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=f, cwd=workdir,
                                    env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
        return cls(proc, log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def next_event(self, timeout_s: float = 120.0) -> tuple[str, str]:
        """Wait for the next prompt or phase marker after the cursor: ("prompt", name),
        ("phase", name), or ("exit", returncode)."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            best = None
            for name, rx in PROMPTS.items():
                m = rx.search(text, self.pos)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), m.end(), "prompt", name)
            m = MARKER.search(text, self.pos)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), m.end(), "phase", m.group(1))
            if best is not None:
                self.pos = best[1]
                if best[2] == "prompt":
                    self.prompts.append(best[3])
                return best[2], best[3]
            if self.proc.poll() is not None:
                time.sleep(0.05)  # the last bytes of stderr
                if len(self.text()) == len(text):
                    return "exit", str(self.proc.returncode)
                continue
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no prompt/marker within {timeout_s} s; stderr:\n{self.text()[-3000:]}")
            time.sleep(0.02)

    def answer(self, line: str) -> None:
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=60)
            self.close()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float = 300.0) -> int:
        try:
            rc = self.proc.wait(timeout=timeout_s)
        finally:
            self.close()
        return rc

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass


# ---------------------------------------------------------------- database ↔ folder consistency

def check_consistency(db: Path, results: Path, *, complete: bool = False) -> dict:
    """Every trial recorded at most once, its status matching its attempts, attempt numbers 1..n
    with every attempt but a counted last one voided, every artifact row pointing at a file.
    With `complete`: no pending trial and no file on disk that the DB does not know.
    Returns figures and `attempts`: {(run, trial, attempt_no): status} of everything committed."""
    from benchbot.results.store import Store

    figures = {"runs": 0, "trials": 0, "finished": 0, "done": 0, "aborted": 0, "pending": 0, "counted": 0,
               "duplicated": 0, "voided": 0, "attempts": {}, "artifact_rows": 0}
    if not db.exists():
        return figures
    known: set[str] = set()
    with Store(db, readonly=True) as store:
        run_ids = [r["run_id"] for r in store.list_runs()]
        for run_id in run_ids:
            t = store.tables(run_id)
            known |= store.artifact_paths(run_id)
            trials, att = t["trials"], t["attempts"]
            figures["runs"] += 1
            figures["trials"] += len(trials)
            counted = att[att["status"].isin(["final", "aborted"])]
            figures["counted"] += len(counted)
            figures["duplicated"] += len(counted) - counted["trial_id"].nunique()
            figures["voided"] += int((att["status"] == "voided").sum())
            for row in att.itertuples():
                figures["attempts"][(run_id, row.trial_id, int(row.attempt_no))] = row.status
            by_trial = {tid: g.sort_values("attempt_no") for tid, g in att.groupby("trial_id")}
            for tr in trials.itertuples():
                g = by_trial.get(tr.trial_id)
                statuses = [] if g is None else list(g["status"])
                numbers = [] if g is None else [int(n) for n in g["attempt_no"]]
                assert numbers == list(range(1, len(numbers) + 1)), f"{tr.trial_id}: attempt numbers {numbers}"
                n_counted = sum(s in ("final", "aborted") for s in statuses)
                assert n_counted <= 1, f"{tr.trial_id} recorded {n_counted} times"
                assert all(s == "voided" for s in statuses[:-1]), f"{tr.trial_id}: {statuses}"
                expected = {"done": ["final"], "aborted": ["aborted"], "pending": []}[tr.status]
                assert [s for s in statuses if s != "voided"] == expected, f"{tr.trial_id} {tr.status}: {statuses}"
                figures[tr.status] += 1
            figures["artifact_rows"] += len(t["artifacts"])
    figures["finished"] = figures["done"] + figures["aborted"]
    on_disk = {p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()  # run logs: no artifacts
               and not is_run_log(p.relative_to(results))} if results.exists() \
        else set()
    dangling = known - on_disk
    assert not dangling, f"DB rows point at missing files: {sorted(dangling)[:5]}"
    if complete:
        assert figures["pending"] == 0, f"{figures['pending']} trial(s) still pending"
        orphans = on_disk - known
        assert not orphans, f"files the DB does not know: {sorted(orphans)[:5]}"
    return figures


def assert_kept(before: dict, after: dict) -> None:
    """Nothing committed earlier was lost or changed (voided stays voided, final stays final)."""
    lost = {k: v for k, v in before.items() if after.get(k) != v}
    assert not lost, f"committed attempts lost or changed: {lost}"


def tree_hash(*roots: Path, skip=(".lock",)) -> dict[str, str]:
    """{path: sha256} of every file under the given files/folders (missing ones hash as absent)."""
    out: dict[str, str] = {}
    for root in roots:
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file())
        else:
            out[str(root)] = "absent"
            continue
        for p in files:
            if p.name.endswith(skip) or p.name.endswith("-shm") or (p.name.endswith("-wal") and not p.stat().st_size):
                continue  # the lock file, SQLite's shared-memory index and an empty WAL hold no data
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def rel():
    """The helpers of this file (test modules cannot import a conftest under --import-mode=importlib)."""
    return sys.modules[__name__]


@pytest.fixture(scope="module")
def rel_module():
    """Same as `rel`, for hypothesis tests (which refuse function-scoped fixtures)."""
    return sys.modules[__name__]

"""`benchbot bench report`: build a synthetic run of N trials in a temporary folder and time
`benchbot report` on it (wall time and peak memory of the whole command, in a child process)."""
from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC
from pathlib import Path

from benchbot.config.schedule import TrialSpec, placement_seed
from benchbot.results.store import RunInfo, Store

METHODS = ("multigrasp", "gqstn", "prop-gqcnn")
OBJECTS = ("mustard-bottle", "soup-can", "mug", "banana", "marker", "scissors", "sponge", "foam-brick",
           "screwdriver", "tennis-ball", "pudding-box", "clamp")
SUCCESS = {"multigrasp": 0.95, "gqstn": 0.967, "prop-gqcnn": 0.983}  # the paper's rates
DETECT_S = {"multigrasp": 0.014, "gqstn": 0.024, "prop-gqcnn": 1.5}
CAUSES = ("slipped", "missed", "collision", "dropped")


def synthetic_run(db_path: Path, n_trials: int = 100_000, seed: int = 0, run_id: str = "synthetic-100k") -> str:
    """A finished run of about `n_trials` trials (3 methods × 12 objects), with a few redone
    attempts, aborted trials and detector failures, written in bulk (one transaction per table)."""
    rng = random.Random(seed)
    per_object = max(1, round(n_trials / (len(METHODS) * len(OBJECTS))))
    specs: list[TrialSpec] = []
    for k in range(1, per_object + 1):
        for obj in OBJECTS:
            pid = f"{obj}/{k}"
            for m in METHODS:
                specs.append(TrialSpec(f"{pid}/{m}", len(specs), m, obj, k, pid, placement_seed(seed, pid)))
    info = RunInfo(run_id, "2026-01-01T08:00:00.000+00:00", "synthetic", "0" * 16, "synthetic.yaml", seed,
                   "replay", "simulated", None, "bench", {"benchbot": "bench"}, {"threshold": 0.5})
    with Store(db_path) as store:
        store.create_run(info, specs)
        attempts: list[tuple] = []  # rows for executemany, one list per table
        detections: list[tuple] = []
        outcomes: list[tuple] = []
        statuses: list[tuple] = []
        t0 = 1_767_254_400.0  # 2026-01-01T08:00:00Z
        for spec in specs:
            redo = rng.random() < 0.01
            for no in (1, 2) if redo else (1,):
                aid = len(attempts) + 1
                status = "voided" if redo and no == 1 else ("aborted" if rng.random() < 0.005 else "final")
                start, t0 = t0, t0 + rng.uniform(20, 40)
                q = rng.betavariate(2, 2)
                error = "no grasp found" if rng.random() < 0.01 else None
                success = None if status != "final" else (0 if error else int(rng.random() < SUCCESS[spec.method]))
                timings = {"capture": 0.01, "detect": DETECT_S[spec.method], "execute": 15.0, "total": t0 - start}
                attempts.append((aid, run_id, spec.trial_id, no, status, _iso(start), _iso(t0),
                                 "device fault: gripper timeout" if status == "aborted" else None, json.dumps(timings)))
                detections.append((aid, spec.method, 200.0, 250.0, 0.3, 40.0, 0.7, None, q, int(q >= 0.5), 0.5,
                                   "gqcnn-4.0-pj", 0.01, 0.02, rng.lognormvariate(0, 0.3) * DETECT_S[spec.method],
                                   0.005, None, error, None))  # perception: none recorded
                cause = None if success == 1 else ("no grasp" if error else rng.choice(CAUSES))
                outcomes.append((aid, "simulated", success, cause, None))
            statuses.append(({"final": "done", "aborted": "aborted"}[status], run_id, spec.trial_id))
    with closing(sqlite3.connect(db_path)) as c, c:  # one transaction: the bulk rows of a finished run
        c.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", attempts)
        c.executemany("INSERT INTO detections VALUES (" + ", ".join("?" * len(detections[0])) + ")", detections)
        c.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?)", outcomes)
        c.executemany("UPDATE trials SET status = ? WHERE run_id = ? AND trial_id = ?", statuses)
        c.execute("UPDATE runs SET status = 'finished' WHERE run_id = ?", [run_id])
    return run_id


def _iso(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


# The child reports its own peak resident memory when it exits: VmHWM of /proc/self/status on
# Linux (ru_maxrss would include the forked parent's pages from before exec), else ru_maxrss.
_CHILD = """
import atexit, resource, sys
def _peak_kb():
    try:
        with open('/proc/self/status') as f:
            return int(next(line for line in f if line.startswith('VmHWM:')).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def _report():
    r = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write('\\nmaxrss_kb=%d cpu_s=%.3f\\n' % (_peak_kb(), r.ru_utime + r.ru_stime))
atexit.register(_report)
sys.argv = ['benchbot'] + sys.argv[1:]
from benchbot.cli import main
main()
"""


def time_command(args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident MB) of `benchbot ARGS` in a fresh Python process."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"benchbot {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    peak_kb, cpu = proc.stderr.rsplit("maxrss_kb=", 1)[1].split()[:2]  # "123456 cpu_s=1.234"
    return wall, float(cpu.removeprefix("cpu_s=")), int(peak_kb) / 1024.0


def run_benchmark(n_trials: int = 100_000, formats: tuple[str, ...] = ("md", "html"), repeats: int = 3,
                  echo: Callable[[str], None] = print) -> list[dict]:
    """Build the synthetic DB, then time `benchbot report` `repeats` times per format, each a fresh
    process; the median run is reported (one run can be thrown far off by other jobs on the machine)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="benchbot-bench-report-") as tmp:
        db = Path(tmp) / "bench.db"
        t = time.perf_counter()
        synthetic_run(db, n_trials)
        echo(f"synthetic run: {n_trials} trials written in {time.perf_counter() - t:.1f} s "
             f"({db.stat().st_size / 1e6:.0f} MB)")
        for fmt in formats:
            out = Path(tmp) / f"report.{fmt}"
            runs = sorted(time_command(["report", "--db", str(db), "--format", fmt, "--by-object", "-o", str(out)])
                          for _ in range(max(1, repeats)))
            wall, cpu, peak_mb = runs[len(runs) // 2]
            rows.append({"format": fmt, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_mb,
                         "runs_wall_s": [r[0] for r in runs]})
            echo(f"benchbot report --format {fmt} --by-object: {wall:.2f} s, {cpu:.2f} s CPU, peak {peak_mb:.0f} MB "
                 f"resident (median of {len(runs)} runs: {', '.join(f'{r[0]:.2f}' for r in runs)} s; whole command, "
                 "imports included; target: 2 s, 200 MB)")
    return rows

"""`benchbot bench report` builds a synthetic run and times the report command (speed itself is
measured by the command, not asserted here)."""
import os
import re
import subprocess
import sys
from pathlib import Path

from benchbot.bench.report import synthetic_run
from benchbot.results.report import build_report
from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_synthetic_run_is_a_consistent_run(tmp_path):
    run_id = synthetic_run(tmp_path / "b.db", n_trials=360)
    with Store(tmp_path / "b.db", readonly=True) as store:
        rep = build_report(store, run_id, by_object=True)
    t = rep.table
    assert list(t["method"]) == ["multigrasp", "gqstn", "prop-gqcnn"] and (t["scheduled"] == 120).all()
    assert (t["judged"] + t["aborted"] == 120).all() and (t["pending"] == 0).all()
    assert rep.by_object["judged"].sum() == t["judged"].sum()
    assert len(rep.comparisons) == 6


def test_bench_report_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchbot.cli", "bench", "report", "--trials", "360",
                           "--formats", "md,html", "--repeats", "1"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    lines = re.findall(r"benchbot report --format (md|html) --by-object: ([\d.]+) s, [\d.]+ s CPU, peak (\d+) MB",
                       proc.stdout)
    assert [f for f, _s, _m in lines] == ["md", "html"]
    assert all(float(s) > 0 and int(m) > 20 for _f, s, m in lines)

"""`benchbot compare`: paired tests when runs share the schedule (protocol hash and seed), Fisher
otherwise, Holm across rows, and what differs between the setups."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchbot.config.schedule import TrialSpec
from benchbot.results.compare import compare_runs, load_side, render_compare
from benchbot.results.stats import (
    PairedCounts,
    fisher_exact_p,
    mcnemar_exact_p,
    newcombe_independent_ci,
    newcombe_paired_ci,
)
from benchbot.results.store import AttemptRecord, DetectionRecord, OutcomeRecord, RunInfo, Store

REPO = Path(__file__).resolve().parents[2]


def add_run(store, run_id, outcomes, *, seed=1, phash="h" * 16, source="physics", backend="mujoco", config=None):
    """One method ('gqstn') on len(outcomes) placements; outcomes[i] = (success, robust)."""
    specs = [TrialSpec(f"o/{k}/gqstn", k, "gqstn", "o", k + 1, f"o/{k}", 100 + k) for k in range(len(outcomes))]
    store.create_run(RunInfo(run_id, f"2026-01-0{len(run_id)}T00:00:00+00:00", "p", phash, "p.yaml", seed, backend,
                             source, "abc", "host", {"benchbot": "0.1.0", "mujoco": "4.0.0"},
                             config or {"camera": "MuJoCo depth render"}), specs)
    for spec, (success, robust) in zip(specs, outcomes, strict=True):
        det = DetectionRecord("gqstn", 1, 2, 0, 30, 0.7, None, 0.9 if robust else 0.1, robust, 0.5, "gq",
                              0.01, 0.02, 0.03, 0.001, None)
        store.record_attempt(AttemptRecord(run_id, spec.trial_id, 1, "final", "2026-01-01T00:00:00+00:00",
                                           "2026-01-01T00:01:00+00:00", det, OutcomeRecord(source, success, None)))


@pytest.fixture
def dbs(tmp_path):
    # 20 shared placements: both succeed 12, only A 6, only B 1, neither 1 → McNemar b=6, c=1
    a = [(True, True)] * 12 + [(True, False)] * 6 + [(False, False)] * 2
    b = [(True, True)] * 12 + [(False, True)] * 6 + [(True, False)] + [(False, False)]
    with Store(tmp_path / "sim.db") as s:
        add_run(s, "sim", a)
        add_run(s, "simother", [(True, True)] * 15 + [(False, False)] * 5, seed=2)  # another schedule
    with Store(tmp_path / "lab.db") as s:
        add_run(s, "lab", b, source="operator", backend="hardware",
                config={"camera": "kinect2", "calibration": "cal.yaml"})
    return tmp_path / "sim.db", tmp_path / "lab.db"


def test_paired_when_the_schedule_is_shared(dbs):
    sim_db, lab_db = dbs
    rows = compare_runs([load_side(sim_db, "sim", "A"), load_side(lab_db, "lab", "B")])
    success = next(r for r in rows if r["metric"] == "success")
    assert success["test"] == "paired (McNemar exact)"
    t = PairedCounts(12, 6, 1, 1)  # A success / B success
    assert (success["n_a"], success["k_a"], success["k_b"], success["a_only"], success["b_only"]) == (20, 18, 13, 6, 1)
    assert success["p"] == pytest.approx(mcnemar_exact_p(6, 1)) == pytest.approx(16 / 128)
    d, lo, hi = newcombe_paired_ci(t)
    assert (success["diff_pct"], success["diff_ci_low_pct"], success["diff_ci_high_pct"]) == pytest.approx(
        (100 * d, 100 * lo, 100 * hi))
    robust = next(r for r in rows if r["metric"] == "robust")
    assert (robust["k_a"], robust["k_b"], robust["a_only"], robust["b_only"]) == (12, 18, 0, 6)


def test_unpaired_when_the_schedules_differ(dbs):
    sim_db, _ = dbs
    rows = compare_runs([load_side(sim_db, "sim", "A"), load_side(sim_db, "simother", "C")])
    success = next(r for r in rows if r["metric"] == "success")
    assert success["test"] == "unpaired (Fisher exact)"
    assert success["p"] == pytest.approx(fisher_exact_p(18, 20, 15, 20))
    assert success["diff_ci_low_pct"] == pytest.approx(100 * newcombe_independent_ci(18, 20, 15, 20)[1])


def test_holm_across_rows_and_setup_differences(dbs):
    sim_db, lab_db = dbs
    sides = [load_side(sim_db, "sim", "sim"), load_side(lab_db, "lab", "lab"), load_side(sim_db, "simother", "other")]
    rows = [r for r in compare_runs(sides) if r["metric"] == "success"]
    assert len(rows) == 3
    ps = sorted(r["p"] for r in rows)
    assert min(r["holm_p"] for r in rows) == pytest.approx(min(1, 3 * ps[0]))
    md = render_compare(sides[:2])
    assert "The setups differ in: backend, outcome source, config: calibration, config: camera." in md
    assert "sim vs lab: paired: same protocol hash and seed" in md
    assert "| config: camera | MuJoCo depth render | kinect2 | differs |" in md
    doc = json.loads(render_compare(sides, "json"))
    assert doc["setup_differs"][:3] == ["seed", "backend", "outcome source"]


def test_cli(dbs):
    sim_db, lab_db = dbs
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ok = subprocess.run([sys.executable, "-m", "benchbot.cli", "compare", "sim", "lab", "--db", str(sim_db), "--db",
                         str(lab_db)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "paired (McNemar exact)" in ok.stdout and "18/20" in ok.stdout
    for args, text in ((["sim"], "at least two runs"), (["sim", "nope", "--db", str(sim_db)], "no run nope"),
                       (["sim", "lab", "sim", "--db", str(sim_db), "--db", str(lab_db)], "2 --db for 3 runs")):
        bad = subprocess.run([sys.executable, "-m", "benchbot.cli", "compare", *args], capture_output=True, text=True,
                             env=env)
        assert bad.returncode == 2 and text in bad.stderr and "Traceback" not in bad.stderr

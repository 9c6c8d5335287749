import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from benchbot.config.schedule import TrialSpec
from benchbot.core.errors import BenchbotError
from benchbot.results.report import PAPER_TABLE_II, build_report, render, wilson_ci
from benchbot.results.store import AttemptRecord, DetectionRecord, OutcomeRecord, RunInfo, Store

OBJECTS = ["mug", "banana"]


def specs(methods, objects=OBJECTS, trials=5):
    out = []
    for obj in objects:
        for k in range(1, trials + 1):
            for m in methods:
                out.append(TrialSpec(f"{obj}/{k}/{m}", len(out), m, obj, k, f"{obj}/{k}", 1000 + k))
    return out


def run_info(run_id, source="simulated"):
    return RunInfo(run_id, f"2026-01-01T00:00:0{len(run_id) % 10}+00:00", "gqstn-paper-2019", "hash123",
                   "protocols/paper.yaml", 2019, "replay", source, "abc1234", "bench-pc",
                   {"benchbot": "0.1.0", "numpy": "2.0"},
                   {"camera": {"kind": "kinect2", "height_m": 0.7}, "threshold": 0.5})


class Clock:
    """Attempts one minute long, back to back."""

    def __init__(self):
        self.t = pd.Timestamp("2026-01-01T08:00:00Z")

    def next(self):
        start = self.t
        self.t += pd.Timedelta(seconds=60)
        return start.isoformat(), self.t.isoformat()


def record(st, run_id, trial, status, success, *, q=0.5, detect_s=0.02, source="simulated", clock,
           reason=None, error=None, no=1):
    start, end = clock.next()
    det = DetectionRecord(trial.method, 10.0, 20.0, 0.0, 30.0, 0.7, None, q, None if q is None else q >= 0.5,
                          0.5 if q is not None else None, "gqcnn", 0.005, 0.03, detect_s, 0.001, None, error)
    out = OutcomeRecord(source, success, None if success else "slipped")
    st.record_attempt(AttemptRecord(run_id, trial.trial_id, no, status, start, end, det, out, [],
                                    {"capture": 0.005, "detect": 1.0, "execute": 20.0, "total": 60.0},
                                    reason))


GQ_Q = [0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1, None]  # last one: no grasp found
GQ_DETECT = [0.01 * (i + 1) for i in range(10)]


@pytest.fixture
def db(tmp_path):
    st = Store(tmp_path / "r.db")
    clock = Clock()
    # r1: one outcome source; gqstn 8/10 with one redo, multigrasp 9/10, prop-gqcnn all aborted,
    # newnet never run (all pending)
    trials = specs(["gqstn", "multigrasp", "prop-gqcnn", "newnet"])
    st.create_run(run_info("r1"), trials)
    by_method = {m: [t for t in trials if t.method == m] for m in ("gqstn", "multigrasp", "prop-gqcnn")}
    for i, t in enumerate(by_method["gqstn"]):
        no = 1
        if i == 0:
            record(st, "r1", t, "voided", None, clock=clock, reason="redo requested")
            no = 2
        success = i not in (8, 9)
        record(st, "r1", t, "final", success, q=GQ_Q[i], detect_s=GQ_DETECT[i], clock=clock, no=no,
               error="no grasp found" if i == 9 else None)
    for i, t in enumerate(by_method["multigrasp"]):
        record(st, "r1", t, "final", i != 0, q=0.9 if i < 2 else 0.1, detect_s=0.014, clock=clock)
    for t in by_method["prop-gqcnn"]:
        record(st, "r1", t, "aborted", None, q=None, clock=clock, reason="detector unavailable: weights missing")
    st.record_event("r1", "method_unavailable", "old reason", method="newnet")
    st.record_event("r1", "method_unavailable", "no module named newnet", method="newnet")
    st.record_event("r1", "evaluator_unavailable", "gqcnn weights missing")
    # r2: two outcome sources for one method
    t2 = specs(["gqstn"], ["mug"], 4)
    st.create_run(run_info("r2", "operator"), t2)
    record(st, "r2", t2[0], "final", True, source="operator", clock=clock)
    record(st, "r2", t2[1], "final", False, source="operator", clock=clock)
    record(st, "r2", t2[2], "final", True, source="simulated", clock=clock)
    record(st, "r2", t2[3], "final", True, source="simulated", clock=clock)
    # r3: scheduled, nothing run yet; r4: no trials at all
    st.create_run(run_info("r3"), specs(["gqstn", "multigrasp"]))
    st.create_run(run_info("r4xx"), [])
    yield st
    st.close()


def row(rep, method, source=None):
    t = rep.table
    sel = t[t["method"] == method]
    if source:
        sel = sel[sel["outcome_source"] == source]
    assert len(sel) == 1
    return sel.iloc[0]


def test_wilson_against_hand_computation():
    # 8/10: p = .8, z² = 3.8415; centre = (.8 + z²/20)/(1 + z²/10); half = z/(1 + z²/10)·√(p(1-p)/10 + z²/400)
    z2 = 1.959963984540054 ** 2
    centre = (0.8 + z2 / 20) / (1 + z2 / 10)
    half = math.sqrt(z2) / (1 + z2 / 10) * math.sqrt(0.016 + z2 / 400)
    lo, hi = wilson_ci(8, 10)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # published tables
    assert wilson_ci(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_ci(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in wilson_ci(0, 0))


@settings(max_examples=200, deadline=None)
@given(n=hst.integers(1, 500), data=hst.data())
def test_wilson_properties(n, data):
    k = data.draw(hst.integers(0, n))
    lo, hi = wilson_ci(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert (lo, hi) == pytest.approx((1 - wilson_ci(n - k, n)[1], 1 - wilson_ci(n - k, n)[0]))  # symmetric


def test_table_numbers(db):
    rep = build_report(db, "r1")
    assert list(rep.table["method"]) == ["multigrasp", "gqstn", "prop-gqcnn", "newnet"]  # paper order first
    g = row(rep, "gqstn")
    counts = (g["scheduled"], g["judged"], g["successes"], g["voided"], g["aborted"], g["no_grasp"])
    assert counts == (10, 10, 8, 1, 0, 1)
    assert g["success_pct"] == pytest.approx(80.0)
    assert (g["success_ci_low_pct"], g["success_ci_high_pct"]) == pytest.approx((49.016, 94.332), abs=1e-3)
    assert g["q_known"] == 9
    assert g["robust_pct"] == pytest.approx(100 * 5 / 9)  # 0.9 .8 .7 .6 .55 ≥ 0.5; the NULL q not invented
    assert g["robust_threshold"] == "0.5"
    assert g["q_mean"] == pytest.approx(np.mean(GQ_Q[:9]))
    assert g["q_median"] == pytest.approx(0.55)
    assert g["q_ge_half_pct"] == pytest.approx(100 * 5 / 9)
    assert g["detect_mean_s"] == pytest.approx(0.055)
    assert g["detect_median_s"] == pytest.approx(0.055)
    assert g["detect_p95_s"] == pytest.approx(0.09 + 0.55 * 0.01)  # linear interpolation at rank 8.55
    assert g["picks_per_hour"] == pytest.approx(10 / (11 * 60 / 3600))  # the redo's minute counts
    assert g["time_execute_mean_s"] == 20.0 and g["time_detect_mean_s"] == 1.0  # phases from timings
    m = row(rep, "multigrasp")
    assert (m["judged"], m["successes"], m["robust_pct"]) == (10, 9, pytest.approx(20.0))
    assert m["outcome_source"] == "simulated"


def test_methods_without_results_stay_visible(db):
    rep = build_report(db, "r1")
    p = row(rep, "prop-gqcnn")
    assert (p["judged"], p["aborted"], p["pending"]) == (0, 10, 0)
    assert math.isnan(p["success_pct"]) and math.isnan(p["robust_pct"])
    assert "detector unavailable: weights missing (×10)" in p["abort_reasons"]
    n = row(rep, "newnet")
    assert (n["judged"], n["pending"]) == (0, 10)
    md = render(rep, "md")
    assert "prop-gqcnn: no results — 10 aborted (detector unavailable: weights missing (×10))" in md
    assert "newnet: no results — not run: no module named newnet; 10 pending" in md
    assert "evaluator unavailable in 1 session(s), q stored as unknown: gqcnn weights missing" in md
    assert "| prop-gqcnn |" in md and "| newnet |" in md
    assert "nan" not in md.replace("Giguère", "")


def test_sources_are_split_never_pooled(db):
    rep = build_report(db, "r2")
    assert sorted(rep.table["outcome_source"]) == ["operator", "simulated"]
    op, sim = row(rep, "gqstn", "operator"), row(rep, "gqstn", "simulated")
    assert (op["judged"], op["successes"], sim["judged"], sim["successes"]) == (2, 1, 2, 2)
    md = render(rep, "md")
    assert "success (operator)" in md and "success (simulated)" in md
    assert any("several sources" in n for n in rep.notes)
    single = render(build_report(db, "r1"), "md")
    assert "success (simulated) % [95% CI]" in single and "judged by" not in single


def test_by_object_and_paper(db):
    rep = build_report(db, "r1", by_object=True, compare_paper=True)
    b = rep.by_object.set_index(["method", "object_id"])
    # gqstn: trials of mug come first (8 successes over i = 0..7) → mug 5/5, banana 3/5
    assert (b.loc[("gqstn", "mug"), "successes"], b.loc[("gqstn", "mug"), "judged"]) == (5, 5)
    assert (b.loc[("gqstn", "banana"), "successes"], b.loc[("gqstn", "banana"), "judged"]) == (3, 5)
    assert b.loc[("prop-gqcnn", "mug"), "judged"] == 0
    g, m = row(rep, "gqstn"), row(rep, "multigrasp")
    assert g["paper_success_pct"] == PAPER_TABLE_II["gqstn"]["success_pct"] == 96.7
    assert g["paper_success_in_ci"] is False  # 96.7 outside [49.0, 94.3]
    assert m["paper_success_in_ci"] is True  # 95.0 inside 9/10's [59.6, 98.2]
    assert row(rep, "newnet")["paper_success_in_ci"] is None
    md = render(rep, "md")
    assert "Gariépy" in md and "| 3/5 |" in md and "paper success %" in md
    assert any("judged by an operator on a real robot" in n for n in rep.notes)


def test_setup_is_printed(db):
    md = render(build_report(db, "r1"), "md")
    for text in ("r1", "gqstn-paper-2019 (hash hash123)", "**seed**: 2019", "replay", "abc1234", "bench-pc",
                 "numpy 2.0", '"kind": "kinect2"', "40 scheduled: 20 done, 10 aborted, 10 pending",
                 "1 voided attempt"):
        assert text in md, text


def test_formats(db):
    rep = build_report(db, "r1", by_object=False, compare_paper=True)
    doc = json.loads(render(rep, "json"))  # strict JSON: NaN became null
    gq = next(r for r in doc["table_ii"] if r["method"] == "gqstn")
    assert gq["successes"] == 8 and doc["run"]["run_id"] == "r1" and doc["paper"]["citation"]
    assert next(r for r in doc["table_ii"] if r["method"] == "prop-gqcnn")["success_pct"] is None
    csv = pd.read_csv(io.StringIO(render(rep, "csv")))
    assert set(csv["run_id"]) == {"r1"} and set(csv["protocol_hash"]) == {"hash123"}
    assert csv.set_index("method").loc["gqstn", "success_pct"] == pytest.approx(80.0)
    by_obj = pd.read_csv(io.StringIO(render(build_report(db, "r1", by_object=True), "csv")))
    assert {"object_id", "successes", "judged"} <= set(by_obj.columns)
    tex = render(rep, "latex")
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\%" in tex
    assert "80.0 [49.0, 94.3]" in tex
    assert "<table>" in render(rep, "html")
    with pytest.raises(BenchbotError, match="unknown report format"):
        render(rep, "xlsx")


def test_empty_runs_and_bad_ids(db, tmp_path):
    rep = build_report(db, "r3", by_object=True, compare_paper=True)
    assert list(rep.table["judged"]) == [0, 0] and list(rep.table["pending"]) == [10, 10]
    assert "no attempt recorded" in render(rep, "md")
    for fmt in ("md", "csv", "latex", "json", "html"):
        assert render(rep, fmt)
    assert "n/a" in render(rep, "md")
    none = build_report(db, "r4xx", by_object=True)
    assert none.table.empty and none.notes == ["this run has no trials"]
    for fmt in ("md", "csv", "latex", "json", "html"):
        render(none, fmt)
    assert build_report(db).run.run_id == db.latest_run_id()
    with pytest.raises(BenchbotError, match="no run nope"):
        build_report(db, "nope")
    with Store(tmp_path / "empty.db") as empty, pytest.raises(BenchbotError, match="no runs"):
        build_report(empty)


def test_report_reads_a_run_in_progress(db, tmp_path):
    with Store(db.path, readonly=True) as ro:
        rep = build_report(ro, "r1")
    assert row(rep, "gqstn")["successes"] == 8


def test_docs_example_runs(db, tmp_path, monkeypatch, capsys):
    import re
    import sqlite3
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "user-guide" / "report.md").read_text(encoding="utf-8")
    [code] = re.findall(r"```python\n(.*?)```", doc, re.S)
    (tmp_path / "results").mkdir()
    dst = sqlite3.connect(tmp_path / "results" / "benchbot.db")
    db.conn.backup(dst)
    dst.close()
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code, scope)
    assert scope["report"].run.run_id == db.latest_run_id()
    assert "# Grasp benchmark report" in capsys.readouterr().out

"""The SQL aggregation (report over a TEMP table and GROUP BY) against a second implementation:
pandas over every attempt from Store.tables(), the report's code before it moved into SQLite, and
a per-placement pivot for the paired tables. Random runs: redos, aborts, unknown q, missing
outcomes, several outcome sources."""
import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from benchbot.config.schedule import TrialSpec
from benchbot.results.report import build_report
from benchbot.results.stats import PairedCounts, mcnemar_exact_p, newcombe_paired_ci, wilson_ci
from benchbot.results.store import AttemptRecord, DetectionRecord, OutcomeRecord, RunInfo, Store

PHASES = ("place", "capture", "inpaint", "detect", "robust", "execute", "judge", "total")
METHODS = ["gqstn", "multigrasp", "centroid"]


def make_run(store, seed, n_objects=3, trials=4, run_id="r1"):
    rng = random.Random(seed)
    specs = []
    for k in range(1, trials + 1):
        for o in range(n_objects):
            pid = f"obj{o}/{k}"
            for m in METHODS:
                specs.append(TrialSpec(f"{pid}/{m}", len(specs), m, f"obj{o}", k, pid, 1000 + k))
    store.create_run(RunInfo(run_id, "2026-01-01T00:00:00+00:00", "p", "h" * 16, "p.yaml", 1, "replay",
                             "simulated", None, "host", {}, {}), specs)
    t = pd.Timestamp("2026-01-01T08:00:00Z")
    for spec in specs:
        if rng.random() < 0.1:
            continue  # stays pending
        for no in range(1, 4):
            status = rng.choices(["final", "voided", "aborted"], [0.75, 0.15, 0.1])[0] if no < 3 else "final"
            start = t
            t = t + pd.Timedelta(milliseconds=rng.randint(1000, 90000))
            q = None if rng.random() < 0.2 else rng.random()
            det = None if rng.random() < 0.1 else DetectionRecord(
                spec.method, 1.0, 2.0, 0.1, 30.0, 0.7, None, q, None if q is None else q >= 0.5,
                None if q is None else rng.choice([0.5, 0.6]), "gq", 0.01, 0.02,
                None if rng.random() < 0.1 else rng.lognormvariate(-3, 1), 0.003, None,
                "no grasp found" if rng.random() < 0.1 else None)
            success = None if status != "final" or rng.random() < 0.05 else rng.random() < 0.7
            out = None if rng.random() < 0.05 else OutcomeRecord(rng.choice(["simulated", "simulated", "operator"]),
                                                                success, rng.choice([None, "slipped", "missed"]))
            timings = {p: rng.random() for p in PHASES if rng.random() < 0.8}
            store.record_attempt(AttemptRecord(run_id, spec.trial_id, no, status, start.isoformat(), t.isoformat(),
                                               det, out, [], timings, rng.choice([None, "", "fault", "redo"])))
            if status != "voided":
                break


def reference_rows(store, run_id):
    """Table II the pandas way (the report's code before the SQL aggregation)."""
    run = store.get_run(run_id)
    tables = store.tables(run_id)
    trials, a = tables["trials"], tables["attempts"].copy()
    a["source"] = a["outcome_source"].fillna(run.outcome_source)
    rows = {}
    for method in sorted(set(trials["method"])):
        mt, ma = trials[trials["method"] == method], a[a["method"] == method]
        for source in sorted(set(ma["source"])) or [run.outcome_source]:
            g = ma[ma["source"] == source]
            final = g[g["status"] == "final"]
            judged = final[final["success"].notna()]
            n, k = len(judged), int(judged["success"].astype(bool).sum())
            q, det = final["q_robust"].dropna(), final["detect_s"].dropna()
            robust = final["robust"].dropna().astype(bool)
            aborted = g[g["status"] == "aborted"]
            redo = g[g["trial_id"].isin(final["trial_id"])]
            wall = float((pd.to_datetime(redo["finished_at"], utc=True, format="ISO8601")
                          - pd.to_datetime(redo["started_at"], utc=True, format="ISO8601")).dt.total_seconds().sum())
            reasons = Counter(r if isinstance(r, str) and r else "no reason given" for r in aborted["reason"])
            row = {"scheduled": len(mt), "pending": int((mt["status"] == "pending").sum()), "judged": n,
                   "successes": k, "success_ci_low_pct": 100 * wilson_ci(k, n)[0],
                   "robust_pct": 100 * robust.sum() / len(robust) if len(robust) else math.nan,
                   "robust_threshold": "/".join(f"{t:g}" for t in sorted(final["robust_threshold"].dropna().unique()))
                   or None,
                   "q_known": len(q), "q_mean": q.mean() if len(q) else math.nan,
                   "q_median": q.median() if len(q) else math.nan,
                   "detect_mean_s": det.mean() if len(det) else math.nan,
                   "detect_median_s": det.median() if len(det) else math.nan,
                   "detect_p95_s": float(np.percentile(det, 95)) if len(det) else math.nan,
                   "no_grasp": int(final["detection_error"].notna().sum()),
                   "voided": int((g["status"] == "voided").sum()),
                   "aborted": len(aborted),
                   "abort_reasons": ("; ".join(f"{r} (×{c})" for r, c in reasons.most_common())
                                     if len(aborted) else None),
                   "picks_per_hour": len(final) / (wall / 3600) if wall > 0 else math.nan}
            for p in PHASES:
                col = f"time_{p}_s"
                row[f"time_{p}_mean_s"] = final[col].mean() if col in final and final[col].notna().any() else math.nan
            rows[(method, source)] = row
    return rows


def reference_pairs(store, run_id, metric):
    """Paired 2×2 tables by pivoting the final attempts on placement (pandas)."""
    run = store.get_run(run_id)
    a = store.tables(run_id)["attempts"]
    a = a[a["status"] == "final"].copy()
    a["source"] = a["outcome_source"].fillna(run.outcome_source)
    col = "success" if metric == "success" else "robust"
    a = a[a[col].notna()]
    keys = ["source", "placement_id"] if metric == "success" else ["placement_id"]
    wide = a.pivot_table(index=keys, columns="method", values=col, aggfunc="first")
    out = {}
    for i, m1 in enumerate(METHODS):
        for m2 in METHODS[i + 1:]:
            if m1 not in wide or m2 not in wide:
                continue
            sources = wide.index.get_level_values("source") if metric == "success" else [None] * len(wide)
            for source in dict.fromkeys(sources):
                sel = wide[[s == source for s in sources]][[m1, m2]].dropna()
                if len(sel):
                    v1, v2 = sel[m1].astype(bool), sel[m2].astype(bool)
                    out[(source, m1, m2)] = PairedCounts(int((v1 & v2).sum()), int((v1 & ~v2).sum()),
                                                         int((~v1 & v2).sum()), int((~v1 & ~v2).sum()))
    return out


def missing(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def same(x, y):
    if missing(x) or missing(y):  # pandas stores a missing text as NaN
        return missing(x) and missing(y)
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, (float, np.floating)) or isinstance(y, (float, np.floating)):
        return x == pytest.approx(y, rel=1e-9, abs=1e-12)
    return x == y


@pytest.mark.parametrize("seed", range(10))
def test_sql_aggregates_equal_the_pandas_reference(tmp_path_factory, seed):
    with Store(tmp_path_factory.mktemp("agg") / "r.db") as store:
        make_run(store, seed)
        rep = build_report(store, "r1", by_object=True)
        ref = reference_rows(store, "r1")
        got = {(r["method"], r["outcome_source"]): r for r in rep.table.to_dict(orient="records")}
        assert set(got) == set(ref)
        for key, row in ref.items():
            for name, value in row.items():
                assert same(got[key][name], value), (key, name, got[key][name], value)
        # paired comparisons: the counts behind every row, and the statistics recomputed from them
        for metric in ("success", "robust"):
            pairs = reference_pairs(store, "r1", metric)
            cmp = rep.comparisons[rep.comparisons["metric"] == metric]
            order = {m: i for i, m in enumerate(rep.table["method"].drop_duplicates())}
            seen = set()
            for _, r in cmp.iterrows():
                a_, b_ = r["method_a"], r["method_b"]
                key = (r["outcome_source"] if metric == "success" else None, *sorted((a_, b_), key=METHODS.index))
                t = pairs[key] if (a_, b_) == key[1:] else pairs[key].swapped()
                assert order[a_] < order[b_]
                assert (r["pairs"], r["a_only"], r["b_only"]) == (t.n, t.first_only, t.second_only)
                assert r["mcnemar_p"] == pytest.approx(mcnemar_exact_p(t.first_only, t.second_only))
                assert (r["diff_pct"], r["diff_ci_low_pct"]) == pytest.approx(
                    tuple(100 * v for v in newcombe_paired_ci(t)[:2]))
                seen.add(key)
            assert seen == set(pairs)
            # per object: the object rows add up to the pooled row
            eff = rep.object_effects[rep.object_effects["metric"] == metric]
            for _, r in cmp.iterrows():
                same_pair = eff[(eff["method_a"] == r["method_a"]) & (eff["method_b"] == r["method_b"])
                                & (eff["outcome_source"].fillna("-") == ("-" if missing(r["outcome_source"])
                                                                           else r["outcome_source"]))]
                assert same_pair["pairs"].sum() == r["pairs"] and same_pair["a_only"].sum() == r["a_only"]
                assert (same_pair["holm_p"] >= same_pair["mcnemar_p"] - 1e-15).all()
        # by object
        b = rep.by_object
        final = store.tables("r1")["attempts"]
        final = final[(final["status"] == "final") & final["success"].notna()]
        assert b["judged"].sum() == len(final) and b["successes"].sum() == int(final["success"].astype(bool).sum())


def test_holm_family_and_order(tmp_path):
    with Store(tmp_path / "r.db") as store:
        make_run(store, 7, trials=8)
        rep = build_report(store, "r1")
    c = rep.comparisons
    for (_metric, _source), fam in c.groupby(["metric", c["outcome_source"].fillna("-")]):
        ps = sorted(fam["mcnemar_p"])
        m = len(ps)
        assert fam["holm_p"].min() == pytest.approx(min(1.0, m * ps[0]))

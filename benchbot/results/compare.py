"""`benchbot compare`: the same methods across runs (physics vs real robot, two labs, two days).

Runs made with the same protocol (hash) and seed share their schedule: the same placements, so a
method is compared with itself placement by placement (paired: exact McNemar, Newcombe's paired
interval). Otherwise the samples are independent (Fisher's exact test, Newcombe's interval for
independent proportions). Holm adjusts across every comparison of one metric. The setups are
listed side by side with what differs between them.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbot.core.errors import BenchbotError
from benchbot.results.aggregate import RunView
from benchbot.results.paired import fmt_p
from benchbot.results.stats import (
    PairedCounts,
    fisher_exact_p,
    holm,
    mcnemar_exact_p,
    newcombe_independent_ci,
    newcombe_paired_ci,
    wilson_ci,
)
from benchbot.results.store import RunInfo, Store


@dataclass
class RunSide:
    label: str
    db: Path
    run: RunInfo
    # (method, source) → placement_id → (placement_seed, success, robust) of final attempts
    finals: dict[tuple[str, str], dict[str, tuple[int, Any, Any]]] = field(default_factory=dict)


def load_side(db: Path, run_id: str, label: str) -> RunSide:
    with Store(db, readonly=True) as store, store.snapshot():
        run = store.get_run(run_id)
        if run is None:
            raise BenchbotError(f"no run {run_id} in {db}", "list the runs with `benchbot runs --db ...`")
        side = RunSide(label, db, run)
        sql = ("SELECT a.method, a.source, a.placement_id, t.placement_seed, a.success, a.robust FROM {a} a "
               "JOIN trials t ON t.run_id = :run AND t.trial_id = a.trial_id WHERE a.status = 'final'")
        with RunView(store, run) as view:
            for r in view.rows(sql):
                side.finals.setdefault((r["method"], r["source"]), {})[r["placement_id"]] = (
                    r["placement_seed"], r["success"], r["robust"])
    return side


def _flat(run: RunInfo) -> dict[str, str]:
    """The setup of a run as label → text, for the side-by-side table."""
    out = {"protocol": run.protocol_name, "protocol hash": run.protocol_hash, "seed": str(run.seed),
           "backend": run.backend, "outcome source": run.outcome_source, "status": run.status,
           "git SHA": run.git_sha or "unknown", "host": run.host}
    for key, value in sorted(run.config.items()):
        out[f"config: {key}"] = ("—" if value is None else
                                 value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    for key, value in sorted(run.versions.items()):
        out[f"version: {key}"] = str(value)
    return out


def setup_table(sides: list[RunSide]) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, labels of the rows that differ)."""
    flats = [_flat(s.run) for s in sides]
    base = list(_flat(sides[0].run))[:8]  # the run's own fields, in display order
    keys = base + sorted({k for f in flats for k in f} - set(base), key=lambda k: (k.startswith("version: "), k))
    rows, differs = [], []
    for k in keys:
        values = [f.get(k, "—") for f in flats]
        if len(set(values)) > 1:
            differs.append(k)
        rows.append([k] + values + ["differs" if len(set(values)) > 1 else ""])
    return ["setting"] + [s.label for s in sides] + [""], rows, differs


def shared_schedule(a: RunSide, b: RunSide) -> bool:
    return a.run.protocol_hash == b.run.protocol_hash and a.run.seed == b.run.seed


def _counts(finals: dict[str, tuple[int, Any, Any]], index: int) -> tuple[int, int]:
    values = [v[index] for v in finals.values() if v[index] is not None]
    return sum(int(v) for v in values), len(values)


def _compare(metric: str, method: str, a: RunSide, sa: str, b: RunSide, sb: str) -> dict[str, Any]:
    index = {"success": 1, "robust": 2}[metric]
    fa, fb = a.finals[(method, sa)], b.finals[(method, sb)]
    row: dict[str, Any] = {"metric": metric, "method": method, "run_a": a.label, "source_a": sa,
                           "run_b": b.label, "source_b": sb}
    if shared_schedule(a, b):
        cells = [0, 0, 0, 0]
        for pid, (seed, *va) in fa.items():
            other = fb.get(pid)
            if other is None or other[0] != seed or va[index - 1] is None or other[index] is None:
                continue
            cells[{(1, 1): 0, (1, 0): 1, (0, 1): 2, (0, 0): 3}[(int(va[index - 1]), int(other[index]))]] += 1
        t = PairedCounts(*cells)
        d, lo, hi = newcombe_paired_ci(t)
        row.update(test="paired (McNemar exact)", n_a=t.n, k_a=t.first_successes, n_b=t.n, k_b=t.second_successes,
                   a_only=t.first_only, b_only=t.second_only, p=mcnemar_exact_p(t.first_only, t.second_only))
    else:
        (ka, na), (kb, nb) = _counts(fa, index), _counts(fb, index)
        d, lo, hi = newcombe_independent_ci(ka, na, kb, nb)
        row.update(test="unpaired (Fisher exact)", n_a=na, k_a=ka, n_b=nb, k_b=kb, a_only=None, b_only=None,
                   p=fisher_exact_p(ka, na, kb, nb))
    row.update(diff_pct=100 * d, diff_ci_low_pct=100 * lo, diff_ci_high_pct=100 * hi)
    return row


def compare_runs(sides: list[RunSide]) -> list[dict[str, Any]]:
    """Every method present in two runs, for every pair of runs: one row per metric (success,
    robust) and outcome-source combination. Holm over all rows of a metric."""
    out: list[dict[str, Any]] = []
    for metric in ("success", "robust"):
        rows = []
        for a, b in itertools.combinations(sides, 2):
            for (method, sa), (method_b, sb) in itertools.product(sorted(a.finals), sorted(b.finals)):
                if method == method_b:
                    rows.append(_compare(metric, method, a, sa, b, sb))
        for r, p in zip(rows, holm([r["p"] if r["n_a"] and r["n_b"] else math.nan for r in rows]), strict=True):
            r["holm_p"] = p
        out += rows
    return out


def rates_table(sides: list[RunSide]) -> tuple[list[str], list[list[str]]]:
    """Success and robust rates per method (rows) and run (columns), with Wilson intervals."""
    keys = sorted({m for s in sides for (m, _src) in s.finals})
    head = ["method"] + [f"{s.label}: success % [95% CI]" for s in sides] + [f"{s.label}: robust %" for s in sides]
    rows = []
    for m in keys:
        succ, rob = [], []
        for s in sides:
            cells_s, cells_r = [], []
            for (mm, src), finals in sorted(s.finals.items()):
                if mm != m:
                    continue
                k, n = _counts(finals, 1)
                lo, hi = wilson_ci(k, n)
                cells_s.append(f"{100 * k / n:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({k}/{n}, {src})" if n else "n/a")
                kr, nr = _counts(finals, 2)
                cells_r.append(f"{100 * kr / nr:.1f} ({kr}/{nr})" if nr else "n/a")
            succ.append("; ".join(cells_s) or "—")
            rob.append("; ".join(cells_r) or "—")
        rows.append([m] + succ + rob)
    return head, rows


def comparison_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["metric", "method", "A", "B", "test", "A k/n", "B k/n", "A only / B only", "A − B points [95% CI]",
            "p", "Holm p"]
    body = []
    for r in rows:
        diff = ("n/a" if math.isnan(r["diff_pct"]) else
                f"{r['diff_pct']:+.1f} [{r['diff_ci_low_pct']:+.1f}, {r['diff_ci_high_pct']:+.1f}]")
        body.append([r["metric"], r["method"], f"{r['run_a']} ({r['source_a']})", f"{r['run_b']} ({r['source_b']})",
                     r["test"], f"{r['k_a']}/{r['n_a']}", f"{r['k_b']}/{r['n_b']}",
                     "—" if r["a_only"] is None else f"{r['a_only']} / {r['b_only']}", diff,
                     fmt_p(r["p"]) if r["n_a"] and r["n_b"] else "n/a", fmt_p(r["holm_p"])])
    return head, body


def render_compare(sides: list[RunSide], fmt: str = "md") -> str:
    from benchbot.results.report import _md_table

    setup_head, setup_rows, differs = setup_table(sides)
    comparisons = compare_runs(sides)
    if fmt == "json":
        doc = {"runs": [{"label": s.label, "db": str(s.db), "run_id": s.run.run_id} for s in sides],
               "setup_differs": differs, "comparisons": comparisons}
        return json.dumps(doc, indent=2, allow_nan=True).replace("NaN", "null") + "\n"
    if fmt != "md":
        raise BenchbotError(f"unknown compare format '{fmt}'", "use md or json")
    pairs = []
    for a, b in itertools.combinations(sides, 2):
        how = ("paired: same protocol hash and seed, so the same placements" if shared_schedule(a, b) else
               "unpaired: different protocol hash or seed, so independent samples")
        pairs.append(f"- {a.label} vs {b.label}: {how}")
    parts = ["# Comparing runs", "", *[f"- **{s.label}**: run {s.run.run_id} in {s.db}" for s in sides], "",
             "## What differs", "", ("The setups differ in: " + ", ".join(differs) + ".") if differs
             else "The recorded setups are identical.", "", *pairs, "", _md_table(setup_head, setup_rows), "",
             "## Rates", "", _md_table(*rates_table(sides)), "",
             "## Tests", "", _md_table(*comparison_table(comparisons)),
             "", "Paired rows use the placements both runs judged (same placement id and seed); p: exact McNemar "
             "(paired) or Fisher exact (unpaired), two-sided; intervals: Newcombe 95 % (paired or independent); "
             "Holm across all rows of one metric. Outcome sources are named: a physics verdict and an operator's "
             "are different measurements."]
    return "\n".join(parts) + "\n"

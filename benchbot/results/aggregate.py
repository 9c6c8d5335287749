"""Table II, the setup counts and the by-object table of one run, aggregated inside SQLite
(GROUP BY over the run's attempt_facts, read in its stored order without sorting): only per-group
counts and two numeric columns (q and detection time, for medians, percentiles and plots) leave
the database.

Counting rules: see benchbot.results.report (and docs/user-guide/report.md).
"""
from __future__ import annotations

import json
import math
import secrets
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbot.results.schema import FACTS_TABLE, INSERT_FACTS, PHASES, facts_intact
from benchbot.results.stats import wilson_ci
from benchbot.results.store import RunInfo, Store

# Every query reads `{a}`: one row per attempt of the run with its trial, detection and outcome
# (columns: benchbot.results.schema.FACTS_COLUMNS). That is the stored attempt_facts table (schema
# v4+), or, for an older file opened read-only, the same rows joined once into a TEMP table.
_PHASE_MEANS = ",\n".join(
    f"AVG(CASE WHEN status = 'final' THEN time_{p}_s END) AS time_{p}_mean_s" for p in PHASES)

GROUPS_SQL = f"""
SELECT method, source,
       TOTAL(status = 'final') AS finals,
       TOTAL(status = 'final' AND success IS NOT NULL) AS judged,
       TOTAL(status = 'final' AND success = 1) AS successes,
       TOTAL(status = 'final' AND robust IS NOT NULL) AS robust_known,
       TOTAL(status = 'final' AND robust = 1) AS robust_yes,
       TOTAL(status = 'final' AND error IS NOT NULL) AS no_grasp,
       TOTAL(status = 'voided') AS voided,
       TOTAL(status = 'aborted') AS aborted,
       TOTAL(CASE WHEN status = 'final' THEN duration_ms END) AS final_ms,
       MIN(CASE WHEN status = 'final' THEN robust_threshold END) AS threshold_min,
       MAX(CASE WHEN status = 'final' THEN robust_threshold END) AS threshold_max,
       {_PHASE_MEANS}
FROM {{a}} GROUP BY method, source"""

# Redone (voided) attempts before a final attempt of the same source count in the wall time.
REDO_SQL = """
SELECT v.method, v.source, SUM(v.duration_ms) AS redo_ms FROM {a} v
WHERE v.status = 'voided' AND EXISTS (
    SELECT 1 FROM attempts f LEFT JOIN outcomes o ON o.attempt_id = f.id
    WHERE f.run_id = :run AND f.trial_id = v.trial_id AND f.status = 'final' AND COALESCE(o.source, :source) = v.source)
GROUP BY 1, 2"""


class RunView:
    """One run's attempts as `{a}` in the aggregate queries (a context manager; use inside
    `store.snapshot()`). Works on read-only connections: a TEMP table is private."""

    def __init__(self, store: Store, run: RunInfo):
        self.store, self.run = store, run
        self.params: dict[str, Any] = {"run": run.run_id, "source": run.outcome_source}
        self.table = "(SELECT * FROM main.attempt_facts WHERE run_id = :run)"
        self._temp: str | None = None

    def __enter__(self) -> RunView:
        with self.store._errors():  # noqa: SLF001 - the results layer shares the store's error mapping
            if not facts_intact(self.store.conn):  # older than v4 (or its triggers lost): the same rows, in TEMP
                self._temp = self.table = f"temp.bb_attempts_{secrets.token_hex(4)}"
                self.store.conn.execute(FACTS_TABLE.format(name=self._temp))
                self.store.conn.execute(INSERT_FACTS.format(name=self._temp, where="x.run_id = :run"), self.params)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._temp:
            with self.store._errors():  # noqa: SLF001
                self.store.conn.execute(f"DROP TABLE IF EXISTS {self._temp}")

    def rows(self, sql: str, params: dict[str, Any] | list[Any] | None = None) -> list[sqlite3.Row]:
        """Run one read query; `{a}` in the SQL names this run's attempts table."""
        return rows(self.store, sql.format(a=self.table), self.params if params is None else params)

    def packed(self, sql: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        """rows() for a result of integers and text only, fetched as one JSON array: one step into
        Python instead of one per row, each of which waits for the GIL while the CLI's import thread
        runs. Not for REAL columns (JSON text rounds them)."""
        packed = f"SELECT json_group_array(json_array({', '.join(columns)})) FROM ({sql})"
        (text,), = self.rows(packed)
        return [dict(zip(columns, r, strict=True)) for r in json.loads(text)]


def rows(store: Store, sql: str, params: dict[str, Any] | list[Any]) -> list[sqlite3.Row]:
    """Run one read query on the store's connection; SQLite errors become one-line BenchbotErrors."""
    with store._errors():  # noqa: SLF001
        cur = store.conn.cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(sql, params).fetchall()


@dataclass
class RunData:
    """What the report needs of one run, aggregated."""

    methods: list[str]  # display order
    objects: list[str]  # order of first appearance in the schedule
    trial_counts: dict[str, dict[str, int]]  # method → trial status → count
    voided: int
    table_rows: list[dict[str, Any]]
    values: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)  # (method, source) → q, detect_s


def _trial_counts(view: RunView) -> tuple[dict[str, dict[str, int]], list[str]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    first: dict[str, int] = {}
    sql = ("SELECT method, status, object_id, COUNT(*) AS n, MIN(seq) AS first_seq FROM trials WHERE run_id = :run "
           "GROUP BY 1, 2, 3")
    for r in view.packed(sql, ("method", "status", "object_id", "n", "first_seq")):
        counts[r["method"]][r["status"]] += r["n"]
        first[r["object_id"]] = min(first.get(r["object_id"], r["first_seq"]), r["first_seq"])
    return {m: dict(c) for m, c in counts.items()}, sorted(first, key=first.__getitem__)


def _values(view: RunView, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """q and detection time of the final attempts, per (method, source), unknown values dropped.
    One query per group straight into a float array (NULL → NaN): no Python object per value."""
    sql = f"SELECT q_robust, detect_s FROM {view.table} WHERE status = 'final' AND method = :method AND source = :src"
    out = {}
    with view.store._errors():  # noqa: SLF001
        for method, source in keys:
            rows_ = view.store.conn.execute(sql, {**view.params, "method": method, "src": source}).fetchall()
            cols = np.array(rows_, dtype=float).reshape(-1, 2)
            q, det = cols[:, 0], cols[:, 1]
            out[(method, source)] = {"q": np.sort(q[~np.isnan(q)]), "detect_s": np.sort(det[~np.isnan(det)])}
    return out


def _reasons(view: RunView) -> dict[tuple[str, str], str]:
    """Abort reasons per (method, source), most frequent first (ties: first seen first)."""
    sql = """SELECT method, source, COALESCE(NULLIF(reason, ''), 'no reason given') AS why, COUNT(*) AS n,
             MIN(seq) AS first FROM {a} WHERE status = 'aborted' GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 5"""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in view.rows(sql):
        out[(r["method"], r["source"])].append(f"{r['why']} (×{r['n']})")
    return {k: "; ".join(v) for k, v in out.items()}


def _thresholds(view: RunView, groups: dict[str, dict[str, dict[str, Any]]]) -> dict[tuple[str, str], str]:
    """The robust thresholds of the final attempts per (method, source), ascending, '/'-joined. The
    GROUP BY gives their min and max; only a group with several thresholds needs its own query."""
    sql = """SELECT DISTINCT robust_threshold FROM {a} WHERE status = 'final' AND robust_threshold IS NOT NULL
             AND method = :method AND source = :src ORDER BY 1"""
    out = {}
    for method, per_source in groups.items():
        for source, g in per_source.items():
            lo, hi = g.get("threshold_min"), g.get("threshold_max")
            if lo is None:
                continue
            params = {**view.params, "method": method, "src": source}
            found = [lo] if lo == hi else [r[0] for r in view.rows(sql, params)]
            out[(method, source)] = "/".join(f"{t:g}" for t in found)
    return out


def _pct(num: float, den: float) -> float:
    return 100.0 * num / den if den else math.nan


def _mean(x: np.ndarray) -> float:
    return math.fsum(x) / len(x) if len(x) else math.nan  # exactly rounded: independent of row order


def _row(method: str, source: str, trials: dict[str, int], g: dict[str, Any], v: dict[str, np.ndarray],
         thresholds: str | None, reasons: str | None) -> dict[str, Any]:
    n, k = int(g["judged"]), int(g["successes"])  # TOTAL(): 0.0 when no row counts
    lo, hi = wilson_ci(k, n)
    q, det = v["q"], v["detect_s"]
    wall_s = ((g["final_ms"] or 0) + (g.get("redo_ms") or 0)) / 1000.0
    row: dict[str, Any] = {
        "method": method, "outcome_source": source,
        "scheduled": sum(trials.values()), "pending": trials.get("pending", 0),
        "judged": n, "successes": k, "success_pct": _pct(k, n),
        "success_ci_low_pct": 100 * lo, "success_ci_high_pct": 100 * hi,
        "robust_pct": _pct(int(g["robust_yes"]), int(g["robust_known"])),
        "robust_threshold": thresholds or None,
        "q_known": len(q), "q_mean": _mean(q),
        "q_median": float(np.median(q)) if len(q) else math.nan,
        "q_ge_half_pct": _pct(int((q >= 0.5).sum()), len(q)),
        "detect_mean_s": _mean(det),
        "detect_median_s": float(np.median(det)) if len(det) else math.nan,
        "detect_p95_s": float(np.percentile(det, 95)) if len(det) else math.nan,
        "no_grasp": int(g["no_grasp"]), "voided": int(g["voided"]), "aborted": int(g["aborted"]),
        "abort_reasons": reasons if g["aborted"] else None,
        "picks_per_hour": int(g["finals"]) / (wall_s / 3600.0) if wall_s > 0 else math.nan,
    }
    for phase in PHASES:
        mean = g[f"time_{phase}_mean_s"]
        row[f"time_{phase}_mean_s"] = math.nan if mean is None else float(mean)
    return row


_EMPTY_GROUP = {"finals": 0, "judged": 0, "successes": 0, "robust_known": 0, "robust_yes": 0, "no_grasp": 0,
                "voided": 0, "aborted": 0, "final_ms": None, **{f"time_{p}_mean_s": None for p in PHASES}}
_NO_VALUES = {"q": np.empty(0), "detect_s": np.empty(0)}


@dataclass
class Schedule:
    """A run's trial counts, with its methods in display order and objects in schedule order."""

    trial_counts: dict[str, dict[str, int]]  # method → trial status → count
    methods: list[str]
    objects: list[str]


def schedule(view: RunView, method_order: list[str]) -> Schedule:
    """Methods in `method_order` first, then the others by name."""
    trial_counts, objects = _trial_counts(view)
    methods = sorted(trial_counts, key=lambda m: (method_order.index(m) if m in method_order else len(method_order), m))
    return Schedule(trial_counts, methods, objects)


def load_run(view: RunView, sched: Schedule) -> RunData:
    """Table II rows (one per method and outcome source, every scheduled method included) and
    the counts of the setup section. The q and detection-time values (many rows, so much Python
    work) are fetched last."""
    trial_counts, methods, objects = sched.trial_counts, sched.methods, sched.objects
    groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in view.rows(GROUPS_SQL):
        groups[r["method"]][r["source"]] = dict(r)
    for r in view.rows(REDO_SQL):
        groups[r["method"]][r["source"]]["redo_ms"] = r["redo_ms"]
    keys = [(m, src) for m, per_source in groups.items() for src in per_source]
    reasons, thresholds = _reasons(view), _thresholds(view, groups)
    values = _values(view, keys)
    table_rows = []
    for method in methods:
        for source in sorted(groups.get(method, {})) or [view.run.outcome_source]:
            g = groups.get(method, {}).get(source, _EMPTY_GROUP)
            table_rows.append(_row(method, source, trial_counts[method], g, values.get((method, source), _NO_VALUES),
                                   thresholds.get((method, source)), reasons.get((method, source))))
    voided = sum(int(r["voided"]) for per_source in groups.values() for r in per_source.values())
    return RunData(methods, objects, trial_counts, voided, table_rows, values)


def by_object(view: RunView, methods: list[str], objects: list[str]) -> list[dict[str, Any]]:
    """Long table: one row per method, outcome source and object (zero counts included); a method
    without any verdict has one row per object with source None."""
    sql = """SELECT method, source, object_id, COUNT(*) AS judged, SUM(success) AS successes
             FROM {a} WHERE status = 'final' AND success IS NOT NULL GROUP BY 1, 2, 3"""
    counts = {(r["method"], r["source"], r["object_id"]): (r["judged"], r["successes"]) for r in view.rows(sql)}
    sources = {m: sorted({s for (mm, s, _o) in counts if mm == m}) or [None] for m in methods}
    out = []
    for method in methods:
        for obj in objects:
            for source in sources[method]:
                n, k = counts.get((method, source, obj), (0, 0))
                out.append({"method": method, "outcome_source": source, "object_id": obj, "judged": int(n),
                            "successes": int(k), "success_pct": _pct(k, n)})
    return out


def failure_causes(view: RunView) -> list[dict[str, Any]]:
    """Counts of causes per method and source: failed final attempts ("failed") and aborted trials
    ("aborted", not counted as failures)."""
    sql = """SELECT method, source, CASE WHEN status = 'aborted' THEN 'aborted' ELSE 'failed' END AS kind,
             COALESCE(NULLIF(cause, ''), CASE WHEN error IS NOT NULL THEN 'no grasp' ELSE 'unspecified' END) AS cause,
             COUNT(*) AS n FROM {a} WHERE (status = 'final' AND success = 0) OR status = 'aborted'
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 5 DESC, 4"""
    return [dict(r) for r in view.rows(sql)]

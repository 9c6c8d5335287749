"""Method against method within one run, on the placements they share (the paired design: every
placement of the schedule is run by every method).

For each pair of methods: the paired 2×2 table of final verdicts on shared placements, the
difference of success rates with Newcombe's paired interval, the exact McNemar test and Holm's
adjustment across the pairs; the same for robust predictions (GQ-CNN label), and per object.
Success verdicts are paired only within one outcome source (never pooled); robust labels do not
depend on who judged, so they pair across sources.
"""
from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from benchbot.results.aggregate import RunView
from benchbot.results.stats import PairedCounts, holm, mcnemar_exact_p, newcombe_paired_ci

if TYPE_CHECKING:
    import pandas as pd

METRICS = ("success", "robust")

COLUMNS = ["metric", "outcome_source", "object_id", "method_a", "method_b", "pairs", "a_pct", "b_pct",
           "a_only", "b_only", "diff_pct", "diff_ci_low_pct", "diff_ci_high_pct", "mcnemar_p", "holm_p"]


_CELL = {(1, 1): 0, (1, 0): 1, (0, 1): 2, (0, 0): 3}


# Per placement, every method's final verdict, label and source as one JSON array, then counted per
# object and array: one aggregate per row, where a pivot with a MAX(CASE ...) per method and field
# costs three per method.
_PLACEMENTS_SQL = """
SELECT object_id, cell, COUNT(*) AS n FROM (
    SELECT object_id, json_group_array(json_array(method, success, robust, source)) AS cell
    FROM {a} WHERE status = 'final' AND (success IS NOT NULL OR robust IS NOT NULL) GROUP BY placement_id)
GROUP BY object_id, cell"""


def _parse(cell: str) -> dict[str, tuple[int | None, int | None, str]]:
    """method → (success, robust, source) of one placement."""
    return {method: (success, robust, source) for method, success, robust, source in json.loads(cell)}


def paired_tables(view: RunView, methods: list[str]) -> dict[str, dict[tuple[Any, str, str, str], PairedCounts]]:
    """metric → (source, object, method_a, method_b) → paired counts over the placements where both
    have a value (method_a before method_b in `methods`; source None for robust labels)."""
    out: dict[str, dict[tuple[Any, str, str, str], PairedCounts]] = {m: {} for m in METRICS}
    if len(methods) < 2:
        return out
    cells: dict[str, dict[tuple[Any, str, str, str], list[int]]] = {
        m: defaultdict(lambda: [0, 0, 0, 0]) for m in METRICS}
    for r in view.packed(_PLACEMENTS_SQL, ("object_id", "cell", "n")):
        placement = _parse(r["cell"])
        for a, b in itertools.combinations(methods, 2):
            if a not in placement or b not in placement:
                continue
            (sa, ra, src_a), (sb, rb, src_b) = placement[a], placement[b]
            if sa is not None and sb is not None and src_a == src_b:  # verdicts of one source
                cells["success"][(src_a, r["object_id"], a, b)][_CELL[(sa, sb)]] += r["n"]
            if ra is not None and rb is not None:
                cells["robust"][(None, r["object_id"], a, b)][_CELL[(ra, rb)]] += r["n"]
    for metric, c in cells.items():
        out[metric] = {key: PairedCounts(*v) for key, v in c.items()}
    return out


def _row(metric: str, source: Any, obj: str | None, a: str, b: str, t: PairedCounts) -> dict[str, Any]:
    d, lo, hi = newcombe_paired_ci(t)
    return {"metric": metric, "outcome_source": source, "object_id": obj, "method_a": a, "method_b": b,
            "pairs": t.n, "a_pct": 100 * t.first_successes / t.n, "b_pct": 100 * t.second_successes / t.n,
            "a_only": t.first_only, "b_only": t.second_only, "diff_pct": 100 * d, "diff_ci_low_pct": 100 * lo,
            "diff_ci_high_pct": 100 * hi, "mcnemar_p": mcnemar_exact_p(t.first_only, t.second_only),
            "holm_p": math.nan}


def comparison_frames(by_metric: dict[str, dict[tuple[Any, str, str, str], PairedCounts]], methods: list[str], *,
                      per_object: bool = False) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(overall, per object or None) from the tables of paired_tables: one row per metric, source
    and pair of methods with shared values (method_a before method_b in `methods`), and with
    per_object one per object and pair. Holm adjusts within each (metric, source) family: the
    pairs, or every object × pair. pandas is imported here, after the queries."""
    import pandas as pd

    overall: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    rank = {m: i for i, m in enumerate(methods)}
    for metric in METRICS:
        tables = by_metric[metric]
        pooled: dict[tuple[Any, Any, str, str], PairedCounts] = {}
        for (source, _obj, a, b), t in tables.items():
            key = (source, None, a, b)
            pooled[key] = pooled[key] + t if key in pooled else t
        overall += _family_rows(metric, pooled, rank)
        if per_object:
            objects += _family_rows(metric, tables, rank)
    return (pd.DataFrame(overall, columns=COLUMNS),
            pd.DataFrame(objects, columns=COLUMNS) if per_object else None)


def _family_rows(metric: str, tables: dict[tuple[Any, Any, str, str], PairedCounts],
                 rank: dict[str, int]) -> list[dict[str, Any]]:
    family: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    order = sorted(tables, key=lambda k: (str(k[0]), rank[k[2]], rank[k[3]], str(k[1])))
    for source, obj, a, b in order:
        family[source].append(_row(metric, source, obj, a, b, tables[(source, obj, a, b)]))
    out = []
    for members in family.values():
        for r, p in zip(members, holm([r["mcnemar_p"] for r in members]), strict=True):
            r["holm_p"] = p
        out.extend(members)
    return out


def fmt_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def display(df: pd.DataFrame, *, per_object: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a comparison table for md, latex and html."""
    head = ["metric"] + (["object"] if per_object else []) + [
        "A", "B", "shared placements", "A % / B %", "A only / B only", "A − B points [95% CI]",
        "McNemar exact p", "Holm p"]
    body = []
    for _, r in df.iterrows():
        metric = r["metric"] if r["metric"] == "robust" else f"success ({r['outcome_source']})"
        body.append([metric] + ([str(r["object_id"])] if per_object else []) + [
            r["method_a"], r["method_b"], str(r["pairs"]), f"{r['a_pct']:.1f} / {r['b_pct']:.1f}",
            f"{r['a_only']} / {r['b_only']}",
            f"{r['diff_pct']:+.1f} [{r['diff_ci_low_pct']:+.1f}, {r['diff_ci_high_pct']:+.1f}]",
            fmt_p(r["mcnemar_p"]), fmt_p(r["holm_p"])])
    return head, body

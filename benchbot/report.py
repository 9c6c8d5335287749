"""Table II of a run (and its setup) from the results store, rendered as md | csv | latex | json | html.

Counting rules (also in docs/readme/report.md):
- success rate = successes / final attempts with a verdict; aborted trials and voided attempts
  are counted and shown but never counted as failures; a detector that found no grasp is a failure;
- robust prediction rate = final attempts labelled robust / final attempts whose q is known;
- detection time = the detection's `detect_s` (image capture → grasp, inpainting excluded);
- rows are split per outcome source, so simulated and operator verdicts are never pooled.
"""
from __future__ import annotations

import html as html_lib
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import BenchbotError
from .store import RunInfo, Store

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
PHASES = ("place", "capture", "inpaint", "detect", "robust", "execute", "judge", "total")
FORMATS = ("md", "csv", "latex", "json", "html")

PAPER_CITATION = ("A. Gariépy, J.-C. Ruel, B. Chaib-draa and P. Giguère, \"GQ-STN: Optimizing One-Shot "
                  "Grasp Detection based on Robustness Classifier\", IROS 2019, Table II "
                  "(real UR5 + Robotiq 2F-85, operator-judged, 60 attempts per method, 180 in all)")
# Table II of the paper: success %, robust prediction %, detection time (s).
PAPER_TABLE_II: dict[str, dict[str, float]] = {
    "multigrasp": {"success_pct": 95.0, "robust_pct": 21.7, "detect_s": 0.014},
    "gqstn": {"success_pct": 96.7, "robust_pct": 61.7, "detect_s": 0.024},
    "prop-gqcnn": {"success_pct": 98.3, "robust_pct": 48.3, "detect_s": 1.5},
}
PAPER_ATTEMPTS_PER_METHOD = 60


@dataclass
class Report:
    run: RunInfo
    setup: dict[str, str]  # label → value, in display order
    table: pd.DataFrame  # Table II: one row per (method, outcome source)
    by_object: pd.DataFrame | None = None  # long: method, outcome_source, object_id, judged, successes
    compare_paper: bool = False
    notes: list[str] = field(default_factory=list)


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (fractions); (nan, nan) when n == 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact bounds at 0 and n (no round-off)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def _pct(num: float, den: float) -> float:
    return 100.0 * num / den if den else math.nan


def _wall_s(a: pd.DataFrame) -> float:
    start = pd.to_datetime(a["started_at"], utc=True, format="ISO8601")
    end = pd.to_datetime(a["finished_at"], utc=True, format="ISO8601")
    return float((end - start).dt.total_seconds().sum())


def _reasons(a: pd.DataFrame) -> str:
    counts = Counter(r if isinstance(r, str) and r else "no reason given" for r in a["reason"])
    return "; ".join(f"{r} (×{n})" for r, n in counts.most_common())


def _method_row(method: str, source: str, trials: pd.DataFrame, a: pd.DataFrame) -> dict[str, Any]:
    """One Table II row: `trials` are the method's scheduled trials, `a` its attempts from `source`."""
    final = a[a["status"] == "final"]
    judged = final[final["success"].notna()]
    n, k = len(judged), int(judged["success"].astype(bool).sum())
    lo, hi = wilson_ci(k, n)
    q = final["q_robust"].dropna()
    robust = final["robust"].dropna().astype(bool)
    thresholds = sorted(final["robust_threshold"].dropna().unique())
    det = final["detect_s"].dropna()
    aborted = a[a["status"] == "aborted"]
    redo_time = a[a["trial_id"].isin(final["trial_id"])]  # final attempts and the redos before them
    wall_s = _wall_s(redo_time) if len(redo_time) else 0.0
    row: dict[str, Any] = {
        "method": method, "outcome_source": source,
        "scheduled": len(trials), "pending": int((trials["status"] == "pending").sum()),
        "judged": n, "successes": k, "success_pct": _pct(k, n),
        "success_ci_low_pct": 100 * lo, "success_ci_high_pct": 100 * hi,
        "robust_pct": _pct(int(robust.sum()), len(robust)),
        "robust_threshold": "/".join(f"{t:g}" for t in thresholds) or None,
        "q_known": len(q), "q_mean": q.mean() if len(q) else math.nan,
        "q_median": q.median() if len(q) else math.nan,
        "q_ge_half_pct": _pct(int((q >= 0.5).sum()), len(q)),
        "detect_mean_s": det.mean() if len(det) else math.nan,
        "detect_median_s": det.median() if len(det) else math.nan,
        "detect_p95_s": float(np.percentile(det, 95)) if len(det) else math.nan,
        "no_grasp": int(final["detection_error"].notna().sum()),
        "voided": int((a["status"] == "voided").sum()), "aborted": len(aborted),
        "abort_reasons": _reasons(aborted) if len(aborted) else None,
        "picks_per_hour": len(final) / (wall_s / 3600.0) if wall_s > 0 else math.nan,
    }
    for phase in PHASES:
        col = f"time_{phase}_s"
        row[f"time_{phase}_mean_s"] = final[col].mean() if col in final and final[col].notna().any() else math.nan
    return row


def _attempts_with_source(attempts: pd.DataFrame, run: RunInfo) -> pd.DataFrame:
    a = attempts.copy()
    a["source"] = a["outcome_source"].fillna(run.outcome_source)  # no outcome (e.g. crash) → the run's
    return a


def _setup(run: RunInfo, trials: pd.DataFrame, attempts: pd.DataFrame) -> dict[str, str]:
    status = trials["status"].value_counts()
    setup = {
        "run": run.run_id, "status": run.status, "created (UTC)": run.created_at,
        "protocol": f"{run.protocol_name} (hash {run.protocol_hash})", "protocol file": run.protocol_path,
        "seed": str(run.seed), "backend": run.backend, "outcome source": run.outcome_source,
        "git SHA": run.git_sha or "unknown (not a git checkout)", "host": run.host,
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(run.versions.items())) or "unknown",
        "trials": (f"{len(trials)} scheduled: {status.get('done', 0)} done, {status.get('aborted', 0)} aborted, "
                   f"{status.get('pending', 0)} pending; "
                   f"{int((attempts['status'] == 'voided').sum())} voided attempt(s)"),
    }
    for key, value in sorted(run.config.items()):  # camera, calibration, evaluator, threshold, ...
        if value is not None and value != {}:
            setup[f"config: {key}"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return setup


def _by_object(trials: pd.DataFrame, a: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    final = a[(a["status"] == "final") & a["success"].notna()]
    objects = list(dict.fromkeys(trials.sort_values("seq")["object_id"]))  # first-run order
    rows = []
    sources = {m: sorted(set(final[final["method"] == m]["source"])) or [None] for m in methods}
    for method, obj in ((m, o) for m in methods for o in objects):
        sel = final[(final["method"] == method) & (final["object_id"] == obj)]
        for source in sources[method]:  # one row per method and source, zero counts included
            s = sel[sel["source"] == source]
            k = int(s["success"].astype(bool).sum())
            rows.append({"method": method, "outcome_source": source, "object_id": obj, "judged": len(s),
                         "successes": k, "success_pct": _pct(k, len(s))})
    return pd.DataFrame(rows, columns=["method", "outcome_source", "object_id", "judged", "successes",
                                       "success_pct"])


def _add_paper(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    for key in ("success_pct", "robust_pct", "detect_s"):
        t[f"paper_{key}"] = [PAPER_TABLE_II.get(m, {}).get(key, math.nan) for m in t["method"]]
    inside = []
    for p, lo, hi in zip(t["paper_success_pct"], t["success_ci_low_pct"], t["success_ci_high_pct"]):
        inside.append(None if math.isnan(p) or math.isnan(lo) else bool(lo <= p <= hi))
    t["paper_success_in_ci"] = inside
    return t


def build_report(store: Store, run_id: str | None = None, *, by_object: bool = False,
                 compare_paper: bool = False) -> Report:
    """Table II (and optionally the method × object table and the paper's numbers) for a run.
    Every number comes from one snapshot of the database, even while a run is committing."""
    with store.snapshot():
        return _build_report(store, run_id, by_object=by_object, compare_paper=compare_paper)


def _build_report(store: Store, run_id: str | None, *, by_object: bool, compare_paper: bool) -> Report:
    run_id = run_id or store.latest_run_id()
    if run_id is None:
        raise BenchbotError(f"no runs in {store.path}", "start one with `benchbot run`")
    run = store.get_run(run_id)
    if run is None:
        raise BenchbotError(f"no run {run_id} in {store.path}", "list the runs with `benchbot runs`")
    tables = store.tables(run_id)
    events = store.events(run_id)
    trials, attempts = tables["trials"], _attempts_with_source(tables["attempts"], run)
    order = list(PAPER_TABLE_II)  # the paper's row order first, then any other method
    methods = sorted(set(trials["method"]), key=lambda m: (order.index(m) if m in order else len(order), m))
    rows = []
    for method in methods:
        mt, ma = trials[trials["method"] == method], attempts[attempts["method"] == method]
        for source in sorted(set(ma["source"])) or [run.outcome_source]:
            rows.append(_method_row(method, source, mt, ma[ma["source"] == source]))
    unavailable = {e["method"]: e["message"] for e in events if e["kind"] == "method_unavailable"}
    for r in rows:  # latest reason a method could not run (its trials stay pending)
        r["unavailable_reason"] = unavailable.get(r["method"]) if r["pending"] else None
    table = pd.DataFrame(rows)
    if compare_paper and not table.empty:
        table = _add_paper(table)
    report = Report(run=run, setup=_setup(run, trials, attempts), table=table,
                    by_object=_by_object(trials, attempts, methods) if by_object else None,
                    compare_paper=compare_paper)
    report.notes = _notes(report, events)
    return report


def _notes(report: Report, events: list[dict]) -> list[str]:
    notes, t, run = [], report.table, report.run
    if t.empty:
        return ["this run has no trials"]
    sources = sorted(set(t["outcome_source"]))
    if len(sources) > 1:
        notes.append(f"outcomes come from several sources ({', '.join(sources)}): rows are split per "
                     "source and must not be pooled")
    pending = int(t.drop_duplicates("method")["pending"].sum())
    if pending:
        notes.append(f"run is {run.status} with {pending} trial(s) pending: results are partial "
                     "(resume with `benchbot run --resume`)")
    for _, r in t.iterrows():
        if r["judged"] == 0:
            if r["aborted"]:
                why = f"{r['aborted']} aborted ({r['abort_reasons']})"
            elif isinstance(r["unavailable_reason"], str):
                why = f"not run: {r['unavailable_reason']}"
            else:
                why = "no attempt recorded"
            notes.append(f"{r['method']}: no results — {why}; {r['pending']} pending")
        elif r["aborted"]:
            notes.append(f"{r['method']}: {r['aborted']} trial(s) aborted, not counted as failures — "
                         f"{r['abort_reasons']}")
        if r["judged"] and r["q_known"] < r["judged"]:
            notes.append(f"{r['method']}: robustness q unknown for {r['judged'] - r['q_known']} of "
                         f"{r['judged']} final attempts (robust % is over the {r['q_known']} known)")
    evaluator = [e["message"] for e in events if e["kind"] == "evaluator_unavailable"]
    if evaluator:
        notes.append(f"robustness evaluator unavailable in {len(evaluator)} session(s), q stored as unknown: "
                     f"{evaluator[-1]}")
    if report.compare_paper:
        if any(s != "operator" for s in sources):
            notes.append("the paper's outcomes were judged by an operator on a real robot; this run's are "
                         f"{', '.join(sources)}")
    return notes


# -- rendering ---------------------------------------------------------------------------------
def _f(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _success_cell(r: pd.Series) -> str:
    if not r["judged"]:
        return "n/a"
    return f"{r['success_pct']:.1f} [{r['success_ci_low_pct']:.1f}, {r['success_ci_high_pct']:.1f}]"


def _display_tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table to show, shared by md, latex and html."""
    t = report.table
    if t.empty:
        return []
    split = t["outcome_source"].nunique() > 1
    success = "success % [95% CI]" if split else f"success ({t['outcome_source'].iloc[0]}) % [95% CI]"
    head = ["method"] + (["judged by"] if split else []) + [
        "scheduled", "judged", "successes", success, "robust %", "threshold", "q known",
        "q mean / median / ≥0.5 %", "detect s mean / median / p95", "no grasp", "voided", "aborted"]
    if report.compare_paper:
        head += ["paper success %", "paper robust %", "paper detect s", "paper in CI"]
    rows = []
    for _, r in t.iterrows():
        row = [r["method"]] + ([f"success ({r['outcome_source']})"] if split else []) + [
            str(r["scheduled"]), str(r["judged"]), str(r["successes"]), _success_cell(r), _f(r["robust_pct"]),
            _f(r["robust_threshold"]), str(r["q_known"]),
            f"{_f(r['q_mean'], 3)} / {_f(r['q_median'], 3)} / {_f(r['q_ge_half_pct'])}",
            f"{_f(r['detect_mean_s'], 3)} / {_f(r['detect_median_s'], 3)} / {_f(r['detect_p95_s'], 3)}",
            str(r["no_grasp"]), str(r["voided"]), str(r["aborted"])]
        if report.compare_paper:
            inside = r["paper_success_in_ci"]
            row += [_f(r["paper_success_pct"]), _f(r["paper_robust_pct"]), _f(r["paper_detect_s"], 3),
                    "n/a" if inside is None else ("yes" if inside else "no")]
        rows.append(row)
    out = [("Table II", head, rows)]
    timing_head = ["method"] + (["judged by"] if split else []) + [f"{p} s" for p in PHASES] + ["picks/h"]
    timing = [[r["method"]] + ([r["outcome_source"]] if split else [])
              + [_f(r[f"time_{p}_mean_s"], 3) for p in PHASES] + [_f(r["picks_per_hour"])] for _, r in t.iterrows()]
    out.append(("Mean time per phase (final attempts)", timing_head, timing))
    if report.by_object is not None and not report.by_object.empty:
        b = report.by_object
        objects = list(dict.fromkeys(b["object_id"]))
        keys = list(dict.fromkeys(zip(b["method"], b["outcome_source"])))
        head_o = ["method"] + (["judged by"] if split else []) + objects
        rows_o = []
        for method, source in keys:
            sel = b[(b["method"] == method) & (b["outcome_source"].eq(source) if source else b["outcome_source"].isna())]
            cells = {o: f"{s}/{j}" for o, s, j in zip(sel["object_id"], sel["successes"], sel["judged"])}
            rows_o.append([method] + ([str(source)] if split else []) + [cells.get(o, "0/0") for o in objects])
        out.append(("Successes / judged attempts by object", head_o, rows_o))
    return out


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def _render_md(report: Report) -> str:
    parts = [f"# Grasp benchmark report — run {report.run.run_id}", "", "## Setup", ""]
    parts += [f"- **{k}**: {v}" for k, v in report.setup.items()]
    tables = _display_tables(report)
    if not tables:
        parts += ["", "No trials in this run."]
    for title, head, rows in tables:
        parts += ["", f"## {title}", "", _md_table(head, rows)]
    if report.notes:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    parts += ["", "Success % with Wilson 95 % interval over final attempts with a verdict (aborted trials "
              "and voided attempts excluded); robust % over final attempts with known q; detection time "
              "from image capture to grasp, inpainting excluded."]
    if report.compare_paper:
        parts += [f"Paper values: {PAPER_CITATION}."]
    return "\n".join(parts) + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "≥": r"$\geq$",
          "×": r"$\times$", "—": "---"}


def _latex_cell(s: str) -> str:
    return "".join(_LATEX.get(c, c) for c in str(s))


def _render_latex(report: Report) -> str:
    run = report.run
    parts = [f"% benchbot report: run {run.run_id}, protocol {run.protocol_name} ({run.protocol_hash}), "
             f"seed {run.seed}, backend {run.backend}, outcomes {run.outcome_source}, git {run.git_sha or 'n/a'}"]
    for title, head, rows in _display_tables(report):
        parts += [r"\begin{table}[t]", r"\centering", r"\small",
                  rf"\caption{{{_latex_cell(title)} (run {_latex_cell(run.run_id)})}}",
                  r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule",
                  " & ".join(_latex_cell(h) for h in head) + r" \\", r"\midrule"]
        parts += [" & ".join(_latex_cell(c) for c in r) + r" \\" for r in rows]
        parts += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    if report.compare_paper:
        parts.append(f"% paper values: {PAPER_CITATION}")
    return "\n".join(parts) + "\n"


def _plain(x: Any) -> Any:
    """JSON-safe values: NaN/NA → null, numpy scalars → Python."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if x is None or x is pd.NA:
        return None
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _render_json(report: Report) -> str:
    doc = {"run": asdict(report.run), "setup": report.setup,
           "table_ii": report.table.to_dict(orient="records"),
           "by_object": None if report.by_object is None else report.by_object.to_dict(orient="records"),
           "notes": report.notes}
    if report.compare_paper:
        doc["paper"] = {"citation": PAPER_CITATION, "attempts_per_method": PAPER_ATTEMPTS_PER_METHOD,
                        "table_ii": PAPER_TABLE_II}
    return json.dumps(_plain(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _render_csv(report: Report) -> str:
    df = report.by_object if report.by_object is not None else report.table
    df = df.copy()
    df.insert(0, "protocol_hash", report.run.protocol_hash)
    df.insert(0, "run_id", report.run.run_id)
    return df.to_csv(index=False, lineterminator="\n")


def _render_html(report: Report) -> str:
    e = html_lib.escape
    parts = [f"<h1>Grasp benchmark report — run {e(report.run.run_id)}</h1>", "<ul>"]
    parts += [f"<li><b>{e(k)}</b>: {e(str(v))}</li>" for k, v in report.setup.items()] + ["</ul>"]
    for title, head, rows in _display_tables(report):
        parts += [f"<h2>{e(title)}</h2>", "<table>", "<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows] + ["</table>"]
    if report.notes:
        parts += ["<ul>"] + [f"<li>{e(n)}</li>" for n in report.notes] + ["</ul>"]
    if report.compare_paper:
        parts.append(f"<p>Paper values: {e(PAPER_CITATION)}.</p>")
    return "\n".join(parts) + "\n"


def render(report: Report, fmt: str = "md") -> str:
    """The report as text: md (default), csv (Table II, or the by-object table), latex, json or html."""
    renderers = {"md": _render_md, "csv": _render_csv, "latex": _render_latex, "json": _render_json,
                 "html": _render_html}
    if fmt not in renderers:
        raise BenchbotError(f"unknown report format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    return renderers[fmt](report)

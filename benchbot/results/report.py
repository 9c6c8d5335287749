"""Table II of a run (and its setup) from the results store, rendered as md | csv | latex | json | html.

Counting rules (also in docs/user-guide/report.md):
- success rate = successes / final attempts with a verdict; aborted trials and voided attempts
  are counted and shown but never counted as failures; a detector that found no grasp is a failure;
- robust prediction rate = final attempts labelled robust / final attempts whose q is known;
- detection time = the detection's `detect_s` (image capture → grasp, inpainting excluded);
- rows are split per outcome source, so simulated and operator verdicts are never pooled.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from benchbot.core.errors import BenchbotError
from benchbot.results import aggregate, paired
from benchbot.results.aggregate import PHASES
from benchbot.results.stats import Z95, wilson_ci  # noqa: F401 - part of this module's API
from benchbot.results.store import RunInfo, Store

if TYPE_CHECKING:  # pandas is imported where tables are built, after the first queries
    import pandas as pd

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
    comparisons: pd.DataFrame | None = None  # paired method comparisons (benchbot.results.paired)
    object_effects: pd.DataFrame | None = None  # the same per object (with by_object)
    data: aggregate.RunData | None = None  # aggregated values behind the table (for plots)
    details: Any = None  # plots and gallery of the html page (benchbot.results.html.Details)


def _add_paper(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    for key in ("success_pct", "robust_pct", "detect_s"):
        t[f"paper_{key}"] = [PAPER_TABLE_II.get(m, {}).get(key, math.nan) for m in t["method"]]
    inside = []
    for p, lo, hi in zip(t["paper_success_pct"], t["success_ci_low_pct"], t["success_ci_high_pct"], strict=True):
        inside.append(None if math.isnan(p) or math.isnan(lo) else bool(lo <= p <= hi))
    t["paper_success_in_ci"] = inside
    return t


def build_report(store: Store, run_id: str | None = None, *, by_object: bool = False,
                 compare_paper: bool = False, details: bool = False, results_dir: Any = None) -> Report:
    """Table II, the paired method comparisons (and optionally the method × object table, the
    per-object effects and the paper's numbers) for a run; `details` adds what the html page
    shows (distributions, failure causes, the grasp gallery from `results_dir`). Every number
    comes from one snapshot of the database, even while a run is committing."""
    with store.snapshot():
        run_id = run_id or store.latest_run_id()
        if run_id is None:
            raise BenchbotError(f"no runs in {store.path}", "start one with `benchbot run`")
        run = store.get_run(run_id)
        if run is None:
            raise BenchbotError(f"no run {run_id} in {store.path}", "list the runs with `benchbot runs`")
        with aggregate.RunView(store, run) as view:
            report = _build_report(view, store.events(run_id), by_object=by_object, compare_paper=compare_paper)
            if details:
                from benchbot.results.html import load_details

                report.details = load_details(view, report, results_dir)
        return report


def _build_report(view: aggregate.RunView, events: list[dict], *, by_object: bool, compare_paper: bool) -> Report:
    run = view.run
    # Every query before pandas, whose import (started by the CLI in a thread) runs meanwhile: SQLite
    # releases the GIL, so the heavy aggregates go first and the row-by-row fetches last.
    sched = aggregate.schedule(view, list(PAPER_TABLE_II))  # the paper's row order first
    pairs = paired.paired_tables(view, sched.methods)
    object_rows = aggregate.by_object(view, sched.methods, sched.objects) if by_object else None
    data = aggregate.load_run(view, sched)
    import pandas as pd

    unavailable = {e["method"]: e["message"] for e in events if e["kind"] == "method_unavailable"}
    for r in data.table_rows:  # latest reason a method could not run (its trials stay pending)
        r["unavailable_reason"] = unavailable.get(r["method"]) if r["pending"] else None
    table = pd.DataFrame(data.table_rows)
    if compare_paper and not table.empty:
        table = _add_paper(table)
    objects = None
    if object_rows is not None:
        objects = pd.DataFrame(object_rows,
                               columns=["method", "outcome_source", "object_id", "judged", "successes", "success_pct"])
    comparisons, effects = paired.comparison_frames(pairs, data.methods, per_object=by_object)
    report = Report(run=run, setup=_setup(run, data), table=table, by_object=objects, compare_paper=compare_paper,
                    comparisons=comparisons, object_effects=effects, data=data)
    report.notes = _notes(report, events)
    return report


def _setup(run: RunInfo, data: aggregate.RunData) -> dict[str, str]:
    status: dict[str, int] = {}
    for counts in data.trial_counts.values():
        for k, n in counts.items():
            status[k] = status.get(k, 0) + n
    setup = {
        "run": run.run_id, "status": run.status, "created (UTC)": run.created_at,
        "protocol": f"{run.protocol_name} (hash {run.protocol_hash})", "protocol file": run.protocol_path,
        "seed": str(run.seed), "backend": run.backend, "outcome source": run.outcome_source,
        "git SHA": run.git_sha or "unknown (not a git checkout)", "host": run.host,
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(run.versions.items())) or "unknown",
        "trials": (f"{sum(status.values())} scheduled: {status.get('done', 0)} done, {status.get('aborted', 0)} "
                   f"aborted, {status.get('pending', 0)} pending; {data.voided} voided attempt(s)"),
    }
    for key, value in sorted(run.config.items()):  # camera, calibration, evaluator, threshold, ...
        if value is not None and value != {}:
            setup[f"config: {key}"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return setup


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
    import pandas as pd

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
        keys = list(dict.fromkeys(zip(b["method"], b["outcome_source"], strict=True)))
        head_o = ["method"] + (["judged by"] if split else []) + objects
        rows_o = []
        for method, source in keys:
            same_source = b["outcome_source"].eq(source) if source else b["outcome_source"].isna()
            sel = b[(b["method"] == method) & same_source]
            cells = {o: f"{s}/{j}"
                     for o, s, j in zip(sel["object_id"], sel["successes"], sel["judged"], strict=True)}
            rows_o.append([method] + ([str(source)] if split else []) + [cells.get(o, "0/0") for o in objects])
        out.append(("Successes / judged attempts by object", head_o, rows_o))
    if report.comparisons is not None and not report.comparisons.empty:
        out.append(("Paired comparisons (shared placements)", *paired.display(report.comparisons)))
    if report.object_effects is not None and not report.object_effects.empty:
        out.append(("Paired comparisons per object", *paired.display(report.object_effects, per_object=True)))
    return out


STATS_NOTE = ("Success % with Wilson 95 % interval over final attempts with a verdict (aborted trials "
              "and voided attempts excluded); robust % over final attempts with known q; detection time "
              "from image capture to grasp, inpainting excluded. Paired comparisons: placements where both "
              "methods have a final verdict (robust: a known label); difference with Newcombe's paired 95 % "
              "interval, exact McNemar test, Holm's adjustment across the pairs (per object: across every "
              "object and pair).")


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
    parts += ["", STATS_NOTE]
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
    import pandas as pd

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
           "notes": report.notes,
           "comparisons": None if report.comparisons is None else report.comparisons.to_dict(orient="records"),
           "object_effects": None if report.object_effects is None else report.object_effects.to_dict(orient="records")}
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
    from benchbot.results.html import render_page

    return render_page(report)


def render(report: Report, fmt: str = "md") -> str:
    """The report as text: md (default), csv (Table II, or the by-object table), latex, json or html."""
    renderers = {"md": _render_md, "csv": _render_csv, "latex": _render_latex, "json": _render_json,
                 "html": _render_html}
    if fmt not in renderers:
        raise BenchbotError(f"unknown report format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    return renderers[fmt](report)

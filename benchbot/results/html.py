"""The html report: one self-contained page (figures and grasp images embedded as data URIs, no
script, nothing fetched from the network), and a PDF of the same page printed by headless Chromium."""
from __future__ import annotations

import base64
import html
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbot.core.errors import BenchbotError
from benchbot.results import aggregate, gallery, plots

if TYPE_CHECKING:
    from benchbot.results.report import Report

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff; --ok:#2f8f5b; --bad:#c0392b;
        --accent:#3b6ea5; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
       color:var(--ink); background:var(--bg); }
header { background:#1f2d3d; color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:650; }
header .sub { color:#c3cfdb; font-size:13px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
         margin-left:6px; background:#3e5367; color:#fff; }
.badge.finished { background:var(--ok); } .badge.running { background:#b7791f; }
.badge.aborted { background:var(--bad); }
main { max-width:1240px; margin:0 auto; padding:18px 24px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 18px 16px;
          margin:0 0 16px; }
h2 { font-size:16px; margin:0 0 10px; }
h3 { font-size:13px; margin:14px 0 6px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
dl.setup { display:grid; grid-template-columns: max-content 1fr; gap:3px 14px; margin:0; font-size:13px; }
dl.setup dt { color:var(--muted); } dl.setup dd { margin:0; overflow-wrap:anywhere; }
table { border-collapse:collapse; width:100%; font-size:12px; font-variant-numeric: tabular-nums; }
th, td { padding:4px 6px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { background:#f0f3f7; font-weight:600; white-space:normal; vertical-align:bottom; }
th.t, td.t { text-align:left; }
.scroll { overflow-x:auto; }
img.fig { max-width:100%; height:auto; display:block; margin:4px auto; }
ul.notes { margin:0; padding-left:18px; color:#8a4b08; }
.gallery { display:grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap:10px; }
figure.card { margin:0; border:1px solid var(--line); border-radius:6px; overflow:hidden; background:#fafbfc; }
figure.card img { width:100%; height:auto; display:block; }
figure.card figcaption { padding:5px 8px; font-size:12px; }
.ok { color:var(--ok); font-weight:650; } .bad { color:var(--bad); font-weight:650; }
.strip img { width:100%; height:auto; display:block; border:1px solid var(--line); border-radius:6px; }
.strip { margin:0 0 10px; } .strip figcaption { font-size:12px; color:var(--muted); }
footer { color:var(--muted); font-size:12px; max-width:1240px; margin:0 auto; padding:0 24px 30px; }
@media print { body { background:#fff; } section { break-inside: avoid; border:none; } header { background:#1f2d3d;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""


@dataclass
class Details:
    """What the page shows beyond the tables: figures (PNG bytes) and the gallery."""

    figures: dict[str, bytes | None] = field(default_factory=dict)
    gallery: list[gallery.GalleryItem] = field(default_factory=list)
    results_dir: Path | None = None


def load_details(view: aggregate.RunView, report: Report, results_dir: Any = None) -> Details:
    """Figures and gallery of a built report (inside the report's snapshot)."""
    data = report.data
    assert data is not None, "load_details needs a report made by build_report"
    by_object = report.by_object
    if by_object is None:
        import pandas as pd

        by_object = pd.DataFrame(aggregate.by_object(view, data.methods, data.objects))
    thresholds = sorted({float(t) for s in report.table.get("robust_threshold", []) if isinstance(s, str)
                         for t in s.split("/")})
    figures = {
        "success": plots.success_bars(report.table, report.compare_paper) if not report.table.empty else None,
        "q": plots.q_distributions(data.values, data.methods, thresholds),
        "detect": plots.detection_times(data.values, data.methods),
        "heat": plots.heat_map(by_object) if not by_object.empty else None,
        "causes": plots.failure_causes(aggregate.failure_causes(view), data.methods),
    }
    rd = Path(results_dir) if results_dir is not None else None
    return Details(figures, gallery.select(view, rd), rd)


def _img(png: bytes, alt: str, cls: str = "fig") -> str:
    return (f'<img class="{cls}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')


_NUMBER = re.compile(r"^([-+<]?\s?\d|n/a$)")


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An html table; columns of text (not numbers) are left-aligned."""
    e = html.escape
    text = [not all(_NUMBER.match(str(r[i])) for r in rows) for i in range(len(head))]
    cls = [' class="t"' if t else "" for t in text]
    head_cells = "".join(f"<th{c}>{e(h)}</th>" for h, c in zip(head, cls, strict=True))
    out = ['<div class="scroll"><table>', f"<tr>{head_cells}</tr>"]
    out += ["<tr>" + "".join(f"<td{c}>{e(str(v))}</td>" for v, c in zip(r, cls, strict=True)) + "</tr>" for r in rows]
    return "\n".join(out + ["</table></div>"])


def _figure(details: Details | None, key: str, alt: str, empty: str) -> str:
    png = details.figures.get(key) if details else None
    return _img(png, alt) if png else f'<p class="muted">{html.escape(empty)}</p>'


def _gallery(details: Details | None) -> str:
    if details is None:
        return ""
    e = html.escape
    parts = ['<section id="gallery"><h2>Grasp gallery</h2>']
    overlays = [g for g in details.gallery if g.kind == "overlay"]
    strips = [g for g in details.gallery if g.kind == "keyframes"]
    missing = sum(1 for g in details.gallery if g.png is None)
    if not details.gallery:
        parts.append("<p>No overlay images recorded for this run.</p>")
    for title, ok in (("Successes", True), ("Failures", False)):
        chosen = [g for g in overlays if g.success is ok and g.png]
        if not chosen:
            continue
        parts += [f"<h3>{title}</h3>", '<div class="gallery">']
        for g in chosen:
            assert g.png  # chosen: those with an image
            verdict = '<span class="ok">success</span>' if ok else f'<span class="bad">failed</span> {e(g.cause or "")}'
            q = "" if g.q is None else f" · q {g.q:.2f}"
            parts.append(f'<figure class="card">{_img(g.png, g.trial_id, "")}<figcaption><b>{e(g.method)}</b> · '
                         f'{e(g.object_id)}<br>{verdict}{e(q)}</figcaption></figure>')
        parts.append("</div>")
    shown = [g for g in strips if g.png]
    if shown:
        parts.append("<h3>Keyframes (physics)</h3>")
        for g in shown:
            assert g.png  # shown: those with an image
            verdict = "success" if g.success else f"failed ({g.cause or 'unspecified'})"
            parts.append(f'<figure class="strip">{_img(g.png, g.trial_id, "")}<figcaption>{e(g.method)} on '
                         f'{e(g.object_id)} — {e(verdict)}</figcaption></figure>')
    if missing:
        where = details.results_dir if details.results_dir else "no results folder given (--results)"
        parts.append(f"<p>{missing} image(s) not found under {e(str(where))}.</p>")
    return "\n".join(parts + ["</section>"])


def render_page(report: Report) -> str:
    """The whole report as one html document."""
    from benchbot.results.report import PAPER_CITATION, STATS_NOTE, _display_tables

    e = html.escape
    run, details = report.run, report.details
    tables = {title: (head, rows) for title, head, rows in _display_tables(report)}
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>benchbot report — {e(run.run_id)}</title>", f"<style>{CSS}</style></head><body>",
             f"<header><h1>Grasp benchmark report <span class=\"badge {e(run.status)}\">{e(run.status)}</span></h1>",
             f'<div class="sub">run {e(run.run_id)} · protocol {e(run.protocol_name)} ({e(run.protocol_hash)}) · '
             f"backend {e(run.backend)} · outcomes {e(run.outcome_source)} · created {e(run.created_at)}</div>"
             "</header><main>"]
    if report.notes:
        parts.append('<section><h2>Notes</h2><ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in report.notes)
                     + "</ul></section>")
    if "Table II" in tables:
        parts += ['<section><h2>Table II</h2>', _table(*tables["Table II"]),
                  _figure(details, "success", "success rate per method with 95 % intervals", ""), "</section>"]
    else:
        parts.append("<section><h2>Table II</h2><p>No trials in this run.</p></section>")
    for title in ("Paired comparisons (shared placements)", "Mean time per phase (final attempts)"):
        if title in tables:
            parts += [f"<section><h2>{e(title)}</h2>", _table(*tables[title]), "</section>"]
    if details is not None:
        parts += ['<section><h2>Robustness q</h2>' + _figure(details, "q", "histograms of q", "No q recorded.")
                  + "</section>",
                  '<section><h2>Failure causes</h2>' + _figure(details, "causes", "failure causes",
                                                              "No failures or aborted trials.") + "</section>",
                  '<section><h2>Detection time</h2>' + _figure(details, "detect", "detection time histogram",
                                                              "No detection times recorded.") + "</section>",
                  '<section><h2>Success by object</h2>' + _figure(details, "heat", "method × object heat map",
                                                                 "No verdicts yet.") + "</section>"]
    for title in ("Successes / judged attempts by object", "Paired comparisons per object"):
        if title in tables:
            parts += [f"<section><h2>{e(title)}</h2>", _table(*tables[title]), "</section>"]
    parts.append(_gallery(details))
    parts += ['<section><h2>Setup</h2><dl class="setup">']
    parts += [f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in report.setup.items()]
    parts += ["</dl></section></main>", f"<footer><p>{e(STATS_NOTE)}</p>"]
    if report.compare_paper:
        parts.append(f"<p>Paper values: {e(PAPER_CITATION)}.</p>")
    parts.append("<p>Generated by benchbot.</p></footer></body></html>")
    return "\n".join(parts) + "\n"


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions")


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise BenchbotError("a PDF report needs Chromium (headless), which is not installed",
                        "install it (Debian/Ubuntu: apt-get install chromium) or use --format html")


def write_pdf(page: str, out: Path, timeout_s: float = 120.0) -> Path:
    """Print the html page to `out` with headless Chromium (written atomically)."""
    chromium = find_chromium()
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="benchbot-pdf-") as tmp:
        src, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(page, encoding="utf-8")
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer",
               f"--print-to-pdf={pdf}", src.as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise BenchbotError(f"Chromium did not print the PDF within {timeout_s:g} s",
                                "use --format html, or check the Chromium install") from None
        if not pdf.is_file() or not pdf.read_bytes().startswith(b"%PDF"):
            raise BenchbotError("Chromium did not produce a PDF", "use --format html, or check the Chromium install")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(out.name + ".tmp")
        shutil.copyfile(pdf, tmp_out)
        os.replace(tmp_out, out)
    return out

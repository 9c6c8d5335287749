"""Results commands: report output (html/pdf to a file), compare, export, merge, browse and
`bench report`. Registered on the main Typer app by benchbot.cli (register())."""
from __future__ import annotations

import importlib
import threading
from pathlib import Path

import typer
from rich.console import Console

from benchbot.core.errors import BenchbotError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
DEFAULT_DB = Path("results/benchbot.db")
DEFAULT_RESULTS = Path("results")
REPORT_FORMATS = ("md", "csv", "latex", "json", "html", "pdf")


def _need_db(db: Path) -> None:
    if not db.is_file():
        raise BenchbotError(f"{db}: no results database", "run `benchbot run --sim` first or pass --db")


def preload(modules: tuple[str, ...]) -> threading.Thread:
    """Import `modules` in a thread while the caller opens the database and runs its first queries:
    SQLite releases the GIL while it works, so on two cores the imports cost next to no wall time.
    A module that fails to import here fails again, with its message, where it is used."""
    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - reported by the real import later
                continue

    thread = threading.Thread(target=run, name="benchbot-preload")
    thread.start()
    return thread


REPORT_PRELOAD = ("pandas", "scipy.special")  # tables, exact McNemar
PAGE_PRELOAD = ("matplotlib.figure", "matplotlib.backends.backend_agg", "PIL.Image")  # figures, gallery


def report_command(db: Path, run_id: str | None, fmt: str, by_object: bool, compare_paper: bool,
                   out_file: Path | None, results: Path, console: Console) -> None:
    """`benchbot report`: build, render, then print or write (html and pdf embed plots and images)."""
    from benchbot.results.store import check_run_id

    if run_id is not None:
        check_run_id(run_id)
    if fmt not in REPORT_FORMATS:
        raise BenchbotError(f"unknown report format '{fmt}'", f"use one of: {', '.join(REPORT_FORMATS)}")
    if fmt == "pdf" and out_file is None:
        raise BenchbotError("--format pdf needs an output file", "pass -o report.pdf")
    _need_db(db)
    page = fmt in ("html", "pdf")
    loader = preload(REPORT_PRELOAD + (PAGE_PRELOAD if page else ()))
    try:
        _report(db, run_id, fmt, page, by_object, compare_paper, out_file, results, console)
    finally:
        loader.join()


def _report(db: Path, run_id: str | None, fmt: str, page: bool, by_object: bool, compare_paper: bool,
            out_file: Path | None, results: Path, console: Console) -> None:
    from benchbot.results.copyrun import write_atomic
    from benchbot.results.report import build_report, render
    from benchbot.results.store import Store

    with Store(db, readonly=True) as store:
        rep = build_report(store, run_id, by_object=by_object or page, compare_paper=compare_paper, details=page,
                           results_dir=results)
    text = render(rep, "html" if page else fmt)
    if out_file is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    if fmt == "pdf":
        from benchbot.results.html import write_pdf

        write_pdf(text, out_file)
    else:
        write_atomic(out_file, text.encode("utf-8"))
    err.print(f"report of run {rep.run.run_id} written to {out_file}", markup=False)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add compare, export, merge, browse and bench report to the benchbot command line."""

    @app.command()
    def compare(runs: list[str] = typer.Argument(..., help="Run ids (two or more)."),
                db: list[Path] = typer.Option([DEFAULT_DB], "--db", help="Database of all runs, or one --db per run."),
                fmt: str = typer.Option("md", "--format", "-f", help="md | json.")) -> None:
        """Compare the same methods across runs (e.g. MuJoCo vs hardware, two labs): paired tests when
        the runs share their placements (same protocol hash and seed), else unpaired; lists what differs.

        Example: `benchbot compare 20261125-091500-3fa2 20261201-140000-9c1d --db sim.db --db lab.db`
        """
        from benchbot.results.compare import load_side, render_compare

        if len(runs) < 2:
            raise BenchbotError("compare needs at least two runs", "pass two or more run ids")
        if len(db) not in (1, len(runs)):
            raise BenchbotError(f"{len(db)} --db for {len(runs)} runs", "pass one --db for all runs, or one per run")
        dbs = db * len(runs) if len(db) == 1 else db
        for d in dict.fromkeys(dbs):
            _need_db(d)
        labels = [r if runs.count(r) == 1 else f"{r}@{d.stem}" for r, d in zip(runs, dbs, strict=True)]
        if len(set(labels)) < len(labels):
            raise BenchbotError("the same run of the same database is listed twice", "list each run once")
        sides = [load_side(d, r, label) for r, d, label in zip(runs, dbs, labels, strict=True)]
        out.print(render_compare(sides, fmt), markup=False, highlight=False, soft_wrap=True, end="")

    @app.command("export")
    def export_cmd(run_id: str | None = typer.Argument(None, help="Run id (default: the latest)."),
                   out_file: Path = typer.Option(..., "--out", "-o", help="Bundle to write (.zip)."),
                   db: Path = typer.Option(DEFAULT_DB, "--db", help="SQLite results database."),
                   results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="The run's artifacts folder."),
                   protocol: Path | None = typer.Option(None, "--protocol",
                                                        help="Protocol file, if it moved.")) -> None:
        """Export one run as a zip: its database rows, artifacts, the rendered report, protocol and
        objects files, hardware file and calibration, versions, and a sha256 manifest.

        Example: `benchbot export 20261125-091500-3fa2 -o run.zip`
        """
        from benchbot.results.bundle import export_run

        _need_db(db)
        manifest = export_run(db, run_id, out_file, results, protocol)
        err.print(f"run {manifest['run_id']}: {len(manifest['files'])} files written to {out_file}", markup=False)
        for m in manifest["missing"]:
            err.print(f"warning: not found, not in the bundle: {m}", markup=False)

    @app.command("merge")
    def merge_cmd(inputs: list[Path] = typer.Argument(..., help="Results databases or export bundles (.zip)."),
                  out_file: Path = typer.Option(..., "--out", "-o", help="New database to write."),
                  on_clash: str = typer.Option("refuse", "--on-clash", help="refuse | rename (run-id clashes)."),
                  results: Path | None = typer.Option(None, "--results", help="Folder for the bundles' artifacts.")
                  ) -> None:
        """Merge the runs of several cells into one new database (run ids kept unique, provenance kept).

        Example: `benchbot merge labA.db labB.db -o all.db --on-clash rename`
        """
        from benchbot.results.merge import merge

        for m in merge(inputs, out_file, on_clash=on_clash, results_out=results):
            renamed = f" (renamed from {m.run_id})" if m.renamed else ""
            arts = f", {m.artifacts_copied} artifact(s)" if m.artifacts_copied else ""
            err.print(f"{m.new_run_id}{renamed} ← {m.source}{arts}", markup=False)
        err.print(f"written {out_file}", markup=False)

    @app.command()
    def browse(db: Path = typer.Option(DEFAULT_DB, "--db", help="SQLite results database."),
               host: str = typer.Option("127.0.0.1", "--host"),
               port: int = typer.Option(8001, "--port"),
               no_open: bool = typer.Option(False, "--no-open", help="Do not open a web browser.")) -> None:
        """Open the results database in Datasette (read-only) with canned queries: Table II, by
        object, failures. Needs the `browse` extra: pip install 'benchbot[browse]'."""
        from benchbot.results.browse import serve

        _need_db(db)
        serve(db, host=host, port=port, open_browser=not no_open)

    @bench_app.command("report")
    def bench_report(trials: int = typer.Option(100_000, "--trials", help="Synthetic run size."),
                     formats: str = typer.Option("md,html", "--formats", help="Report formats to time."),
                     repeats: int = typer.Option(3, "--repeats", min=1, help="Runs per format; the median is shown.")
                     ) -> None:
        """Time `benchbot report` (wall time, peak memory) on a synthetic run in a temporary folder."""
        from benchbot.bench.report import run_benchmark

        run_benchmark(trials, tuple(f for f in formats.split(",") if f), repeats,
                      echo=lambda m: out.print(m, markup=False))

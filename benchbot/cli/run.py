"""`benchbot run` and the commands about a run's results: report, runs, validate."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from benchbot.cli.common import DEFAULT_RESULTS, DbOpt, ProtocolOpt, err, out, protocol_or_default, say
from benchbot.core.errors import BenchbotError


def run(protocol: Path | None = ProtocolOpt,
        method: str = typer.Option("all", "--method", "-m", help="Run only this method's trials, or `all`."),
        sim: bool = typer.Option(False, "--sim", help="Dry run: replayed frames, dry-run arm, emulated gripper."),
        backend: str | None = typer.Option(None, "--backend", help="replay | mujoco | hardware."),
        db: Path = DbOpt,
        results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder for per-trial artifacts."),
        seed: int | None = typer.Option(None, "--seed", help="Schedule/placement seed (default: protocol's)."),
        new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
        resume: bool = typer.Option(False, "--resume", help="Resume the unfinished run (the default when one exists)."),
        run_id: str | None = typer.Option(None, "--run", help="Resume (or create) this run id."),
        recording: Path | None = typer.Option(None, "--recording", help="Recording folder for --sim."),
        hardware: Path | None = typer.Option(None, "--hardware", help="Hardware YAML for real runs."),
        outcomes: Path | None = typer.Option(None, "--outcomes", help="CSV of scripted outcomes (no stdin)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Non-interactive: assume yes at every prompt."),
        max_trials: int | None = typer.Option(None, "--max-trials", help="Stop after N attempts."),
        threshold: float | None = typer.Option(None, "--threshold", help="Robust label threshold on q."),
        no_robustness: bool = typer.Option(False, "--no-robustness", help="Do not run the GQ-CNN evaluator."),
        console: bool = typer.Option(False, "--console", help="Serve the operator console page (for a tablet)."),
        console_host: str = typer.Option("127.0.0.1", "--console-host",
                                         help="Serve the console on this address (not loopback: network-reachable)."),
        console_port: int = typer.Option(8765, "--console-port", help="Console port (0: any free one)."),
        ) -> None:
    """Run (or resume) the benchmark.

    Examples:

    * `benchbot run --sim` — the whole schedule on replayed frames (no robot needed)
    * `benchbot run --backend mujoco` — the whole protocol in MuJoCo physics
    * `benchbot run --hardware hw.yaml --method gqstn` — GQ-STN's trials on the real robot
    * `benchbot run --hardware hw.yaml --console` — plus the operator console page (see `benchbot console`)
    """
    from benchbot.harness.operator import ConsoleOperator
    from benchbot.harness.runner import RunConfig, Runner

    if new and (resume or run_id):
        raise BenchbotError("--new cannot be combined with --resume or --run", "pick one")
    chosen = backend or ("replay" if sim else ("hardware" if hardware else None))
    if chosen is None:
        raise BenchbotError("no backend chosen", "pass --sim, --backend mujoco, or --hardware FILE")
    cfg = RunConfig(protocol_path=protocol_or_default(protocol), db_path=db, results_dir=results, backend=chosen,
                    method=method, seed=seed, resume="no" if new else "auto", run_id=run_id, recording=recording,
                    hardware=hardware, outcomes_csv=outcomes, assume_yes=yes, max_trials=max_trials,
                    threshold=threshold, evaluator="none" if no_robustness else None)
    operator = None if outcomes else ConsoleOperator(err, assume_yes=yes)
    if console:
        from benchbot.cli.console import run_with_console

        summary = run_with_console(cfg, operator, err, console_host, console_port)
    else:
        summary = Runner(cfg, operator=operator, console=err).run()
    if summary.run_id is None:  # stopped during start-up
        raise typer.Exit(130)
    err.print(f"run {summary.run_id}: {summary.finals} judged, {summary.aborted} aborted, "
              f"{summary.voided} voided this session; {summary.pending} trial(s) pending", markup=False)
    for m, why in summary.unavailable.items():
        err.print(f"[yellow]unavailable:[/] {escape(m)}: {escape(why)}")
    err.print(f"report: benchbot report --db {db} --run {summary.run_id}", markup=False)
    if summary.interrupted:
        raise typer.Exit(130)


def report(run_id: str | None = typer.Option(None, "--run", help="Run id (default: the latest)."),
           db: Path = DbOpt,
           fmt: str = typer.Option("md", "--format", "-f", help="md | csv | latex | json | html | pdf."),
           by_object: bool = typer.Option(False, "--by-object", help="Add the method × object table."),
           compare_paper: bool = typer.Option(False, "--compare-paper", help="Show the paper's Table II beside."),
           out_file: Path | None = typer.Option(None, "--out", "-o", help="Write to this file (pdf needs it)."),
           results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Artifacts folder (html/pdf gallery)."),
           ) -> None:
    """Print Table II (success rate with Wilson CI, robust prediction rate, detection time) and the
    paired method comparisons for a run; html/pdf: one page with plots and a grasp gallery.

    Examples: `benchbot report --by-object --compare-paper`, `benchbot report --format html -o report.html`
    """
    from benchbot.cli.results import report_command

    report_command(db, run_id, fmt, by_object, compare_paper, out_file, results, out)


def runs(db: Path = DbOpt) -> None:
    """List the runs in a database and their progress."""
    from benchbot.results.store import Store

    if not db.is_file():
        raise BenchbotError(f"{db}: no results database", "run `benchbot run --sim` first or pass --db")
    with Store(db, readonly=True) as store:
        rows = store.list_runs()
    table = Table("run", "created", "protocol", "backend", "outcomes", "status", "done", "aborted", "pending",
                  "voided")
    for r in rows:  # text from the database is data, never rich markup
        table.add_row(*(escape(str(r.get(k, ""))) for k in ("run_id", "created_at", "protocol", "backend",
                                                             "outcome_source", "status", "done", "aborted", "pending",
                                                             "voided")))
    out.print(table)


def validate(protocol: Path | None = typer.Argument(None, help="Protocol YAML (default: the paper's)."),
             objects: Path | None = typer.Option(None, "--objects", help="Objects YAML (default: the protocol's).")
             ) -> None:
    """Check a protocol file and its objects file; exit 2 with a one-line error if anything is wrong."""
    from benchbot.config.protocol import load_protocol
    from benchbot.config.schedule import make_schedule
    from benchbot.detectors import check_methods

    loaded = load_protocol(protocol_or_default(protocol), objects)
    check_methods(loaded.protocol.methods, str(loaded.path))
    n = len(make_schedule(loaded))
    say(f"ok: {loaded.path} — {len(loaded.objects)} objects × {loaded.protocol.trials_per_object} trials × "
         f"{len(loaded.protocol.methods)} methods = {n} trials (hash {loaded.protocol_hash})")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add run, report, runs and validate to the benchbot command line."""
    app.command()(run)
    app.command()(report)
    app.command()(runs)
    app.command()(validate)

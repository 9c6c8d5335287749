"""`benchbot` command line: a thin Typer skin over the library. Errors the user can fix print one
line and exit 2."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import BenchbotError
from .protocol import default_protocol_path

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="markdown",
                  help="benchbot — benchmark grasp detectors on a real or simulated robot (GQ-STN paper protocol).")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_DB = Path("results/benchbot.db")
DEFAULT_RESULTS = Path("results")
ProtocolOpt = typer.Option(None, "--protocol", "-p", help="Protocol YAML (default: protocols/paper.yaml).")
DbOpt = typer.Option(DEFAULT_DB, "--db", help="SQLite results database.")


def _protocol(path: Optional[Path]) -> Path:
    return path or default_protocol_path()


@app.command()
def run(protocol: Optional[Path] = ProtocolOpt,
        method: str = typer.Option("all", "--method", "-m", help="Run only this method's trials, or `all`."),
        sim: bool = typer.Option(False, "--sim", help="Dry run: replayed frames, dry-run arm, emulated gripper."),
        backend: Optional[str] = typer.Option(None, "--backend", help="replay | mujoco | hardware."),
        db: Path = DbOpt,
        results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder for per-trial artifacts."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Schedule/placement seed (default: protocol's)."),
        new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
        resume: bool = typer.Option(False, "--resume", help="Resume the unfinished run (the default when one exists)."),
        run_id: Optional[str] = typer.Option(None, "--run", help="Resume (or create) this run id."),
        recording: Optional[Path] = typer.Option(None, "--recording", help="Recording folder for --sim."),
        hardware: Optional[Path] = typer.Option(None, "--hardware", help="Hardware YAML for real runs."),
        outcomes: Optional[Path] = typer.Option(None, "--outcomes", help="CSV of scripted outcomes (no stdin)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Non-interactive: assume yes at every prompt."),
        max_trials: Optional[int] = typer.Option(None, "--max-trials", help="Stop after N attempts."),
        threshold: Optional[float] = typer.Option(None, "--threshold", help="Robust label threshold on q."),
        no_robustness: bool = typer.Option(False, "--no-robustness", help="Do not run the GQ-CNN evaluator."),
        ) -> None:
    """Run (or resume) the benchmark.

    Examples:

    * `benchbot run --sim` — the whole schedule on replayed frames (no robot needed)
    * `benchbot run --backend mujoco` — the whole protocol in MuJoCo physics
    * `benchbot run --hardware hw.yaml --method gqstn` — GQ-STN's trials on the real robot
    """
    from .harness.operator import ConsoleOperator
    from .harness.runner import RunConfig, Runner

    if new and (resume or run_id):
        raise BenchbotError("--new cannot be combined with --resume or --run", "pick one")
    chosen = backend or ("replay" if sim else ("hardware" if hardware else None))
    if chosen is None:
        raise BenchbotError("no backend chosen", "pass --sim, --backend mujoco, or --hardware FILE")
    cfg = RunConfig(protocol_path=_protocol(protocol), db_path=db, results_dir=results, backend=chosen,
                    method=method, seed=seed, resume="no" if new else "auto", run_id=run_id, recording=recording,
                    hardware=hardware, outcomes_csv=outcomes, assume_yes=yes, max_trials=max_trials,
                    threshold=threshold, evaluator="none" if no_robustness else None)
    operator = None if outcomes else ConsoleOperator(err, assume_yes=yes)
    summary = Runner(cfg, operator=operator, console=err).run()
    err.print(f"run {summary.run_id}: {summary.finals} judged, {summary.aborted} aborted, "
              f"{summary.voided} voided this session; {summary.pending} trial(s) pending")
    for m, why in summary.unavailable.items():
        err.print(f"[yellow]unavailable:[/] {m}: {escape(why)}")
    err.print(f"report: benchbot report --db {db} --run {summary.run_id}")
    if summary.interrupted:
        raise typer.Exit(130)


@app.command()
def report(run_id: Optional[str] = typer.Option(None, "--run", help="Run id (default: the latest)."),
           db: Path = DbOpt,
           fmt: str = typer.Option("md", "--format", "-f", help="md | csv | latex | json."),
           by_object: bool = typer.Option(False, "--by-object", help="Add the method × object table."),
           compare_paper: bool = typer.Option(False, "--compare-paper", help="Show the paper's Table II beside."),
           ) -> None:
    """Print Table II (success rate with Wilson CI, robust prediction rate, detection time) for a run.

    Example: `benchbot report --by-object --compare-paper`
    """
    from .report import build_report, render
    from .store import Store

    if not db.is_file():
        raise BenchbotError(f"{db}: no results database", "run `benchbot run --sim` first or pass --db")
    with Store(db, readonly=True) as store:
        rep = build_report(store, run_id, by_object=by_object, compare_paper=compare_paper)
    out.print(render(rep, fmt), markup=False, highlight=False, soft_wrap=True)


@app.command()
def runs(db: Path = DbOpt) -> None:
    """List the runs in a database and their progress."""
    from .store import Store

    if not db.is_file():
        raise BenchbotError(f"{db}: no results database", "run `benchbot run --sim` first or pass --db")
    with Store(db, readonly=True) as store:
        rows = store.list_runs()
    table = Table("run", "created", "protocol", "backend", "outcomes", "status", "done", "aborted", "pending",
                  "voided")
    for r in rows:
        table.add_row(*(str(r.get(k, "")) for k in ("run_id", "created_at", "protocol", "backend", "outcome_source",
                                                     "status", "done", "aborted", "pending", "voided")))
    out.print(table)


@app.command()
def validate(protocol: Optional[Path] = typer.Argument(None, help="Protocol YAML (default: the paper's)."),
             objects: Optional[Path] = typer.Option(None, "--objects", help="Objects YAML (default: the protocol's).")
             ) -> None:
    """Check a protocol file and its objects file; exit 2 with a one-line error if anything is wrong."""
    from .protocol import load_protocol
    from .schedule import make_schedule

    loaded = load_protocol(_protocol(protocol), objects)
    n = len(make_schedule(loaded))
    out.print(f"ok: {loaded.path} — {len(loaded.objects)} objects × {loaded.protocol.trials_per_object} trials × "
              f"{len(loaded.protocol.methods)} methods = {n} trials (hash {loaded.protocol_hash})")


@app.command()
def detect(frame: Path = typer.Argument(..., help="Depth frame (.npy metres / .png mm) or a recording folder."),
           method: str = typer.Option("prop-gqcnn", "--method", "-m", help="Detector name."),
           index: int = typer.Option(0, "--index", help="Frame index when FRAME is a recording folder."),
           intrinsics: Optional[Path] = typer.Option(None, "--intrinsics", help="intrinsics.yaml for a bare frame."),
           overlay: Path = typer.Option(Path("overlay.png"), "--out", "-o", help="Overlay PNG to write."),
           no_robustness: bool = typer.Option(False, "--no-robustness", help="Skip the GQ-CNN evaluator."),
           option: list[str] = typer.Option([], "--option", help="Detector option key=value (repeatable)."),
           ) -> None:
    """Detect one grasp on one frame, print it as JSON and write an overlay PNG.

    Examples: `benchbot detect benchbot/data/recordings/default --index 12 -o grasp.png`,
    `benchbot detect --method prop-gqcnn --option policy=cem frame.npy --intrinsics intrinsics.yaml`
    """
    from .detect import detect_one, parse_options

    result = detect_one(frame, method, index=index, intrinsics=intrinsics, overlay=overlay,
                        robustness=not no_robustness, options=parse_options(option))
    out.print_json(json.dumps(result))


HardwareOpt = typer.Option(..., "--hardware", help="Hardware YAML (see benchbot/data/hardware.example.yaml).")


@app.command()
def doctor(hardware: Path = HardwareOpt) -> None:
    """Check every configured device (driver, reachable, gripper activated, camera streaming,
    calibration age) and print a table; exit 1 if any check fails."""
    from .doctor import all_ok, run_checks
    from .hardware import load_hardware

    results = run_checks(load_hardware(hardware))
    table = Table("check", "status", "detail", "fix")
    for r in results:
        status = "[green]ok[/]" if r.ok and not r.warning else ("[yellow]warn[/]" if r.ok else "[red]FAIL[/]")
        table.add_row(escape(r.name), status, escape(r.detail), escape(r.fix))
    out.print(table)
    if not all_ok(results):
        raise typer.Exit(1)


@app.command()
def calibrate(hardware: Optional[Path] = typer.Option(None, "--hardware", help="Hardware YAML."),
              out_path: Optional[Path] = typer.Option(None, "--out", help="Calibration YAML to write."),
              poses: int = typer.Option(12, "--poses", help="Number of arm poses."),
              center: Optional[str] = typer.Option(None, "--center", help="Board centre x,y,z in the base frame (m)."),
              tilt: float = typer.Option(20.0, "--tilt", help="Board tilt range (degrees)."),
              print_board: Optional[Path] = typer.Option(None, "--print-board", help="Write a printable board PNG."),
              dpi: int = typer.Option(300, "--dpi"),
              ) -> None:
    """Camera-to-robot-base (eye-to-hand) calibration with a ChArUco board held by the gripper.

    Examples: `benchbot calibrate --print-board board.png`, then `benchbot calibrate --hardware hw.yaml`
    """
    from .calibration import BoardSpec, calibrate_hardware, save_board_image

    if print_board is not None:
        path = save_board_image(print_board, BoardSpec(), dpi)
        out.print(f"board written to {path} (print at 100 % scale, measure a square)")
        return
    if hardware is None:
        raise BenchbotError("calibrate needs --hardware FILE (or --print-board PNG)", "pass --hardware hw.yaml")
    c = [float(v) for v in center.split(",")] if center else None
    if c is not None and len(c) != 3:
        raise BenchbotError(f"--center '{center}' is not x,y,z", "e.g. --center 0.45,0,0.25")
    cal, res, path = calibrate_hardware(hardware, out_path, n_poses=poses, tilt_deg=tilt, center_m=c)
    out.print(f"calibration written to {path}: residual {res.residual_mm:.2f} mm / {res.residual_deg:.3f}° RMS "
              f"over {cal.n_poses} poses; rejected poses: {res.rejected or 'none'}")


@app.command("check-calibration")
def check_calibration_cmd(hardware: Path = HardwareOpt,
                          tolerance_mm: float = typer.Option(5.0, "--tolerance-mm")) -> None:
    """Touch board corners with the TCP and compare with where the calibration predicts them."""
    from .calibration import check_hardware
    from .harness.operator import ConsoleOperator

    report_ = check_hardware(hardware, ConsoleOperator(err))
    table = Table("point", "error mm", "dx mm", "dy mm", "dz mm")
    for r in report_.rows():
        table.add_row(*(str(r[k]) for k in ("point", "error_mm", "dx_mm", "dy_mm", "dz_mm")))
    out.print(table)
    out.print(f"max error {report_.max_mm:.2f} mm (tolerance {tolerance_mm} mm)")
    if not report_.ok(tolerance_mm):
        raise typer.Exit(1)


@app.command()
def record(hardware: Path = HardwareOpt,
           out_dir: Path = typer.Option(..., "--out", help="Recording folder to create."),
           frames: int = typer.Option(10, "--frames", help="Number of frames."),
           interval: float = typer.Option(0.0, "--interval", help="Seconds between frames."),
           fmt: str = typer.Option("png", "--format", help="png (16-bit mm) | npy (float32 m)."),
           notes: str = typer.Option("", "--notes")) -> None:
    """Capture frames from the configured camera into a recording folder (input of `run --sim --recording`)."""
    from .hardware import record_from_hardware

    path = record_from_hardware(hardware, out_dir, frames, interval, fmt, notes)
    out.print(f"recorded {frames} frame(s) to {path}")


emulate_app = typer.Typer(help="Protocol-level emulators other software can connect to.", no_args_is_help=True)
app.add_typer(emulate_app, name="emulate")


@emulate_app.command("gripper")
def emulate_gripper(host: str = typer.Option("127.0.0.1", "--host"),
                    port: int = typer.Option(5020, "--port", help="0 picks a free port."),
                    framing: str = typer.Option("tcp", "--framing", help="tcp | rtu-tcp | serial."),
                    serial_port: Optional[str] = typer.Option(None, "--serial-port"),
                    baudrate: int = typer.Option(115200, "--baudrate"),
                    time_scale: float = typer.Option(1.0, "--time-scale", help=">1 runs the gripper faster."),
                    object_width_m: Optional[float] = typer.Option(None, "--object-width-m",
                                                                   help="Width of an object between the jaws."),
                    ) -> None:
    """Serve an emulated Robotiq 2F-85 over Modbus (unit 9) until Ctrl-C.

    Example: `benchbot emulate gripper --port 5020 --object-width-m 0.05`
    """
    from .grippers.robotiq_emulator import serve_emulator

    serve_emulator(host, port, framing, time_scale, object_width_m, serial_port=serial_port, baudrate=baudrate,
                   on_ready=lambda h: err.print(f"emulated Robotiq 2F-85 on {h.address} ({framing}, unit "
                                                f"{h.device_id}) — Ctrl-C to stop"))


def main() -> None:
    try:
        rv = app(standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except BenchbotError as e:
        err.print(f"error: {e.one_line()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as e:  # usage errors from Typer's (vendored) click: they know how to show themselves
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()

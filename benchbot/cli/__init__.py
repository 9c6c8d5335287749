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

from benchbot.config.protocol import default_protocol_path
from benchbot.core.errors import BenchbotError, check_loopback, check_number

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="markdown",
                  help="benchbot — benchmark grasp detectors on a real or simulated robot (GQ-STN paper protocol).")
out = Console(soft_wrap=True, emoji=False)  # no :emoji: codes in paths and names a user typed
err = Console(stderr=True, soft_wrap=True, emoji=False)

DEFAULT_DB = Path("results/benchbot.db")
DEFAULT_RESULTS = Path("results")
ProtocolOpt = typer.Option(None, "--protocol", "-p", help="Protocol YAML (default: protocols/paper.yaml).")
DbOpt = typer.Option(DEFAULT_DB, "--db", help="SQLite results database.")


def _protocol(path: Optional[Path]) -> Path:
    return path or default_protocol_path()


def _say(text: str) -> None:
    """Print a line that holds user text (paths, names, ids) as it is: no markup, no highlighting."""
    out.print(text, markup=False, highlight=False)


def _counts(**limits: tuple[int, int, int]) -> None:
    """Refuse a count option outside its range: name=(value, lowest, highest); `--` form in the message."""
    for name, (value, lo, hi) in limits.items():
        check_number(f"--{name.replace('_', '-')}", value, lo, hi, integer=True)


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
    cfg = RunConfig(protocol_path=_protocol(protocol), db_path=db, results_dir=results, backend=chosen,
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


@app.command()
def report(run_id: Optional[str] = typer.Option(None, "--run", help="Run id (default: the latest)."),
           db: Path = DbOpt,
           fmt: str = typer.Option("md", "--format", "-f", help="md | csv | latex | json | html | pdf."),
           by_object: bool = typer.Option(False, "--by-object", help="Add the method × object table."),
           compare_paper: bool = typer.Option(False, "--compare-paper", help="Show the paper's Table II beside."),
           out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file (pdf needs it)."),
           results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Artifacts folder (html/pdf gallery)."),
           ) -> None:
    """Print Table II (success rate with Wilson CI, robust prediction rate, detection time) and the
    paired method comparisons for a run; html/pdf: one page with plots and a grasp gallery.

    Examples: `benchbot report --by-object --compare-paper`, `benchbot report --format html -o report.html`
    """
    from benchbot.cli.results import report_command

    report_command(db, run_id, fmt, by_object, compare_paper, out_file, results, out)


@app.command()
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


@app.command()
def validate(protocol: Optional[Path] = typer.Argument(None, help="Protocol YAML (default: the paper's)."),
             objects: Optional[Path] = typer.Option(None, "--objects", help="Objects YAML (default: the protocol's).")
             ) -> None:
    """Check a protocol file and its objects file; exit 2 with a one-line error if anything is wrong."""
    from benchbot.config.protocol import load_protocol
    from benchbot.config.schedule import make_schedule
    from benchbot.detectors import check_methods

    loaded = load_protocol(_protocol(protocol), objects)
    check_methods(loaded.protocol.methods, str(loaded.path))
    n = len(make_schedule(loaded))
    _say(f"ok: {loaded.path} — {len(loaded.objects)} objects × {loaded.protocol.trials_per_object} trials × "
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
    from benchbot.harness.detect import detect_one, parse_options

    result = detect_one(frame, method, index=index, intrinsics=intrinsics, overlay=overlay,
                        robustness=not no_robustness, options=parse_options(option))
    out.print_json(json.dumps(result))


HardwareOpt = typer.Option(..., "--hardware", help="Hardware YAML (see benchbot/config/defaults/hardware.example.yaml).")


@app.command()
def doctor(hardware: Path = HardwareOpt) -> None:
    """Check every configured device (driver, reachable, gripper activated, camera streaming,
    calibration age) and print a table; exit 1 if any check fails."""
    from benchbot.config.hardware import load_hardware
    from benchbot.harness.doctor import all_ok, run_checks

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
              tilt: float = typer.Option(35.0, "--tilt", help="Board tilt of the calibration poses (degrees)."),
              print_board: Optional[Path] = typer.Option(None, "--print-board", help="Write a printable board PNG."),
              dpi: int = typer.Option(300, "--dpi"),
              ) -> None:
    """Camera-to-robot-base (eye-to-hand) calibration with a ChArUco board held by the gripper.

    Examples: `benchbot calibrate --print-board board.png`, then `benchbot calibrate --hardware hw.yaml`
    """
    from benchbot.calibration.board import BoardSpec, save_board_image
    from benchbot.calibration.workflows import calibrate_hardware
    from benchbot.harness.detect import check_output_file

    if print_board is not None:
        _counts(dpi=(dpi, 72, 1200))
        check_output_file(print_board, ".png", "--print-board board.png")
        path = save_board_image(print_board, BoardSpec(), dpi)
        _say(f"board written to {path} (print at 100 % scale, measure a square)")
        return
    if hardware is None:
        raise BenchbotError("calibrate needs --hardware FILE (or --print-board PNG)", "pass --hardware hw.yaml")
    c = _xyz(center) if center else None
    cal, res, path = calibrate_hardware(hardware, out_path, n_poses=poses, tilt_deg=tilt, center_m=c)
    _say(f"calibration written to {path}: residual {res.residual_mm:.2f} mm / {res.residual_deg:.3f}° RMS "
         f"over {cal.n_poses} poses; rejected poses: {res.rejected or 'none'}")


def _xyz(text: str) -> list[float]:
    """'x,y,z' in metres → three finite floats, or a one-line error."""
    import math

    try:
        c = [float(v) for v in text.split(",")]
    except ValueError:
        c = []
    if len(c) != 3 or not all(math.isfinite(v) for v in c):
        raise BenchbotError(f"--center '{text}' is not x,y,z in metres", "e.g. --center 0.45,0,0.15 (base frame)")
    return c


@app.command("calibrate-gripper")
def calibrate_gripper_cmd(hardware: Path = HardwareOpt,
                          out_path: Optional[Path] = typer.Option(None, "--out", help="Gripper calibration YAML to write."),
                          ) -> None:
    """Measure where the 2F-85's fingers stop: close fully and open fully with EMPTY jaws, read gPO.

    Writes --out, else gripper.calibration, else gripper_calibration.yaml beside the hardware YAML.
    Example: `benchbot calibrate-gripper --hardware hw.yaml`
    """
    from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper_hardware

    err.print("the gripper closes and opens fully: keep the jaws empty and fingers clear", markup=False)
    cal, path = calibrate_gripper_hardware(hardware, out_path)
    out.print(f"gripper calibration written to {path}: open gPO {cal.open_position}, closed gPO "
              f"{cal.closed_position} (0x{cal.closed_position:02X}); set gripper.calibration to it", markup=False)


@app.command("check-calibration")
def check_calibration_cmd(hardware: Path = HardwareOpt,
                          tolerance_mm: float = typer.Option(5.0, "--tolerance-mm")) -> None:
    """Touch board corners with the TCP and compare with where the calibration predicts them.

    The arm hovers above each predicted corner, then switches to freedrive: guide the TCP onto the
    corner by hand and confirm (no pendant jogging needed)."""
    from benchbot.calibration.workflows import check_hardware
    from benchbot.harness.operator import ConsoleOperator

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
    from benchbot.harness.record import record_from_hardware

    _counts(frames=(frames, 1, 100_000))
    check_number("--interval", interval, 0.0, 3600.0, fix="use seconds between 0 and 3600")
    if fmt not in ("png", "npy"):
        raise BenchbotError(f"unknown recording format '{fmt}'", "use png (16-bit mm) or npy (float32 m)")
    path = record_from_hardware(hardware, out_dir, frames, interval, fmt, notes)
    _say(f"recorded {frames} frame(s) to {path}")


emulate_app = typer.Typer(help="Protocol-level emulators other software can connect to.", no_args_is_help=True)
app.add_typer(emulate_app, name="emulate")


@emulate_app.command("gripper")
def emulate_gripper(host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to serve on."),
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
    from benchbot.devices.grippers.robotiq_emulator import serve_emulator

    _counts(port=(port, 0, 65535), baudrate=(baudrate, 1, 10_000_000))
    check_number("--time-scale", time_scale, 1e-3, 1e3)
    if framing != "serial":
        check_loopback("--host", host)
    if object_width_m is not None:
        check_number("--object-width-m", object_width_m, 0.0, 0.2, fix="use the object's width in metres, e.g. 0.05")
    serve_emulator(host, port, framing, time_scale, object_width_m, serial_port=serial_port, baudrate=baudrate,
                   on_ready=lambda h: err.print(f"emulated Robotiq 2F-85 on {h.address} ({framing}, unit "
                                                f"{h.device_id}) — Ctrl-C to stop"))


@emulate_app.command("arm")
def emulate_arm(host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to serve on."),
                time_scale: float = typer.Option(1.0, "--time-scale", help=">1 moves the arm faster."),
                table_z_m: Optional[float] = typer.Option(None, "--table-z-m", help="Table height (protective stop below).")
                ) -> None:
    """Serve a UR5 controller emulator (RTDE 30004, dashboard 29999, script 30003) until Ctrl-C.

    Example: `benchbot emulate arm --host 127.0.0.2`
    """
    from benchbot.devices.arms.rtde_emulator_process import run_rtde_emulator

    check_number("--time-scale", time_scale, 1e-3, 1e3)
    check_loopback("--host", host)
    if table_z_m is not None:
        check_number("--table-z-m", table_z_m, -2.0, 2.0, fix="use the table height in metres in the base frame")
    run_rtde_emulator(host, echo=lambda m: err.print(m, markup=False), time_scale=time_scale, table_z_m=table_z_m)


@app.command()
def datagen(out_dir: Path = typer.Argument(..., help="Dataset folder (Dex-Net 2.0 tensor layout + images/)."),
            images: int = typer.Option(100, "--images", help="Number of rendered scenes."),
            seed_start: int = typer.Option(0, "--seed-start", help="First scene seed (shard by seed range)."),
            workers: int = typer.Option(1, "--workers", help="Processes."),
            grasps_per_image: int = typer.Option(50, "--grasps-per-image"),
            perturbations: int = typer.Option(4, "--perturbations", help="Extra perturbed trials per grasp."),
            objects: Optional[Path] = typer.Option(None, "--objects", help="Objects YAML (default: training objects)."),
            exclude_objects: Optional[Path] = typer.Option(None, "--exclude-objects", help="Objects YAML whose ids are "
                                                         "never drawn (e.g. benchbot/data/heldout_objects.yaml)."),
            progress: bool = typer.Option(True, "--progress/--no-progress"),
            randomize: bool = typer.Option(False, "--randomize", help="Domain randomisation: sensor, camera tilt "
                                           "and height, 1–5 objects, distractors, fingers in view (docs/readme/sim.md)."),
            sensors: Optional[str] = typer.Option(None, "--sensors", help="With --randomize: comma-separated "
                                                  "sensors (default: kinect2,primesense,d415,d435,azure-nfov)."),
            ) -> None:
    """Generate a physics-labelled synthetic dataset in Dex-Net 2.0's format (resumable, sharded by seed).

    Example: `benchbot datagen datasets/train --images 1000 --workers 2 --perturbations 1`
    """
    from benchbot.sim.datagen import generate
    from benchbot.sim.randomize import Randomization
    from benchbot.train.objects import training_objects

    if sensors and not randomize:
        raise BenchbotError("--sensors needs --randomize", "add --randomize or drop --sensors")
    rnd = None
    if randomize:
        rnd = Randomization(sensors=tuple(s.strip() for s in sensors.split(","))) if sensors else Randomization()
    objects_file, ids = training_objects(objects, exclude_objects)
    meta = generate(out_dir, n_images=images, seed_start=seed_start, workers=workers,
                    grasps_per_image=grasps_per_image, perturbations=perturbations, progress=progress,
                    objects_file=objects_file, object_ids=ids, randomize=rnd)
    _print_counts(out_dir, meta)


def _print_counts(out_dir: Path, meta: dict) -> None:
    counts = meta.get("counts") or {}
    _say(f"{out_dir}: {counts.get('images')} images, {counts.get('grasps')} labelled grasps")


@app.command("datagen-merge")
def datagen_merge(shards: list[Path] = typer.Argument(..., help="Shard folders."),
                  out_dir: Path = typer.Option(..., "--out", help="Merged dataset folder.")) -> None:
    """Merge datasets generated with different seed ranges (e.g. one per Slurm array task)."""
    from benchbot.sim.datagen import merge_shards

    meta = merge_shards(shards, out_dir)
    _print_counts(out_dir, meta)


@app.command()
def train(kind: str = typer.Argument(..., help="gqstn | multigrasp"),
          data: Path = typer.Option(..., "--data", help="Dataset folder (benchbot datagen output)."),
          out_dir: Path = typer.Option(..., "--out", help="Run folder: checkpoint.pt, log.csv, <kind>.pt."),
          preset: str = typer.Option("small", "--preset", help="small (CPU) | paper (ResNet-34, 224)."),
          batch_size: int = typer.Option(32, "--batch-size"),
          epochs: Optional[int] = typer.Option(None, "--epochs", help="Stop after this epoch (resumable)."),
          compress: float = typer.Option(1.0, "--compress", help="Shorten every schedule phase by this factor."),
          source_size: Optional[int] = typer.Option(None, "--source-size", help="Resize images to this side."),
          seed: int = typer.Option(0, "--seed"),
          device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
          limit_train: Optional[int] = typer.Option(None, "--limit-train"),
          limit_val: Optional[int] = typer.Option(None, "--limit-val"),
          input_size: Optional[int] = typer.Option(None, "--input-size", help="Network input side (preset's default)."),
          width: Optional[int] = typer.Option(None, "--width", help="ResNet width (preset's default)."),
          augment: bool = typer.Option(True, "--augment/--no-augment",
                                       help="Random mirror/transpose of each training image per epoch."),
          target: str = typer.Option("classifier", "--target",
                                     help="GQ-STN target grasp: classifier (robust one the GQ-CNN rates best) | search "
                                          "(best-rated grasp near those) | metric."),
          coords: bool = typer.Option(False, "--coords", help="GQ-STN: x/y coordinate channels into the "
                                                             "localization nets (CoordConv)."),
          position_sigma: Optional[float] = typer.Option(None, "--position-sigma", help="GQ-STN: measure the centre "
                                                         "error of L_loc in this fraction of the image side."),
          refine: Optional[int] = typer.Option(None, "--refine", help="GQ-STN: extra translation passes on the "
                                               "image re-centred at the last estimate."),
          view_m: Optional[float] = typer.Option(None, "--view-m", help="Models see only the central square of this "
                                                 "many metres of the table (default: the whole frame)."),
          ) -> None:
    """Train GQ-STN or MultiGrasp with the paper's ξ/lr schedule; rerun the same command to resume.

    Examples: `benchbot train gqstn --data datasets/train --out runs/gqstn` (CPU preset);
    `torchrun --nproc_per_node 4 -m benchbot.train.ddp gqstn --data D --out R --preset paper` (GPUs)
    """
    from benchbot.train.loop import TrainConfig, model_overrides
    from benchbot.train.loop import train as train_model

    if kind not in ("gqstn", "multigrasp"):
        raise BenchbotError(f"unknown model kind '{kind}'", "use gqstn or multigrasp")
    cfg = TrainConfig(preset=preset, batch_size=batch_size, max_epochs=epochs, compress=compress,
                      source_size=source_size, seed=seed, device=device, limit_train=limit_train,
                      limit_val=limit_val, augment=augment, target=target, view_m=view_m,
                      model_overrides=model_overrides(kind, input_size, width, coords, position_sigma, refine))
    result = train_model(kind, data, out_dir, cfg)
    _say(f"{kind}: epoch {result.last_epoch}, best weights {result.model_path}")


@app.command("eval")
def eval_cmd(models: list[str] = typer.Argument(..., help="Detectors to evaluate, e.g. gqstn multigrasp."),
             data: Path = typer.Option(..., "--data", help="Dataset folder."),
             weights: list[str] = typer.Option([], "--weights", help="name=PATH (repeatable)."),
             split: str = typer.Option("val", "--split", help="val (held-out 20 %) | train | all (a test set of other objects)."),
             limit: Optional[int] = typer.Option(None, "--limit", help="At most N images."),
             fmt: str = typer.Option("md", "--format", "-f", help="md | csv | json."),
             baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Add the centroid baseline."),
             ) -> None:
    """Table I on a held-out split: robust precision and rectangle precision (+ §V-B cross-tabs).

    Example: `benchbot eval gqstn multigrasp --data datasets/train`
    """
    from benchbot.harness.detect import detector_options, parse_options
    from benchbot.train.evaluate import evaluate

    if fmt not in ("md", "csv", "json"):
        raise BenchbotError(f"unknown format '{fmt}'", "use md, csv or json")
    if limit is not None:
        _counts(limit=(limit, 1, 10**9))
    paths = parse_options(weights, "--weights")
    names = [*models, *(("centroid",) if baselines else ())]
    for name, path in paths.items():
        if name not in names:
            raise BenchbotError(f"--weights {name}=…: {name} is not evaluated", "evaluate it too, or drop that --weights")
        detector_options(name, {"weights": path})  # refuses detectors that take no weights
    table = evaluate(models, data, weights=paths, baselines=("centroid",) if baselines else (), split=split,
                     limit=limit)
    out.print(table.render(fmt), markup=False, highlight=False)


@app.command("gqcnn-convert")
def gqcnn_convert(src: Path = typer.Argument(..., help="Berkeley GQ-CNN release folder (model.ckpt + json + npy)."),
                  dst: Path = typer.Argument(..., help="Our .pt file to write."),
                  name: Optional[str] = typer.Option(None, "--name", help="Model name stored in the file.")) -> None:
    """Convert a Berkeley GQ-CNN release (e.g. GQCNN-2.0) into benchbot's weights_only .pt format."""
    from benchbot.harness.detect import check_output_file
    from benchbot.models.weights import convert_release

    check_output_file(dst, ".pt", "gqcnn-4.0-pj.pt")
    path = convert_release(src, dst, name)
    _say(f"written {path}")


@app.command("calibrate-threshold")
def calibrate_threshold_cmd(run_id: Optional[str] = typer.Option(None, "--run", help="Run id (default: latest)."),
                            db: Path = DbOpt) -> None:
    """Pick the robustness threshold that best separates judged successes from failures in a run
    (real or physics outcomes); recorded in the run's events. Use it with `run --threshold`."""
    from benchbot.models.robustness import calibrate_threshold
    from benchbot.results.store import Store, check_run_id

    if run_id is not None:
        check_run_id(run_id)
    if not db.is_file():
        raise BenchbotError(f"{db}: no results database", "pass --db")
    with Store(db) as store:
        rid = run_id or store.latest_run_id()
        if rid is None:
            raise BenchbotError(f"{db} has no runs", "run a benchmark first")
        a = store.tables(rid)["attempts"]
        a = a[(a["status"] == "final") & a["success"].notna() & a["q_robust"].notna()]
        cal = calibrate_threshold(a["q_robust"].to_numpy(float), a["success"].to_numpy(bool))
        store.record_event(rid, "threshold_calibration", json.dumps(cal.to_dict()))
    out.print_json(json.dumps(cal.to_dict()))


bench_app = typer.Typer(help="Speed benchmarks: print figures for this machine.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("perception")
def bench_perception(candidates: int = typer.Option(1000, "--candidates"),
                     repeats: int = typer.Option(3, "--repeats")) -> None:
    """Inpainting, table removal, sampler and whole prop-gqcnn detect."""
    from benchbot.bench.perception import run_benchmark

    _counts(candidates=(candidates, 1, 100_000), repeats=(repeats, 1, 1000))
    run_benchmark(repeats=repeats, candidates=candidates)


@bench_app.command("gqcnn")
def bench_gqcnn(n: int = typer.Option(1000, "--n"), repeats: int = typer.Option(3, "--repeats")) -> None:
    """Crop extraction and GQ-CNN 2.0 / 4.0-PJ forward at batch 1 and n."""
    from benchbot.bench.gqcnn import run_benchmark

    _counts(n=(n, 1, 100_000), repeats=(repeats, 1, 1000))
    run_benchmark(n=n, repeats=repeats)  # prints its own table


@bench_app.command("models")
def bench_models(repeats: int = typer.Option(10, "--repeats"), threads: int = typer.Option(2, "--threads")) -> None:
    """GQ-STN and MultiGrasp detect latency per stage (paper, small and shipped architectures)."""
    from benchbot.bench.models import run_benchmark

    _counts(repeats=(repeats, 1, 1000), threads=(threads, 1, 256))
    run_benchmark(("paper", "small", "shipped"), repeats=repeats, threads=threads)


@bench_app.command("sim")
def bench_sim(trials: int = typer.Option(12, "--trials"), images: int = typer.Option(4, "--images"),
              workers: int = typer.Option(1, "--workers")) -> None:
    """Depth render, one grasp trial, the 180-trial physics run and datagen throughput."""
    from benchbot.bench.sim import run_benchmark

    _counts(trials=(trials, 1, 10_000), images=(images, 1, 10_000), workers=(workers, 1, 256))
    run_benchmark(n_trials=trials, datagen_images=images, workers=workers, echo=lambda m: out.print(m, markup=False))


from benchbot.cli.console import register as _register_console  # noqa: E402  (`console`, `bench console`)

_register_console(app, bench_app)


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


from benchbot.cli.results import register as _register_results  # noqa: E402 - compare, export, merge, browse, bench report

_register_results(app, bench_app)

"""The trial loop: schedule (stored once) → place → capture → inpaint → table plane + workspace mask
(`perception.workspace.prepare_frame`: what detectors and the evaluator see) → detect → robustness →
safety gate → execute → judge → one transaction per attempt. Resumable after any kill."""
from __future__ import annotations

import json
import platform
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import BenchbotError, DeviceError, UnsafeMotionError
from ..interfaces import Detector, Execution, Judgement, Operator, RobustnessEvaluator
from ..perception.geometry import grasp_to_camera
from ..perception.table import META_KEY as TABLE_KEY
from ..perception.workspace import perception_record, prepare_frame
from ..protocol import LoadedProtocol, load_protocol
from ..schedule import TrialSpec, make_schedule
from ..store import AttemptRecord, DetectionRecord, OutcomeRecord, RunInfo, Store
from ..types import DepthFrame, Grasp, Placement
from . import artifacts
from .lock import RunLock
from .primitive import grasp_in_base
from .workcell import Workcell, build_workcell

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunConfig:
    protocol_path: Path
    db_path: Path
    results_dir: Path
    backend: str = "replay"          # replay | mujoco | hardware
    method: str = "all"
    seed: int | None = None
    resume: str = "auto"             # auto: continue an unfinished run of the same protocol+backend; no: new run
    run_id: str | None = None
    recording: Path | None = None
    hardware: Path | None = None
    outcomes_csv: Path | None = None
    assume_yes: bool = False
    max_trials: int | None = None    # stop after this many attempts (for demos and tests)
    threshold: float | None = None   # robustness label threshold; default: the protocol's
    evaluator: str | None = None     # robustness evaluator; "none" disables it (q stored as NULL)
    save_overlays: bool = True


@dataclass
class RunSummary:
    run_id: str
    recorded: int = 0
    finals: int = 0
    aborted: int = 0
    voided: int = 0
    pending: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    resumed: bool = False


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived: the current attempt is dropped (nothing half-written) and the run stops."""


def _utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    v = {"benchbot": __version__, "python": platform.python_version()}
    for pkg in ("torch", "numpy", "mujoco", "pymodbus", "sqlite-utils"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return v


def validate_grasp(grasp: object, frame: DepthFrame) -> str | None:
    """Why a detector's output cannot be executed, or None when it is a usable grasp."""
    if not isinstance(grasp, Grasp):
        return f"detector returned {type(grasp).__name__}, not a Grasp"
    if not grasp.is_finite():
        return "detector returned a grasp with NaN/inf values"
    h, w = frame.shape
    if not (0 <= grasp.row < h and 0 <= grasp.col < w):
        return f"grasp centre ({grasp.row:.1f}, {grasp.col:.1f}) is outside the {h}×{w} image"
    if grasp.width_px <= 0 or grasp.depth_m <= 0:
        return "grasp width and depth must be positive"
    return None


class Runner:
    """Runs (or resumes) one benchmark run. Library entry point: `Runner(cfg).run()`."""

    def __init__(self, cfg: RunConfig, *, operator: Operator | None = None, console: Console | None = None,
                 workcell_factory: Callable[..., Workcell] = build_workcell) -> None:
        self.cfg = cfg
        self.console = console or Console(stderr=True)
        self.operator = operator
        self.workcell_factory = workcell_factory
        self._stop_requested = False

    # ---- set-up -------------------------------------------------------------------------------
    def _open_run(self, store: Store, loaded: LoadedProtocol, workcell: Workcell) -> tuple[str, bool]:
        cfg = self.cfg
        if cfg.run_id and store.get_run(cfg.run_id):
            run = store.get_run(cfg.run_id)
            if run.protocol_hash != loaded.protocol_hash:
                raise BenchbotError(f"run {cfg.run_id} was made with another protocol (hash {run.protocol_hash})",
                                    "use the protocol file of that run, or start a new run")
            return cfg.run_id, True
        if not cfg.run_id and cfg.resume != "no":
            for run_id in store.unfinished_runs(loaded.protocol_hash):
                run = store.get_run(run_id)
                if run and run.backend == cfg.backend and (cfg.seed is None or run.seed == cfg.seed):
                    return run_id, True
        seed = loaded.protocol.seed if cfg.seed is None else cfg.seed
        run_id = cfg.run_id or f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{loaded.protocol_hash[:6]}"
        trials = make_schedule(loaded, seed)
        info = RunInfo(run_id=run_id, created_at=_utc(), protocol_name=loaded.protocol.name,
                       protocol_hash=loaded.protocol_hash, protocol_path=str(loaded.path), seed=seed,
                       backend=cfg.backend, outcome_source=self._outcome_source(), git_sha=_git_sha(),
                       host=platform.node(), versions=_versions(),
                       config={"recording": str(cfg.recording) if cfg.recording else None,
                               "hardware": str(cfg.hardware) if cfg.hardware else None,
                               "threshold": cfg.threshold if cfg.threshold is not None
                               else loaded.protocol.robustness.threshold,
                               "evaluator": cfg.evaluator or loaded.protocol.robustness.evaluator,
                               **workcell.describe})
        store.create_run(info, trials)
        return run_id, False

    def _outcome_source(self) -> str:
        if self.cfg.backend == "replay":
            return "simulated"
        if self.cfg.backend == "mujoco":
            return "physics"
        return "scripted" if self.cfg.outcomes_csv else "operator"

    def _detectors(self, methods: set[str]) -> tuple[dict[str, Detector], dict[str, str]]:
        from ..detectors import load_detector

        ready, unavailable = {}, {}
        for m in sorted(methods):
            try:
                ready[m] = load_detector(m)
            except BenchbotError as e:
                unavailable[m] = e.one_line()
        return ready, unavailable

    def _evaluator(self, loaded: LoadedProtocol) -> RobustnessEvaluator | None:
        name = self.cfg.evaluator or loaded.protocol.robustness.evaluator
        if name == "none":
            return None
        threshold = self.cfg.threshold if self.cfg.threshold is not None else loaded.protocol.robustness.threshold
        from ..robustness import load_evaluator

        return load_evaluator(name, threshold=threshold)  # crop scale from each frame's table plane

    # ---- the loop ------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.cfg
        loaded = load_protocol(cfg.protocol_path)  # bad input fails here, before any file is written
        methods = loaded.protocol.methods if cfg.method == "all" else [cfg.method]
        if cfg.method != "all" and cfg.method not in loaded.protocol.methods:
            raise BenchbotError(f"method '{cfg.method}' is not in protocol {loaded.path.name}",
                                f"use one of: all, {', '.join(loaded.protocol.methods)}")
        from ..detectors import check_methods

        check_methods(loaded.protocol.methods, str(loaded.path))
        if cfg.outcomes_csv is not None:
            from .operator import ScriptedOperator

            self.operator = ScriptedOperator.from_csv(cfg.outcomes_csv)
        workcell = self.workcell_factory(cfg.backend, loaded, cfg)
        try:
            with RunLock(cfg.db_path):
                store = Store(cfg.db_path)
                try:
                    return self._run_locked(store, loaded, methods, workcell)
                finally:
                    store.close()
        finally:
            workcell.close()

    def _run_locked(self, store: Store, loaded: LoadedProtocol, methods: list[str], workcell: Workcell) -> RunSummary:
        cfg = self.cfg
        run_id, resumed = self._open_run(store, loaded, workcell)
        summary = RunSummary(run_id=run_id, resumed=resumed)
        removed = artifacts.remove_orphans(cfg.results_dir, run_id, store.artifact_paths(run_id))
        if resumed:
            self.console.print(f"[bold]resuming run {run_id}[/] ({len(removed)} orphan file(s) from an "
                               "interrupted attempt removed)")
        else:
            self.console.print(f"[bold]new run {run_id}[/]")
        pending = [t for m in methods for t in store.trials(run_id, method=m, pending_only=True)]
        pending.sort(key=lambda t: t.seq)
        detectors, summary.unavailable = self._detectors({t.method for t in pending})
        store.record_event(run_id, "resumed" if resumed else "started", f"backend {cfg.backend}")
        for m, why in summary.unavailable.items():
            self.console.print(f"[yellow]method {m} unavailable, its trials stay pending:[/] {escape(why)}")
            store.record_event(run_id, "method_unavailable", why, method=m)
        try:
            evaluator = self._evaluator(loaded)
        except BenchbotError as e:
            self.console.print(f"[yellow]robustness evaluator unavailable (q stored as NULL):[/] {escape(e.one_line())}")
            store.record_event(run_id, "evaluator_unavailable", e.one_line())
            evaluator = None
        if evaluator is not None and hasattr(evaluator, "describe"):  # scale factor, table distance
            store.record_event(run_id, "evaluator", json.dumps(evaluator.describe(), default=str))
        todo = [t for t in pending if t.method in detectors]
        if cfg.max_trials is not None:
            todo = todo[:cfg.max_trials]
        self._install_signal_handlers()
        try:
            self._loop(store, loaded, run_id, todo, detectors, evaluator, workcell, summary)
        except (Interrupted, KeyboardInterrupt):  # a second Ctrl-C may land anywhere, even mid-commit
            summary.interrupted = True
            store.record_event(run_id, "interrupted", "stopped by a signal or the operator")
            self.console.print("[bold yellow]stopped:[/] every committed attempt is kept; an attempt cut short "
                               f"was dropped. Resume with: benchbot run --resume (run {run_id})")
        finally:
            self._restore_signal_handlers()
        remaining = store.trials(run_id, pending_only=True)
        summary.pending = len(remaining)
        if not remaining:
            store.set_run_status(run_id, "finished")
        return summary

    def _loop(self, store: Store, loaded: LoadedProtocol, run_id: str, todo: list[TrialSpec],
              detectors: dict[str, Detector], evaluator: RobustnessEvaluator | None, workcell: Workcell,
              summary: RunSummary) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=self.console, transient=False) as progress:
            task = progress.add_task("trials", total=len(todo))
            for trial in todo:
                progress.update(task, description=f"{trial.method:>11} {trial.object_id:<15} #{trial.trial_index}")
                while True:  # redo loop: a voided attempt is kept and the trial re-run
                    self._check_stop()  # SIGTERM/first Ctrl-C: the attempt in progress finishes, then stop
                    try:
                        rec = self._attempt(store, loaded, run_id, trial, detectors[trial.method], evaluator,
                                            workcell)
                    except KeyboardInterrupt:  # second Ctrl-C: drop the attempt, nothing half-written
                        raise Interrupted() from None
                    store.record_attempt(rec)
                    summary.recorded += 1
                    if rec.status == "voided":
                        summary.voided += 1
                        continue
                    if rec.status == "aborted":
                        summary.aborted += 1
                    else:
                        summary.finals += 1
                    if rec.reason and rec.reason.startswith(("device fault", "safety gate")):
                        self._after_fault(rec, workcell)
                    break
                progress.advance(task)

    def _after_fault(self, rec: AttemptRecord, workcell: Workcell) -> None:
        """After a device fault or a refused motion: the operator decides on hardware; then the cell
        recovers, or the run stops with the remaining trials pending (never a cascade of aborts)."""
        self.console.print(f"[red]trial {rec.trial_id} ({rec.status}):[/] {escape(str(rec.reason))}")
        if self.operator is not None and self.cfg.backend == "hardware" and not self.cfg.assume_yes:
            if not self.operator.confirm("Fix the cause, then continue with the next trial?"):
                raise Interrupted()
        try:
            workcell.recover()
        except Exception as e:
            self.console.print(f"[red]the workcell did not recover, stopping:[/] {escape(str(e))}")
            raise Interrupted() from None

    # ---- one attempt ---------------------------------------------------------------------------
    def _attempt(self, store: Store, loaded: LoadedProtocol, run_id: str, trial: TrialSpec, detector: Detector,
                 evaluator: RobustnessEvaluator | None, workcell: Workcell) -> AttemptRecord:
        from ..perception.inpaint import inpaint_frame

        proto = loaded.protocol
        attempt_no = store.next_attempt_no(run_id, trial.trial_id)
        prefix = artifacts.attempt_prefix(run_id, trial.seq, trial.trial_id, attempt_no)
        started = _utc()
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        arts: list[tuple[str, str]] = []
        placement = Placement(trial.placement_id, trial.object_id, trial.placement_seed)
        source = self._outcome_source()

        def finish(status: str, detection: DetectionRecord | None, outcome: OutcomeRecord | None,
                   reason: str | None = None) -> AttemptRecord:
            timings["total"] = time.perf_counter() - t_start
            return AttemptRecord(run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no, status=status,
                                 started_at=started, finished_at=_utc(), detection=detection, outcome=outcome,
                                 artifacts=arts, timings=timings, reason=reason)

        try:
            if self.operator is not None and workcell.backend == "hardware":
                obj = loaded.objects[trial.object_id]
                self.operator.instruct(f"trial {trial.seq + 1}: place the {obj.name} — {proto.operator.placement}")
                if not self.operator.confirm("Object placed and hands clear?"):
                    raise Interrupted()
            t0 = time.perf_counter()
            workcell.stage.place(placement)
            timings["place"] = time.perf_counter() - t0
            frame = workcell.camera.capture()
            t_captured = time.perf_counter()
            if not isinstance(frame, DepthFrame):
                raise DeviceError("camera returned no frame", "check the camera's connection and driver")
            timings["capture"] = t_captured - frame.captured_at
            if not np.any(frame.valid_mask):
                raise DeviceError("camera returned a frame with no valid depth pixel",
                                  "check the camera's view and cabling")
            arts.append(("raw_depth", artifacts.save_array(self.cfg.results_dir, prefix.with_name(prefix.name + "_raw.npy"),
                                                           frame.depth_m)))
            t0 = time.perf_counter()
            clean = inpaint_frame(frame)
            timings["inpaint"] = time.perf_counter() - t0
            grasp, error, seen = None, None, clean
            try:  # the table plane and workspace mask count as detection time
                seen = prepare_frame(clean, workcell.workspace, workcell.table_prior)
                grasp = detector.detect(seen)
            except BenchbotError as e:
                error = e.one_line()
            t_grasp = time.perf_counter()
            timings["detect"] = (t_grasp - frame.captured_at) - timings["inpaint"]  # paper: capture → grasp
            if error is None:
                error = validate_grasp(grasp, clean)
            arts.append(("inpainted_depth", artifacts.save_array(
                self.cfg.results_dir, prefix.with_name(prefix.name + "_inpainted.npy"), clean.depth_m)))
            q, perception = None, perception_record(seen, workcell.workspace)
            if error is None and evaluator is not None:
                t0 = time.perf_counter()
                from ..robustness import robustness_of  # torch: imported when a q is due

                q, why = robustness_of(evaluator, seen, grasp)
                timings["robust"] = time.perf_counter() - t0
                if why:
                    perception["q_null_reason"] = why
            if self.cfg.save_overlays:
                arts.append(("overlay", self._overlay(prefix, clean, grasp if error is None else None, q,
                                                      f"{trial.method} {trial.trial_id}")))
            detection = self._detection_record(trial, grasp if error is None else None, q, evaluator, timings, error)
            detection.perception = perception
            if error is not None:
                return finish("final", detection, OutcomeRecord(source, False, "no grasp", error), error)
            plane = seen.meta.get(TABLE_KEY)  # approach perpendicular to the table when it is known
            grasp_cam = grasp_to_camera(grasp, clean.intrinsics, None if plane is None else plane.normal)
            grasp_base = grasp_in_base(grasp_cam, workcell.t_base_camera)
            detection.grasp_pose = {"center_m": grasp_base.center_m.tolist(),
                                    "approach": grasp_base.approach.tolist(),
                                    "jaw_axis": grasp_base.jaw_axis.tolist(), "width_m": grasp_base.width_m}
            prepare = getattr(workcell.stage, "prepare", None)
            if prepare is not None:
                prepare(clean, grasp, proto.gripper.opening_m)
            t0 = time.perf_counter()
            execution = workcell.execute(grasp_base, proto)
            timings["execute"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            judgement = workcell.stage.judge(placement, execution)
            if judgement is None:
                judgement = self._ask_operator(trial, grasp, q)
            timings["judge"] = time.perf_counter() - t0
            workcell.release(proto)
            for kind, path in getattr(execution, "artifacts", []):
                arts.append((kind, path))
            return self._from_judgement(judgement, detection, finish)
        except UnsafeMotionError as e:  # the detector's grasp cannot be executed safely: its failure,
            self._safe_stop(workcell)     # not an excuse to leave the trial out of the success rate
            return finish("final", locals().get("detection"),
                          OutcomeRecord(source, False, "unsafe grasp", f"refused before execution: {e.one_line()}"),
                          f"safety gate: {e.one_line()}")
        except DeviceError as e:
            self._safe_stop(workcell)
            return finish("aborted", locals().get("detection"), OutcomeRecord(source, None, "device fault", e.one_line()),
                          f"device fault: {e.one_line()}")
        except BaseException:  # the attempt is dropped (disk full, second Ctrl-C, ...): so are its files
            artifacts.discard(self.cfg.results_dir, arts)
            raise

    def _from_judgement(self, j: Judgement, detection: DetectionRecord, finish: Callable[..., AttemptRecord]) -> AttemptRecord:
        if j.kind == "redo":
            return finish("voided", detection, OutcomeRecord(j.source, None, j.cause, j.note), "redo requested")
        if j.kind == "abort":
            return finish("aborted", detection, OutcomeRecord(j.source, None, j.cause or "aborted", j.note),
                          j.note or "aborted by the operator")
        return finish("final", detection, OutcomeRecord(j.source, j.kind == "success", j.cause, j.note))

    def _ask_operator(self, trial: TrialSpec, grasp: Grasp, q: float | None) -> Judgement:
        if self.operator is None:
            raise BenchbotError("this backend needs an operator to judge outcomes",
                                "run interactively or pass --outcomes FILE")
        if hasattr(self.operator, "current_trial"):  # scripted operators answer per trial
            self.operator.current_trial = trial.trial_id  # type: ignore[attr-defined]
        qtxt = "n/a" if q is None else f"{q:.3f}"
        return self.operator.judge(f"{trial.method} on {trial.object_id} #{trial.trial_index}: grasp at "
                                   f"({grasp.row:.0f}, {grasp.col:.0f}) θ={np.degrees(grasp.angle_rad):.0f}° q={qtxt}")

    def _detection_record(self, trial: TrialSpec, grasp: Grasp | None, q: float | None,
                          evaluator: RobustnessEvaluator | None, timings: dict[str, float],
                          error: str | None) -> DetectionRecord:
        g = grasp.to_dict() if grasp is not None else {}
        threshold = evaluator.threshold if evaluator is not None else None
        return DetectionRecord(method=trial.method, row=g.get("row"), col=g.get("col"), angle_rad=g.get("angle_rad"),
                               width_px=g.get("width_px"), depth_m=g.get("depth_m"), score=g.get("score"),
                               q_robust=q, robust=None if q is None else bool(q >= threshold),
                               robust_threshold=threshold, evaluator=evaluator.name if evaluator else None,
                               capture_s=timings.get("capture"), inpaint_s=timings.get("inpaint"),
                               detect_s=timings.get("detect"), robust_s=timings.get("robust"), grasp_pose=None,
                               error=error)

    def _overlay(self, prefix: Path, frame: DepthFrame, grasp: Grasp | None, q: float | None, label: str) -> str:
        from ..perception.overlay import draw_grasp

        image = draw_grasp(frame.depth_m, grasp, q, label)
        return artifacts.save_png(self.cfg.results_dir, prefix.with_name(prefix.name + "_overlay.png"), image)

    def _safe_stop(self, workcell: Workcell) -> None:
        try:
            workcell.safe_state()
        except Exception as e:  # the fault itself may have taken the device down
            self.console.print(f"[red]could not bring the arm to a safe state:[/] {escape(str(e))}")

    # ---- signals -------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now (the primitive stops the arm)
            self._stop_requested = True
            self.console.print("[yellow]stop requested: finishing the current attempt "
                               "(Ctrl-C again to drop it now)[/]")

        self._old_handlers = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def _restore_signal_handlers(self) -> None:
        for s, h in getattr(self, "_old_handlers", {}).items():
            signal.signal(s, h)

    def _check_stop(self) -> None:
        if self._stop_requested:
            raise Interrupted()


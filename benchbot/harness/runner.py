"""The trial loop: schedule (stored once) → place → capture → inpaint → table plane + workspace mask
(`perception.workspace.prepare_frame`: what detectors and the evaluator see) → detect → robustness →
safety gate → execute → judge → one transaction per attempt. Resumable after any kill.

Lifecycle, in one ExitStack: check every input → take the run lock → check the inputs that depend
on the database (a resumed run's settings, the scripted outcomes) → connect the devices → create or
resume the run → trials → wind down (record a stop, close devices, database, lock). Nothing touches
a device before the run is sure to go ahead."""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape

from benchbot.config.protocol import LoadedProtocol, load_protocol
from benchbot.config.schedule import TrialSpec, make_schedule
from benchbot.core.errors import BenchbotError, DeviceError, UnsafeMotionError
from benchbot.core.interfaces import Detector, GraspPlan, Judgement, Operator, RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp, Placement
from benchbot.harness import artifacts
from benchbot.harness.config import RunConfig, find_run, new_run_info, settings_of
from benchbot.harness.events import Observer, attempt_event, emit, progress_paused
from benchbot.harness.lock import RunLock
from benchbot.harness.primitive import grasp_in_base
from benchbot.harness.signals import Interrupted, StopSignals
from benchbot.harness.workcell import Workcell, build_workcell
from benchbot.perception.geometry import grasp_to_camera
from benchbot.perception.table import META_KEY as TABLE_KEY
from benchbot.perception.workspace import perception_record, prepare_frame
from benchbot.results.store import AttemptRecord, DetectionRecord, OutcomeRecord, Store, new_run_id, utc_now

__all__ = ["RunConfig", "RunSummary", "Runner", "Interrupted", "validate_grasp"]


@dataclass
class RunSummary:
    run_id: str | None  # None: stopped before a run was created or resumed (nothing written)
    recorded: int = 0
    finals: int = 0
    aborted: int = 0
    voided: int = 0
    pending: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    resumed: bool = False


@dataclass
class _Session:
    """What start-up hands to the trial loop."""

    store: Store
    workcell: Workcell
    run_id: str
    todo: list[TrialSpec]
    detectors: dict[str, Detector]
    evaluator: RobustnessEvaluator | None


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
                 workcell_factory: Callable[..., Workcell] = build_workcell, observers: Sequence[Observer] = ()) -> None:
        self.cfg = cfg
        self.console = console or Console(stderr=True)
        self.operator = operator
        self.workcell_factory = workcell_factory
        self.signals = StopSignals(self.console.print)
        self.observers = list(observers)
        self._progress: Any = None
        self._n_trials = 0

    def _emit(self, kind: str, **data: Any) -> None:
        emit(self.observers, self.console, kind, data)

    def _asking(self) -> Any:
        return progress_paused(self._progress)

    # ---- the whole run -------------------------------------------------------------------------
    def run(self) -> RunSummary:
        with self.signals:  # before start-up: a signal at any step stops the run cleanly
            return self._run()

    def _run(self) -> RunSummary:
        cfg = self.cfg
        cfg.check()
        loaded = load_protocol(cfg.protocol_path)  # bad input fails here, before any file is written
        methods = loaded.protocol.methods if cfg.method == "all" else [cfg.method]
        if cfg.method != "all" and cfg.method not in loaded.protocol.methods:
            raise BenchbotError(f"method '{cfg.method}' is not in protocol {loaded.path.name}",
                                f"use one of: all, {', '.join(loaded.protocol.methods)}")
        from benchbot.detectors import check_methods

        check_methods(loaded.protocol.methods, str(loaded.path))
        if cfg.outcomes_csv is not None:
            from benchbot.harness.operator import ScriptedOperator

            self.operator = ScriptedOperator.from_csv(cfg.outcomes_csv)
        summary = RunSummary(run_id=None)
        with ExitStack() as stack:
            try:
                try:
                    session = self._start(stack, loaded, set(methods), summary)
                    self._loop(session, loaded, summary)
                except (Interrupted, KeyboardInterrupt):
                    summary.interrupted = True
                self.signals.winding_down = True
                self._wind_down(summary)
            finally:
                self.signals.winding_down = True  # closing devices, database and lock is never cut short
        return summary

    def _start(self, stack: ExitStack, loaded: LoadedProtocol, methods: set[str], summary: RunSummary) -> _Session:
        self.signals.check()
        stack.enter_context(RunLock(self.cfg.db_path))
        store = stack.enter_context(Store(self.cfg.db_path)) if self.cfg.db_path.exists() else None
        run = find_run(store, loaded, self.cfg)
        self.cfg = cfg = settings_of(self.cfg, run, loaded)
        schedule = make_schedule(loaded, cfg.seed) if run is None else store.trials(run.run_id, pending_only=True)
        pending = sorted((t for t in schedule if t.method in methods), key=lambda t: t.seq)
        detectors, summary.unavailable = self._detectors({t.method for t in pending})
        todo = [t for t in pending if t.method in detectors][:cfg.max_trials]
        self._check_outcomes(todo)
        workcell = self.workcell_factory(cfg.backend, loaded, cfg)  # checks its config, connects nothing
        stack.callback(workcell.close)
        run_id = run.run_id if run else self._claim_run_folder(stack, loaded)
        self.signals.check()
        stack.enter_context(workcell)  # connect the devices: the run goes ahead
        self.signals.check()
        if store is None:
            store = stack.enter_context(Store(cfg.db_path))
        if run is None:
            self._create_run(store, loaded, schedule, workcell, run_id)
            self.console.print(f"[bold]new run {escape(run_id)}[/]")
        else:
            removed = artifacts.remove_unreferenced(cfg.results_dir, run_id, store.unreferenced_files(run_id))
            self.console.print(f"[bold]resuming run {escape(run_id)}[/] ({len(removed)} file(s) of an interrupted "
                               "attempt removed)")
        summary.run_id, summary.resumed, self._store = run_id, run is not None, store
        store.record_event(run_id, "resumed" if run else "started", f"backend {cfg.backend}")
        for m, why in summary.unavailable.items():
            self.console.print(f"[yellow]method {escape(m)} unavailable, its trials stay pending:[/] {escape(why)}")
            store.record_event(run_id, "method_unavailable", why, method=m)
        try:
            evaluator = self._evaluator(loaded)
        except BenchbotError as e:
            self.console.print("[yellow]robustness evaluator unavailable (q stored as NULL):[/] "
                               + escape(e.one_line()))
            store.record_event(run_id, "evaluator_unavailable", e.one_line())
            evaluator = None
        if evaluator is not None and hasattr(evaluator, "describe"):  # scale factor, table distance
            store.record_event(run_id, "evaluator", json.dumps(evaluator.describe(), default=str))
        self._n_trials = len(store.trials(run_id))
        self._emit("run", run_id=run_id, backend=cfg.backend, protocol=loaded.protocol.name, resumed=run is not None,
                   outcome_source=self._outcome_source(), n_trials=self._n_trials, todo=len(todo),
                   pending=len(pending), needs_go=self._needs_go(workcell), db=str(cfg.db_path),
                   results_dir=str(cfg.results_dir))
        return _Session(store, workcell, run_id, todo, detectors, evaluator)

    def _wind_down(self, summary: RunSummary) -> None:
        if summary.run_id is None:
            if summary.interrupted:
                self.console.print("[bold yellow]stopped before the run started:[/] nothing was written")
            return
        store, run_id = self._store, summary.run_id
        if summary.interrupted:
            store.record_event(run_id, "interrupted", "stopped by a signal or the operator")
            self.console.print("[bold yellow]stopped:[/] every committed attempt is kept; an attempt cut short "
                               f"was dropped. Resume with: benchbot run --resume (run {escape(run_id)})")
        remaining = store.trials(run_id, pending_only=True)
        summary.pending = len(remaining)
        if not remaining:
            store.set_run_status(run_id, "finished")
        self._emit("finished", run_id=run_id, interrupted=summary.interrupted, pending=summary.pending,
                   finals=summary.finals, aborted=summary.aborted, voided=summary.voided)

    def _needs_go(self, workcell: Workcell) -> bool:
        """The operator confirms each planned grasp before motion where an operator judges (hardware)."""
        return self.operator is not None and workcell.backend == "hardware"

    # ---- set-up -------------------------------------------------------------------------------
    def _claim_run_folder(self, stack: ExitStack, loaded: LoadedProtocol) -> str:
        """A new run's id and its folder, released again if the run is not created after all."""
        run_id, folders = artifacts.claim_new_run(self.cfg.results_dir, self.cfg.run_id,
                                                  lambda: new_run_id(loaded.protocol_hash, datetime.now(timezone.utc)))
        self._created = False
        stack.callback(lambda: self._created or artifacts.release_folders(folders))
        return run_id

    def _create_run(self, store: Store, loaded: LoadedProtocol, schedule: list[TrialSpec], workcell: Workcell,
                    run_id: str) -> None:
        store.create_run(new_run_info(run_id, loaded, self.cfg, self._outcome_source(), workcell.describe), schedule)
        self._created = True

    def _check_outcomes(self, todo: list[TrialSpec]) -> None:
        """Scripted outcomes must cover every trial this session will run, before the first motion."""
        uncovered = getattr(self.operator, "uncovered", None)
        if self._outcome_source() != "scripted" or uncovered is None:
            return
        missing = uncovered([t.trial_id for t in todo])
        if missing:
            raise BenchbotError(f"{self.cfg.outcomes_csv}: no outcome for {len(missing)} trial(s) this run would "
                                f"execute, e.g. {missing[0]}", "add a line `trial_id,outcome` for each, or run fewer "
                                "trials (--method, --max-trials)")

    def _outcome_source(self) -> str:
        if self.cfg.backend == "replay":
            return "simulated"
        if self.cfg.backend == "mujoco":
            return "physics"
        return "scripted" if self.cfg.outcomes_csv else "operator"

    def _detectors(self, methods: set[str]) -> tuple[dict[str, Detector], dict[str, str]]:
        from benchbot.detectors import load_detector

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
        from benchbot.models.robustness import load_evaluator

        return load_evaluator(name, threshold=threshold)  # crop scale from each frame's table plane

    # ---- the loop ------------------------------------------------------------------------------
    def _loop(self, session: _Session, loaded: LoadedProtocol, summary: RunSummary) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        store, workcell = session.store, session.workcell
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=self.console, transient=False) as progress:
            self._progress = progress
            task = progress.add_task("trials", total=len(session.todo))
            for trial in session.todo:
                progress.update(task, description=escape(f"{trial.method:>11} {trial.object_id:<15} "
                                                         f"#{trial.trial_index}"))
                while True:  # redo loop: a voided attempt is kept and the trial re-run
                    self.signals.check()  # SIGTERM/first Ctrl-C: the attempt in progress finishes, then stop
                    with self.signals.interruptible():  # second Ctrl-C: drop the attempt, nothing half-written
                        rec = self._attempt(store, loaded, session.run_id, trial, session.detectors[trial.method],
                                            session.evaluator, workcell)
                        store.record_attempt(rec)
                    summary.recorded += 1
                    self._emit("attempt", **attempt_event(rec, trial))
                    if rec.status == "voided":
                        summary.voided += 1
                        continue
                    if rec.status == "aborted":
                        summary.aborted += 1
                    else:
                        summary.finals += 1
                    if rec.reason and rec.reason.startswith(("device fault", "safety gate")):
                        with self.signals.interruptible():
                            self._after_fault(rec, workcell)
                    break
                progress.advance(task)
        self._progress = None

    def _after_fault(self, rec: AttemptRecord, workcell: Workcell) -> None:
        """After a device fault or a refused motion: the operator decides on hardware; then the cell
        recovers, or the run stops with the remaining trials pending (never a cascade of aborts)."""
        self.console.print(f"[red]trial {escape(rec.trial_id)} ({rec.status}):[/] {escape(str(rec.reason))}")
        if self.operator is not None and self.cfg.backend == "hardware" and not self.cfg.assume_yes:
            with self._asking():
                go_on = self.operator.confirm("Fix the cause, then continue with the next trial?")
            if not go_on:
                raise Interrupted()
        try:
            workcell.recover()
        except Exception as e:
            self.console.print(f"[red]the workcell did not recover, stopping:[/] {escape(str(e))}")
            raise Interrupted() from None

    # ---- one attempt ---------------------------------------------------------------------------
    def _attempt(self, store: Store, loaded: LoadedProtocol, run_id: str, trial: TrialSpec, detector: Detector,
                 evaluator: RobustnessEvaluator | None, workcell: Workcell) -> AttemptRecord:
        from benchbot.perception.inpaint import inpaint_frame

        proto = loaded.protocol
        attempt_no = store.next_attempt_no(run_id, trial.trial_id)
        prefix = artifacts.attempt_prefix(run_id, trial.seq, trial.trial_id, attempt_no)
        started = utc_now()
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        arts: list[tuple[str, str]] = []
        placement = Placement(trial.placement_id, trial.object_id, trial.placement_seed)
        source = self._outcome_source()
        journal = partial(store.journal_file, run_id)  # each path committed before its file is created
        obj = loaded.objects[trial.object_id]
        self._emit("trial", run_id=run_id, trial_id=trial.trial_id, trial_no=trial.seq + 1, n_trials=self._n_trials,
                   method=trial.method, object_id=trial.object_id, object_name=obj.name,
                   trial_index=trial.trial_index, attempt_no=attempt_no, instruction=proto.operator.placement)

        def finish(status: str, detection: DetectionRecord | None, outcome: OutcomeRecord | None,
                   reason: str | None = None) -> AttemptRecord:
            timings["total"] = time.perf_counter() - t_start
            return AttemptRecord(run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no, status=status,
                                 started_at=started, finished_at=utc_now(), detection=detection, outcome=outcome,
                                 artifacts=arts, timings=timings, reason=reason)

        try:
            if self.operator is not None and workcell.backend == "hardware":
                self.operator.instruct(f"trial {trial.seq + 1}: place the {obj.name} — {proto.operator.placement}")
                with self._asking():
                    placed = self.operator.confirm("Object placed and hands clear?")
                if not placed:
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
            arts.append(("raw_depth", artifacts.save_array(
                self.cfg.results_dir, prefix.with_name(prefix.name + "_raw.npy"), frame.depth_m, journal)))
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
            self._emit("detected", run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no, detected_at=t_grasp,
                       grasp=grasp.to_dict() if error is None else None, error=error, depth_m=clean.depth_m)
            arts.append(("inpainted_depth", artifacts.save_array(
                self.cfg.results_dir, prefix.with_name(prefix.name + "_inpainted.npy"), clean.depth_m, journal)))
            q, perception = None, perception_record(seen, workcell.workspace)
            if error is None and evaluator is not None:
                t0 = time.perf_counter()
                from benchbot.models.robustness import robustness_of  # torch: imported when a q is due

                q, why = robustness_of(evaluator, seen, grasp)
                timings["robust"] = time.perf_counter() - t0
                if why:
                    perception["q_null_reason"] = why
            overlay = None
            if self.cfg.save_overlays:
                overlay = self._overlay(prefix, clean, grasp if error is None else None, q,
                                        f"{trial.method} {trial.trial_id}", journal)
                arts.append(("overlay", overlay))
            detection = self._detection_record(trial, grasp if error is None else None, q, evaluator, timings, error)
            detection.perception = perception
            self._emit("plan", run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no,
                       grasp=grasp.to_dict() if error is None else None, q=q, threshold=detection.robust_threshold,
                       timings_s=dict(timings), overlay=overlay, error=error, detected_at=t_grasp)
            if error is not None:
                return finish("final", detection, OutcomeRecord(source, False, "no grasp", error), error)
            plane = seen.meta.get(TABLE_KEY)  # approach perpendicular to the table when it is known
            grasp_cam = grasp_to_camera(grasp, clean.intrinsics, None if plane is None else plane.normal)
            grasp_base = grasp_in_base(grasp_cam, workcell.t_base_camera)
            detection.grasp_pose = {"center_m": grasp_base.center_m.tolist(),
                                    "approach": grasp_base.approach.tolist(),
                                    "jaw_axis": grasp_base.jaw_axis.tolist(), "width_m": grasp_base.width_m}
            if self._needs_go(workcell):  # nothing moves until the operator has seen the grasp and said go
                plan = GraspPlan(run_id, trial.trial_id, trial.seq + 1, self._n_trials, trial.method, obj.name,
                                 attempt_no, grasp, q, detection.robust_threshold, dict(timings),
                                 str(self.cfg.results_dir / overlay) if overlay else None)
                decision = self._review(plan)
                if decision == "abort":
                    raise Interrupted()
                if decision == "skip":
                    return finish("voided", detection, OutcomeRecord(source, None, None, "skipped before motion"),
                                  "skipped before motion by the operator")
            prepare = getattr(workcell.stage, "prepare", None)
            if prepare is not None:
                prepare(clean, grasp, proto.gripper.opening_m)
            self._emit("executing", run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no)
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
        with self._asking():
            return self.operator.judge(f"{trial.method} on {trial.object_id} #{trial.trial_index}: grasp at "
                                       f"({grasp.row:.0f}, {grasp.col:.0f}) θ={np.degrees(grasp.angle_rad):.0f}° "
                                       f"q={qtxt}")

    def _review(self, plan: GraspPlan) -> str:
        """go | skip | abort from the operator for a planned grasp (operators without `review`: confirm)."""
        assert self.operator is not None
        with self._asking():
            review = getattr(self.operator, "review", None)
            if review is not None:
                answer = review(plan)
            else:
                answer = "go" if self.operator.confirm(f"Execute {plan.summary()}?") else "abort"
        if answer not in ("go", "skip", "abort"):
            raise BenchbotError(f"operator answered '{answer}' to the planned grasp", "answer go, skip or abort")
        return answer

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

    def _overlay(self, prefix: Path, frame: DepthFrame, grasp: Grasp | None, q: float | None, label: str,
                 journal: Callable[[str], None]) -> str:
        from benchbot.perception.overlay import draw_grasp

        image = draw_grasp(frame.depth_m, grasp, q, label)
        return artifacts.save_png(self.cfg.results_dir, prefix.with_name(prefix.name + "_overlay.png"), image, journal)

    def _safe_stop(self, workcell: Workcell) -> None:
        try:
            workcell.safe_state()
        except Exception as e:  # the fault itself may have taken the device down
            self.console.print(f"[red]could not bring the arm to a safe state:[/] {escape(str(e))}")

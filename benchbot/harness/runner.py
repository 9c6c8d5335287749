"""The trial loop: schedule (stored once) → place → capture → inpaint → table plane + workspace mask
(`perception.workspace.prepare_frame`: what detectors and the evaluator see) → detect → robustness →
safety gate → execute → judge → one transaction per attempt. Resumable after any kill.

Lifecycle, in one ExitStack: check every input → take the run lock → check the inputs that depend
on the database (a resumed run's settings, the scripted outcomes) → connect the devices → create or
resume the run → trials → wind down (record a stop, close devices, database, lock). Nothing touches
a device before the run is sure to go ahead."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape

from benchbot.config.protocol import LoadedProtocol, load_protocol
from benchbot.config.schedule import TrialSpec, make_schedule
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Detector, Operator, RobustnessEvaluator, as_operator
from benchbot.core.logs import SHOWN, RunLog
from benchbot.harness import artifacts
from benchbot.harness.attempt import AttemptSteps, validate_grasp
from benchbot.harness.config import RunConfig, find_run, new_run_info, settings_of
from benchbot.harness.events import Observer, attempt_event, emit, progress_paused
from benchbot.harness.lock import RunLock
from benchbot.harness.signals import Interrupted, StopSignals
from benchbot.harness.workcell import Workcell, build_workcell
from benchbot.results.store import AttemptRecord, Store, new_run_id

__all__ = ["RunConfig", "RunSummary", "Runner", "Interrupted", "validate_grasp"]
log = logging.getLogger(__name__)


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


class Runner(AttemptSteps):
    """Runs (or resumes) one benchmark run. Library entry point: `Runner(cfg).run()`."""

    def __init__(self, cfg: RunConfig, *, operator: Operator | None = None, console: Console | None = None,
                 workcell_factory: Callable[..., Workcell] = build_workcell,
                 observers: Sequence[Observer] = ()) -> None:
        self.cfg = cfg
        self.console = console or Console(stderr=True)
        self.operator: Operator | None = as_operator(operator) if operator is not None else None
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
        run_log = stack.enter_context(RunLog())  # held until the run's folder is sure, closed last
        lock = stack.enter_context(RunLock(self.cfg.db_path))
        store = stack.enter_context(Store(self.cfg.db_path)) if self.cfg.db_path.exists() else None
        run = find_run(store, loaded, self.cfg)
        self.cfg = cfg = settings_of(self.cfg, run, loaded)
        if run is None:
            schedule = make_schedule(loaded, cfg.seed)
        else:
            assert store is not None  # find_run found the run in it
            schedule = store.trials(run.run_id, pending_only=True)
        pending = sorted((t for t in schedule if t.method in methods), key=lambda t: t.seq)
        detectors, summary.unavailable = self._detectors({t.method for t in pending})
        todo = [t for t in pending if t.method in detectors][:cfg.max_trials]
        self._check_outcomes(todo)
        workcell = self.workcell_factory(cfg.backend, loaded, cfg)  # checks its config, connects nothing
        workcell.lock = lock  # held already; the cell keeps it until its devices are closed
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
            log.info("files of an interrupted attempt removed: %s", removed or "none")
            self.console.print(f"[bold]resuming run {escape(run_id)}[/] ({len(removed)} file(s) of an interrupted "
                               "attempt removed)")
        summary.run_id, summary.resumed, self._store = run_id, run is not None, store
        self._open_log(run_log, run_id)
        log.info("%s run %s: backend %s, protocol %s (hash %s), %d trial(s) to run now", "resuming" if run else "new",
                 run_id, cfg.backend, loaded.path, loaded.protocol_hash, len(todo))
        store.record_event(run_id, "resumed" if run else "started", f"backend {cfg.backend}")
        for m, why in summary.unavailable.items():
            self.console.print(f"[yellow]method {escape(m)} unavailable, its trials stay pending:[/] {escape(why)}")
            log.warning("method %s unavailable, its trials stay pending: %s", m, why, extra=SHOWN)
            store.record_event(run_id, "method_unavailable", why, method=m)
        try:
            evaluator = self._evaluator(loaded)
        except BenchbotError as e:
            self.console.print("[yellow]robustness evaluator unavailable (q stored as NULL):[/] "
                               + escape(e.one_line()))
            store.record_event(run_id, "evaluator_unavailable", e.one_line())
            log.warning("robustness evaluator unavailable (q stored as NULL): %s", e.one_line(), extra=SHOWN)
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
            log.warning("run %s stopped by a signal or the operator", run_id, extra=SHOWN)
            self.console.print("[bold yellow]stopped:[/] every committed attempt is kept; an attempt cut short "
                               f"was dropped. Resume with: benchbot run --resume (run {escape(run_id)})")
        remaining = store.trials(run_id, pending_only=True)
        summary.pending = len(remaining)
        if not remaining:
            store.set_run_status(run_id, "finished")
        log.info("run %s: %d judged, %d aborted, %d voided this session; %d trial(s) pending", run_id,
                 summary.finals, summary.aborted, summary.voided, summary.pending)
        self._emit("finished", run_id=run_id, interrupted=summary.interrupted, pending=summary.pending,
                   finals=summary.finals, aborted=summary.aborted, voided=summary.voided)

    def _needs_go(self, workcell: Workcell) -> bool:
        """The operator confirms each planned grasp before motion where an operator judges (hardware)."""
        return self.operator is not None and workcell.backend == "hardware"

    # ---- set-up -------------------------------------------------------------------------------
    def _open_log(self, run_log: RunLog, run_id: str) -> None:
        """Write the run's log to results/<run>/run.log from now on (appended on resume)."""
        run_dir = self.cfg.results_dir / run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=True)  # a resumed run's folder may be gone
            run_log.open(run_dir)
        except OSError as e:
            self.console.print(f"[yellow]no run log:[/] {escape(str(e))}")

    def _claim_run_folder(self, stack: ExitStack, loaded: LoadedProtocol) -> str:
        """A new run's id and its folder, released again if the run is not created after all."""
        run_id, folders = artifacts.claim_new_run(self.cfg.results_dir, self.cfg.run_id,
                                                  lambda: new_run_id(loaded.protocol_hash, datetime.now(UTC)))
        self._created = False

        def release_unless_created() -> None:
            if not self._created:
                artifacts.release_folders(folders)

        stack.callback(release_unless_created)
        return run_id

    def _create_run(self, store: Store, loaded: LoadedProtocol, schedule: list[TrialSpec], workcell: Workcell,
                    run_id: str) -> None:
        store.create_run(new_run_info(run_id, loaded, self.cfg, self._outcome_source(), workcell.describe), schedule)
        self._created = True

    def _check_outcomes(self, todo: list[TrialSpec]) -> None:
        """Scripted outcomes must cover every trial this session will run, before the first motion."""
        if self._outcome_source() != "scripted" or self.operator is None:
            return
        missing = self.operator.uncovered([t.trial_id for t in todo])
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
            log.error("the workcell did not recover, stopping: %s", e, extra=SHOWN)
            raise Interrupted() from None

"""One attempt of a trial (capture → inpaint → table plane + workspace mask → detect → robustness →
safety gate → execute → judge): the steps between the object placed and the outcome recorded. Every
step's failure ends the attempt with a reason (device fault: aborted; unsafe grasp: a failure of
the detector), never half-written: an attempt cut short drops its files."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from benchbot.config.protocol import LoadedProtocol
from benchbot.config.schedule import TrialSpec
from benchbot.core.errors import BenchbotError, DeviceError, UnsafeMotionError
from benchbot.core.interfaces import Detector, GraspPlan, Judgement, Operator, RobustnessEvaluator
from benchbot.core.logs import SHOWN
from benchbot.core.types import DepthFrame, Grasp, Placement
from benchbot.harness import artifacts
from benchbot.harness.config import RunConfig
from benchbot.harness.primitive import grasp_in_base
from benchbot.harness.signals import Interrupted
from benchbot.harness.workcell import Workcell, connected
from benchbot.perception.geometry import grasp_to_camera
from benchbot.perception.table import META_KEY as TABLE_KEY
from benchbot.perception.workspace import perception_record, prepare_frame
from benchbot.results.store import AttemptRecord, DetectionRecord, OutcomeRecord, Store, utc_now

log = logging.getLogger(__name__)


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




class AttemptSteps:
    """One attempt of a trial, for the `Runner` (which provides the attributes below): place →
    capture → inpaint → detect → robustness → (operator's go) → execute → judge → release."""

    cfg: RunConfig
    console: Console
    operator: Operator | None
    _n_trials: int

    if TYPE_CHECKING:  # provided by the Runner
        def _emit(self, kind: str, **data: Any) -> None: ...

        def _asking(self) -> Any: ...

        def _outcome_source(self) -> str: ...

        def _needs_go(self, workcell: Workcell) -> bool: ...

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
            fault = bool(reason and reason.startswith(("device fault", "safety gate")))  # _after_fault prints it
            log.log(logging.WARNING if fault else logging.INFO, "trial %s attempt %d: %s%s; timings %s",
                    trial.trial_id, attempt_no, status, f" ({reason})" if reason else "",
                    {k: round(v, 4) for k, v in timings.items()}, extra=SHOWN if fault else None)
            return AttemptRecord(run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no, status=status,
                                 started_at=started, finished_at=utc_now(), detection=detection, outcome=outcome,
                                 artifacts=arts, timings=timings, reason=reason)

        log.info("trial %s attempt %d: %s on %s #%d", trial.trial_id, attempt_no, trial.method, trial.object_id,
                 trial.trial_index)
        try:
            if self.operator is not None and workcell.backend == "hardware":
                self.operator.instruct(f"trial {trial.seq + 1}: place the {obj.name} — {proto.operator.placement}")
                with self._asking():
                    placed = self.operator.confirm("Object placed and hands clear?")
                if not placed:
                    raise Interrupted()
            t0 = time.perf_counter()
            stage = connected(workcell.stage, "stage")
            stage.place(placement)
            timings["place"] = time.perf_counter() - t0
            frame = connected(workcell.camera, "camera").capture()
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
            valid = grasp if error is None else None  # the grasp, when it can be executed
            self._emit("detected", run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no, detected_at=t_grasp,
                       grasp=valid.to_dict() if valid is not None else None, error=error, depth_m=clean.depth_m)
            arts.append(("inpainted_depth", artifacts.save_array(
                self.cfg.results_dir, prefix.with_name(prefix.name + "_inpainted.npy"), clean.depth_m, journal)))
            q, perception = None, perception_record(seen, workcell.workspace)
            if valid is not None and evaluator is not None:
                t0 = time.perf_counter()
                from benchbot.models.robustness import robustness_of  # torch: imported when a q is due

                q, why = robustness_of(evaluator, seen, valid)
                timings["robust"] = time.perf_counter() - t0
                if why:
                    perception["q_null_reason"] = why
            overlay = None
            if self.cfg.save_overlays:
                overlay = self._overlay(prefix, clean, valid, q,
                                        f"{trial.method} {trial.trial_id}", journal)
                arts.append(("overlay", overlay))
            detection = self._detection_record(trial, valid, q, evaluator, timings, error)
            detection.perception = perception
            self._emit("plan", run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no,
                       grasp=valid.to_dict() if valid is not None else None, q=q, threshold=detection.robust_threshold,
                       timings_s=dict(timings), overlay=overlay, error=error, detected_at=t_grasp)
            if error is not None:
                return finish("final", detection, OutcomeRecord(source, False, "no grasp", error), error)
            assert valid is not None  # validate_grasp accepted it
            grasp = valid
            plane = seen.meta.get(TABLE_KEY)  # approach perpendicular to the table when it is known
            grasp_cam = grasp_to_camera(grasp, clean.intrinsics, None if plane is None else plane.normal)
            grasp_base = grasp_in_base(grasp_cam, connected(workcell.t_base_camera, "camera-to-base transform"))
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
            stage.prepare(clean, grasp, proto.gripper.opening_m)
            self._emit("executing", run_id=run_id, trial_id=trial.trial_id, attempt_no=attempt_no)
            t0 = time.perf_counter()
            execution = workcell.execute(grasp_base, proto)
            timings["execute"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            judgement = stage.judge(placement, execution)
            if judgement is None:
                judgement = self._ask_operator(trial, grasp, q)
            timings["judge"] = time.perf_counter() - t0
            workcell.release(proto)
            return self._from_judgement(judgement, detection, finish)
        except UnsafeMotionError as e:  # the detector's grasp cannot be executed safely: its failure,
            self._safe_stop(workcell)     # not an excuse to leave the trial out of the success rate
            return finish("final", locals().get("detection"),
                          OutcomeRecord(source, False, "unsafe grasp", f"refused before execution: {e.one_line()}"),
                          f"safety gate: {e.one_line()}")
        except DeviceError as e:
            self._safe_stop(workcell)
            return finish("aborted", locals().get("detection"),
                          OutcomeRecord(source, None, "device fault", e.one_line()), f"device fault: {e.one_line()}")
        except BaseException as e:  # the attempt is dropped (disk full, second Ctrl-C, ...): so are its files
            artifacts.discard(self.cfg.results_dir, arts)
            log.warning("trial %s attempt %d dropped, nothing recorded: %s", trial.trial_id, attempt_no,
                        getattr(e, "message", None) or type(e).__name__, extra=SHOWN,
                        exc_info=not isinstance(e, (BenchbotError, KeyboardInterrupt, Interrupted)))  # a bug: traceback
            raise

    def _from_judgement(self, j: Judgement, detection: DetectionRecord,
                        finish: Callable[..., AttemptRecord]) -> AttemptRecord:
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
        self.operator.begin_trial(trial.trial_id)  # scripted operators answer per trial
        qtxt = "n/a" if q is None else f"{q:.3f}"
        with self._asking():
            return self.operator.judge(f"{trial.method} on {trial.object_id} #{trial.trial_index}: grasp at "
                                       f"({grasp.row:.0f}, {grasp.col:.0f}) θ={np.degrees(grasp.angle_rad):.0f}° "
                                       f"q={qtxt}")

    def _review(self, plan: GraspPlan) -> str:
        """go | skip | abort from the operator for a planned grasp (`Operator.review`)."""
        assert self.operator is not None
        with self._asking():
            answer = self.operator.review(plan)
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
                               q_robust=q, robust=None if q is None or threshold is None else bool(q >= threshold),
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
            log.error("could not bring the arm to a safe state: %s", e, extra=SHOWN)

"""What the console page shows, built from the runner's events, and the page's answers checked
against the open question before they reach the runner (the page as an answer source)."""
from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchbot.console.frames import frame_jpeg
from benchbot.console.mux import Offer, Question, answer_label
from benchbot.core.interfaces import REVIEW_ANSWERS, Judgement
from benchbot.harness.operator import FAILURE_CAUSES, KINDS, NOTE_MAX_CHARS, clean_note

RECENT_ATTEMPTS = 8
QUESTION_NAMES = {"confirm": "placement", "review": "planned grasp", "judge": "verdict"}


class Refused(Exception):
    """An answer from the page that is not recorded; `status` is the HTTP status, the message is shown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _num(x: Any, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), nd)


def parse_answer(kind: str, answer: Any) -> Any:
    """The runner's value for a page answer to a question of `kind`; Refused(400) when malformed.
    Page verdicts become the same Judgement a terminal verdict is (source `operator`)."""
    if not isinstance(answer, dict):
        raise Refused(400, "an answer must be a JSON object")
    if kind == "confirm":
        if answer.get("value") not in ("go", "abort"):
            raise Refused(400, "answer go or abort")
        return answer["value"] == "go"
    if kind == "review":
        if answer.get("value") not in REVIEW_ANSWERS:
            raise Refused(400, f"answer one of {', '.join(REVIEW_ANSWERS)}")
        return answer["value"]
    verdict, cause, note = answer.get("kind"), answer.get("cause"), answer.get("note")
    if verdict not in KINDS:
        raise Refused(400, f"verdict must be one of {', '.join(KINDS)}")
    if verdict == "failure" and cause not in FAILURE_CAUSES:
        raise Refused(400, f"a failure needs a cause: one of {', '.join(FAILURE_CAUSES)}")
    if verdict != "failure" and cause is not None:
        raise Refused(400, "only a failure has a cause")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MAX_CHARS):
        raise Refused(400, f"a note is text of at most {NOTE_MAX_CHARS} characters")
    return Judgement(verdict, "operator", cause, clean_note(note))


class ConsoleState:
    """Thread-safe model of the page. `publish(text)` gets the new JSON snapshot after each change;
    `table_source(run_id)` returns Table II rows and progress counts (called off the trial loop)."""

    name = "page"

    def __init__(self, publish: Callable[[str], None], table_source: Callable[[str], dict] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._publish = publish
        self._table_source = table_source
        self._clock = clock
        self._lock = threading.RLock()
        self.run: dict[str, Any] = {}
        self.trial: dict[str, Any] | None = None
        self.plan: dict[str, Any] | None = None
        self.phase = "waiting"
        self.question: Question | None = None
        self._offer: Offer | None = None
        self.last_answer: dict[str, Any] | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_ATTEMPTS)
        self.table: dict[str, Any] = {"rows": [], "done": 0, "total": 0}
        self.counts = {"recorded": 0, "finals": 0, "aborted": 0, "voided": 0}
        self.started_s: float | None = None
        self.finished: dict[str, Any] | None = None
        self.seen_ms: list[float] = []  # detector's answer → grasp drawn on a page, per plan shown
        self.images: dict[int, Path | bytes] = {}  # overlay PNGs on disk, depth frames (JPEG) in memory
        self._settled: dict[str, str] = {}  # qid → who answered what (for refusals)
        self._detected_at: dict[str, float] = {}
        self._results_dir: Path | None = None
        self._table_wanted = threading.Event()
        self._closing = False
        self._table_thread: threading.Thread | None = None

    # ---- runner events (observer) -------------------------------------------------------------
    def observe(self, kind: str, data: dict) -> None:
        if kind == "detected" and data.get("depth_m") is not None:
            # rendered here, before the runner goes on to q: in a thread it would wait for the CPU
            data = {**data, "jpeg": frame_jpeg(data["depth_m"])}
        with self._lock:
            getattr(self, f"_on_{kind}", lambda _d: None)(data)
            self._changed()

    def _on_run(self, d: dict) -> None:
        self.run = {k: d[k] for k in ("run_id", "backend", "protocol", "resumed", "outcome_source", "n_trials",
                                      "todo", "needs_go")}
        self._results_dir = Path(d["results_dir"])
        self.started_s = self._clock()
        self.phase = "starting"
        self._want_table()

    def _on_trial(self, d: dict) -> None:
        self.trial = {k: d[k] for k in ("trial_id", "trial_no", "n_trials", "method", "object_id", "object_name",
                                        "trial_index", "attempt_no", "instruction")}
        self.plan = None
        self.phase = "placing"

    def _on_detected(self, d: dict) -> None:
        """The detector answered: show the grasp now (q and the saved overlay follow in `plan`)."""
        g = d.get("grasp") or {}
        key = f"{d['trial_id']}#{d['attempt_no']}"
        self._detected_at[key] = d["detected_at"]
        self.plan = {"key": key, "trial_id": d["trial_id"], "attempt_no": d["attempt_no"], "error": d.get("error"),
                     "row": _num(g.get("row"), 1), "col": _num(g.get("col"), 1),
                     "angle_deg": _num(math.degrees(g["angle_rad"]), 1) if g.get("angle_rad") is not None else None,
                     "width_px": _num(g.get("width_px"), 1), "depth_m": _num(g.get("depth_m")),
                     "q": None, "threshold": None, "q_pending": True, "timings_ms": {}, "image": None}
        self.phase = "plan"
        if d.get("jpeg") is not None:
            self.plan["image"] = self._image(d["jpeg"])

    def _on_plan(self, d: dict) -> None:
        key = f"{d['trial_id']}#{d['attempt_no']}"
        if self.plan is None or self.plan["key"] != key:
            self._on_detected({**d, "depth_m": None})
            self.plan["image"] = self._image(d.get("overlay"))  # type: ignore[index]
        self.plan.update(q=_num(d.get("q")), threshold=_num(d.get("threshold")), q_pending=False,  # type: ignore[union-attr]
                         error=d.get("error"),
                         timings_ms={k: round(1000 * v, 1) for k, v in d.get("timings_s", {}).items()})

    def _on_executing(self, d: dict) -> None:
        self.phase = "executing"

    def _on_attempt(self, d: dict) -> None:
        self.counts["recorded"] += 1
        bucket = {"final": "finals", "aborted": "aborted", "voided": "voided"}.get(d["status"])
        if bucket:
            self.counts[bucket] += 1
        verdict = ("success" if d["success"] else "failure") if d["status"] == "final" else d["status"]
        self.recent.appendleft({"trial_id": d["trial_id"], "trial_no": d["trial_no"], "method": d["method"],
                                "object_id": d["object_id"], "attempt_no": d["attempt_no"], "status": d["status"],
                                "verdict": verdict, "cause": d.get("cause"), "note": d.get("note"),
                                "source": d.get("source"), "reason": d.get("reason"),
                                "image": self._image(d.get("overlay"))})
        self.phase = "recorded"
        self._want_table()

    def _on_finished(self, d: dict) -> None:
        self.finished = {k: d[k] for k in ("interrupted", "pending", "finals", "aborted", "voided")}
        self.phase = "stopped" if d["interrupted"] else "finished"
        self.question, self._offer = None, None
        self._want_table()

    def _image(self, image: str | bytes | None) -> int | None:
        """Register an image the page may fetch: a JPEG, or an artifact path (relative to the results)."""
        if not image or (isinstance(image, str) and self._results_dir is None):
            return None
        n = len(self.images) + 1
        self.images[n] = image if isinstance(image, bytes) else self._results_dir / image  # type: ignore[operator]
        return n

    # ---- questions (the page as an answer source) ---------------------------------------------
    def instruct(self, message: str) -> None:
        return None  # the page shows the trial's instruction from the trial event

    def post(self, question: Question, offer: Offer) -> None:
        with self._lock:
            self.question, self._offer = question, offer
            if question.kind == "judge":
                self.phase = "judging"
            self._changed()

    def settle(self, question: Question, answer: Any, by: str | None) -> None:
        with self._lock:
            label = "nobody (the run stopped)" if by is None else f"{by}: {answer_label(answer)}"
            self._settled[question.qid] = label
            self.last_answer = {"qid": question.qid, "kind": question.kind, "by": by, "label": answer_label(answer)}
            if self.question is not None and self.question.qid == question.qid:
                self.question, self._offer = None, None
            self._changed()

    def answer(self, payload: Any) -> str:
        """Record an answer from the page; returns what was recorded or raises Refused."""
        if not isinstance(payload, dict) or not isinstance(payload.get("qid"), str) \
                or not isinstance(payload.get("run_id"), str):
            raise Refused(400, "an answer names its run_id and qid")
        with self._lock:
            run_id, q, offer = self.run.get("run_id"), self.question, self._offer
            if payload["run_id"] != run_id:
                raise Refused(409, f"this page shows run {payload['run_id']}, but this console serves run {run_id}: "
                                   "nothing was recorded — reload the page")
            if self.finished is not None:
                raise Refused(409, f"run {run_id} has {self.phase}: nothing more can be recorded")
            if q is None or q.qid != payload["qid"]:
                who = self._settled.get(payload["qid"])
                raise Refused(409, f"that question was already answered (by {who}); nothing was recorded"
                              if who else "that question is not open any more; nothing was recorded")
        value = parse_answer(q.kind, payload.get("answer"))
        if offer is None or not offer(value, self.name):
            raise Refused(409, f"that question was just answered elsewhere ({self._settled.get(q.qid, 'terminal')}); "
                               "this answer was not used")
        return f"{q.trial_id or 'run'} {QUESTION_NAMES.get(q.kind, q.kind)}: {answer_label(value)}"

    def seen(self, key: Any) -> float | None:
        """The page has drawn the plan `key`: record detection → display latency (ms)."""
        with self._lock:
            t0 = self._detected_at.pop(key, None) if isinstance(key, str) else None
            if t0 is None:
                return None
            ms = 1000.0 * (self._clock() - t0)
            self.seen_ms.append(ms)
            self._changed()
            return ms

    # ---- Table II, off the trial loop ---------------------------------------------------------
    def _want_table(self) -> None:
        if self._table_source is None:
            return
        if self._table_thread is None:
            self._table_thread = threading.Thread(target=self._table_loop, name="console-table", daemon=True)
            self._table_thread.start()
        self._table_wanted.set()

    def _table_loop(self) -> None:
        while not self._closing:
            if not self._table_wanted.wait(0.2):
                continue
            self._table_wanted.clear()
            run_id = self.run.get("run_id")
            try:
                table = self._table_source(run_id) if run_id and self._table_source else None
            except Exception as e:  # the DB may be busy for a moment; the next attempt refreshes it
                table = {**self.table, "error": str(e)}
            if table is not None:
                with self._lock:
                    self.table = table
                    self._changed()

    def close(self) -> None:
        self._closing = True
        if self._table_thread is not None:
            self._table_thread.join(timeout=5.0)

    def refresh_table_now(self) -> None:
        """Compute Table II in the caller's thread (end of run: the last figures must be on the page)."""
        run_id = self.run.get("run_id")
        if run_id and self._table_source is not None:
            table = self._table_source(run_id)
            with self._lock:
                self.table = table
                self._changed()

    # ---- snapshot -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            q = self.question
            elapsed = None if self.started_s is None else self._clock() - self.started_s
            finals = self.counts["finals"]
            return {
                "run": self.run, "trial": self.trial, "plan": self.plan, "phase": self.phase,
                "question": None if q is None else {"qid": q.qid, "run_id": q.run_id, "kind": q.kind, "text": q.text,
                                                    "trial_id": q.trial_id},
                "last_answer": self.last_answer, "recent": list(self.recent), "table": self.table,
                "counts": dict(self.counts), "finished": self.finished,
                "elapsed_s": None if elapsed is None else round(elapsed, 1),
                "picks_per_hour": round(finals * 3600.0 / elapsed, 1) if elapsed and finals else None,
                "seen_ms": round(self.seen_ms[-1], 1) if self.seen_ms else None,
                "causes": list(FAILURE_CAUSES), "watch_only": not self.run.get("needs_go", False),
            }

    def _changed(self) -> None:
        self._publish(json.dumps(self.snapshot(), allow_nan=False))

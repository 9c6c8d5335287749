"""What the trial loop tells watchers (the console page) and how it makes room for questions."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from benchbot.config.schedule import TrialSpec
from benchbot.results.store import AttemptRecord

# An observer gets every run event as (kind, data): run, trial, detected (grasp + inpainted depth,
# before q and artifacts), plan (q, timings, overlay), executing, attempt (committed), finished.
# The console page is one; it only watches (answers go through the Operator).
Observer = Callable[[str, dict], None]


def emit(observers: Sequence[Observer], console: Console, kind: str, data: dict[str, Any]) -> None:
    for observe in observers:
        try:
            observe(kind, data)
        except Exception as e:  # a display must never stop a run
            console.print(f"[yellow]run observer failed on '{kind}':[/] {escape(str(e))}")


@contextmanager
def progress_paused(progress: Any) -> Iterator[None]:
    """Hide a live rich progress bar while the operator is asked: its redraws would hide the question."""
    live = getattr(progress, "live", None)
    if live is None or not live.is_started:
        yield
        return
    live.transient = True  # erase the bar now, draw it again below the answers
    progress.stop()
    try:
        yield
    finally:
        live.transient = False
        progress.start()


def attempt_event(rec: AttemptRecord, trial: TrialSpec) -> dict[str, Any]:
    """What observers learn about a recorded attempt (it is committed when they hear of it)."""
    o = rec.outcome
    return {"run_id": rec.run_id, "trial_id": rec.trial_id, "trial_no": trial.seq + 1, "method": trial.method,
            "object_id": trial.object_id, "attempt_no": rec.attempt_no, "status": rec.status,
            "success": None if o is None else o.success, "cause": None if o is None else o.cause,
            "note": None if o is None else o.note, "source": None if o is None else o.source, "reason": rec.reason,
            "overlay": next((p for k, p in rec.artifacts if k == "overlay"), None)}

"""The operator multiplexer: one Operator for the runner, fed by several answer sources (the
terminal, the console page). Every question goes to all of them; the first answer wins and the
others are told, so the terminal and the page always agree on what was answered."""
from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import GraspPlan, Judgement, Operator
from benchbot.harness.operator import ConsoleOperator

Offer = Callable[[Any, str], bool]  # (answer, source name) -> True when it was the first answer


@dataclass(frozen=True)
class Question:
    """One question to the operator. `qid` is unguessable and used once: an answer must name it and
    the run, so a page left open on an older question or another run cannot answer this one."""

    qid: str
    run_id: str
    kind: str  # confirm | review | judge
    text: str
    trial_id: str | None = None
    plan: GraspPlan | None = None


class AnswerSource(Protocol):
    name: str

    def instruct(self, message: str) -> None: ...

    def post(self, question: Question, offer: Offer) -> None:
        """Start asking; call offer(answer, self.name) when the operator answers here."""
        ...

    def settle(self, question: Question, answer: Any, by: str | None) -> None:
        """The question is closed (answered by `by`, or None when the run was interrupted)."""
        ...


def answer_label(answer: Any) -> str:
    """How an answer reads to a person (terminal line, page message)."""
    if isinstance(answer, Judgement):
        return " — ".join(x for x in (answer.kind, answer.cause, answer.note) if x)
    if isinstance(answer, bool):
        return "go" if answer else "abort"
    return str(answer)


class OperatorMux(Operator):
    """An Operator whose questions every source may answer; observes the run to tag questions."""

    def __init__(self, sources: list[AnswerSource], poll_s: float = 0.1) -> None:
        self.sources = sources
        self.poll_s = poll_s
        self.run_id = ""
        self.trial_id: str | None = None
        self._lock = threading.Lock()

    def observe(self, kind: str, data: dict) -> None:
        if kind == "run":
            self.run_id = data["run_id"]
        elif kind == "trial":
            self.trial_id = data["trial_id"]

    def instruct(self, message: str) -> None:
        for source in self.sources:
            source.instruct(message)

    def confirm(self, message: str) -> bool:
        return bool(self._ask("confirm", message))

    def review(self, plan: GraspPlan) -> str:
        return str(self._ask("review", plan.summary(), plan=plan))

    def judge(self, summary: str) -> Judgement:
        return self._ask("judge", summary)

    def _ask(self, kind: str, text: str, plan: GraspPlan | None = None) -> Any:
        q = Question(secrets.token_urlsafe(12), self.run_id, kind, text, self.trial_id, plan)
        settled = threading.Event()
        box: dict[str, Any] = {}

        def offer(answer: Any, by: str) -> bool:
            with self._lock:
                if settled.is_set():
                    return False
                box.update(answer=answer, by=by)
                settled.set()
                return True

        posted: list[AnswerSource] = []
        try:
            for source in self.sources:
                source.post(q, offer)
                posted.append(source)
            while not settled.wait(self.poll_s):  # Ctrl-C (KeyboardInterrupt) lands here
                pass
        finally:
            with self._lock:
                settled.set()  # a late answer is refused from now on
            for source in posted:
                source.settle(q, box.get("answer"), box.get("by"))
        return box["answer"]


class TerminalSource:
    """The terminal as an answer source: asks with ConsoleOperator in a thread it can cancel."""

    name = "terminal"

    def __init__(self, operator: ConsoleOperator) -> None:
        self.operator = operator
        self.closed = False  # the terminal's input ended: the page answers alone
        self._asking: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def instruct(self, message: str) -> None:
        self.operator.instruct(message)

    def post(self, question: Question, offer: Offer) -> None:
        if self.closed:
            if question.plan is not None:
                self.operator.show_plan(question.plan)
            return
        cancel = threading.Event()

        def ask() -> None:
            answer: bool | str | Judgement | None
            try:
                if question.kind == "confirm":
                    answer = self.operator.confirm(question.text, cancel)
                elif question.kind == "review":
                    assert question.plan is not None
                    answer = self.operator.review(question.plan, cancel)
                else:
                    answer = self.operator.judge(question.text, cancel)
            except BenchbotError:  # input ended (e.g. stdin is not a terminal)
                self.closed = True
                self.operator.announce("terminal input closed: answer on the console page")
                return
            if answer is not None and not offer(answer, self.name):
                self.operator.announce("already answered on the console page; this answer was not used")

        thread = threading.Thread(target=ask, name=f"terminal-{question.kind}", daemon=True)
        self._asking[question.qid] = (thread, cancel)
        thread.start()

    def settle(self, question: Question, answer: Any, by: str | None) -> None:
        thread, cancel = self._asking.pop(question.qid, (None, None))
        if cancel is None or thread is None:
            return
        cancel.set()
        thread.join(timeout=5.0)
        if by is not None and by != self.name:
            self.operator.announce(f"answered on the {by}: {answer_label(answer)}")

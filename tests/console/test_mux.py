"""The operator multiplexer and the page's answer checks, without a browser."""
import _thread
import os
import threading
import time

import pytest
from rich.console import Console

from benchbot.console.mux import OperatorMux, TerminalSource
from benchbot.console.state import ConsoleState, Refused, parse_answer
from benchbot.core.interfaces import Judgement
from benchbot.harness.operator import ConsoleOperator


def state_for(run_id="run-1"):
    published = []
    st = ConsoleState(published.append)
    st.observe("run", {"run_id": run_id, "backend": "hardware", "protocol": "p", "resumed": False,
                       "outcome_source": "operator", "n_trials": 2, "todo": 2, "needs_go": True,
                       "results_dir": "/nonexistent"})
    return st, published


def ask_in_thread(fn, *args):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("answer", fn(*args)), daemon=True)
    t.start()
    return t, box


def wait_question(st, kind, timeout_s=5.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        q = st.question
        if q is not None and q.kind == kind:
            return q
        time.sleep(0.01)
    raise AssertionError(f"no {kind} question")


def terminal_and_page(op):
    st, published = state_for()
    mux = OperatorMux([TerminalSource(op), st])
    mux.observe("run", {"run_id": "run-1"})
    return mux, st, published


@pytest.fixture
def terminal():
    r, w = os.pipe()
    console = Console(record=True, width=200)
    yield ConsoleOperator(console, stdin=r, preview=None), (lambda s: os.write(w, s.encode())), console
    os.close(w)
    os.close(r)


def test_the_page_answers_first_and_the_terminal_is_told(terminal):
    op, type_, console = terminal
    mux, st, _ = terminal_and_page(op)
    t, box = ask_in_thread(mux.judge, "centroid on soup-can #1")
    q = wait_question(st, "judge")
    assert q.run_id == "run-1" and len(q.qid) >= 16
    st.answer({"run_id": "run-1", "qid": q.qid, "answer": {"kind": "failure", "cause": "slipped", "note": " wet "}})
    t.join(5)
    assert box["answer"] == Judgement("failure", "operator", "slipped", "wet")
    assert st.question is None and st.last_answer["by"] == "page"
    time.sleep(0.1)
    assert "answered on the page: failure — slipped — wet" in console.export_text()
    type_("s\n\n")  # the terminal's next question is not confused by the cancelled one
    t, box = ask_in_thread(mux.judge, "next")
    t.join(5)
    assert box["answer"].kind == "success"


def test_the_terminal_answers_first_and_a_late_page_answer_is_refused(terminal):
    op, type_, console = terminal
    mux, st, published = terminal_and_page(op)
    t, box = ask_in_thread(mux.confirm, "Object placed and hands clear?")
    q = wait_question(st, "confirm")
    type_("a\n")
    t.join(5)
    assert box["answer"] is False
    assert '"by": "terminal"' in published[-1]  # the page learns who answered what
    with pytest.raises(Refused, match=r"already answered \(by terminal: abort\)") as e:
        st.answer({"run_id": "run-1", "qid": q.qid, "answer": {"value": "go"}})
    assert e.value.status == 409


def test_page_answers_are_refused_for_another_run_or_after_the_end():
    st, _ = state_for("run-2")
    mux = OperatorMux([st])
    mux.observe("run", {"run_id": "run-2"})
    t, box = ask_in_thread(mux.review, type("P", (), {"summary": lambda self: "plan"})())
    q = wait_question(st, "review")
    with pytest.raises(Refused, match="this page shows run run-1, but this console serves run run-2"):
        st.answer({"run_id": "run-1", "qid": q.qid, "answer": {"value": "go"}})
    with pytest.raises(Refused, match="not open any more"):
        st.answer({"run_id": "run-2", "qid": "guessed", "answer": {"value": "go"}})
    assert st.question is not None  # still open: nothing was recorded
    st.answer({"run_id": "run-2", "qid": q.qid, "answer": {"value": "skip"}})
    t.join(5)
    assert box["answer"] == "skip"
    st.observe("finished", {"interrupted": False, "pending": 0, "finals": 2, "aborted": 0, "voided": 0})
    with pytest.raises(Refused, match="run run-2 has finished"):
        st.answer({"run_id": "run-2", "qid": q.qid, "answer": {"value": "go"}})


@pytest.mark.parametrize("kind, answer, message", [
    ("confirm", {"value": "yes"}, "go or abort"),
    ("review", {"value": "GO"}, "one of go, skip, abort"),
    ("review", "go", "JSON object"),
    ("judge", {"kind": "great"}, "verdict must be one of"),
    ("judge", {"kind": "failure"}, "a failure needs a cause"),
    ("judge", {"kind": "failure", "cause": "gremlins"}, "a failure needs a cause"),
    ("judge", {"kind": "success", "cause": "slipped"}, "only a failure has a cause"),
    ("judge", {"kind": "success", "note": 3}, "a note is text"),
    ("judge", {"kind": "success", "note": "x" * 501}, "at most 500"),
])
def test_malformed_answers_are_refused(kind, answer, message):
    with pytest.raises(Refused, match=message) as e:
        parse_answer(kind, answer)
    assert e.value.status == 400


def test_page_verdicts_are_the_same_judgements_as_terminal_ones():
    assert parse_answer("judge", {"kind": "abort", "note": "battery low"}) == \
        Judgement("abort", "operator", None, "battery low")
    assert parse_answer("judge", {"kind": "redo", "cause": None, "note": ""}) == Judgement("redo", "operator")
    assert parse_answer("confirm", {"value": "abort"}) is False


def test_ctrl_c_while_waiting_closes_the_question_everywhere(terminal):
    op, type_, console = terminal
    mux, st, _ = terminal_and_page(op)
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        mux.confirm("Object placed and hands clear?")
    assert st.question is None and st.last_answer["by"] is None

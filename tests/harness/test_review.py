"""Go / skip / abort before motion on a hardware run (dry-run arm, gripper emulator, replay camera),
and the terminal operator's questions (keys piped in through a real file descriptor)."""
import os
import threading
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from benchbot.core.interfaces import GraspPlan, Judgement
from benchbot.core.types import Grasp
from benchbot.harness.operator import ConsoleOperator, ScriptedOperator, clean_note
from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.terminal import LineReader, detect_preview, inline_image, sixel
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]


def rehearsal(tmp: Path, objects=("soup-can", "banana")) -> RunConfig:
    data = yaml.safe_load((REPO / "protocols" / "baselines.yaml").read_text())
    data.update(objects=list(objects), methods=["centroid"], trials_per_object=1,
                objects_file=str(REPO / "objects.yaml"))
    data["motion"]["hold_s"] = 0.0
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    (tmp / "hw.yaml").write_text(yaml.safe_dump({"robot": {"kind": "dryrun"}, "gripper": {"kind": "dryrun"},
                                                 "camera": {"kind": "replay"}}))
    return RunConfig(protocol_path=tmp / "p.yaml", db_path=tmp / "r.db", results_dir=tmp / "res", backend="hardware",
                     hardware=tmp / "hw.yaml", evaluator="none")


class Recording(ScriptedOperator):
    """Answers reviews from a list and notes how many arm commands were sent when each was asked."""

    def __init__(self, reviews, arm_log):
        super().__init__(default=Judgement("success", "operator"))
        self.reviews, self.arm_log, self.seen = list(reviews), arm_log, []

    def review(self, plan):
        self.seen.append((plan, [e["cmd"] for e in self.arm_log()]))
        return self.reviews.pop(0)


def run_with(cfg, make_operator):
    cells = []

    def factory(backend, loaded, c):
        cells.append(build_workcell(backend, loaded, c))
        return cells[-1]

    op = make_operator(lambda: cells[0].arm.arm.log)
    summary = Runner(cfg, operator=op, console=Console(quiet=True), workcell_factory=factory).run()
    return summary, op, cells[0]


def attempts(cfg):
    with Store(cfg.db_path, readonly=True) as store:
        return store.tables(store.latest_run_id())["attempts"]


def test_nothing_moves_before_go_and_skip_voids_the_attempt(tmp_path):
    cfg = rehearsal(tmp_path)
    summary, op, cell = run_with(cfg, lambda log: Recording(["skip", "go", "go"], log))
    assert summary.finals == 2 and summary.voided == 1 and summary.pending == 0
    first_plan, cmds_at_first = op.seen[0]
    assert "move_linear" not in cmds_at_first and "home" not in cmds_at_first  # only connect so far
    assert op.seen[1][1] == cmds_at_first  # the skipped grasp moved nothing
    assert "move_linear" in op.seen[2][1]  # the first Go did move the arm
    assert first_plan.trial_no == 1 and first_plan.n_trials == 2 and first_plan.object_name == "Tomato soup can"
    assert Path(first_plan.overlay).is_file() and first_plan.overlay.endswith("a1_overlay.png")
    a = attempts(cfg)
    assert list(a["status"]) == ["voided", "final", "final"]
    assert a["reason"].iloc[0] == "skipped before motion by the operator"
    assert a["outcome_source"].iloc[0] == "operator" and a["detect_s"].notna().all()


def test_abort_before_motion_stops_the_run_with_the_trial_pending(tmp_path):
    cfg = rehearsal(tmp_path)
    summary, op, cell = run_with(cfg, lambda log: Recording(["abort"], log))
    assert summary.interrupted and summary.pending == 2 and summary.recorded == 0
    assert not [e for e in cell.arm.arm.log if e["cmd"] in ("move_linear", "home")]
    assert not list((tmp_path / "res").rglob("*.png"))  # the dropped attempt's files are gone


def test_an_operator_without_review_is_asked_to_confirm(tmp_path):
    cfg = rehearsal(tmp_path, objects=("soup-can",))
    asked = []

    class Old:  # an Operator written before `review` existed
        def instruct(self, message):
            pass

        def confirm(self, message):
            asked.append(message)
            return True

        def judge(self, summary):
            return Judgement("failure", "operator", "missed")

    summary = Runner(cfg, operator=Old(), console=Console(quiet=True)).run()
    assert summary.finals == 1
    assert asked[0] == "Object placed and hands clear?" and asked[1].startswith("Execute trial 1/1 centroid")


# ---- the terminal operator, fed through a pipe -------------------------------------------------

@pytest.fixture
def typed():
    r, w = os.pipe()
    yield lambda text: os.write(w, text.encode()), r
    os.close(w)
    os.close(r)


def operator(fd, **kw):
    console = Console(record=True, width=200, force_terminal=False)
    return ConsoleOperator(console, stdin=fd, preview=None, **kw), console


def test_questions_print_their_keys_and_ask_again_after_a_wrong_answer(typed):
    write, fd = typed
    op, console = operator(fd)
    write("maybe\n\na\n")
    assert op.confirm("Object placed and hands clear?") is True  # 'maybe' refused, then Enter = go
    assert op.confirm("Object placed and hands clear?") is False
    text = console.export_text()
    assert text.count("Object placed and hands clear? [Enter] go · [a] abort the run") == 3
    assert "'maybe' is not an answer here: type one of g, y, a, n (or Enter)" in text
    write("f\n\n  a note\twith tab  \n")
    j = op.judge("centroid on soup-can #1")
    assert j == Judgement("failure", "operator", "other", "a note with tab")
    write("r\nobject moved\n")
    assert op.judge("x") == Judgement("redo", "operator", None, "object moved")


def test_review_shows_the_plan_and_its_overlay_path(typed, tmp_path):
    write, fd = typed
    op, console = operator(fd)
    plan = GraspPlan("run", "soup-can/1/centroid", 3, 180, "centroid", "Tomato soup can", 1,
                     Grasp(10, 20, 0.5, 30, 0.6), 0.61, 0.5, {"detect": 0.012}, str(tmp_path / "a1_overlay.png"))
    write("s\n")
    assert op.review(plan) == "skip"
    text = console.export_text()
    assert "trial 3/180 centroid on Tomato soup can: grasp at (10, 20) θ=29° width 30 px depth 0.600 m q=0.610" in text
    assert f"overlay: {tmp_path / 'a1_overlay.png'}" in text and "detect 12 ms" in text
    write("\n")
    assert op.review(plan) == "go"
    assert ConsoleOperator(Console(quiet=True), assume_yes=True, stdin=fd).review(plan) == "go"


def test_a_question_answered_elsewhere_is_cancelled_and_its_typing_dropped(typed):
    write, fd = typed
    op, _ = operator(fd)
    cancel = threading.Event()
    result = []
    t = threading.Thread(target=lambda: result.append(op.judge("x", cancel)))
    t.start()
    cancel.set()
    t.join(5)
    assert result == [None]
    write("s\n\n")
    assert op.judge("y").kind == "success"  # the reader still works for the next question


def test_line_reader_keeps_lines_typed_ahead(typed):
    write, fd = typed
    reader = LineReader(fd)
    write("one\ntwo\nthr")
    assert reader.readline() == "one" and reader.readline() == "two"
    cancel = threading.Event()
    cancel.set()
    assert reader.readline(cancel) is None  # a half-typed line waits in vain: cancelled


def test_line_reader_end_of_input(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("last line without newline")
    with open(path, "rb") as f:
        reader = LineReader(f.fileno())
        assert reader.readline() == "last line without newline"
        with pytest.raises(EOFError):
            reader.readline()


def test_terminal_input_ending_is_one_clear_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    with open(path, "rb") as f:
        op = ConsoleOperator(Console(quiet=True), stdin=f.fileno(), preview=None)
        with pytest.raises(Exception, match="terminal input ended"):
            op.confirm("Object placed?")


def test_notes_are_one_printable_line_of_bounded_length():
    assert clean_note("  a\x1b[31m b\n c ") == "a [31m b c"
    assert clean_note("") is None and clean_note(None) is None
    assert len(clean_note("x" * 900)) == 500


def test_inline_preview_detection_and_sequences(tmp_path):
    from PIL import Image

    assert detect_preview({"TERM": "xterm-kitty"}) == "kitty"
    assert detect_preview({"TERM_PROGRAM": "iTerm.app"}) == "iterm"
    assert detect_preview({"TERM": "foot"}) == "sixel"
    assert detect_preview({"TERM": "xterm-256color"}) is None
    assert detect_preview({"TERM": "xterm-kitty"}, is_terminal=False) is None
    assert detect_preview({"TERM": "xterm-kitty", "BENCHBOT_PREVIEW": "off"}) is None
    assert detect_preview({"TERM": "dumb", "BENCHBOT_PREVIEW": "sixel"}, is_terminal=False) == "sixel"
    png = tmp_path / "o.png"
    Image.new("RGB", (640, 480), (10, 200, 30)).save(png)
    kitty = inline_image(png, "kitty")
    assert kitty.startswith("\x1b_Ga=T,f=100,m=") and kitty.rstrip("\n").endswith("\x1b\\")
    assert inline_image(png, "iterm").startswith("\x1b]1337;File=inline=1;")
    six = sixel(Image.new("RGB", (4, 7), (255, 0, 0)))
    assert six.startswith('\x1bPq"1;1;4;7') and six.endswith("\x1b\\") and six.count("-") == 2  # two 6-row bands

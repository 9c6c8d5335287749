"""A hardware rehearsal (dry-run arm, in-process gripper emulator, replay camera) answered by keys
in a real terminal (tmux): every question and its keys are on the screen when it is asked, the
planned grasp and its overlay path come before Go, and the answers land in the DB."""
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup.sh --test)")


class Tmux:
    def __init__(self, tmp: Path, command: str) -> None:
        self.base = ["tmux", "-L", f"benchbot-test-{tmp.name}", "-f", "/dev/null"]
        subprocess.run(self.base + ["new-session", "-d", "-s", "t", "-x", "120", "-y", "50", command], check=True)

    def screen(self, history: bool = False) -> str:
        extra = ["-S", "-"] if history else []
        return subprocess.run(self.base + ["capture-pane", "-p", "-J", "-t", "t"] + extra, capture_output=True,
                              text=True).stdout

    def wait(self, text: str, count: int = 1, timeout_s: float = 60.0, history: bool = False) -> str:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            screen = self.screen(history)
            if screen.count(text) >= count:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} (×{count}) never on screen; screen:\n{self.screen(True)}")

    def keys(self, *keys: str) -> None:
        subprocess.run(self.base + ["send-keys", "-t", "t", *keys], check=True)

    def close(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True)


@pytest.fixture
def rehearsal(tmp_path):
    data = yaml.safe_load((REPO / "protocols" / "baselines.yaml").read_text())
    data.update(objects=["soup-can", "banana"], methods=["centroid"], trials_per_object=1,
                objects_file=str(REPO / "objects.yaml"))
    data["motion"]["hold_s"] = 0.0
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump({"robot": {"kind": "dryrun"}, "gripper": {"kind": "dryrun"},
                                                      "camera": {"kind": "replay"}}))
    cmd = (f"cd {shlex.quote(str(tmp_path))} && env PYTHONPATH={shlex.quote(str(REPO))} BENCHBOT_PREVIEW=off "
           f"{shlex.quote(sys.executable)} -m benchbot.cli run --hardware hw.yaml -p p.yaml --db r.db --results res "
           "--no-robustness; echo EXIT:$?; sleep 120")
    tmux = Tmux(tmp_path, cmd)
    yield tmux, tmp_path
    tmux.close()


CONFIRM = "Object placed and hands clear? [Enter] go · [a] abort the run"
REVIEW = "Execute this grasp? [Enter/g] go · [s] skip (void it, nothing moves) · [a] abort the run"
OUTCOME = "Outcome? [s] success · [f] failure · [r] redo · [a] abort the trial"


def test_every_question_is_on_screen_when_asked(rehearsal):
    t, tmp = rehearsal
    asked: dict[str, int] = {}

    def ask(question: str) -> str:
        """Wait for the next time `question` is asked; it must be on the visible screen (not only in
        the scroll-back: the progress bar used to overwrite it)."""
        asked[question] = asked.get(question, 0) + 1
        t.wait(question, asked[question], history=True)
        return t.wait(question)

    screen = ask(CONFIRM)
    assert "place the Tomato soup can" in screen
    t.keys("Enter")
    screen = ask(REVIEW)
    assert "planned grasp trial 1/2 centroid on Tomato soup can" in screen
    overlay = next(line.split("overlay: ", 1)[1].strip() for line in screen.splitlines() if "overlay: " in line)
    assert overlay.endswith("_overlay.png") and (tmp / overlay).is_file()
    t.keys("s", "Enter")  # skip: voided, nothing moved, the trial is asked again
    ask(CONFIRM)
    t.keys("Enter")
    ask(REVIEW)
    t.keys("Enter")  # Enter = go
    ask(OUTCOME)
    t.keys("x", "Enter")
    t.wait("'x' is not an answer here: type one of s, f, r, a")
    ask(OUTCOME)  # asked again, keys included
    t.keys("f", "Enter")
    ask("Cause? [s] slipped · [m] missed · [c] collision · [d] dropped · [o] other (Enter = other)")
    t.keys("m", "Enter")
    ask("Note (optional, Enter = none):")
    t.keys("rolled off the jaw", "Enter")
    assert "place the Banana" in ask(CONFIRM)
    t.keys("Enter")
    ask(REVIEW)
    t.keys("g", "Enter")
    ask(OUTCOME)
    t.keys("s", "Enter")
    ask("Note (optional, Enter = none):")
    t.keys("Enter")
    t.wait("EXIT:0", history=True)
    with Store(tmp / "r.db", readonly=True) as store:
        att = store.tables(store.latest_run_id())["attempts"]
    rows = [tuple(None if pd.isna(v) else v for v in (r.trial_id, r.attempt_no, r.status, r.success, r.cause,
                                                       r.note, r.outcome_source)) for r in att.itertuples()]
    assert rows == [
        ("soup-can/1/centroid", 1, "voided", None, None, "skipped before motion", "operator"),
        ("soup-can/1/centroid", 2, "final", False, "missed", "rolled off the jaw", "operator"),
        ("banana/1/centroid", 1, "final", True, None, None, "operator"),
    ]

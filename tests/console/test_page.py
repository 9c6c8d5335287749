"""The console page in a real headless Chromium (Debian's), driving rehearsal runs: dry-run arm,
in-process Modbus gripper emulator, replay camera (and MuJoCo, watch-only).

BENCHBOT_SCREENSHOTS=docs/images makes the first test write the README's console_*.png."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from benchbot.bench.console import write_rehearsal
from benchbot.console.browser import PageDriver, Tap, launch, sync_playwright
from benchbot.console.session import console_session, discovery_path
from benchbot.harness.operator import ConsoleOperator
from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]
SHOTS = os.environ.get("BENCHBOT_SCREENSHOTS")

# One rehearsal of 10 trials, 12 attempts: (review, verdict, cause, note) per attempt, in schedule order.
SCRIPT = [("go", "success", None, None), ("go", "failure", "slipped", "rolled away"),
          ("skip", None, None, None), ("go", "success", None, None),
          ("go", "redo", None, "object moved"), ("go", "failure", "missed", None),
          ("go", "abort", None, "gripper cable caught"), ("go", "success", None, "clean lift"),
          ("go", "failure", "collision", None), ("go", "failure", "dropped", None),
          ("go", "failure", "other", "spun out"), ("go", "success", None, None)]


def taps(script):
    out = []
    for review, verdict, cause, note in script:
        out += [Tap("confirm", "go"), Tap("review", review)]
        if review == "go":
            out.append(Tap("judge", verdict, cause, note))
    return out


def keys(script):
    """The same answers typed in the terminal."""
    lines = []
    for review, verdict, cause, note in script:
        lines += ["", "g" if review == "go" else "s"]
        if review == "go":
            lines.append(verdict[0])
            if verdict == "failure":
                lines.append(cause[0])
            lines.append(note or "")
    return "".join(line + "\n" for line in lines)


def config(tmp: Path, name: str, trials: int = 10) -> RunConfig:
    protocol, hardware = write_rehearsal(tmp / "setup", trials)
    return RunConfig(protocol_path=protocol, db_path=tmp / name / "r.db", results_dir=tmp / name / "res",
                     backend="hardware", hardware=hardware)


class Cells:
    """Workcell factory that keeps the workcells, to read the dry-run arm's log."""

    def __init__(self):
        self.cells = []

    def __call__(self, backend, loaded, cfg):
        self.cells.append(build_workcell(backend, loaded, cfg))
        return self.cells[-1]

    def moves(self) -> int:
        return sum(e["cmd"] == "move_linear" for e in self.cells[-1].arm.arm.log) if self.cells else 0


def run_through_page(cfg, taps_, *, before_tap=None, after_all=None, port=0, cells=None, observers=()):
    cells = cells or Cells()
    with console_session(cfg.db_path, None, port=port) as session:
        driver = PageDriver(session.url, taps_, before_tap=before_tap, after_all=after_all)
        driver.start()
        try:
            summary = Runner(cfg, operator=session.operator, console=Console(quiet=True), workcell_factory=cells,
                             observers=[*session.observers, *observers]).run()
        finally:
            driver.run_active.clear()
            driver.release.set()
            driver.join(60)
    if driver.error is not None:
        raise driver.error
    return summary, session


def comparable(db: Path) -> dict[str, pd.DataFrame]:
    with Store(db, readonly=True) as store:
        t = store.tables(store.latest_run_id())
    drop = [c for c in t["attempts"] if c.endswith("_s") or c in ("attempt_id", "started_at", "finished_at")]
    return {"trials": t["trials"], "attempts": t["attempts"].drop(columns=drop)}


def test_page_answers_give_the_same_db_as_the_terminal_and_nothing_moves_before_go(tmp_path, browser):
    terminal_cfg = config(tmp_path, "terminal")
    r, w = os.pipe()
    os.write(w, keys(SCRIPT).encode())
    op = ConsoleOperator(Console(quiet=True), stdin=r, preview=None)
    by_terminal = Runner(terminal_cfg, operator=op, console=Console(quiet=True)).run()
    os.close(w)
    os.close(r)

    cells, seen = Cells(), []

    def before_tap(tap, page):
        if tap.kind == "review":  # the grasp is on the page; the arm waits for Go
            page.wait_for_selector("#plan-stage:not([hidden])")
            page.wait_for_function("() => !document.querySelector('#plan-facts').textContent.includes('computing')")
            moves = cells.moves()
            time.sleep(0.3)
            assert cells.moves() == moves, "the arm moved before Go"
        seen.append((tap, cells.moves()))
        shoot(page, tap, len(seen))

    def after_all(page):
        page.wait_for_selector('body[data-phase="finished"]', timeout=60000)
        page.wait_for_function("() => document.querySelectorAll('#thumbs figure').length === 8")
        shoot(page, None, 0)

    by_page, session = run_through_page(config(tmp_path, "page"), taps(SCRIPT), before_tap=before_tap,
                                        after_all=after_all, cells=cells)
    assert (by_page.finals, by_page.aborted, by_page.voided) == (by_terminal.finals, by_terminal.aborted,
                                                                by_terminal.voided) == (9, 1, 2)
    a, b = comparable(terminal_cfg.db_path), comparable(tmp_path / "page" / "r.db")
    pd.testing.assert_frame_equal(a["trials"], b["trials"])
    pd.testing.assert_frame_equal(a["attempts"], b["attempts"])
    assert set(b["attempts"]["outcome_source"]) == {"operator"}
    # nothing moved before the first Go; every Go moved the arm, the skip did not
    assert seen[1][0].kind == "review" and seen[1][1] == 0 and cells.cells[-1].arm.arm.log[0]["cmd"] == "connect"
    for (tap, moves), (_next, moves_next) in zip(seen, seen[1:], strict=False):
        if tap.kind == "review":
            assert (moves_next > moves) if tap.value == "go" else (moves_next == moves), tap
    assert len(session.state.seen_ms) == 12


def shoot(page, tap, n):
    """The README's screenshots (only when BENCHBOT_SCREENSHOTS names a folder)."""
    names = {1: "console_1_place", 2: "console_2_plan", 3: "console_3_verdict", 22: "console_4_progress"}
    name = "console_5_finished" if tap is None else names.get(n)
    if SHOTS and name:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_a_stale_page_cannot_write(tmp_path, browser):
    cfg = config(tmp_path, "stale", trials=3)
    steps: dict[str, threading.Event] = {k: threading.Event() for k in ("a_stopped", "a_checked", "b_ready")}
    urls: dict[str, str] = {}
    checks: list[str] = []
    failed: list[BaseException] = []
    cells = Cells()

    def qid(page):
        return page.evaluate("document.body.dataset.qid")

    def browse():
        try:
            with sync_playwright() as p:
                browser_ = launch(p)
                stale, active = browser_.new_page(), browser_.new_page()
                for page in (stale, active):
                    page.goto(urls["a"])
                    page.wait_for_selector('body[data-question="confirm"]')
                active.click('#ask-confirm button[data-answer="go"]')
                for page in (stale, active):
                    page.wait_for_selector('body[data-question="review"]')
                stale.evaluate("source.close()")  # a tablet gone to sleep with Go on its screen
                active.click('#ask-review button[data-answer="go"]')
                active.wait_for_selector('body[data-question="judge"]')
                active.click('#ask-judge .buttons button[data-kind="success"]')
                active.wait_for_selector('body[data-question="confirm"]')
                open_qid, moves = qid(active), cells.moves()
                stale.click('#ask-review button[data-answer="go"]')  # same run, question already answered
                stale.wait_for_selector(".msg.refused")
                checks.append(stale.inner_text("#msg"))
                time.sleep(0.3)
                assert qid(active) == open_qid and cells.moves() == moves  # the open question is untouched
                active.click('#ask-confirm button[data-answer="abort"]')  # stops run A
                steps["a_stopped"].wait(30)
                stale.click('#ask-review button[data-answer="go"]')  # run A's console is gone
                stale.wait_for_function("() => document.querySelector('#msg').textContent.includes('not reachable')")
                checks.append(stale.inner_text("#msg"))
                steps["a_checked"].set()
                steps["b_ready"].wait(60)  # run B resumes the run on the same port, with a new token
                stale.click('#ask-review button[data-answer="go"]')
                stale.wait_for_function("() => document.querySelector('#msg').textContent.includes('token')")
                checks.append(stale.inner_text("#msg"))
                fresh = browser_.new_page()
                fresh.goto(urls["b"])
                fresh.wait_for_selector('body[data-question="confirm"]')
                assert cells.moves() == 0  # run B's arm: nothing moved on a stale click
                fresh.screenshot(path=str(tmp_path / "b.png"))
                fresh.click('#ask-confirm button[data-answer="abort"]')
                browser_.close()
        except BaseException as e:  # noqa: BLE001
            failed.append(e)
            steps["a_checked"].set()

    thread = threading.Thread(target=browse, daemon=True)
    with console_session(cfg.db_path, None) as a:
        urls["a"] = a.url
        port = a.server.port
        thread.start()
        run_a = Runner(cfg, operator=a.operator, console=Console(quiet=True), observers=a.observers).run()
    steps["a_stopped"].set()
    steps["a_checked"].wait(60)
    assert not failed, failed
    cells = Cells()

    def ready(kind, data):
        if kind == "run":
            steps["b_ready"].set()

    with console_session(cfg.db_path, None, port=port) as b:
        urls["b"] = b.url
        run_b = Runner(cfg, operator=b.operator, console=Console(quiet=True), workcell_factory=cells,
                       observers=[*b.observers, ready]).run()
    thread.join(60)
    assert not failed, failed
    assert run_a.interrupted and run_b.interrupted and run_b.run_id == run_a.run_id
    assert checks[0].startswith("refused: that question was already answered (by page: go)")
    assert "not reachable" in checks[1] and "nothing was recorded" in checks[1]
    assert checks[2].startswith("refused: this page's token is not this console's")
    with Store(cfg.db_path, readonly=True) as store:
        att = store.tables(run_a.run_id)["attempts"]
    assert list(zip(att["attempt_no"], att["status"], att["success"], strict=True)) == [(1, "final", True)]


def test_mujoco_rehearsal_is_watch_only(tmp_path, browser):
    pytest.importorskip("mujoco")
    protocol, _ = write_rehearsal(tmp_path / "setup", 2)
    cfg = RunConfig(protocol_path=protocol, db_path=tmp_path / "r.db", results_dir=tmp_path / "res", backend="mujoco",
                    evaluator="none")
    texts = []

    def after_all(page):
        page.wait_for_selector('body[data-phase="finished"]', timeout=120000)
        page.wait_for_function("() => document.querySelectorAll('#thumbs figure').length === 2")
        texts.extend([page.inner_text("#mode"), page.inner_text("#ask-text"), page.inner_text("#thumbs")])

    with console_session(cfg.db_path, None) as session:
        def hold_until_the_page_is_open(kind, data):  # it must see the first plan
            end = time.monotonic() + 60
            while kind == "run" and not session.server.hub.clients and time.monotonic() < end:
                time.sleep(0.05)

        driver = PageDriver(session.url, [], after_all=after_all)
        driver.start()
        try:
            summary = Runner(cfg, console=Console(quiet=True),
                             observers=[hold_until_the_page_is_open, *session.observers]).run()
        finally:
            driver.run_active.clear()
        driver.done.wait(120)
        driver.release.set()
        driver.join(30)
    assert driver.error is None, driver.error
    assert summary.finals == 2
    assert texts[0] == "watch only — the backend judges" and texts[1].startswith("This run is over")
    assert texts[2].count("#") == 2 and session.state.last_answer is None  # nobody was asked anything
    assert len(session.state.seen_ms) == 2


def test_cli_run_with_console_answered_on_the_page(tmp_path, browser):
    protocol, hardware = write_rehearsal(tmp_path, 2)
    db = tmp_path / "r.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCHBOT_PREVIEW": "off"}
    cmd = [sys.executable, "-m", "benchbot.cli", "run", "--hardware", str(hardware), "-p", str(protocol), "--db",
           str(db), "--results", str(tmp_path / "res"), "--no-robustness", "--console", "--console-port", "0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        end = time.monotonic() + 60
        while not discovery_path(db).exists() and time.monotonic() < end:
            time.sleep(0.1)
        found = subprocess.run([sys.executable, "-m", "benchbot.cli", "console", "--db", str(db)],
                               capture_output=True, text=True, env=env, timeout=60)
        assert found.returncode == 0, found.stderr
        url = found.stdout.strip()
        assert url.startswith("http://127.0.0.1:") and "token=" in url and "(hardware)" in found.stderr
        driver = PageDriver(url, taps([("go", "success", None, None), ("go", "failure", "missed", "no contact")]))
        driver.run_active.clear()  # the run is another process: a failing page shows as a timeout here
        driver.start()
        out, err = proc.communicate(timeout=120)
        driver.release.set()
        driver.join(30)
    finally:
        proc.kill()
    assert driver.error is None, driver.error
    assert proc.returncode == 0, err
    assert f"console: {url}" in err and "terminal input closed: answer on the console page" in err
    assert not discovery_path(db).exists()
    with Store(db, readonly=True) as store:
        att = store.tables(store.latest_run_id())["attempts"]
    assert list(att["success"]) == [True, False] and list(att["note"])[1] == "no contact"
    gone = subprocess.run([sys.executable, "-m", "benchbot.cli", "console", "--db", str(db)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert gone.returncode == 2 and gone.stderr.startswith(f"error: no run with a console is running on {db}")

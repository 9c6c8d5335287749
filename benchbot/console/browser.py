"""A headless Chromium that answers the console page like an operator would (taps its buttons),
for the latency benchmark and the tests. Needs playwright (test extra) and Debian's chromium."""
from __future__ import annotations

import _thread
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from benchbot.core.errors import BenchbotError

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TABLET_VIEWPORT = {"width": 1180, "height": 820}  # a 10-11" tablet in landscape, CSS pixels


def chromium_path() -> str:
    path = os.environ.get("BENCHBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise BenchbotError("no chromium browser found", "apt-get install -y chromium (or set BENCHBOT_CHROMIUM)")
    return path


def launch(playwright: Any) -> Any:
    """Debian's chromium through playwright (playwright's own browser downloads are not used)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        raise BenchbotError("the 'playwright' package is not installed", "pip install 'benchbot[test]'") from None
    return start()


@dataclass(frozen=True)
class Tap:
    """One operator answer on the page: kind is the question (confirm | review | judge); value is
    go/abort (confirm), go/skip/abort (review) or success/failure/redo/abort (judge)."""

    kind: str
    value: str
    cause: str | None = None
    note: str | None = None

    @property
    def selector(self) -> str:
        if self.kind == "judge":
            if self.value == "failure":
                return f'#causes button[data-cause="{self.cause}"]'
            return f'#ask-judge .buttons button[data-kind="{self.value}"]'
        return f'#ask-{self.kind} button[data-answer="{self.value}"]'


class PageDriver(threading.Thread):
    """Opens `url` and answers each question with the next Tap. `before_tap(tap, page)` runs when
    the question is on screen, before the tap, and `after_all(page)` after the last one (checks,
    screenshots; in this thread, as playwright wants). If anything fails, the run in the main thread
    is interrupted (two Ctrl-C) and the error is kept in `error`."""

    def __init__(self, url: str, taps: Iterable[Tap], before_tap: Callable[[Tap, Any], None] | None = None,
                 timeout_s: float = 60.0, viewport: dict | None = None,
                 after_all: Callable[[Any], None] | None = None) -> None:
        super().__init__(name="page-driver", daemon=True)
        self.url, self.taps, self.before_tap, self.after_all = url, list(taps), before_tap, after_all
        self.timeout_ms = timeout_s * 1000
        self.viewport = viewport or TABLET_VIEWPORT
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.page: Any = None
        self.release = threading.Event()  # set it to let the browser close after the last tap
        self.run_active = threading.Event()  # clear it when the run is over: errors then interrupt nothing
        self.run_active.set()

    def run(self) -> None:
        try:
            with sync_playwright() as p:
                browser = launch(p)
                try:
                    self.page = browser.new_page(viewport=self.viewport)
                    self.page.goto(self.url)
                    self._answer_all()
                    if self.after_all is not None:
                        self.after_all(self.page)
                    self.done.set()
                    self.release.wait(self.timeout_ms / 1000)
                finally:
                    browser.close()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            self.error = e
            if self.run_active.is_set():
                _thread.interrupt_main()  # first Ctrl-C: stop after this attempt
                _thread.interrupt_main()  # second: stop now
        finally:
            self.done.set()

    def _answer_all(self) -> None:
        last_qid = ""
        for tap in self.taps:
            self.page.wait_for_function(
                "([kind, last]) => document.body.dataset.question === kind && document.body.dataset.qid !== last",
                arg=[tap.kind, last_qid], timeout=self.timeout_ms)
            last_qid = self.page.evaluate("document.body.dataset.qid")
            if self.before_tap is not None:
                self.before_tap(tap, self.page)
            if tap.note:
                self.page.fill("#note", tap.note)
            self.page.click(tap.selector, timeout=self.timeout_ms)

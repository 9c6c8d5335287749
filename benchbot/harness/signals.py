"""How a run reacts to SIGTERM, SIGHUP and Ctrl-C, from its first step to its last.

The first signal asks the run to stop: the attempt in progress finishes (or start-up stops at its
next step) and the run winds down. A second Ctrl-C drops the attempt in progress at once, but only
inside an attempt (`interruptible`): during start-up and wind-down (recording the stop, closing
the devices and the database) further signals are noted, never allowed to cut those steps short.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """A stop was requested: the current attempt is dropped (nothing half-written) and the run stops."""


class StopSignals:
    """Install with `with StopSignals(echo):` around the whole run; `check()` raises Interrupted
    once a stop was requested."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.requested = False
        self.winding_down = False
        self._interruptible = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # (only the main thread may install them)
            self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.winding_down:
            self.echo("[yellow]already stopping: closing the devices and the database, please wait[/]")
            return
        if self.requested and signum == signal.SIGINT and self._interruptible:
            self._interruptible = False
            raise KeyboardInterrupt  # second Ctrl-C: drop the attempt now (the primitive stops the arm)
        if self.requested:
            self.echo("[yellow]already stopping[/]")
            return
        self.requested = True
        self.echo("[yellow]stop requested: finishing the current attempt (Ctrl-C again to drop it now)[/]")

    def check(self) -> None:
        if self.requested:
            raise Interrupted()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A second Ctrl-C inside this block raises Interrupted in it."""
        self._interruptible = True
        try:
            yield
        except KeyboardInterrupt:
            raise Interrupted() from None
        finally:
            self._interruptible = False

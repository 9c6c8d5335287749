"""Logging with the standard library: every module logs to `logging.getLogger(__name__)` (all under
the `benchbot` logger); the CLI adds a console handler (`-v/-q`), a run adds its log file
`results/<run>/run.log` (`RunLog`), and device command logs are bounded (`CommandLog`).

The run log is not an attempt artifact: the database neither journals nor references it, so resume
never deletes it; it is appended to on resume and rotated at `RUN_LOG_MAX_BYTES`
(`run.log.1` … `run.log.<RUN_LOG_BACKUPS>` keep the older lines)."""
from __future__ import annotations

import logging
import logging.handlers
import re
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = "benchbot"
RUN_LOG_NAME = "run.log"
RUN_LOG_MAX_BYTES = 4 * 1024 * 1024
RUN_LOG_BACKUPS = 2
PENDING_MAX = 5000  # records kept before the run's folder is known (start-up, connecting devices)
COMMAND_LOG_LEN = 10_000  # entries a device keeps in memory (the log file has them all)
SHOWN = {"on_console": True}  # extra= of a record the caller has already printed on the console
FILE_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"
_RUN_LOG_RE = re.compile(rf"{re.escape(RUN_LOG_NAME)}(\.\d+)?")


def is_run_log(path: str | Path) -> bool:
    """True for `<run>/run.log` and its rotated backups (relative to the results folder)."""
    parts = PurePosixPath(Path(path).as_posix()).parts
    return len(parts) == 2 and _RUN_LOG_RE.fullmatch(parts[1]) is not None


class CommandLog(deque):
    """The latest commands a device received (oldest dropped beyond `maxlen`); each appended entry
    also goes to `logger` at DEBUG, so the run log keeps the whole history."""

    def __init__(self, logger: str | logging.Logger, entries: Iterable[Any] = (), maxlen: int | None = COMMAND_LOG_LEN):
        super().__init__(entries, maxlen)
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.total = len(self)  # entries ever appended (len() stops growing at maxlen)

    def append(self, entry: Any) -> None:
        super().append(entry)
        self.total += 1
        self.logger.debug("%s", entry)

    def __getitem__(self, index: Any) -> Any:  # slices too, as on the lists these logs used to be
        return list(self)[index] if isinstance(index, slice) else super().__getitem__(index)

    def since(self, seen: int) -> tuple[list[Any], int]:
        """The entries appended after the first `seen` (those still kept) and the new total: a
        follower calls `new, seen = log.since(seen)` and never stalls at the cap."""
        new = min(max(self.total - seen, 0), len(self))
        return list(self)[len(self) - new:], self.total

    def __reduce__(self) -> tuple:
        return type(self), (self.logger.name, list(self), self.maxlen)

    def __copy__(self) -> CommandLog:
        return type(self)(self.logger, self, self.maxlen)


class _NotShown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "on_console", False)


class ConsoleHandler(logging.Handler):
    """Log lines through a rich console (`print(text)`): above a live progress bar, never into it,
    and without markup interpretation (messages hold user text)."""

    def __init__(self, print_line: Callable[[str], None], level: int) -> None:
        super().__init__(level)
        self.print_line = print_line
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.addFilter(_NotShown())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.print_line(self.format(record))
        except Exception:  # a closed terminal must not end the run
            pass


def console_level(verbose: int, quiet: bool) -> int:
    """WARNING by default, INFO with -v, DEBUG with -vv, ERROR with -q."""
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


class _RunFile(logging.handlers.RotatingFileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        """A full disk or a vanished folder: drop the line quietly (no traceback on the terminal);
        the run itself reports a failing artifact write."""


class RunLog(logging.Handler):
    """The log of one run: records are held (bounded) until `open(run_dir)`, then written to
    `run_dir/run.log` (append, rotating). Attach with `with RunLog() as log:`; detached on exit."""

    def __init__(self, logger: str = ROOT, max_bytes: int = RUN_LOG_MAX_BYTES, backups: int = RUN_LOG_BACKUPS) -> None:
        super().__init__(logging.DEBUG)
        self.logger = logging.getLogger(logger)
        self.max_bytes, self.backups = max_bytes, backups
        self.pending: deque[logging.LogRecord] = deque(maxlen=PENDING_MAX)
        self.file: _RunFile | None = None
        self._saved_level = self.logger.level

    def __enter__(self) -> RunLog:
        self._saved_level = self.logger.level
        if self.logger.getEffectiveLevel() > logging.DEBUG:
            self.logger.setLevel(logging.DEBUG)  # the file gets everything; console handlers filter
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._saved_level)
        self.close()

    @property
    def path(self) -> Path | None:
        return Path(self.file.baseFilename) if self.file else None

    def open(self, run_dir: Path) -> None:
        """Start writing to run_dir/run.log (which must exist: the run's own folder), held records first."""
        handler = _RunFile(run_dir / RUN_LOG_NAME, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FILE_FORMAT, "%Y-%m-%dT%H:%M:%S"))
        assert self.lock is not None  # logging.Handler.__init__ created it
        with self.lock:
            self.file = handler
            while self.pending:
                handler.handle(self.pending.popleft())

    def emit(self, record: logging.LogRecord) -> None:
        if self.file is not None:
            self.file.handle(record)
        else:
            self.pending.append(record)

    def close(self) -> None:
        assert self.lock is not None  # logging.Handler.__init__ created it
        with self.lock:
            if self.file is not None:
                try:
                    self.file.close()
                except (OSError, ValueError):  # a full disk fails the last flush: the run goes on
                    pass
            self.pending.clear()
        super().close()

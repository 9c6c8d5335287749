"""One writer per database: a second `benchbot run` on the same DB is refused, not interleaved."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from benchbot.core.errors import BenchbotError


class RunLock:
    """An exclusive, non-blocking flock on `<db>.lock`; released by the OS if the process dies.
    Re-entrant on the same object (the runner holds it and hands it to the workcell, which takes
    it again): released when every acquire has its release."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(str(db_path) + ".lock")
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            self._depth += 1
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise BenchbotError(f"cannot create the run lock {self.path}: {e.strerror or e}",
                                "pass a --db path in a folder you can write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.path.read_text().strip() or "another process"
            raise BenchbotError(f"{self.path.parent / Path(str(self.path)).stem} is in use by a running benchbot "
                                f"(pid {holder})", "wait for it to finish, or use another --db") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._depth:
            self._depth -= 1
            return
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

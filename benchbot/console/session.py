"""One console for one `benchbot run`: the state, the server, the operator multiplexer and the
file that lets `benchbot console` find the page of a running run."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbot.console.mux import OperatorMux, TerminalSource
from benchbot.console.server import ConsoleServer, Hub, is_loopback
from benchbot.console.state import ConsoleState
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Operator
from benchbot.harness.operator import ConsoleOperator


def discovery_path(db_path: Path) -> Path:
    """Where a run serving a console leaves its address (beside the DB and its lock file)."""
    return Path(str(db_path) + ".console.json")


def _finite(x: Any, nd: int = 1) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return round(x, nd) if math.isfinite(x) else None


def table_source(db_path: Path) -> Any:
    """run_id → Table II rows (Wilson intervals from report.build_report) and progress counts."""
    from benchbot.results.report import build_report
    from benchbot.results.store import Store

    def table(run_id: str) -> dict:
        with Store(db_path, readonly=True) as store:
            rep = build_report(store, run_id)
        t = rep.table
        rows = [{"method": r["method"], "source": r["outcome_source"], "judged": int(r["judged"]),
                 "successes": int(r["successes"]), "success_pct": _finite(r["success_pct"]),
                 "ci_low_pct": _finite(r["success_ci_low_pct"]), "ci_high_pct": _finite(r["success_ci_high_pct"]),
                 "robust_pct": _finite(r["robust_pct"]), "detect_median_s": _finite(r["detect_median_s"], 3),
                 "voided": int(r["voided"]), "aborted": int(r["aborted"]), "pending": int(r["pending"]),
                 "scheduled": int(r["scheduled"])} for _, r in t.iterrows()]
        per_method = t.drop_duplicates("method") if not t.empty else t
        total = int(per_method["scheduled"].sum()) if not t.empty else 0
        done = total - int(per_method["pending"].sum()) if not t.empty else 0
        return {"rows": rows, "done": done, "total": total}

    return table


@dataclass
class Console:
    """What `benchbot run --console` adds to a run: an operator (terminal + page) and an observer."""

    operator: Operator | None
    observers: list
    server: ConsoleServer
    state: ConsoleState

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def console_session(db_path: Path, terminal: ConsoleOperator | None, host: str = "127.0.0.1",
                    port: int = 0) -> Iterator[Console]:
    """Serve the console for the run writing to `db_path`; `terminal`, when given, may answer too
    (first answer wins). With an outcomes CSV the runner's scripted operator answers instead."""
    hub = Hub()
    state = ConsoleState(hub.publish, table_source(db_path))
    server = ConsoleServer(state, hub, host, port)
    sources: list = ([TerminalSource(terminal)] if terminal is not None else []) + [state]
    mux = OperatorMux(sources)
    found = discovery_path(db_path)
    written: list[bool] = []

    def announce(kind: str, data: dict) -> None:  # once the run holds the DB's lock, not before
        if kind == "run" and not written:
            _write_discovery(found, server)
            written.append(True)

    server.start()
    try:
        yield Console(mux, [mux.observe, state.observe, announce], server, state)
        if state.run:
            try:
                state.refresh_table_now()  # the last figures on the page before it goes quiet
            except Exception:  # noqa: BLE001 - a display must not turn a finished run into an error
                pass
    finally:
        if written:
            found.unlink(missing_ok=True)
        state.close()
        server.stop()


def _write_discovery(path: Path, server: ConsoleServer) -> None:
    """The console's address with its token, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"url": server.url, "pid": os.getpid(), "host": server.host, "port": server.port,
                       "loopback": is_loopback(server.host)})
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    os.replace(tmp, path)


def find_console(db_path: Path) -> dict:
    """The running console of the run writing to `db_path` (url, pid, ...), or BenchbotError."""
    path = discovery_path(db_path)
    fix = f"start the run with `benchbot run ... --db {db_path} --console`"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        pid = int(info["pid"])
        url = str(info["url"])
    except FileNotFoundError:
        raise BenchbotError(f"no run with a console is running on {db_path}", fix) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise BenchbotError(f"{path} is not a console address file", f"delete it, then {fix}") from None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)  # left by a killed run
        raise BenchbotError(f"the run that served a console on {db_path} (pid {pid}) is gone", fix) from None
    except PermissionError:
        pass  # alive, another user's
    return {**info, "pid": pid, "url": url}

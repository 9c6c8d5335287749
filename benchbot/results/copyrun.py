"""Copy one run (schedule, attempts and everything they produced, events) from one results
database into another, under the same or a new run id, in one transaction. Attempt ids are
renumbered in the target; detections, outcomes and artifacts follow their attempt."""
from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from benchbot.core.errors import BenchbotError
from benchbot.results.schema import facts_written_after
from benchbot.results.store import Store

_ATTEMPT_CHILDREN = ("detections", "outcomes")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file completely or not at all (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise BenchbotError(f"cannot write {path}: {e.strerror or e}",
                            "check the folder, its permissions and free space") from None


def open_target(path: Path) -> sqlite3.Connection:
    """A new results database at `path` (schema created by Store), opened for a bulk copy."""
    Store(path).close()
    conn = sqlite3.connect(path, uri=True, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def copy_run(dst: sqlite3.Connection, src_db: Path, run_id: str, new_run_id: str,
             rewrite_path: Callable[[str], str] = lambda p: p) -> None:
    """Copy run `run_id` of `src_db` into `dst` as `new_run_id` (refused if that id exists there)."""
    if dst.execute("SELECT 1 FROM runs WHERE run_id = ?", [new_run_id]).fetchone():
        raise BenchbotError(f"run {new_run_id} already exists in the target database", "choose another run id")
    dst.create_function("bb_rewrite_path", 1, rewrite_path, deterministic=True)
    dst.execute("ATTACH DATABASE ? AS src", [Path(src_db).resolve().as_uri() + "?mode=ro"])
    try:
        dst.execute("BEGIN IMMEDIATE")
        try:
            with facts_written_after(dst, new_run_id):
                _copy(dst, run_id, new_run_id)
            dst.execute("COMMIT")
        except BaseException:
            dst.execute("ROLLBACK")
            raise
    finally:
        dst.execute("DETACH DATABASE src")


def _copy(dst: sqlite3.Connection, old: str, new: str) -> None:
    p = {"old": old, "new": new}

    def cols(table: str, replace: dict[str, str]) -> tuple[str, str]:
        names = _columns(dst, table)
        return ", ".join(f'"{c}"' for c in names), ", ".join(replace.get(c, f's."{c}"') for c in names)

    for table in ("runs", "trials"):
        target, source = cols(table, {"run_id": ":new"})
        dst.execute(f"INSERT INTO main.{table} ({target}) SELECT {source} FROM src.{table} s WHERE s.run_id = :old", p)
    target, source = cols("attempts", {"id": "NULL", "run_id": ":new"})
    dst.execute(f"INSERT INTO main.attempts ({target}) SELECT {source} FROM src.attempts s "
                "WHERE s.run_id = :old ORDER BY s.id", p)
    # old attempt id → new one, through the attempt's unique key (trial, attempt number)
    dst.execute("CREATE TEMP TABLE IF NOT EXISTS bb_id_map (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    dst.execute("DELETE FROM temp.bb_id_map")
    dst.execute("INSERT INTO temp.bb_id_map SELECT o.id, n.id FROM src.attempts o JOIN main.attempts n "
                "ON n.run_id = :new AND n.trial_id = o.trial_id AND n.attempt_no = o.attempt_no "
                "WHERE o.run_id = :old", p)
    for table in _ATTEMPT_CHILDREN:
        target, source = cols(table, {"attempt_id": "m.new"})
        dst.execute(f"INSERT INTO main.{table} ({target}) SELECT {source} FROM src.{table} s "
                    "JOIN temp.bb_id_map m ON m.old = s.attempt_id ORDER BY m.new", p)
    target, source = cols("artifacts", {"id": "NULL", "attempt_id": "m.new", "path": "bb_rewrite_path(s.path)"})
    dst.execute(f"INSERT INTO main.artifacts ({target}) SELECT {source} FROM src.artifacts s "
                "JOIN temp.bb_id_map m ON m.old = s.attempt_id ORDER BY s.id", p)
    target, source = cols("events", {"id": "NULL", "run_id": ":new"})
    dst.execute(f"INSERT INTO main.events ({target}) SELECT {source} FROM src.events s WHERE s.run_id = :old "
                "ORDER BY s.id", p)


def run_ids(db: Path) -> list[str]:
    """Run ids of a (validated) results database, oldest first."""
    with Store(db, readonly=True) as store, closing(store.conn.cursor()) as cur:
        return [r[0] for r in cur.execute("SELECT run_id FROM runs ORDER BY created_at, rowid")]

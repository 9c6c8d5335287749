"""The results database (SQLite, WAL): opening, migrating, and every write a run makes.

Why one module of ~590 lines: the crash-safety guarantees below hold only if every write of a run
goes through the same connection rules and transactions, so they live together. Read-side SQL
(aggregates, paired counts, browse) lives in the other results modules; copying runs between
databases (export, merge) in copyrun.py.

Guarantees: a run and its whole schedule are written in one transaction; each attempt with its
detection, outcome and artifacts is written in one transaction together with its trial's status;
a trial has at most one counted (final or aborted) attempt, enforced by a unique index; voided
attempts are kept. Readers (`readonly=True`) never block the writer.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbot.config.schedule import TrialSpec
from benchbot.core.errors import BenchbotError
from benchbot.results.schema import (
    MIGRATIONS,
    READER_MIN_VERSION,
    READER_TABLES,
    SCHEMA_VERSION,
    TABLES,
    facts_intact,
    rebuild_facts,
)

if TYPE_CHECKING:
    import pandas
    import sqlite_utils

__all__ = ["SCHEMA_VERSION", "RunInfo", "DetectionRecord", "OutcomeRecord", "AttemptRecord",
           "Store", "utc_now", "new_run_id", "check_run_id"]

RUN_STATUSES = ("running", "finished", "aborted")
ATTEMPT_STATUSES = ("final", "voided", "aborted")
APPLICATION = "benchbot-results"
# a run id names a folder under the results folder: letters, digits, '-' and '_' only (no dot, no slash)
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass
class RunInfo:
    run_id: str
    created_at: str  # UTC ISO
    protocol_name: str
    protocol_hash: str
    protocol_path: str
    seed: int
    backend: str  # replay | mujoco | hardware
    outcome_source: str  # simulated | physics | operator | scripted
    git_sha: str | None
    host: str
    versions: dict
    config: dict
    status: str = "running"  # running | finished | aborted


@dataclass
class DetectionRecord:
    method: str
    row: float | None
    col: float | None
    angle_rad: float | None
    width_px: float | None
    depth_m: float | None
    score: float | None
    q_robust: float | None
    robust: bool | None
    robust_threshold: float | None
    evaluator: str | None
    capture_s: float | None
    inpaint_s: float | None
    detect_s: float | None
    robust_s: float | None
    grasp_pose: dict | None  # metric pose in the base frame
    error: str | None = None  # detector failure reason (no grasp found, NaN rejected, ...)
    perception: dict | None = None  # table plane, workspace, why q is NULL (JSON)


@dataclass
class OutcomeRecord:
    source: str  # operator | physics | simulated | scripted
    success: bool | None  # None when aborted
    cause: str | None  # slipped | missed | collision | dropped | other | device fault text
    note: str | None = None


@dataclass
class AttemptRecord:
    run_id: str
    trial_id: str
    attempt_no: int
    status: str  # final (counts) | voided (redo, kept, not counted) | aborted (trial ends aborted)
    started_at: str
    finished_at: str
    detection: DetectionRecord | None
    outcome: OutcomeRecord | None
    artifacts: list[tuple[str, str]] = field(default_factory=list)  # (kind, path rel. results dir)
    timings: dict[str, float] = field(default_factory=dict)  # per-phase seconds
    reason: str | None = None


def utc_now() -> str:
    """Current time as a UTC ISO timestamp (the format of every time in the database)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id(protocol_hash: str, now: datetime | None = None) -> str:
    """A run id that sorts by creation time and is unique: UTC time, the protocol's hash and a
    random part, e.g. 20261125-091500-87a717-3fa2c9 (two runs started in the same second differ)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{protocol_hash[:6]}-{secrets.token_hex(3)}"


def check_run_id(run_id: object) -> str:
    """`run_id` if it is a valid run id (it becomes a folder name), else a BenchbotError."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise BenchbotError(f"invalid run id {run_id!r}",
                            "use 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    return run_id


def _json(value: Any) -> str:
    def plain(o: Any) -> Any:
        if hasattr(o, "tolist"):  # numpy arrays and scalars
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot store {type(o).__name__} as JSON")

    return json.dumps(value, default=plain, sort_keys=True)


def _num(x: float | None) -> float | None:
    """A finite float or None: NaN/inf are stored as unknown (NULL), never as a number."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _bool(x: bool | None) -> int | None:
    return None if x is None else int(bool(x))


class Store:
    """A benchbot results database. Use as a context manager or call close()."""

    def __init__(self, path: str | Path, *, readonly: bool = False, busy_timeout_s: float = 10.0,
                 _in_place: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._busy_timeout_s = busy_timeout_s
        if readonly and not self.path.is_file():
            raise BenchbotError(f"results database {self.path} not found",
                                "check --db, or start a run first with `benchbot run`")
        if not readonly and self.path.parent and not self.path.parent.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BenchbotError(f"cannot create the folder of results database {self.path}: "
                                    f"{e.strerror or e}", "pass a --db path in a folder you can write") from None
        if not readonly and not _in_place and str(path) != ":memory:" and not self.path.exists():
            self._create()
        try:
            if readonly:
                conn = self._connect_readonly()
            else:
                conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, check_same_thread=False)
        except sqlite3.Error as e:
            raise BenchbotError(f"cannot open results database {self.path}: {e}",
                                "check the path and its permissions") from None
        self.conn = conn
        try:
            with self._errors():
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
                conn.execute("PRAGMA foreign_keys = ON")
                self._check_or_migrate()  # before WAL: a foreign file is refused untouched
                if not readonly:
                    conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            conn.close()
            raise

    def _create(self) -> None:
        """A new database appears whole: its schema is built in a hidden temporary file that is then
        linked into place, so a kill never leaves an empty or half-made file at the --db path."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}.new")
        try:
            try:
                Store(tmp, busy_timeout_s=self._busy_timeout_s, _in_place=True).close()
            except BenchbotError:
                raise BenchbotError(f"cannot create results database {self.path}",
                                    "pass a --db path in a folder you can write") from None
            try:
                os.link(tmp, self.path)  # never replaces: a database made meanwhile by another run wins
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links
                if not self.path.exists():
                    os.replace(tmp, self.path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                leftover.unlink(missing_ok=True)

    def _connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection. On read-only media SQLite cannot create the WAL index (-shm):
        then the file is opened `immutable` (no locks, no WAL index), which is exact only when no
        committed data waits in a -wal file, so a non-empty -wal there is refused."""
        uri = self.path.resolve().as_uri()
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=self._busy_timeout_s, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # SQLite opens lazily
            return conn
        except sqlite3.Error as e:  # CANTOPEN (read-only mount) or READONLY_DIRECTORY (no write permission)
            if "unable to open" not in str(e) and "readonly" not in str(e):
                return conn  # not a database, locked, ...: the checks that follow say so
            conn.close()
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            raise BenchbotError(f"results database {self.path} is on read-only media with committed data still in "
                                f"{wal.name}", f"copy {self.path.name} and {wal.name} to a writable folder and "
                                "read the copy")
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, timeout=self._busy_timeout_s,
                               check_same_thread=False)

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, for writes. Imported on first use: it imports pandas,
        which a read-only `benchbot report` loads later, in parallel with its queries."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn, execute_plugins=False)

    def _table_names(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite failures a user can act on into one-line BenchbotErrors."""
        try:
            yield
        except sqlite3.OperationalError as e:
            text = str(e)
            if "locked" in text or "busy" in text:
                raise BenchbotError(
                    f"results database {self.path} is locked by another writer "
                    f"(waited {self._busy_timeout_s:g} s)",
                    "wait for the other benchbot process to finish, or use another --db") from None
            if "readonly" in text or "read-only" in text:
                raise BenchbotError(f"results database {self.path} is read-only",
                                    "check the file's permissions") from None
            if "unable to open" in text or "disk" in text:
                raise BenchbotError(f"cannot use results database {self.path}: {text}",
                                    "check the disk (space, permissions, mount) and the path") from None
            raise
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.IntegrityError):
                raise
            raise BenchbotError(f"{self.path} is not a benchbot results database ({e})",
                                "pass the path of a results .db file, or a new path") from None

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Read several tables as of one moment (one read transaction): a run committing
        meanwhile cannot make counts read by two queries disagree. Re-entrant."""
        if self.conn.in_transaction:
            yield self
            return
        with self._errors():
            self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.rollback()  # nothing was written: ends the read transaction

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """One immediate (write-locking) transaction: all or nothing."""
        if self.readonly:
            raise BenchbotError(f"results database {self.path} was opened read-only",
                                "open it without readonly to write")
        with self._errors():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.conn.rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.rollback()
                raise

    # -- schema ------------------------------------------------------------------------------
    def _version(self) -> int:
        names = self._table_names()
        if not names:
            return 0
        if "meta" not in names:
            raise BenchbotError(f"{self.path} is an SQLite file but not a benchbot results database",
                                "pass the path of a results .db file, or a new path")
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise BenchbotError(f"{self.path}: results database has no valid schema version",
                                "pass the path of a results .db file, or a new path") from None

    def _check_or_migrate(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise BenchbotError(
                f"{self.path} has results schema v{version}, newer than this benchbot (v{SCHEMA_VERSION})",
                "upgrade benchbot (pip install -U benchbot)")
        if version < SCHEMA_VERSION:
            if self.readonly and version == 0:
                raise BenchbotError(f"{self.path} holds no benchbot results (empty database)",
                                    "check --db, or start a run first with `benchbot run`")
            if self.readonly and version < READER_MIN_VERSION:
                raise BenchbotError(
                    f"{self.path} has results schema v{version}, older than v{READER_MIN_VERSION}",
                    "migrate it once with write access: python -c \"from benchbot.results.store import Store; "
                    f"Store('{self.path}').close()\"")
        if version < SCHEMA_VERSION and not self.readonly:  # a reader never migrates
            with self._write():
                version = self._version()  # another process may have migrated meanwhile
                for migrate in MIGRATIONS[version:]:
                    migrate(self.conn)
                self.db.table("meta").upsert_all(
                    [{"key": "schema_version", "value": str(SCHEMA_VERSION)},
                     {"key": "application", "value": APPLICATION}], pk="key")
        if not self.readonly and not facts_intact(self.conn):
            with self._write():
                if not facts_intact(self.conn):  # another process may have rebuilt them meanwhile
                    rebuild_facts(self.conn)
        missing = [t for t in (READER_TABLES if self.readonly else TABLES) if t not in self._table_names()]
        if missing:
            raise BenchbotError(f"{self.path}: results database lacks table(s) {', '.join(missing)}",
                                "pass the path of an intact results .db file, or a new path")

    # -- runs --------------------------------------------------------------------------------
    def create_run(self, info: RunInfo, trials: list[TrialSpec]) -> None:
        """Store a run and its whole schedule (all trials pending) in one transaction."""
        if info.status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {info.status!r}")
        check_run_id(info.run_id)
        with self._write() as db:
            if db["runs"].count_where("run_id = ?", [info.run_id]):
                raise BenchbotError(f"run {info.run_id} already exists in {self.path}",
                                    "resume it with `benchbot run --resume`, or choose another run id")
            row = {k: getattr(info, k) for k in RunInfo.__dataclass_fields__}
            row["versions"], row["config"] = _json(info.versions), _json(info.config)
            db.table("runs").insert(row)
            db.table("trials").insert_all(
                {"run_id": info.run_id, "trial_id": t.trial_id, "seq": t.seq, "method": t.method,
                 "object_id": t.object_id, "trial_index": t.trial_index,
                 "placement_id": t.placement_id, "placement_seed": t.placement_seed,
                 "status": "pending"} for t in trials)

    def get_run(self, run_id: str) -> RunInfo | None:
        with self._errors():
            cur = self.conn.cursor()
            cur.row_factory = sqlite3.Row
            found = cur.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if found is None:
            return None
        row = dict(found)
        row["versions"], row["config"] = json.loads(row["versions"]), json.loads(row["config"])
        return RunInfo(**row)

    def latest_run_id(self) -> str | None:
        with self._errors():
            row = self.conn.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def unfinished_runs(self, protocol_hash: str | None = None) -> list[str]:
        """Runs still running or aborted that have pending trials, newest first."""
        sql = ("SELECT r.run_id FROM runs r WHERE r.status IN ('running', 'aborted') "
               "AND EXISTS (SELECT 1 FROM trials t WHERE t.run_id = r.run_id AND t.status = 'pending')")
        params: list[Any] = []
        if protocol_hash is not None:
            sql += " AND r.protocol_hash = ?"
            params.append(protocol_hash)
        with self._errors():
            rows = self.conn.execute(sql + " ORDER BY r.created_at DESC, r.rowid DESC", params)
            return [r[0] for r in rows]

    def list_runs(self) -> list[dict]:
        sql = """
        SELECT r.run_id, r.created_at, r.protocol_name AS protocol, r.protocol_hash, r.backend,
               r.outcome_source, r.status,
               (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id) AS trials,
               (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.status = 'done') AS done,
               (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.status = 'aborted') AS aborted,
               (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.status = 'pending') AS pending,
               (SELECT COUNT(*) FROM attempts a WHERE a.run_id = r.run_id AND a.status = 'voided') AS voided
        FROM runs r ORDER BY r.created_at DESC, r.rowid DESC"""
        with self._errors():
            return [dict(r) for r in self.db.query(sql)]

    def set_run_status(self, run_id: str, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
        with self._write():
            cur = self.conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])
            if cur.rowcount == 0:
                raise BenchbotError(f"no run {run_id} in {self.path}", "list runs with `benchbot runs`")

    # -- trials ------------------------------------------------------------------------------
    def trials(self, run_id: str, *, method: str | None = None,
               pending_only: bool = False) -> list[TrialSpec]:
        where, params = ["run_id = ?"], [run_id]
        if method is not None:
            where.append("method = ?")
            params.append(method)
        if pending_only:
            where.append("status = 'pending'")
        with self._errors():
            rows = self.db["trials"].rows_where(" AND ".join(where), params, order_by="seq")
            return [TrialSpec(r["trial_id"], r["seq"], r["method"], r["object_id"], r["trial_index"],
                              r["placement_id"], r["placement_seed"]) for r in rows]

    def trial_status(self, run_id: str, trial_id: str) -> str:
        with self._errors():
            row = self.conn.execute("SELECT status FROM trials WHERE run_id = ? AND trial_id = ?",
                                    [run_id, trial_id]).fetchone()
        if row is None:
            raise BenchbotError(f"no trial {trial_id} in run {run_id}", "check the run id")
        return row[0]

    def next_attempt_no(self, run_id: str, trial_id: str) -> int:
        with self._errors():
            row = self.conn.execute(
                "SELECT COALESCE(MAX(attempt_no), 0) FROM attempts WHERE run_id = ? AND trial_id = ?",
                [run_id, trial_id]).fetchone()
        return int(row[0]) + 1

    # -- attempts ----------------------------------------------------------------------------
    def record_attempt(self, rec: AttemptRecord) -> int:
        """Write one attempt with everything it produced, and its trial's status, atomically.

        final → trial done; aborted → trial aborted; voided → trial stays pending. Refuses any
        attempt for a trial that is not pending. Returns the attempt's id.
        """
        if rec.status not in ATTEMPT_STATUSES:
            raise ValueError(f"unknown attempt status {rec.status!r}; expected one of {ATTEMPT_STATUSES}")
        with self._write() as db:
            row = self.conn.execute("SELECT status FROM trials WHERE run_id = ? AND trial_id = ?",
                                    [rec.run_id, rec.trial_id]).fetchone()
            if row is None:
                raise BenchbotError(f"no trial {rec.trial_id} in run {rec.run_id}",
                                    "record attempts only for trials of the run's schedule")
            if row[0] != "pending":
                raise BenchbotError(f"trial {rec.trial_id} of run {rec.run_id} is already {row[0]}",
                                    "each trial is recorded once; resume skips finished trials")
            try:
                attempt_id = self._insert_attempt(db, rec)
            except sqlite3.IntegrityError as e:
                raise BenchbotError(
                    f"attempt {rec.attempt_no} of trial {rec.trial_id} is already recorded ({e})",
                    "use Store.next_attempt_no() for the attempt number") from None
            self._insert_children(db, attempt_id, rec)
            new_status = {"final": "done", "aborted": "aborted", "voided": "pending"}[rec.status]
            self.conn.execute("UPDATE trials SET status = ? WHERE run_id = ? AND trial_id = ?",
                              [new_status, rec.run_id, rec.trial_id])
        return attempt_id

    def _insert_attempt(self, db: sqlite_utils.Database, rec: AttemptRecord) -> int:
        table = db.table("attempts").insert(
            {"run_id": rec.run_id, "trial_id": rec.trial_id, "attempt_no": int(rec.attempt_no),
             "status": rec.status, "started_at": rec.started_at, "finished_at": rec.finished_at,
             "reason": rec.reason, "timings": _json({k: _num(v) for k, v in rec.timings.items()})})
        assert table.last_pk is not None  # the rowid of the insert just made
        return int(table.last_pk)

    def _insert_children(self, db: sqlite_utils.Database, attempt_id: int, rec: AttemptRecord) -> None:
        d = rec.detection
        if d is not None:
            row: dict[str, Any] = {"attempt_id": attempt_id, "method": d.method,
                                   "robust": _bool(d.robust), "evaluator": d.evaluator,
                                   "grasp_pose": None if d.grasp_pose is None else _json(d.grasp_pose),
                                   "error": d.error,
                                   "perception": None if d.perception is None else _json(d.perception)}
            for name in ("row", "col", "angle_rad", "width_px", "depth_m", "score", "q_robust",
                         "robust_threshold", "capture_s", "inpaint_s", "detect_s", "robust_s"):
                row[name] = _num(getattr(d, name))
            db.table("detections").insert(row)
        o = rec.outcome
        if o is not None:
            db.table("outcomes").insert({"attempt_id": attempt_id, "source": o.source,
                                         "success": _bool(o.success), "cause": o.cause, "note": o.note})
        if rec.artifacts:
            db.table("artifacts").insert_all(
                {"attempt_id": attempt_id, "kind": kind, "path": str(path)} for kind, path in rec.artifacts)

    def artifact_paths(self, run_id: str) -> set[str]:
        """Every artifact path recorded for a run (files on disk but not here are orphans)."""
        with self._errors():
            rows = self.conn.execute(
                "SELECT f.path FROM artifacts f JOIN attempts a ON a.id = f.attempt_id WHERE a.run_id = ?",
                [run_id])
            return {r[0] for r in rows}

    # -- file journal ------------------------------------------------------------------------
    def journal_file(self, run_id: str, path: str) -> None:
        """Commit that a run is about to create `path` (relative to the results folder). Call it
        before creating the file: a resume then deletes only journaled files no attempt references."""
        with self._write() as db:
            db.table("files").insert({"run_id": run_id, "path": path, "at": utc_now()})

    def unreferenced_files(self, run_id: str) -> set[str]:
        """Paths this run journaled that no committed attempt references (left by a cut-short attempt)."""
        with self._errors():
            rows = self.conn.execute(
                "SELECT path FROM files WHERE run_id = ? EXCEPT SELECT f.path FROM artifacts f "
                "JOIN attempts a ON a.id = f.attempt_id WHERE a.run_id = ?", [run_id, run_id])
            return {r[0] for r in rows}

    # -- run events -------------------------------------------------------------------------
    def record_event(self, run_id: str, kind: str, message: str, *, method: str | None = None) -> None:
        """Log something about a run that is not an attempt, e.g. kind "method_unavailable" with
        the reason a detector could not be loaded (its trials stay pending), "evaluator_unavailable",
        "resumed", "interrupted". The report shows the latest reason for methods without results."""
        with self._write() as db:
            if not db["runs"].count_where("run_id = ?", [run_id]):
                raise BenchbotError(f"no run {run_id} in {self.path}", "list runs with `benchbot runs`")
            db.table("events").insert({"run_id": run_id, "at": utc_now(), "kind": kind, "method": method,
                                       "message": message})

    def events(self, run_id: str, kind: str | None = None) -> list[dict]:
        """A run's events, oldest first: dicts with at, kind, method, message."""
        where, params = "run_id = ?", [run_id]
        if kind is not None:
            where, params = where + " AND kind = ?", params + [kind]
        with self._errors():
            rows = self.conn.execute(f"SELECT at, kind, method, message FROM events WHERE {where} ORDER BY id", params)
            return [dict(zip(("at", "kind", "method", "message"), r, strict=True)) for r in rows]

    # -- tables for the report ---------------------------------------------------------------
    def tables(self, run_id: str) -> dict[str, pandas.DataFrame]:
        """pandas tables of one run: "trials" (the schedule with statuses), "attempts" (one row
        per attempt joined with its trial, detection and outcome; timings expanded into
        `time_<phase>_s` columns) and "artifacts"."""
        import pandas as pd

        with self._errors(), self.snapshot():
            trials = pd.read_sql_query(
                "SELECT trial_id, seq, method, object_id, trial_index, placement_id, placement_seed, "
                "status FROM trials WHERE run_id = ? ORDER BY seq", self.conn, params=[run_id])
            attempts = pd.read_sql_query(
                """SELECT a.id AS attempt_id, a.trial_id, t.seq, t.method, t.object_id, t.trial_index,
                          t.placement_id, a.attempt_no, a.status, a.started_at, a.finished_at, a.reason,
                          a.timings, d.method AS detector, d."row", d.col, d.angle_rad, d.width_px,
                          d.depth_m, d.score, d.q_robust, d.robust, d.robust_threshold, d.evaluator,
                          d.capture_s, d.inpaint_s, d.detect_s, d.robust_s, d.grasp_pose,
                          d.error AS detection_error, d.perception, o.source AS outcome_source, o.success, o.cause,
                          o.note
                   FROM attempts a
                   JOIN trials t ON t.run_id = a.run_id AND t.trial_id = a.trial_id
                   LEFT JOIN detections d ON d.attempt_id = a.id
                   LEFT JOIN outcomes o ON o.attempt_id = a.id
                   WHERE a.run_id = ? ORDER BY t.seq, a.attempt_no""", self.conn, params=[run_id])
            artifacts = pd.read_sql_query(
                "SELECT f.attempt_id, a.trial_id, f.kind, f.path FROM artifacts f "
                "JOIN attempts a ON a.id = f.attempt_id WHERE a.run_id = ? ORDER BY f.id",
                self.conn, params=[run_id])
        for col in ("robust", "success"):
            attempts[col] = attempts[col].astype("boolean")  # NULL stays <NA>, never False
        for col in ("row", "col", "angle_rad", "width_px", "depth_m", "score", "q_robust",
                    "robust_threshold", "capture_s", "inpaint_s", "detect_s", "robust_s"):
            attempts[col] = attempts[col].astype("float64")
        timings = [json.loads(t) for t in attempts["timings"]]
        phases = sorted({k for t in timings for k in t})
        for phase in phases:
            attempts[f"time_{phase}_s"] = pd.Series([t.get(phase) for t in timings], dtype="float64")
        attempts = attempts.drop(columns="timings")
        return {"trials": trials, "attempts": attempts, "artifacts": artifacts}

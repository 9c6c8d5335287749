"""Results-database schema as a list of migrations. MIGRATIONS[i] takes version i to i + 1.

Never edit a released migration: append a new one (it runs inside the caller's transaction).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

V1 = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    protocol_name TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    protocol_path TEXT NOT NULL,
    seed INTEGER NOT NULL,
    backend TEXT NOT NULL,
    outcome_source TEXT NOT NULL,
    git_sha TEXT,
    host TEXT NOT NULL,
    versions TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'aborted'))
);
CREATE TABLE trials (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    trial_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    method TEXT NOT NULL,
    object_id TEXT NOT NULL,
    trial_index INTEGER NOT NULL,
    placement_id TEXT NOT NULL,
    placement_seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'aborted')),
    PRIMARY KEY (run_id, trial_id),
    UNIQUE (run_id, seq)
);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    trial_id TEXT NOT NULL,
    attempt_no INTEGER NOT NULL CHECK (attempt_no >= 1),
    status TEXT NOT NULL CHECK (status IN ('final', 'voided', 'aborted')),
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    reason TEXT,
    timings TEXT NOT NULL,
    UNIQUE (run_id, trial_id, attempt_no),
    FOREIGN KEY (run_id, trial_id) REFERENCES trials (run_id, trial_id)
);
-- At most one counted (final or aborted) attempt per trial, enforced by the database itself.
CREATE UNIQUE INDEX attempts_one_counted ON attempts (run_id, trial_id)
    WHERE status IN ('final', 'aborted');
CREATE TABLE detections (
    attempt_id INTEGER PRIMARY KEY REFERENCES attempts (id),
    method TEXT NOT NULL,
    "row" REAL, col REAL, angle_rad REAL, width_px REAL, depth_m REAL,
    score REAL,
    q_robust REAL,
    robust INTEGER CHECK (robust IN (0, 1)),
    robust_threshold REAL,
    evaluator TEXT,
    capture_s REAL, inpaint_s REAL, detect_s REAL, robust_s REAL,
    grasp_pose TEXT,
    error TEXT
);
CREATE TABLE outcomes (
    attempt_id INTEGER PRIMARY KEY REFERENCES attempts (id),
    source TEXT NOT NULL,
    success INTEGER CHECK (success IN (0, 1)),
    cause TEXT,
    note TEXT
);
CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    kind TEXT NOT NULL,
    path TEXT NOT NULL
);
CREATE INDEX artifacts_attempt ON artifacts (attempt_id);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    method TEXT,
    message TEXT NOT NULL
);
CREATE INDEX events_run ON events (run_id);
"""

# v2: the file journal. Every artifact path is committed here before its file is created, so a
# resume deletes only files a run wrote and no committed attempt references (never anything else).
V2 = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    path TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX files_run ON files (run_id);
"""

READER_TABLES = ("meta", "runs", "trials", "attempts", "detections", "outcomes", "artifacts", "events")  # since v1
TABLES = (*READER_TABLES, "files", "attempt_facts")
READER_MIN_VERSION = 1  # oldest schema readers can read without migrating (raise it when a migration changes them)


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return migrate


def _add_perception(conn: sqlite3.Connection) -> None:
    """v3 — detections.perception: JSON of what the detector saw — the table plane (camera frame), the
    workspace mask, why q is NULL when the evaluator could not score the grasp."""
    conn.execute("ALTER TABLE detections ADD COLUMN perception TEXT")


PHASES = ("place", "capture", "inpaint", "detect", "robust", "execute", "judge", "total")  # keys of attempts.timings

# v4 — attempt_facts: one flat row per attempt with its trial, detection and outcome (timings in
# columns, the run's outcome source when no verdict is stored), clustered by run. The report
# aggregates over it instead of joining four tables and parsing JSON for every attempt. Triggers
# keep it in step with its sources inside the writer's own transaction, so it is never stale and
# never half-written; it holds nothing that is not in the other tables.
_FACTS = (  # column, its value in the join below
    ("run_id", "x.run_id"), ("attempt_id", "x.id"), ("trial_id", "x.trial_id"), ("attempt_no", "x.attempt_no"),
    ("seq", "t.seq"), ("method", "t.method"), ("object_id", "t.object_id"), ("placement_id", "t.placement_id"),
    ("status", "x.status"), ("reason", "x.reason"),
    ("duration_ms", "ROUND((julianday(x.finished_at) - julianday(x.started_at)) * 86400000.0)"),
    *((f"time_{p}_s", f"CASE WHEN json_valid(x.timings) THEN json_extract(x.timings, '$.{p}') END") for p in PHASES),
    ("source", "COALESCE(o.source, r.outcome_source)"), ("success", "o.success"), ("cause", "o.cause"),
    ("q_robust", "d.q_robust"), ("robust", "d.robust"), ("robust_threshold", "d.robust_threshold"),
    ("detect_s", "d.detect_s"), ("error", "d.error"))
FACTS_COLUMNS = tuple(name for name, _ in _FACTS)

# The one definition of a facts row: the migration, the triggers and readers of older files use it.
FACTS_SELECT = ("SELECT " + ", ".join(f"{expr} AS {name}" for name, expr in _FACTS) + """
FROM attempts x
JOIN trials t ON t.run_id = x.run_id AND t.trial_id = x.trial_id
JOIN runs r ON r.run_id = x.run_id
LEFT JOIN outcomes o ON o.attempt_id = x.id
LEFT JOIN detections d ON d.attempt_id = x.id
WHERE {where}""")
INSERT_FACTS = f"INSERT INTO {{name}} ({', '.join(FACTS_COLUMNS)}) {FACTS_SELECT}"

# Clustered by run, method, outcome source and object: the report's GROUP BYs read it in order,
# without sorting. `{name}` is attempt_facts, or a TEMP table for an older file read-only.
FACTS_TABLE = """
CREATE TABLE {name} (
    run_id TEXT NOT NULL, attempt_id INTEGER NOT NULL, trial_id TEXT NOT NULL, attempt_no INTEGER NOT NULL,
    seq INTEGER NOT NULL, method TEXT NOT NULL, object_id TEXT NOT NULL, placement_id TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, duration_ms REAL, """ + ", ".join(f"time_{p}_s REAL" for p in PHASES) + """,
    source TEXT NOT NULL, success INTEGER, cause TEXT, q_robust REAL, robust INTEGER, robust_threshold REAL,
    detect_s REAL, error TEXT,
    PRIMARY KEY (run_id, method, source, object_id, attempt_id)
) WITHOUT ROWID"""


def _rewrite(forget: str, select: str) -> str:
    """Trigger body: delete the facts rows matching `forget`, then insert those of the attempts
    matching `select`. Never INSERT OR REPLACE: a writer's own conflict clause (OR IGNORE) would
    override it inside the trigger and leave a stale row."""
    return f"DELETE FROM attempt_facts WHERE {forget}; {INSERT_FACTS.format(name='attempt_facts', where=select)};"


def _child(attempt: str) -> str:
    """Body for a detection or outcome row of attempt `attempt` that changed."""
    return _rewrite(f"attempt_id = {attempt}", f"x.id = {attempt}")


FACTS_TRIGGERS = {
    "facts_attempt_insert": ("AFTER INSERT ON attempts", _rewrite("attempt_id = NEW.id", "x.id = NEW.id")),
    "facts_attempt_update": ("AFTER UPDATE ON attempts", _rewrite("attempt_id = OLD.id", "x.id = NEW.id")),
    "facts_attempt_delete": ("AFTER DELETE ON attempts", "DELETE FROM attempt_facts WHERE attempt_id = OLD.id;"),
    **{f"facts_{table}_{event.lower()}": (f"AFTER {event} ON {table}", body)
       for table in ("detections", "outcomes")
       for event, body in (("INSERT", _child("NEW.attempt_id")), ("DELETE", _child("OLD.attempt_id")),
                           ("UPDATE", _child("OLD.attempt_id") + " " + _child("NEW.attempt_id")))},
    # benchbot never changes these columns of trials and runs; a user who does keeps exact facts
    "facts_trial_update": ("AFTER UPDATE OF seq, method, object_id, placement_id ON trials",
                           _rewrite("run_id = OLD.run_id AND trial_id = OLD.trial_id",
                                    "x.run_id = NEW.run_id AND x.trial_id = NEW.trial_id")),
    "facts_run_update": ("AFTER UPDATE OF outcome_source ON runs",
                         _rewrite("run_id = OLD.run_id", "x.run_id = NEW.run_id")),
}


def _add_attempt_facts(conn: sqlite3.Connection) -> None:
    """v4 — attempt_facts (above), filled from the attempts already stored, and an index that
    lets the report count a run's trials per method, status and object without sorting."""
    rebuild_facts(conn)
    conn.execute("CREATE INDEX IF NOT EXISTS trials_counts ON trials (run_id, method, status, object_id, seq)")


def facts_intact(conn: sqlite3.Connection) -> bool:
    """attempt_facts and all its triggers are there. A tool that rebuilds a table (e.g.
    `sqlite-utils transform attempts`) drops that table's triggers with it; then the facts can go
    stale, so readers join the other tables instead and the next writer rebuilds them."""
    names = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type IN ('table', 'trigger')")}
    return {"attempt_facts", *FACTS_TRIGGERS} <= names


def rebuild_facts(conn: sqlite3.Connection) -> None:
    """(Re)create attempt_facts, its index and triggers, filled from the other tables (in the
    caller's transaction)."""
    for name in FACTS_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("DROP TABLE IF EXISTS attempt_facts")
    conn.execute(FACTS_TABLE.format(name="attempt_facts"))
    conn.execute("CREATE UNIQUE INDEX attempt_facts_attempt ON attempt_facts (attempt_id)")  # for the triggers
    conn.execute(INSERT_FACTS.format(name="attempt_facts", where="1"))
    _create_triggers(conn)


def _create_triggers(conn: sqlite3.Connection) -> None:
    for name, (when, body) in FACTS_TRIGGERS.items():
        conn.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW BEGIN {body} END")


@contextmanager
def facts_written_after(conn: sqlite3.Connection, run_id: str) -> Iterator[None]:
    """For a bulk copy of run `run_id` inside the caller's transaction: the facts triggers are off
    while it copies, then the run's facts are written in one statement and the triggers are back
    (three times faster for a large run). On an error the caller rolls back, triggers included."""
    for name in FACTS_TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    yield
    conn.execute("DELETE FROM attempt_facts WHERE run_id = :run", {"run": run_id})
    conn.execute(INSERT_FACTS.format(name="attempt_facts", where="x.run_id = :run"), {"run": run_id})
    _create_triggers(conn)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_script(V1), _script(V2), _add_perception,
                                                          _add_attempt_facts]
SCHEMA_VERSION = len(MIGRATIONS)

"""Results-database schema as a list of migrations. MIGRATIONS[i] takes version i to i + 1.

Never edit a released migration: append a new one (it runs inside the caller's transaction).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable

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

TABLES = ("meta", "runs", "trials", "attempts", "detections", "outcomes", "artifacts", "events", "files")
READER_TABLES = TABLES[:-1]  # what `report`/`runs` read: present since v1
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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_script(V1), _script(V2), _add_perception]
SCHEMA_VERSION = len(MIGRATIONS)

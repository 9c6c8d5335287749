"""attempt_facts (schema v4): the triggers keep it equal to the join it is defined by, whatever is
written and however; a v3 file reads the same without it (read-only) and after its migration."""
import sqlite3
from contextlib import closing

import pytest

from benchbot.results.merge import merge
from benchbot.results.report import build_report, render
from benchbot.results.schema import FACTS_COLUMNS, FACTS_SELECT, FACTS_TRIGGERS
from benchbot.results.store import Store
from tests.results.test_aggregate import make_run

ORDER = " ORDER BY run_id, attempt_id"


def facts(conn):
    return conn.execute(f"SELECT {', '.join(FACTS_COLUMNS)} FROM attempt_facts" + ORDER).fetchall()


def joined(conn):
    return conn.execute(f"SELECT * FROM ({FACTS_SELECT.format(where='1')})" + ORDER).fetchall()


def assert_in_step(path):
    with closing(sqlite3.connect(path)) as c:
        want = joined(c)
        assert want and facts(c) == want


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.db"
    with Store(path) as s:
        make_run(s, 3, run_id="r1")
        make_run(s, 4, run_id="r2")
    return path


def test_runs_recorded_through_the_store_have_their_facts(db):
    assert_in_step(db)
    with closing(sqlite3.connect(db)) as c:  # the run's outcome source stands in for a missing verdict
        no_outcome = c.execute("SELECT f.source FROM attempt_facts f LEFT JOIN outcomes o ON o.attempt_id = "
                               "f.attempt_id WHERE o.attempt_id IS NULL").fetchall()
        assert no_outcome and {r[0] for r in no_outcome} == {"simulated"}


@pytest.mark.parametrize("edit", [
    "UPDATE outcomes SET success = 1 - success, cause = 'edited' WHERE success IS NOT NULL",
    "UPDATE outcomes SET attempt_id = (SELECT MAX(id) FROM attempts WHERE id NOT IN (SELECT attempt_id FROM outcomes))"
    " WHERE attempt_id = (SELECT MIN(attempt_id) FROM outcomes)",
    "DELETE FROM outcomes WHERE attempt_id % 3 = 0",
    "DELETE FROM detections WHERE attempt_id % 2 = 0",
    "UPDATE detections SET q_robust = 0.25, robust = 0 WHERE q_robust > 0.5",
    "INSERT OR IGNORE INTO outcomes (attempt_id, source, success) SELECT id, 'operator', 1 FROM attempts",
    "INSERT OR REPLACE INTO outcomes (attempt_id, source, success) SELECT id, 'operator', 0 FROM attempts",
    "UPDATE attempts SET status = 'voided', timings = '{\"total\": 7}' WHERE status = 'final' AND id % 4 = 0",
    "UPDATE trials SET object_id = 'renamed', placement_id = 'p' WHERE seq % 5 = 0",
    "UPDATE runs SET outcome_source = 'operator' WHERE run_id = 'r2'",
])
def test_any_later_edit_keeps_the_facts_exact(db, edit):
    with closing(sqlite3.connect(db)) as c, c:
        assert c.execute(edit).rowcount > 0
    assert_in_step(db)


def test_deleting_attempts_deletes_their_facts(db):
    with closing(sqlite3.connect(db)) as c, c:
        c.execute("PRAGMA foreign_keys = ON")
        gone = [r[0] for r in c.execute("SELECT id FROM attempts WHERE run_id = 'r1'")]
        for table in ("detections", "outcomes", "artifacts"):
            c.execute(f"DELETE FROM {table} WHERE attempt_id IN ({','.join(map(str, gone))})")
        c.execute("DELETE FROM attempts WHERE run_id = 'r1'")
        assert not c.execute("SELECT COUNT(*) FROM attempt_facts WHERE run_id = 'r1'").fetchone()[0]
    assert_in_step(db)


def test_bad_timings_never_block_a_write(db):
    """A trigger that failed would fail the writer's transaction: the facts of malformed timings
    JSON or timestamps are NULL instead."""
    with closing(sqlite3.connect(db)) as c, c:
        c.execute("INSERT INTO attempts (run_id, trial_id, attempt_no, status, started_at, finished_at, timings) "
                  "SELECT run_id, trial_id, 9, 'voided', 'yesterday', 'now', '{not json' FROM trials LIMIT 1")
        row = c.execute("SELECT duration_ms, time_total_s FROM attempt_facts WHERE attempt_no = 9").fetchone()
        assert row == (None, None)
    assert_in_step(db)


def test_merge_and_export_targets_have_the_facts(db, tmp_path):
    other = tmp_path / "other.db"
    with Store(other) as s:
        make_run(s, 5, run_id="r3")
    merge([db, other], tmp_path / "all.db")
    assert_in_step(tmp_path / "all.db")
    with closing(sqlite3.connect(tmp_path / "all.db")) as c:
        assert c.execute("SELECT COUNT(DISTINCT run_id) FROM attempt_facts").fetchone()[0] == 3


def downgrade_to_v3(path):
    """The same file as the previous release (schema v3) wrote it: no facts table, triggers or index."""
    with closing(sqlite3.connect(path)) as c, c:
        for name in FACTS_TRIGGERS:
            c.execute(f"DROP TRIGGER {name}")
        c.execute("DROP TABLE attempt_facts")
        c.execute("DROP INDEX trials_counts")
        c.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def reports(path):
    with Store(path, readonly=True) as s:
        out = []
        for run in ("r1", "r2"):
            rep = build_report(s, run, by_object=True, details=True)
            out += [render(rep, fmt) for fmt in ("md", "json", "csv")]
        return out


def test_a_v3_file_reports_the_same_read_only_and_after_its_migration(db):
    want = reports(db)
    downgrade_to_v3(db)
    assert reports(db) == want  # read-only: the facts are joined into a TEMP table
    with closing(sqlite3.connect(db)) as c:
        assert not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'attempt_facts'").fetchone()  # untouched
    Store(db).close()  # a writer migrates
    assert_in_step(db)
    assert reports(db) == want


def test_facts_whose_triggers_a_tool_dropped_are_not_read_and_are_rebuilt(db):
    """`sqlite-utils transform` rebuilds a table and drops its triggers: later writes would leave
    the facts stale. Readers then join the other tables; the next writer rebuilds the facts."""
    import sqlite_utils

    want = reports(db)
    sqlite_utils.Database(db)["outcomes"].transform()  # a real tool; the outcomes triggers go
    with closing(sqlite3.connect(db)) as c, c:
        assert not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'facts_outcomes_update'").fetchone()
        c.execute("UPDATE outcomes SET success = 1 - success WHERE success IS NOT NULL")
        assert facts(c) != joined(c)  # stale
    edited = reports(db)  # read-only, from the join
    assert edited != want
    Store(db).close()  # a writer rebuilds the facts and their triggers
    assert_in_step(db)
    assert reports(db) == edited


def test_a_failed_copy_leaves_the_triggers_in_place(db, tmp_path, monkeypatch):
    """copy_run turns the triggers off for its bulk copy, inside its transaction: a copy that fails
    rolls that back too."""
    from benchbot.results import copyrun

    target = tmp_path / "t.db"
    conn = copyrun.open_target(target)

    def broken(dst, old, new):
        dst.execute(f"INSERT INTO main.runs SELECT * FROM src.runs WHERE run_id = '{old}'")
        raise RuntimeError("disk pulled")

    monkeypatch.setattr(copyrun, "_copy", broken)
    with pytest.raises(RuntimeError, match="disk pulled"):
        copyrun.copy_run(conn, db, "r1", "r1")
    conn.close()
    with closing(sqlite3.connect(target)) as c:
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert names == set(FACTS_TRIGGERS) and not c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from benchbot import cli
from benchbot.config.protocol import default_protocol_path, load_protocol
from benchbot.config.schedule import make_schedule
from benchbot.core.errors import BenchbotError
from benchbot.results import store as store_mod
from benchbot.results.store import (
    SCHEMA_VERSION,
    AttemptRecord,
    DetectionRecord,
    OutcomeRecord,
    RunInfo,
    Store,
    utc_now,
)


@pytest.fixture(scope="module")
def paper():
    return load_protocol(default_protocol_path())


@pytest.fixture(scope="module")
def schedule(paper):
    return make_schedule(paper)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "results.db"


@pytest.fixture
def st(db_path):
    s = Store(db_path)
    yield s
    s.close()


def info(run_id="run-1", created_at="2026-01-01T00:00:00.000+00:00", protocol_hash="abc", **kw):
    return RunInfo(run_id=run_id, created_at=created_at, protocol_name="gqstn-paper-2019",
                   protocol_hash=protocol_hash, protocol_path="protocols/paper.yaml", seed=2019,
                   backend="replay", outcome_source="simulated", git_sha="deadbeef", host="bench",
                   versions={"benchbot": "0.1"}, config={"camera": {"kind": "kinect2"}}, **kw)


def detection(method="gqstn", q=0.7, robust=True):
    return DetectionRecord(method, 100.0, 120.0, 0.3, 40.0, 0.68, 0.9, q, robust, 0.5, "gqcnn-4.0-pj",
                           0.01, 0.02, 0.012, 0.003, {"position_m": [0.4, 0.0, 0.1]})


def attempt(trial, no=1, status="final", success=True, run_id="run-1", artifacts=(), reason=None):
    out = OutcomeRecord("simulated", None if status == "aborted" else success, None)
    return AttemptRecord(run_id, trial.trial_id, no, status, utc_now(), utc_now(),
                         detection(trial.method), out, list(artifacts),
                         {"capture": 0.01, "detect": 0.012, "total": 3.0}, reason)


@contextmanager
def raw(path):
    """A plain sqlite3 connection that commits and closes."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def count(path, table):
    with raw(path) as c:
        return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_create_get_list(st, schedule):
    st.create_run(info(), schedule)
    got = st.get_run("run-1")
    assert got == info()
    assert st.get_run("nope") is None
    assert st.latest_run_id() == "run-1"
    [row] = st.list_runs()
    assert row["run_id"] == "run-1" and row["protocol"] == "gqstn-paper-2019"
    assert (row["trials"], row["done"], row["aborted"], row["pending"], row["voided"]) == (180, 0, 0, 180, 0)
    assert st.trials("run-1") == schedule
    assert [t.method for t in st.trials("run-1", method="mug")] == []
    assert all(t.method == "gqstn" for t in st.trials("run-1", method="gqstn"))
    assert len(st.trials("run-1", method="gqstn")) == 60


def test_duplicate_run_refused_and_create_is_atomic(st, db_path, schedule):
    st.create_run(info(), schedule)
    with pytest.raises(BenchbotError, match="already exists"):
        st.create_run(info(), schedule)
    with pytest.raises(sqlite3.IntegrityError):  # duplicate trial id in the schedule
        st.create_run(info("run-2"), schedule + schedule[:1])
    assert st.get_run("run-2") is None
    assert count(db_path, "trials") == 180


def test_record_final_voided_aborted(st, schedule, db_path):
    st.create_run(info(), schedule)
    t0, t1, t2 = schedule[:3]
    assert st.next_attempt_no("run-1", t0.trial_id) == 1
    st.record_attempt(attempt(t0, 1, "voided", reason="operator bumped the object"))
    assert st.trial_status("run-1", t0.trial_id) == "pending"
    assert st.next_attempt_no("run-1", t0.trial_id) == 2
    st.record_attempt(attempt(t0, 2, "final", artifacts=[("raw_depth", "r/a.npy"), ("overlay", "r/a.png")]))
    assert st.trial_status("run-1", t0.trial_id) == "done"
    st.record_attempt(attempt(t1, 1, "aborted", reason="camera fault"))
    assert st.trial_status("run-1", t1.trial_id) == "aborted"
    assert st.trial_status("run-1", t2.trial_id) == "pending"
    assert [t.trial_id for t in st.trials("run-1", pending_only=True)][:1] == [t2.trial_id]
    assert len(st.trials("run-1", pending_only=True)) == 178
    assert st.artifact_paths("run-1") == {"r/a.npy", "r/a.png"}
    [row] = st.list_runs()
    assert (row["done"], row["aborted"], row["pending"], row["voided"]) == (1, 1, 178, 1)
    assert count(db_path, "attempts") == 3


def test_duplicates_refused(st, schedule, db_path):
    st.create_run(info(), schedule)
    t0 = schedule[0]
    st.record_attempt(attempt(t0, 1))
    for status in ("final", "aborted", "voided"):
        with pytest.raises(BenchbotError, match="already done"):
            st.record_attempt(attempt(t0, 2, status))
    st.record_attempt(attempt(schedule[1], 1, "voided"))
    with pytest.raises(BenchbotError, match="already recorded"):  # same attempt number twice
        st.record_attempt(attempt(schedule[1], 1, "final"))
    with pytest.raises(BenchbotError, match="no trial"):
        st.record_attempt(attempt(schedule[2], 1, run_id="other-run"))
    assert count(db_path, "attempts") == 2
    # the database itself refuses a second counted attempt, even bypassing the Store
    with raw(db_path) as c, pytest.raises(sqlite3.IntegrityError):
        c.execute("INSERT INTO attempts (run_id, trial_id, attempt_no, status, started_at, "
                  "finished_at, timings) VALUES ('run-1', ?, 9, 'aborted', 'x', 'x', '{}')", [t0.trial_id])


def test_record_attempt_is_atomic(st, schedule, db_path, monkeypatch):
    st.create_run(info(), schedule)
    t0 = schedule[0]
    bad = attempt(t0, 1, artifacts=[("overlay", "ok.png"), (None, "broken")])  # NOT NULL fails last
    with pytest.raises(sqlite3.IntegrityError):
        st.record_attempt(bad)

    def boom(*a, **k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(Store, "_insert_children", boom)
    with pytest.raises(RuntimeError):
        st.record_attempt(attempt(t0, 1))
    for table in ("attempts", "detections", "outcomes", "artifacts"):
        assert count(db_path, table) == 0, table
    assert st.trial_status("run-1", t0.trial_id) == "pending"
    monkeypatch.undo()
    st.record_attempt(attempt(t0, 1))  # the store is still usable after the rollback
    assert st.trial_status("run-1", t0.trial_id) == "done"


def test_unfinished_runs_and_status(st, schedule):
    st.create_run(info("a", "2026-01-01T00:00:00+00:00"), schedule[:3])
    st.create_run(info("b", "2026-01-02T00:00:00+00:00", protocol_hash="other"), schedule[:3])
    st.create_run(info("c", "2026-01-03T00:00:00+00:00"), schedule[:3])
    assert st.unfinished_runs() == ["c", "b", "a"]
    assert st.unfinished_runs("abc") == ["c", "a"]
    st.set_run_status("c", "finished")
    st.set_run_status("a", "aborted")
    assert st.unfinished_runs("abc") == ["a"]  # aborted with pending trials can be resumed
    for t in schedule[:3]:
        st.record_attempt(attempt(t, run_id="a"))
    assert st.unfinished_runs("abc") == []  # nothing pending
    assert st.latest_run_id() == "c"
    assert st.get_run("a").status == "aborted"
    with pytest.raises(BenchbotError, match="no run"):
        st.set_run_status("zzz", "finished")
    with pytest.raises(ValueError):
        st.set_run_status("a", "paused")
    with pytest.raises(BenchbotError, match="no trial"):
        st.trial_status("a", "nope")


def test_tables_keep_unknowns_unknown(st, schedule):
    st.create_run(info(), schedule)
    t0, t1, t2 = schedule[:3]
    rec = attempt(t0)
    rec.detection.q_robust = float("nan")  # an evaluator that returned NaN: stored as unknown
    rec.detection.robust = None
    st.record_attempt(rec)
    st.record_attempt(attempt(t1, success=False))
    no_det = attempt(t2, status="aborted", reason="detector unavailable")
    no_det.detection = None
    st.record_attempt(no_det)
    tables = st.tables("run-1")
    assert len(tables["trials"]) == 180
    a = tables["attempts"].set_index("trial_id")
    assert a.loc[t0.trial_id, "q_robust"] != a.loc[t0.trial_id, "q_robust"]  # NaN (NULL)
    assert a["robust"].isna().loc[t0.trial_id]
    assert [None if v is pd.NA else v for v in a["success"]] == [True, False, None]  # by seq
    assert a.loc[t2.trial_id, "reason"] == "detector unavailable"
    assert a.loc[t0.trial_id, "time_total_s"] == 3.0
    assert a.loc[t0.trial_id, "method"] == t0.method
    assert tables["artifacts"].empty


def test_readonly_reads_while_a_writer_holds_a_transaction(st, db_path, schedule):
    st.create_run(info(), schedule)
    st.record_attempt(attempt(schedule[0]))
    st.conn.execute("BEGIN IMMEDIATE")  # a writer mid-trial
    st.conn.execute("UPDATE trials SET status = 'aborted' WHERE run_id = 'run-1'")
    with Store(db_path, readonly=True) as ro:
        assert ro.trial_status("run-1", schedule[1].trial_id) == "pending"  # sees committed state
        assert len(ro.tables("run-1")["attempts"]) == 1
        with pytest.raises(BenchbotError, match="read-only"):
            ro.set_run_status("run-1", "finished")
        # a second writer waits for the lock, then gives up with a clear error
        with Store(db_path, busy_timeout_s=0.05) as other, pytest.raises(BenchbotError, match="locked"):
            other.set_run_status("run-1", "finished")
    st.conn.rollback()
    assert st.get_run("run-1").status == "running"


def test_reopen_and_schema_version(db_path, schedule):
    with Store(db_path) as s:
        s.create_run(info(), schedule[:3])
    with Store(db_path) as s:  # reopening keeps everything
        assert s.get_run("run-1") is not None
    with raw(db_path) as c:
        assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    for ro in (False, True):
        with pytest.raises(BenchbotError, match="newer than this benchbot") as e:
            Store(db_path, readonly=ro)
        assert "upgrade benchbot" in e.value.fix


def test_older_schema_is_migrated(db_path, schedule, monkeypatch):
    with Store(db_path) as s:
        s.create_run(info(), schedule[:3])

    def add_operator_column(conn):
        conn.execute("ALTER TABLE runs ADD COLUMN operator TEXT")

    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS + [add_operator_column])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(db_path, readonly=True) as ro:  # readers read older schemas they understand...
        assert ro.get_run("run-1") is not None
    monkeypatch.setattr(store_mod, "READER_MIN_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(BenchbotError, match="older"):
        Store(db_path, readonly=True)  # ...and refuse the others: a reader never migrates
    with Store(db_path) as s:
        assert "operator" in s.db["runs"].columns_dict
        assert s.trials("run-1") == schedule[:3]
    with raw(db_path) as c:
        assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION + 1)


def test_bad_files(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some text" * 100)
    for ro in (False, True):
        with pytest.raises(BenchbotError, match="not a benchbot results database") as e:
            Store(junk, readonly=ro)
        assert "\n" not in e.value.one_line()
    other = tmp_path / "other.db"
    with raw(other) as c:
        c.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(BenchbotError, match="not a benchbot results database"):
        Store(other)
    with raw(other) as c:  # refused untouched
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["photos"]
    with pytest.raises(BenchbotError, match="not found"):
        Store(tmp_path / "missing.db", readonly=True)
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(BenchbotError, match="empty database"):
        Store(tmp_path / "empty.db", readonly=True)
    broken = tmp_path / "broken.db"
    Store(broken).close()
    with raw(broken) as c:
        c.execute("DROP TABLE artifacts")
    with pytest.raises(BenchbotError, match="lacks table"):
        Store(broken)
    nested = Store(tmp_path / "a" / "b" / "results.db")  # parent folders are created
    nested.close()


def test_a_new_database_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """A run killed while creating its database must not leave an empty file at --db (a reader
    would refuse it as 'holds no benchbot results')."""
    def killed(conn):
        raise KeyboardInterrupt
    monkeypatch.setattr(store_mod, "MIGRATIONS", [killed, *store_mod.MIGRATIONS[1:]])
    with pytest.raises(KeyboardInterrupt):
        Store(tmp_path / "r.db")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    Store(tmp_path / "r.db").close()
    assert [p.name for p in tmp_path.iterdir()] == ["r.db"]
    with Store(tmp_path / "r.db", readonly=True) as st:
        assert st.list_runs() == []


def test_events(st, schedule):
    st.create_run(info(), schedule[:3])
    st.record_event("run-1", "method_unavailable", "cannot import", method="gqstn")
    st.record_event("run-1", "resumed", "session 2")
    assert [(e["kind"], e["method"], e["message"]) for e in st.events("run-1")] == [
        ("method_unavailable", "gqstn", "cannot import"), ("resumed", None, "session 2")]
    assert len(st.events("run-1", "resumed")) == 1
    with pytest.raises(BenchbotError, match="no run"):
        st.record_event("nope", "resumed", "x")


def test_readonly_after_the_writer_closed(db_path, schedule):
    with Store(db_path) as s:
        s.create_run(info(), schedule[:3])
    assert not db_path.with_name(db_path.name + "-wal").exists()  # checkpointed on close
    with Store(db_path, readonly=True) as ro:
        assert len(ro.trials("run-1")) == 3


# ---------------------------------------------------------------- read-only media

@contextmanager
def read_only_view(folder):
    """`folder` as read-only media: a read-only bind mount (root ignores file permissions, so
    chmod alone would prove nothing), or, for a normal user, a folder without write permission."""
    view = folder.with_name(folder.name + "-ro")
    view.mkdir()
    ok = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode:
        subprocess.run(["umount", str(view)], capture_output=True)
        ok = False
    if ok:
        try:
            yield view
        finally:
            subprocess.run(["umount", str(view)], check=True)
        return
    if os.geteuid() == 0:
        pytest.skip("cannot make a read-only mount here, and root ignores file permissions")
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def _closed_wal_db(folder, schedule):
    folder.mkdir()
    with Store(folder / "r.db") as s:  # WAL mode; closing checkpoints and removes the -wal file
        s.create_run(info(), schedule[:3])
        s.record_attempt(attempt(schedule[0]))
    return folder / "r.db"


def _copy_mid_run(src, dst, trial, with_shm):
    """dst/: a copy taken while a writer holds committed data in the -wal (not yet in the .db)."""
    with Store(src) as s:
        s.conn.execute("PRAGMA wal_autocheckpoint = 0")
        s.record_attempt(attempt(trial))
        dst.mkdir()
        for suffix in ("", "-wal") + (("-shm",) if with_shm else ()):
            shutil.copy(f"{src}{suffix}", dst / f"r.db{suffix}")


def test_a_wal_database_on_read_only_media_is_read(tmp_path, schedule, capsys, monkeypatch):
    db = _closed_wal_db(tmp_path / "src", schedule)
    (tmp_path / "usb").mkdir()
    shutil.copy(db, tmp_path / "usb" / "r.db")  # a finished run's database, copied
    _copy_mid_run(db, tmp_path / "copy", schedule[1], with_shm=True)
    _copy_mid_run(db, tmp_path / "copy-no-shm", schedule[2], with_shm=False)
    with read_only_view(tmp_path / "usb") as usb:
        with Store(usb / "r.db", readonly=True) as ro:  # immutable: no -shm can be created there
            assert len(ro.tables("run-1")["attempts"]) == 1
        for command in (["runs"], ["report", "--format", "json"]):
            monkeypatch.setattr(sys, "argv", ["benchbot", *command, "--db", str(usb / "r.db")])
            cli.main()
            assert "run-1" in capsys.readouterr().out
        assert sorted(p.name for p in usb.iterdir()) == ["r.db"]
    with read_only_view(tmp_path / "copy") as copy:  # -wal and -shm there: the WAL's data is read
        with Store(copy / "r.db", readonly=True) as ro:
            assert len(ro.tables("run-1")["attempts"]) == 2
    with read_only_view(tmp_path / "copy-no-shm") as copy:  # immutable would miss the WAL's data: refused
        with pytest.raises(BenchbotError, match="committed data still in r.db-wal") as e:
            Store(copy / "r.db", readonly=True)
        assert "copy r.db and r.db-wal to a writable folder" in e.value.one_line()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_a_reader_without_write_permission_reads_a_wal_database(tmp_path, schedule, repo):
    """As another user (uid 65534) on a folder it cannot write: `runs` and `report` work."""
    shared = Path(tempfile.mkdtemp(prefix="benchbot-ro-"))  # pytest's tmp_path is private to root
    try:
        shared.chmod(0o755)
        db = _closed_wal_db(shared / "results", schedule)
        (shared / "results").chmod(0o555)
        db.chmod(0o444)
        for command in (["runs"], ["report", "--format", "json"]):
            out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                                  "-m", "benchbot.cli", *command, "--db", str(db)], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(repo), "HOME": "/tmp"}, timeout=120)
            assert out.returncode == 0 and "run-1" in out.stdout, out.stderr[-2000:]
        assert sorted(p.name for p in (shared / "results").iterdir()) == ["r.db"]
    finally:
        shutil.rmtree(shared, ignore_errors=True)

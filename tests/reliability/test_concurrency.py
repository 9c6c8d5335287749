"""`benchbot report` while a `benchbot run --sim` subprocess writes the same database: every
report parses, its numbers add up, and judged counts never go down. One poll lands while the
writer holds an attempt's transaction open: the reader is not blocked and sees none of it."""
from __future__ import annotations

import json
import sys
import time

import pytest

from benchbot import cli


def _report(db, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchbot", "report", "--db", str(db), "--format", "json"])
    try:
        cli.main()
    except SystemExit as e:  # before the run's first commit: no database / no run yet
        assert e.code == 2, capsys.readouterr().err
        capsys.readouterr()
        return None
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["table_ii"]
    assert row["judged"] + row["pending"] + row.get("aborted", 0) == row["scheduled"], row
    return row


@pytest.mark.slow
def test_report_reads_consistent_numbers_while_a_run_writes(tmp_path, rel, capsys, monkeypatch):
    proto = rel.write_protocol(tmp_path, objects=rel.ALL_OBJECTS, trials=8)
    db = tmp_path / "r.db"
    args = ["run", "--sim", "-p", str(proto), "--db", "r.db", "--results", "res", "--no-robustness"]
    # the 5th attempt's transaction stays open 2 s, mid-run
    s = rel.Session.start(tmp_path, args, phase="write-db", nth=5, hold_s=2.0, tag="run")
    judged: list[int] = []
    in_transaction = None
    while s.proc.poll() is None:
        row = _report(db, capsys, monkeypatch)
        if row is not None:
            judged.append(row["judged"])
        if in_transaction is None and "@@IN-PHASE write-db@@" in s.text():
            in_transaction = _report(db, capsys, monkeypatch)
        time.sleep(0.05)
    assert s.wait() == 0, s.text()[-2000:]
    final = _report(db, capsys, monkeypatch)
    judged.append(final["judged"])
    with capsys.disabled():
        print(f"\n[concurrency] {len(judged)} reports during the run, judged {judged[0]} → {judged[-1]}, "
              f"never decreasing: {judged == sorted(judged)}")
    assert len(judged) >= 4
    assert judged == sorted(judged), "a report saw fewer judged trials than an earlier one"
    assert final["judged"] == final["scheduled"] == 48 and final["pending"] == 0
    assert in_transaction is not None and in_transaction["judged"] == 4  # the open 5th attempt is invisible


def test_second_run_on_the_same_db_is_refused_while_the_first_runs(tmp_path, rel, capsys, monkeypatch):
    proto = rel.write_protocol(tmp_path, objects=rel.ALL_OBJECTS, trials=2)
    args = ["run", "--sim", "-p", str(proto), "--db", "r.db", "--results", "res", "--no-robustness"]
    s = rel.Session.start(tmp_path, args, phase="detect", nth=2, hold_s=60.0, tag="first")
    assert s.next_event() == ("phase", "detect")
    before = rel.tree_hash(tmp_path / "r.db", tmp_path / "res")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["benchbot", *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    err = capsys.readouterr().err.strip()
    s.kill()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "in use by a running benchbot" in err, err
    assert rel.tree_hash(tmp_path / "r.db", tmp_path / "res") == before

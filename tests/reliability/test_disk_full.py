"""The disk fills up in the middle of a `benchbot run --sim`: one-line error, exit 2, no half-written
file, nothing of the attempt cut short left behind, every committed attempt kept; a resume after
space is freed completes the schedule."""
from __future__ import annotations

import errno
import os


def test_disk_full_while_writing_an_artifact(tmp_path, rel, run_cli, monkeypatch):
    proto = rel.write_protocol(tmp_path, trials=2)
    db, res = tmp_path / "r.db", tmp_path / "res"
    args = ["run", "--sim", "-p", str(proto), "--db", str(db), "--results", str(res), "--no-robustness"]
    from benchbot.harness import artifacts

    real_fsync, calls = os.fsync, [0]

    def fsync(fd):  # the 8th artifact write (3rd attempt's 2nd file) finds the disk full
        calls[0] += 1
        if calls[0] == 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    with monkeypatch.context() as m:
        m.setattr(artifacts.os, "fsync", fsync)
        code, _, err = run_cli(args)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "No space left on device" in lines[0] and " — fix: " in lines[0], err
    assert "Traceback" not in err
    assert not list(res.rglob("*.tmp"))
    figures = rel.check_consistency(db, res)
    on_disk = {p.relative_to(res).as_posix() for p in res.rglob("*") if p.is_file()}
    from benchbot.results.store import Store

    with Store(db, readonly=True) as store:
        known = set().union(*(store.artifact_paths(r["run_id"]) for r in store.list_runs()))
    assert on_disk == known, "files of the dropped attempt were left behind"
    assert figures["done"] == 2 and figures["pending"] == 4
    code, _, err = run_cli(args)  # space freed: resume
    assert code == 0, err
    done = rel.check_consistency(db, res, complete=True)
    rel.assert_kept(figures["attempts"], done["attempts"])

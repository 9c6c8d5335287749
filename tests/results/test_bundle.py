"""export → merge → report: the tables come back exactly; bundles are checksummed; run-id clashes
are refused or renamed deterministically with provenance; nothing is half-written."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from benchbot.core.errors import BenchbotError
from benchbot.results.bundle import export_run, read_bundle
from benchbot.results.merge import merge
from benchbot.results.report import build_report, render
from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "benchbot.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def tables(db, run_id):
    with Store(db, readonly=True) as store:
        rep = build_report(store, run_id, by_object=True, compare_paper=True)
    return rep


def assert_same_tables(a, b):
    for name in ("table", "by_object", "comparisons", "object_effects"):
        x, y = getattr(a, name).drop(columns=[], errors="ignore"), getattr(b, name)
        assert x.equals(y), name
    assert render(a, "csv") == render(b, "csv").replace(b.run.run_id, a.run.run_id)


@pytest.fixture(scope="module")
def bundle(sim_results, tmp_path_factory):
    db, results, run_id, proto = sim_results
    out = tmp_path_factory.mktemp("bundle") / "run.zip"
    proc = cli("export", run_id, "-o", out, "--db", db, "--results", results)
    assert proc.returncode == 0, proc.stderr
    return out


def test_bundle_contents_and_checksums(bundle, sim_results, tmp_path):
    db, results, run_id, proto = sim_results
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        sums = z.read("SHA256SUMS").decode()
        for f in manifest["files"]:
            assert hashlib.sha256(z.read(f["path"])).hexdigest() == f["sha256"]
            assert f"{f['sha256']}  {f['path']}" in sums
    with Store(db, readonly=True) as store:
        arts = store.artifact_paths(run_id)
    assert {f"artifacts/{a}" for a in arts} <= names and len(arts) == 54
    assert {"runs.db", "report.html", "report.md", "report.json", "versions.json", "protocol/protocol.yaml",
            "protocol/objects.yaml", "manifest.json", "SHA256SUMS"} <= names
    assert manifest["run_id"] == run_id and manifest["missing"] == []
    html = zipfile.ZipFile(bundle).read("report.html").decode()
    assert html.count("data:image/png;base64,") >= 10  # the report's gallery from the bundled artifacts
    # the bundled database holds that run alone, with the same tables
    read_bundle(bundle, tmp_path / "x")
    with Store(tmp_path / "x" / "runs.db", readonly=True) as store:
        assert [r["run_id"] for r in store.list_runs()] == [run_id]
    assert_same_tables(tables(db, run_id), tables(tmp_path / "x" / "runs.db", run_id))


def test_export_merge_report_reproduces_the_tables(bundle, sim_results, tmp_path):
    db, results, run_id, proto = sim_results
    other = tmp_path / "other.db"
    shutil.copyfile(db, other)  # a second cell with the same run id: renamed on merge
    proc = cli("merge", bundle, other, "-o", tmp_path / "all.db", "--on-clash", "rename", "--results", tmp_path / "res")
    assert proc.returncode == 0, proc.stderr
    renamed = f"{run_id}-other"
    assert f"{renamed} (renamed from {run_id})" in proc.stderr
    original = tables(db, run_id)
    assert_same_tables(original, tables(tmp_path / "all.db", run_id))
    assert_same_tables(original, tables(tmp_path / "all.db", renamed))
    with Store(tmp_path / "all.db", readonly=True) as store:
        events = [json.loads(e["message"]) for e in store.events(renamed, "merged_from")]
        paths = store.artifact_paths(run_id)
    assert events[0]["source_run_id"] == run_id and events[0]["renamed"] is True
    assert events[0]["source_sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert all((tmp_path / "res" / p).is_file() for p in paths)  # the bundle's artifacts, under their paths
    md_before = cli("report", "--db", db, "--run", run_id, "--by-object").stdout
    md_after = cli("report", "--db", tmp_path / "all.db", "--run", run_id, "--by-object").stdout
    assert md_before == md_after


def test_clash_is_refused_by_default_and_nothing_is_written(sim_results, tmp_path):
    db = sim_results[0]
    proc = cli("merge", db, db, "-o", tmp_path / "all.db")
    assert proc.returncode == 2 and "is in both" in proc.stderr and "--on-clash rename" in proc.stderr
    assert not (tmp_path / "all.db").exists() and list(tmp_path.iterdir()) == []


def test_rename_is_deterministic(sim_results, tmp_path):
    db, _, run_id, _ = sim_results
    a = merge([db, db, db], tmp_path / "a.db", on_clash="rename")
    b = merge([db, db, db], tmp_path / "b.db", on_clash="rename")
    assert [m.new_run_id for m in a] == [m.new_run_id for m in b] == [run_id, f"{run_id}-r", f"{run_id}-r-2"]
    with pytest.raises(BenchbotError, match="already exists"):
        merge([db], tmp_path / "a.db")


def test_the_run_log_and_its_rotated_backups_travel_checksummed(sim_results, tmp_path):
    db, results, run_id, proto = sim_results
    log = Path(results) / run_id / "run.log"
    assert log.is_file() and log.stat().st_size > 0  # the run wrote it
    rotated = log.with_name("run.log.1")
    rotated.write_text("older lines\n")
    (log.parent / "run.log.bak").write_text("not a run log\n")
    try:
        manifest = export_run(Path(db), run_id, tmp_path / "b.zip", Path(results))
    finally:
        rotated.unlink()
        (log.parent / "run.log.bak").unlink()
    listed = {f["path"]: f for f in manifest["files"]}
    assert {"logs/run.log", "logs/run.log.1"} <= set(listed) and "logs/run.log.bak" not in listed
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        assert z.read("logs/run.log.1") == b"older lines\n"
        assert f"{listed['logs/run.log']['sha256']}  logs/run.log" in z.read("SHA256SUMS").decode()
    out = read_bundle(tmp_path / "b.zip", tmp_path / "x")  # checksums verified on the way in
    assert (tmp_path / "x" / "logs" / "run.log").read_bytes() == log.read_bytes() and out["run_id"] == run_id


def test_tampered_bundle_is_refused(bundle, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data + b"x" if item.filename == "report.md" else data)
    with pytest.raises(BenchbotError, match="does not match its sha256"):
        merge([bad], tmp_path / "all.db")
    assert not (tmp_path / "all.db").exists()


def test_export_refuses_a_changed_protocol(sim_results, tmp_path):
    db, results, run_id, proto = sim_results
    changed = tmp_path / "protocol.yaml"
    changed.write_text(proto.read_text().replace("seed: 2019", "seed: 7"))
    with pytest.raises(BenchbotError, match="the file changed since"):
        export_run(db, run_id, tmp_path / "b.zip", results, changed)
    with pytest.raises(BenchbotError, match="not found"):
        export_run(db, run_id, tmp_path / "b.zip", results, tmp_path / "nope.yaml")
    assert not (tmp_path / "b.zip").exists()


def test_artifact_paths_from_a_database_cannot_escape(sim_results, tmp_path):
    import sqlite3

    db, results, run_id, _ = sim_results
    forged = tmp_path / "forged.db"
    shutil.copyfile(db, forged)
    with sqlite3.connect(forged) as c:
        c.execute("UPDATE artifacts SET path = '../../etc/passwd' WHERE id = 1")
    with pytest.raises(BenchbotError, match="leaves the results folder"):
        export_run(forged, run_id, tmp_path / "b.zip", results)


def test_hardware_and_calibration_files_travel_and_missing_files_are_listed(sim_results, tmp_path):
    import sqlite3

    db, results, run_id, proto = sim_results
    hw = tmp_path / "hw.yaml"
    hw.write_text("robot: {kind: dryrun}\n")
    cal = tmp_path / "cal.yaml"
    cal.write_text("T_base_camera: []\n")
    copy = tmp_path / "hw.db"
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as c:
        config = json.loads(c.execute("SELECT config FROM runs").fetchone()[0])
        config.update(hardware=str(hw), calibration=str(cal))
        c.execute("UPDATE runs SET config = ?", [json.dumps(config)])
    partial = tmp_path / "res"
    shutil.copytree(results, partial)
    gone = next(partial.rglob("*_overlay.png"))
    gone.unlink()
    proc = cli("export", run_id, "-o", tmp_path / "b.zip", "--db", copy, "--results", partial)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: not found, not in the bundle: artifact: {gone.relative_to(partial).as_posix()}" in proc.stderr
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        assert z.read("hardware/hw.yaml") == hw.read_bytes() and z.read("hardware/cal.yaml") == cal.read_bytes()
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["missing"] == [f"artifact: {gone.relative_to(partial).as_posix()}"]

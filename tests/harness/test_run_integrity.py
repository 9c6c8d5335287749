"""The results folder belongs to its runs: clean-up on resume deletes only files the run journaled
and never committed; run ids are unique even for databases sharing one results folder; a resumed
run keeps its own seed for everything it renders."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.logs import RUN_LOG_NAME, is_run_log
from benchbot.harness import artifacts
from benchbot.harness import runner as runner_mod
from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store, check_run_id, new_run_id


def _cfg(tmp: Path, protocol: Path, db="r.db", **kw) -> RunConfig:
    return RunConfig(protocol_path=protocol, db_path=tmp / db, results_dir=tmp / "res", backend="replay",
                     evaluator="none", **kw)


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _known(db: Path, run_id: str) -> set[str]:
    with Store(db, readonly=True) as store:
        return store.artifact_paths(run_id)


def _cut_short(monkeypatch, after_files: int):
    """Make the next run behave as if killed right after its n-th artifact file was written: the
    attempt is neither committed nor cleaned up (what a SIGKILL leaves behind)."""
    written = [0]
    real_atomic = artifacts._atomic_write

    def atomic(path, data):
        real_atomic(path, data)
        written[0] += 1
        if written[0] == after_files:
            path.with_name(path.name + ".tmp").write_bytes(b"half")  # and a half-written next one
            raise KeyboardInterrupt  # a second Ctrl-C: the attempt is dropped here...

    monkeypatch.setattr(artifacts, "_atomic_write", atomic)
    monkeypatch.setattr(artifacts, "discard", lambda *a: None)  # ...and, as after a kill, not cleaned up


def test_resume_deletes_only_journaled_orphans_never_other_files(tmp_path, small_protocol, monkeypatch):
    first = Runner(_cfg(tmp_path, small_protocol, max_trials=2)).run()
    run_dir = tmp_path / "res" / first.run_id
    theirs = {  # files benchbot did not write: a user's notes, another tool's output, files beside results
        run_dir / "notes.txt": b"calibrated at 9:00",
        run_dir / "0000_extra" / "photo.png": b"\x89PNG",
        tmp_path / "res" / "README.md": b"lab results",
        tmp_path / "res" / "other-run" / "a1_raw.npy": b"not ours",
        tmp_path / "beside.txt": b"beside the results folder",
    }
    for p, data in theirs.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    with monkeypatch.context() as m:
        _cut_short(m, after_files=2)
        cut = Runner(_cfg(tmp_path, small_protocol)).run()
    assert cut.interrupted and cut.run_id == first.run_id
    orphans = {p for p in run_dir.rglob("*") if p.is_file() and p.name != RUN_LOG_NAME} - {tmp_path / "res" / k for k in
                                                                  _known(tmp_path / "r.db", first.run_id)} - set(theirs)
    assert len(orphans) == 3  # raw, inpainted and a half-written .tmp of the attempt cut short
    done = Runner(_cfg(tmp_path, small_protocol)).run()
    assert done.resumed and done.pending == 0
    known = _known(tmp_path / "r.db", first.run_id)
    on_disk = {p.relative_to(tmp_path / "res").as_posix() for p in (tmp_path / "res").rglob("*") if p.is_file()
               and not is_run_log(p.relative_to(tmp_path / "res"))}  # the run's log is no artifact, never cleaned up
    assert (run_dir / RUN_LOG_NAME).is_file()
    assert not list((tmp_path / "res").rglob("*.tmp"))  # the rerun attempt rewrote the others' paths, committed
    assert on_disk == known | {p.relative_to(tmp_path / "res").as_posix() for p in theirs if p.is_relative_to(
        tmp_path / "res")}
    for p, data in theirs.items():
        assert p.read_bytes() == data, f"{p} was touched"


def test_two_databases_sharing_a_results_folder_never_collide(tmp_path, small_protocol, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 25, 9, 15, 0, 123000, tzinfo=UTC)

    monkeypatch.setattr(runner_mod, "datetime", Frozen)  # both runs start in the same second
    a = Runner(_cfg(tmp_path, small_protocol, db="a.db", max_trials=1)).run()
    b = Runner(_cfg(tmp_path, small_protocol, db="b.db", max_trials=3)).run()
    assert a.run_id != b.run_id
    assert a.run_id.startswith("20261125-091500-") and b.run_id.startswith("20261125-091500-")
    b_files = _files(tmp_path / "res" / b.run_id)
    assert set(b_files) - {RUN_LOG_NAME} == {p.split("/", 1)[1] for p in _known(tmp_path / "b.db", b.run_id)}
    with monkeypatch.context() as m:  # a's next session is cut short, leaving orphans; then it resumes
        _cut_short(m, after_files=1)
        Runner(_cfg(tmp_path, small_protocol, db="a.db")).run()
    Runner(_cfg(tmp_path, small_protocol, db="a.db")).run()
    assert _files(tmp_path / "res" / b.run_id) == b_files, "a's resume touched b's files"
    again = Runner(_cfg(tmp_path, small_protocol, db="b.db")).run()
    assert again.resumed and again.pending == 0


def test_an_explicit_run_id_never_writes_into_another_runs_folder(tmp_path, small_protocol):
    Runner(_cfg(tmp_path, small_protocol, db="a.db", run_id="shared", max_trials=1)).run()
    before = _files(tmp_path / "res")
    with pytest.raises(BenchbotError, match="already exists"):
        Runner(_cfg(tmp_path, small_protocol, db="b.db", run_id="shared", max_trials=1)).run()
    assert _files(tmp_path / "res") == before
    assert not (tmp_path / "b.db").exists()  # refused before the database was created


def test_run_ids_sort_by_time_and_differ():
    t = datetime(2026, 11, 25, 9, 15, tzinfo=UTC)
    ids = {new_run_id("87a717ffee", t) for _ in range(200)}
    assert len(ids) == 200 and all(i.startswith("20261125-091500-87a717-") for i in ids)
    assert all(check_run_id(i) == i for i in ids)
    for bad in ("..", ".", "a/b", "a\\b", "x[/]", "", "-x", "a" * 65, "é", "a.b", "a b", "a\n"):
        with pytest.raises(BenchbotError, match="invalid run id"):
            check_run_id(bad)
    with pytest.raises(BenchbotError, match="invalid run id"):
        Store(":memory:").create_run(type("R", (), {"run_id": "../x", "status": "running"})(), [])


def test_a_resumed_mujoco_run_renders_with_its_own_seed(tmp_path, protocol_writer):
    pytest.importorskip("benchbot.sim.world")  # (sets MUJOCO_GL for headless rendering before mujoco loads)
    proto = protocol_writer(tmp_path, objects=("soup-can",), trials=2)
    seeds = []

    def spy(backend, loaded, cfg):
        wc = build_workcell(backend, loaded, cfg)
        seeds.append(wc.camera.seed)  # the depth-noise seed
        return wc

    cfg = dict(protocol_path=proto, db_path=tmp_path / "r.db", results_dir=tmp_path / "res", backend="mujoco",
               evaluator="none", max_trials=1, save_overlays=False)
    first = Runner(RunConfig(seed=5, **cfg), workcell_factory=spy).run()
    again = Runner(RunConfig(**cfg), workcell_factory=spy).run()
    assert again.resumed and again.run_id == first.run_id and again.finals == 1
    assert seeds == [5, 5]


def test_operator_prompts_print_names_from_user_files_as_text():
    import io

    from rich.console import Console

    from benchbot.harness.operator import ConsoleOperator

    buf = io.StringIO()
    op = ConsoleOperator(Console(file=buf, width=200), assume_yes=True)
    op.instruct("trial 1: place the [/]odd [bold]mug — shake the box")
    assert op.confirm("Object [red]placed[/] and hands clear?")
    text = buf.getvalue()
    assert "place the [/]odd [bold]mug" in text and "Object [red]placed[/] and hands clear?" in text


def test_a_run_in_a_worker_thread_runs_without_signal_handlers(tmp_path, small_protocol):
    import threading

    out = {}
    t = threading.Thread(target=lambda: out.setdefault("s", Runner(_cfg(tmp_path, small_protocol, max_trials=1)).run()))
    t.start()
    t.join(120)
    assert out["s"].finals == 1

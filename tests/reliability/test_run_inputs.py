"""The runner's own inputs (run ids, --seed, --threshold, --max-trials, --db, --results, a resumed
run's settings, scripted outcomes): every wrong value ends with ONE line `error: … — fix: …`,
exit 2, and the database, the results folder and the files beside them byte-for-byte unchanged.
Each case runs the real CLI in-process against a folder holding a partly-run benchmark."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "bench-1"


@pytest.fixture(scope="module")
def base_state(tmp_path_factory, rel):
    """state/: r.db with one unfinished --sim run (2 of 3 trials done, id bench-1), res/, a user's
    notes inside res/ and beside it."""
    from benchbot.harness.runner import RunConfig, Runner

    base = tmp_path_factory.mktemp("state")
    proto = rel.write_protocol(base, trials=1, name="p.yaml")
    Runner(RunConfig(protocol_path=proto, db_path=base / "r.db", results_dir=base / "res", backend="replay",
                     evaluator="none", max_trials=2, run_id=RUN_ID)).run()
    (base / "notes.txt").write_text("my lab notes\n")
    (base / "res" / "README.txt").write_text("results of the November session\n")
    return base


def _sim(*extra):
    return ["run", "--sim", "--no-robustness", *extra]


def _hw(state: Path, csv: bytes, *extra):
    hw = state.parent / "in" / "hw.yaml"
    hw.parent.mkdir(exist_ok=True)
    hw.write_text(yaml.safe_dump({"robot": {"kind": "dryrun"}, "gripper": {"kind": "dryrun"},
                                  "camera": {"kind": "replay"}}))
    path = state.parent / "in" / "outcomes.csv"
    path.write_bytes(csv)
    return ["run", "--hardware", str(hw), "--no-robustness", "--new", "--outcomes", str(path), *extra]


# id → (argv builder(state), text the error line must contain)
CASES = {
    "--run ..": (lambda s: _sim("--run", ".."), "invalid run id"),
    "--run .": (lambda s: _sim("--run", "."), "invalid run id"),
    "--run ../x": (lambda s: _sim("--run", "../x"), "invalid run id"),
    "--run a/b": (lambda s: _sim("--run", "a/b"), "invalid run id"),
    "--run absolute path": (lambda s: _sim("--run", str(s)), "invalid run id"),
    "--run with rich markup": (lambda s: _sim("--run", "x[/]"), "invalid run id 'x[/]'"),
    "--run empty": (lambda s: _sim("--run", ""), "invalid run id"),
    "--run 65 characters": (lambda s: _sim("--run", "a" * 65), "invalid run id"),
    "--run with a space": (lambda s: _sim("--run", "my run"), "invalid run id"),
    "report --run with rich markup": (lambda s: ["report", "--run", "x[/]"], "invalid run id"),
    "--threshold 7": (lambda s: _sim("--threshold", "7"), "--threshold 7"),
    "--threshold nan": (lambda s: _sim("--threshold", "nan"), "--threshold nan"),
    "--threshold -0.1": (lambda s: _sim("--threshold", "-0.1"), "--threshold"),
    "--max-trials -1": (lambda s: _sim("--max-trials", "-1"), "--max-trials -1"),
    "--max-trials 0": (lambda s: _sim("--max-trials", "0"), "--max-trials 0"),
    "--seed 2**70": (lambda s: _sim("--seed", str(2**70)), "out of range"),
    "--seed -1": (lambda s: _sim("--seed", "-1"), "out of range"),
    "--db under a regular file": (lambda s: _sim("--db", str(s / "notes.txt" / "r.db")), "is a file"),
    "--results is a regular file": (lambda s: _sim("--results", str(s / "notes.txt")), "is a file"),
    "--run of a replay run with --backend mujoco": (
        lambda s: ["run", "--backend", "mujoco", "--no-robustness", "--run", RUN_ID], "backend replay"),
    "--run with another --seed": (lambda s: _sim("--run", RUN_ID, "--seed", "99"), "seed"),
    "--run with another --threshold": (lambda s: _sim("--run", RUN_ID, "--threshold", "0.9"), "threshold"),
    "--run with another --recording": (
        lambda s: _sim("--run", RUN_ID, "--recording", str(REPO / "benchbot/data/recordings/kinect2_overhead")),
        "recording"),
    "outcomes CSV not UTF-8": (lambda s: _hw(s, b"soup-can/1/centroid,success\n\xff\xfe,failure\n"), "not UTF-8"),
    "outcomes CSV with a NUL byte": (lambda s: _hw(s, b"soup-can/1/centroid,succ\0ess\n"), "outcomes.csv"),
    "outcomes CSV missing trials": (lambda s: _hw(s, b"soup-can/1/centroid,success\n"), "no outcome for 2 trial(s)"),
    "outcomes CSV with only a redo": (
        lambda s: _hw(s, b"soup-can/1/centroid,success\nbanana/1/centroid,redo\nsponge/1/centroid,failure\n"),
        "no outcome for 1 trial(s)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_runner_input_exits_2_with_one_line_and_changes_nothing(case, tmp_path, base_state, rel, run_cli):
    state = tmp_path / "state"
    shutil.copytree(base_state, state, ignore=shutil.ignore_patterns("*.lock"))
    build, expected = CASES[case]
    argv = build(state)
    if "--db" not in argv:
        argv += ["--db", str(state / "r.db")]
    if argv[0] == "run":
        argv += ["-p", str(state / "p.yaml")] + ([] if "--results" in argv else ["--results", str(state / "res")])
    before = rel.tree_hash(tmp_path)
    code, _, err = run_cli(argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err[-3000:]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: ") and " — fix: " in lines[0], err
    assert expected in lines[0], err
    assert rel.tree_hash(tmp_path) == before, "a file changed, appeared or disappeared"


def _poison(db: Path, run_id: str, new_id: str) -> None:
    """What an older benchbot let through: a run whose id holds rich markup."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA foreign_keys = OFF")
    for table in ("runs", "trials", "attempts", "events", "files"):
        c.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", [new_id, run_id])
    c.commit()
    c.close()


def test_ids_and_names_from_the_database_are_printed_as_text(tmp_path, base_state, run_cli, monkeypatch):
    """A database holding an id with rich markup (made by an older benchbot) still lists, reports
    and runs: ids are never read as markup, and a new run is started beside the odd one."""
    state = tmp_path / "state"
    shutil.copytree(base_state, state, ignore=shutil.ignore_patterns("*.lock"))
    _poison(state / "r.db", RUN_ID, "x[/]y")
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = run_cli(["runs", "--db", str(state / "r.db")])
    assert code == 0 and "x[/]y" in out, err[-3000:]
    code, out, err = run_cli(["report", "--db", str(state / "r.db")])
    assert code == 0 and "x[/]y" in out, err[-3000:]
    code, _, err = run_cli(["run", "--sim", "--no-robustness", "-p", str(state / "p.yaml"), "--db", str(state / "r.db"),
                            "--results", str(state / "res")])
    assert code == 0 and "Traceback" not in err, err[-3000:]
    assert "x[/]y" not in " ".join(p.name for p in (state / "res").iterdir())

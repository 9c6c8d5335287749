"""CLI fuzz test (issue 13's acceptance). Hypothesis drives every command in-process through
`benchbot.cli.main` (its error handling included) with mutated and garbage versions of its input
files (protocol, objects, intrinsics, frames, weights, GQ-CNN releases, hardware, outcomes CSV)
and of its options (NaN/inf, huge and negative numbers, markup, path-like ids, wrong types).

Every example asserts: exit code 0 or 2 (doctor: also 1, its documented "a check failed"), never a
traceback, a refusal is one `error: … — fix: …` line (or Typer's usage error), and after a refusal
the results database and folder are byte-identical, no output file was written, and the working
directory stays empty. Reproducible in CI: derandomized, no example database, no deadline.
Commands that would serve or compute for minutes (emulators, bench, datagen, train) are fuzzed
with at least one invalid value, so they must refuse before starting.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchbot import cli
from tests.reliability.fuzz_inputs import (
    CLI_TEXT,
    MARKUP,
    NUMBERS,
    PATHISH,
    dump_json,
    file_bytes,
    frame_file,
    npy_bytes,
    weights_file,
    write_tiny_release,
)

REPO = Path(__file__).resolve().parents[2]
REC = REPO / "benchbot" / "data" / "recordings" / "default"
WEIGHTS = REPO / "benchbot" / "data" / "weights"
DRY_KINDS = {"dryrun", "replay"}  # devices that need no network or hardware


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


@dataclass
class World:
    root: Path
    state: Path  # a results DB + folder holding an unfinished run (copied for every example)
    rel: ModuleType
    protocol: dict
    objects: dict
    hardware: dict
    intrinsics: dict
    frame_m: np.ndarray
    release: Path
    dataset: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory, rel_module) -> World:
    root = tmp_path_factory.mktemp("fuzz")
    state = rel_module.write_partial_run(root / "state")
    protocol = yaml.safe_load((state / "p.yaml").read_text()) | {"objects_file": "objects.yaml"}
    every = yaml.safe_load((REPO / "objects.yaml").read_text())["objects"]
    objects = {"objects": [o for o in every if o["id"] in protocol["objects"]]}
    from PIL import Image

    frame_m = np.asarray(Image.open(REC / "frames" / "00000.png"), np.float32) / 1000
    return World(root, state, rel_module, protocol, objects, {"name": "dry", "robot": {"kind": "dryrun"},
                 "gripper": {"kind": "dryrun"}, "camera": {"kind": "replay"}},
                 yaml.safe_load((REC / "intrinsics.yaml").read_text()), frame_m, write_tiny_release(root / "release"),
                 _dataset(root / "ds"))


def _dataset(folder: Path) -> Path:
    from tests.train.conftest import make_dataset

    return make_dataset(folder, n_images=6)


# ---------------------------------------------------------------- running one example

@contextlib.contextmanager
def sandbox(world: World):
    """A fresh copy of the results state, an input and an output folder, and an empty cwd."""
    with tempfile.TemporaryDirectory(dir=world.root) as tmp:
        d = Path(tmp)
        shutil.copytree(world.state, d / "state")
        for sub in ("in", "out", "cwd"):
            (d / sub).mkdir()
        with contextlib.chdir(d / "cwd"):
            yield d


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with mock.patch.object(sys, "argv", ["benchbot", *argv]), mock.patch.object(sys, "stdin", io.StringIO("")), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue()


def attempt(world: World, d: Path, argv: list[str], outputs: tuple[Path, ...] = (), allowed=(0, 2)) -> int:
    """Run one command; check the exit code, the message and that a refusal changed nothing."""
    before = world.rel.tree_hash(d / "state")
    code, text = run_cli(argv)
    assert "Traceback (most recent call last)" not in text, text
    assert code in allowed, f"exit {code}: {text[-3000:]}"
    if code not in (0, 1):
        errors = [ln for ln in text.splitlines() if ln.startswith("error: ")]
        usage = "Error: " in text and ("Usage: " in text or text.lstrip().startswith("Error: "))
        assert usage or (len(errors) == 1 and " — fix: " in errors[0]), text[-3000:]
        assert world.rel.tree_hash(d / "state") == before, f"a refused input changed the results: {text[-500:]}"
        written = [o for o in outputs if o.exists()]
        assert not written, f"refused, but wrote {written}"
    assert not list((d / "cwd").iterdir()), f"wrote into the working directory: {list((d / 'cwd').iterdir())}"
    return code


def put(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def db_args(d: Path) -> list[str]:
    return ["--db", str(d / "state" / "r.db"), "--results", str(d / "state" / "res")]


def sim(d: Path, protocol: Path, *extra: str) -> list[str]:
    return ["run", "--sim", "-p", str(protocol), *db_args(d), "--no-robustness", "--max-trials", "1", *extra]


def good_protocol(world: World, d: Path) -> Path:
    put(d / "in" / "objects.yaml", yaml.safe_dump(world.objects).encode())
    return put(d / "in" / "p.yaml", yaml.safe_dump(world.protocol).encode())


# ---------------------------------------------------------------- input files

@fuzz(60)
@given(data=st.data())
def test_protocol_and_objects_files(world, data):
    proto, objs = data.draw(file_bytes(world.protocol), "protocol"), data.draw(file_bytes(world.objects), "objects")
    command = data.draw(st.sampled_from(["validate", "validate --objects", "run"]))
    with sandbox(world) as d:
        p, o = put(d / "in" / "p.yaml", proto), put(d / "in" / "objects.yaml", objs)
        argv = {"validate": ["validate", str(p)], "validate --objects": ["validate", str(p), "--objects", str(o)],
                "run": sim(d, p)}[command]
        attempt(world, d, argv)


@fuzz(50)
@given(data=st.data())
def test_recording_intrinsics_and_frames(world, data):
    intr = data.draw(file_bytes(world.intrinsics), "intrinsics.yaml")
    suffix, frame = data.draw(frame_file(world.frame_m), "frame")
    meta = data.draw(st.one_of(st.none(), file_bytes({"camera_kind": "kinect2", "frame_notes": {"00000": "x"}},
                                                     dump_json)), "metadata.json")
    command = data.draw(st.sampled_from(["detect folder", "detect file", "run"]))
    with sandbox(world) as d:
        rec = d / "in" / "rec"
        put(rec / "intrinsics.yaml", intr)
        f = put(rec / "frames" / f"00000{suffix}", frame)
        if meta is not None:
            put(rec / "metadata.json", meta)
        overlay = d / "out" / "grasp.png"
        argv = {"detect folder": ["detect", str(rec), "-m", "centroid", "--no-robustness", "-o", str(overlay)],
                "detect file": ["detect", str(f), "--intrinsics", str(rec / "intrinsics.yaml"), "-m", "centroid",
                                "--no-robustness", "-o", str(overlay)],
                "run": sim(d, good_protocol(world, d), "--recording", str(rec))}[command]
        attempt(world, d, argv, (overlay,))


def _checkpoint(name: str) -> dict:
    import torch

    path = WEIGHTS / name
    return torch.load(path, map_location="cpu", weights_only=True)


@fuzz(40)
@given(data=st.data())
def test_weights_files(world, data):
    kind = data.draw(st.sampled_from(["gqstn", "multigrasp", "gqstn-sym8", "prop-gqcnn", "eval"]))
    record = _checkpoint({"multigrasp": "multigrasp/multigrasp.pt", "prop-gqcnn": "gqcnn_4.0_pj/gqcnn_4.0_pj.pt"}
                         .get(kind, "gqstn/gqstn.pt"))
    weights = data.draw(weights_file(record), "weights")
    with sandbox(world) as d:
        w = put(d / "in" / data.draw(st.sampled_from(["w.pt", "w.onnx", "w.npy", "[/]w.pt"])), weights)
        overlay = d / "out" / "grasp.png"
        if kind == "eval":
            argv = ["eval", "gqstn", "--data", str(world.dataset), "--weights", f"gqstn={w}", "--limit", "1",
                    "--no-baselines"]
        else:
            option = "model" if kind == "prop-gqcnn" else "weights"
            argv = ["detect", str(REC), "-m", kind, "--option", f"{option}={w}", "--no-robustness", "-o", str(overlay)]
            argv += ["--option", "num_candidates=50"] if kind == "prop-gqcnn" else []
        attempt(world, d, argv, (overlay,))


@fuzz(30)
@given(data=st.data())
def test_gqcnn_release_folders(world, data):
    target = data.draw(st.sampled_from(["config.json", "im_std.npy", "pose_mean.npy", "weights_npy",
                                        "model.ckpt.index"]))
    with sandbox(world) as d:
        rel = shutil.copytree(world.release, d / "in" / "release")
        if target == "config.json":
            import json

            put(rel / target, data.draw(file_bytes(json.loads((rel / target).read_text()), dump_json)))
        elif target == "weights_npy":
            tensor = data.draw(st.sampled_from(sorted((rel / target).iterdir())))
            _, content = data.draw(frame_file(np.load(tensor).astype(np.float32).reshape(-1, 1)))
            put(tensor, content)
        elif target == "model.ckpt.index":
            put(rel / target, data.draw(st.binary(max_size=300)))
        else:
            put(rel / target, npy_bytes(np.array(data.draw(st.sampled_from(NUMBERS)), np.float64)))
        out = d / "out" / data.draw(st.sampled_from(["c.pt", "c.txt", "[/]c.pt"]))
        attempt(world, d, ["gqcnn-convert", str(rel), str(out)], (out,))


def _real_devices(path: Path) -> bool:
    """True when the file is a valid hardware config naming a device that needs a network or hardware."""
    from benchbot.config.hardware import load_hardware
    from benchbot.core.errors import BenchbotError

    try:
        hw = load_hardware(path)
    except BenchbotError:
        return False
    return not {hw.robot.kind, hw.gripper.kind, hw.camera.kind} <= DRY_KINDS


@fuzz(30)
@given(data=st.data())
def test_hardware_files(world, data):
    hw_bytes = data.draw(file_bytes(world.hardware), "hardware")
    command = data.draw(st.sampled_from(["doctor", "run", "record"]))
    with sandbox(world) as d:
        hw = put(d / "in" / "hw.yaml", hw_bytes)
        if _real_devices(hw):
            return  # valid, but would reach for a robot on the network: not for a unit test
        csv = put(d / "in" / "out.csv",
                  b"".join(f"{o}/1/centroid,success\n".encode() for o in world.protocol["objects"]))
        rec = d / "out" / "rec"
        argv = {"doctor": ["doctor", "--hardware", str(hw)],
                "run": ["run", "--hardware", str(hw), "-p", str(good_protocol(world, d)), "--outcomes", str(csv),
                        "--yes", "--max-trials", "1", "--no-robustness", *db_args(d)],
                "record": ["record", "--hardware", str(hw), "--out", str(rec), "--frames", "1"]}[command]
        attempt(world, d, argv, (rec,), allowed=(0, 1, 2) if command == "doctor" else (0, 2))


OUTCOME_ROWS = [[f"{o}/1/centroid", "success"] for o in ("soup-can", "banana", "sponge")]


@fuzz(25)
@given(data=st.data())
def test_outcomes_csv(world, data):
    rows = data.draw(file_bytes(OUTCOME_ROWS, lambda r: "".join(",".join(map(str, x)) + "\n"
                                                                for x in (r if isinstance(r, list) else [[r]])
                                                                if isinstance(x, list)).encode()))
    with sandbox(world) as d:
        hw = put(d / "in" / "hw.yaml", yaml.safe_dump(world.hardware).encode())
        csv = put(d / "in" / "out.csv", rows)
        attempt(world, d, ["run", "--hardware", str(hw), "-p", str(good_protocol(world, d)), "--outcomes", str(csv),
                           "--yes", "--no-robustness", *db_args(d)])


@fuzz(10)
@given(text=st.sampled_from(MARKUP), where=st.sampled_from(["object name", "placement", "before_trial", "notes"]))
def test_user_text_in_protocol_and_objects_on_the_hardware_path(world, text, where):
    """Names and operator instructions are printed to the operator: as typed, never as markup."""
    protocol, objects = yaml.safe_load(yaml.safe_dump(world.protocol)), yaml.safe_load(yaml.safe_dump(world.objects))
    if where in ("placement", "before_trial"):
        protocol["operator"][where] = text if where == "placement" else [text]
    else:
        objects["objects"][0]["name" if where == "object name" else "notes"] = text
    with sandbox(world) as d:
        put(d / "in" / "objects.yaml", yaml.safe_dump(objects).encode())
        p = put(d / "in" / "p.yaml", yaml.safe_dump(protocol).encode())
        hw = put(d / "in" / "hw.yaml", yaml.safe_dump(world.hardware).encode())
        csv = put(d / "in" / "out.csv", "".join(f"{r[0]},{r[1]}\n" for r in OUTCOME_ROWS).encode())
        assert attempt(world, d, ["run", "--hardware", str(hw), "-p", str(p), "--outcomes", str(csv), "--yes",
                                  "--no-robustness", "--max-trials", "1", *db_args(d)]) == 0


# ---------------------------------------------------------------- command-line options

DETECTORS = ["centroid", "prop-gqcnn", "gqstn", "gqstn-sym8", "gqstn-fallback", "multigrasp"]
OPTION_NAMES = ["num_candidates", "policy", "seed", "max_width_m", "runtime", "bf16", "top_k", "margin_m", "weights",
                "device", "source_size", "threads", "symmetries", "normalise_view", "scorer", "classifier", "foo",
                "[/]"]


@fuzz(30)
@given(data=st.data())
def test_detect_command_line(world, data):
    method = data.draw(st.sampled_from([*DETECTORS, *MARKUP, ""]))
    options = data.draw(st.lists(st.tuples(st.sampled_from(OPTION_NAMES), CLI_TEXT), max_size=3))
    index = data.draw(st.sampled_from([0, 19, 20, -1, 10**30]))
    out_name = data.draw(st.sampled_from(["g.png", "g.PNG", "g.txt", "", "sub/g.png", "[/]g.png", ":x:.png",
                                          "f.npy/g.png"]))
    with sandbox(world) as d:
        put(d / "out" / "f.npy", b"a file, not a folder")
        overlay = d / "out" / out_name
        argv = ["detect", str(REC), "-m", method, "--index", str(index), "-o", str(overlay)]
        argv += [a for k, v in options for a in ("--option", f"{k}={v}")]
        argv += ["--option", "num_candidates=50"] if method == "prop-gqcnn" else []
        argv += data.draw(st.sampled_from([["--no-robustness"], []]))
        attempt(world, d, argv, (overlay,) if out_name not in ("", "f.npy/g.png") else ())


@fuzz(25)
@given(data=st.data())
def test_report_runs_and_threshold_options(world, data):
    command = data.draw(st.sampled_from(["report", "runs", "calibrate-threshold"]))
    db = data.draw(st.sampled_from(["state", "missing", "folder", "garbage", "under-file"]))
    run_id = data.draw(st.one_of(st.none(), CLI_TEXT))
    with sandbox(world) as d:
        put(d / "in" / "garbage.db", b"not sqlite" * 100)
        path = {"state": d / "state" / "r.db", "missing": d / "in" / "none.db", "folder": d / "state" / "res",
                "garbage": d / "in" / "garbage.db", "under-file": d / "in" / "garbage.db" / "r.db"}[db]
        argv = [command, "--db", str(path)]
        argv += ["--run", run_id] if run_id is not None and command != "runs" else []
        if command == "report":
            argv += ["--format", data.draw(st.sampled_from(["md", "csv", "latex", "json", "html", "docx", "[/]"]))]
            argv += data.draw(st.sampled_from([[], ["--by-object"], ["--compare-paper"]]))
        before = world.rel.tree_hash(d / "state")
        code = attempt(world, d, argv)
        if code == 0 and command != "calibrate-threshold":  # reading never writes
            assert world.rel.tree_hash(d / "state") == before


@fuzz(15)
@given(data=st.data())
def test_run_options(world, data):
    opts = data.draw(st.lists(st.sampled_from([
        ("--seed", st.sampled_from(["0", "-1", str(2**70), "nan", "7"])),
        ("--threshold", st.sampled_from(["0.5", "7", "nan", "-1", "inf"])),
        ("--max-trials", st.sampled_from(["1", "0", "-1", str(10**30)])),
        ("--run", st.sampled_from([*MARKUP, *PATHISH, "no-such-run"])),
        ("--method", st.sampled_from(["centroid", "gqstn", "[/]", ""])),
        ("--backend", st.sampled_from(["replay", "gazebo", "[/]", "hardware"])),
    ]), max_size=3, unique_by=lambda o: o[0]))
    flags = data.draw(st.sampled_from([[], ["--new"], ["--resume"], ["--new", "--resume"]]))
    with sandbox(world) as d:
        argv = ["run", "--sim", "-p", str(good_protocol(world, d)), *db_args(d), "--no-robustness", *flags]
        for name, values in opts:
            argv += [name, data.draw(values)]
        if "--max-trials" not in argv:
            argv += ["--max-trials", "1"]
        attempt(world, d, argv)


def _bad(ok: list[str], bad: list[str]):
    return ok, bad


# command → option → (values that may run, values that must be refused); one option gets a bad value
REFUSING = {
    ("bench", "perception"): {"--candidates": _bad(["10"], ["0", "-5", str(10**30)]),
                              "--repeats": _bad(["1"], ["0", "-1"])},
    ("bench", "gqcnn"): {"--n": _bad(["10"], ["0", "-1", str(10**9)]), "--repeats": _bad(["1"], ["0", "100000"])},
    ("bench", "models"): {"--repeats": _bad(["1"], ["0", "-3"]), "--threads": _bad(["1"], ["0", "-1", "100000"])},
    ("bench", "sim"): {"--trials": _bad(["1"], ["0", "-1"]), "--images": _bad(["1"], ["0"]),
                       "--workers": _bad(["1"], ["0"])},
    ("datagen",): {"--images": _bad(["1"], ["0", "-1"]), "--workers": _bad(["1"], ["0", "-2"]),
                   "--grasps-per-image": _bad(["5"], ["0"]), "--perturbations": _bad(["0"], ["-1"])},
    ("emulate", "gripper"): {"--time-scale": _bad(["1"], ["0", "-1", "nan", "inf"]),
                             "--port": _bad(["0"], ["-1", "70000"]),
                             "--object-width-m": _bad(["0.05"], ["nan", "-1", "5"]),
                             "--framing": _bad(["tcp"], ["[/]", "udp"])},
    ("emulate", "arm"): {"--time-scale": _bad(["1"], ["0", "nan", "inf", "-2"]),
                         "--table-z-m": _bad(["0"], ["nan", "inf", "99"])},
    ("train", "gqstn"): {"--batch-size": _bad(["2"], ["0", "-1"]), "--compress": _bad(["1"], ["0", "nan", "inf", "-1"]),
                         "--epochs": _bad(["1"], ["0", "-1"]), "--input-size": _bad(["32"], ["0", "7", str(10**6)]),
                         "--width": _bad(["4"], ["0", "100000"]), "--device": _bad(["cpu"], ["cuda:9", "[/]", "tpu"]),
                         "--preset": _bad(["small"], ["huge", "[/]"]), "--seed": _bad(["0"], ["-1", str(2**70)]),
                         "--view-m": _bad(["0.4"], ["nan", "-1", "0"]), "--refine": _bad(["0"], ["-1"])},
    ("calibrate",): {"--dpi": _bad(["100"], ["0", "-5", "100000"]), "--print-board": _bad(["b.png"], ["b.txt", "."])},
    ("record",): {"--frames": _bad(["1"], ["0", "-1"]), "--interval": _bad(["0"], ["nan", "-1", "inf", "1e9"]),
                  "--format": _bad(["png", "npy"], ["jpg", "[/]"])},
}


@fuzz(50)
@given(data=st.data())
def test_long_running_commands_refuse_bad_options_before_starting(world, data):
    command = data.draw(st.sampled_from(sorted(REFUSING)))
    options = REFUSING[command]
    bad = data.draw(st.sampled_from(sorted(options)))
    with sandbox(world) as d:
        argv = list(command)
        for name, (ok, wrong) in options.items():
            if name == bad or data.draw(st.booleans()):
                value = data.draw(st.sampled_from(wrong if name == bad else ok + wrong))
                argv += [name, str(d / "out" / value) if name == "--print-board" else value]
        if command == ("datagen",):
            argv.insert(1, str(d / "out" / "ds"))
        elif command[0] == "train":
            argv += ["--data", str(d / "in"), "--out", str(d / "out" / "t")]
        elif command == ("record",):
            argv += ["--hardware", str(put(d / "in" / "hw.yaml", yaml.safe_dump(world.hardware).encode())),
                     "--out", str(d / "out" / "rec")]
        outputs = tuple((d / "out").iterdir())
        assert attempt(world, d, argv) == 2
        assert tuple((d / "out").iterdir()) == outputs


@fuzz(25)
@given(command=st.sampled_from(["[not-a-command]", "validate", "runs", "report", "detect", "emulate"]),
       argv=st.lists(st.one_of(CLI_TEXT, st.sampled_from(["--db", "--run", "-o", "--option", "--x", "-", "--"])),
                     min_size=1, max_size=4))
def test_unknown_commands_and_stray_arguments(world, command, argv):
    with sandbox(world) as d:
        attempt(world, d, [command, *argv])

"""Bad input sweep: every case runs the real CLI (`benchbot.cli.main`, in-process) against a
results database and folder that already hold a partly-run benchmark, and must end with ONE line
`error: <problem> — fix: <fix>`, exit code 2, and the database and results folder byte-for-byte
unchanged (hashed before and after). The table in docs/safety.md lists them.
(tests/test_cli_errors.py covers 15 kinds of bad protocol/objects YAML; these are other inputs.)"""
from __future__ import annotations

import fcntl
import os
import pickle
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchbot import cli
from tests.reliability.fuzz_inputs import release_json, write_tiny_release

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REC = REPO / "benchbot" / "data" / "recordings" / "default"


# ---------------------------------------------------------------- builders of bad inputs

def _proto(tmp, rel, **over):
    return rel.write_protocol(tmp / "in", objects=("soup-can", "banana", "sponge"), trials=1, name="p.yaml", **over)


def _raw(tmp, name, text: str | bytes) -> Path:
    p = tmp / "in" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _recording(tmp, frame: np.ndarray | bytes | None = None, suffix=".npy", intrinsics: str | None | bool = True):
    """A copy of the shipped recording's intrinsics with one frame of our making."""
    rec = tmp / "in" / "rec"
    (rec / "frames").mkdir(parents=True, exist_ok=True)
    if intrinsics is True:
        shutil.copy(DEFAULT_REC / "intrinsics.yaml", rec / "intrinsics.yaml")
    elif isinstance(intrinsics, str):
        (rec / "intrinsics.yaml").write_text(intrinsics)
    path = rec / "frames" / f"00000{suffix}"
    if frame is None:
        shutil.copy(DEFAULT_REC / "frames" / "00000.png", rec / "frames" / "00000.png")
    elif isinstance(frame, bytes):
        path.write_bytes(frame)
    else:
        np.save(path, frame)
    return rec


def _good_depth():
    return np.full((480, 640), 0.7, np.float32)


def _npy_bytes(a):
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _png_bytes():
    return (DEFAULT_REC / "frames" / "00000.png").read_bytes()


def _sim(tmp, rel, rec=None, *extra):
    args = ["run", "--sim", "-p", str(_proto(tmp, rel))]
    if rec is not None:
        args += ["--recording", str(rec)]
    return args + list(extra)


def _detect(tmp, frame, *extra):
    return ["detect", str(frame), "-m", "centroid", "--no-robustness", "-o", str(tmp / "in" / "overlay.png"), *extra]


def _intr(**values) -> str:
    """The shipped recording's intrinsics.yaml with some `key: value` lines replaced."""
    text = (DEFAULT_REC / "intrinsics.yaml").read_text()
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        assert n == 1, key
    return text


def _bare(tmp, intrinsics: str, frame: bytes | None = None, *extra):
    """`detect` on a bare frame file with an --intrinsics file (the other way in besides a recording)."""
    intr = _raw(tmp, "i.yaml", intrinsics)
    f = _raw(tmp, "f.npy", frame if frame is not None else _npy_bytes(_good_depth()))
    return _detect(tmp, f, "--intrinsics", str(intr), *extra)


def _npz_bytes():
    import io

    buf = io.BytesIO()
    np.savez(buf, depth=_good_depth())
    return buf.getvalue()


RANDOM = np.random.default_rng(13).bytes(20_000)  # the same "random bytes" every run


def _eval_weights(tmp, name: str, content: bytes, models=("gqstn",)):
    w = _raw(tmp, "w.pt", content)
    return ["eval", *models, "--data", str(tmp / "in"), "--weights", f"{name}={w}"]


def _weights(tmp, content: bytes | object, name="w.pt"):
    import torch

    p = tmp / "in" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if content is None:  # no file at all
        p = p.with_name("missing.pt")
    elif isinstance(content, bytes):
        p.write_bytes(content)
    else:
        torch.save(content, p)
    return ["detect", str(DEFAULT_REC), "-m", "gqstn", "--option", f"weights={p}", "--no-robustness",
            "-o", str(tmp / "in" / "overlay.png")]


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {EXPLOIT_MARKER}",))


EXPLOIT_MARKER = Path("/tmp") / f"benchbot-pickle-ran-{os.getpid()}"


def _ckpt(kind="gqstn", **over):
    from benchbot.models import checkpoint

    rec = {"format": f"benchbot-{kind}", "version": checkpoint.VERSION, "kind": kind, "config": {},
           "state_dict": {"not_a_layer.weight": __import__("torch").zeros(3)}, "meta": {}}
    rec.update(over)
    return rec


def _hw(tmp, rel, **over):
    hw = rel.write_dryrun_hardware(tmp / "in", **over)
    return ["run", "--hardware", str(hw), "-p", str(_proto(tmp, rel)), "--yes"]


def _cal(tmp, rel, text):
    cal = _raw(tmp, "cal.yaml", text)
    return _hw(tmp, rel, calibration=str(cal))


GOOD_T = [[1, 0, 0, 0.45], [0, -1, 0, 0], [0, 0, -1, 0.7], [0, 0, 0, 1]]


def _cal_yaml(**over):
    d = {"T_base_camera": GOOD_T, "method": "park", "residual_mm": 1.0, "residual_deg": 0.1, "n_poses": 12,
         "created_at": "2026-11-25T09:00:00+00:00"}
    d.update(over)
    return yaml.safe_dump(d)


def _outcomes(tmp, rel, text):
    csv = _raw(tmp, "outcomes.csv", text)
    return ["run", "--hardware", str(rel.write_dryrun_hardware(tmp / "in")), "-p", str(_proto(tmp, rel)),
            "--outcomes", str(csv)]


# ---------------------------------------------------------------- the cases
# id → (builder(tmp, rel, state) → argv, text the error line must contain)

CASES = {
    # protocol / objects files (beyond tests/test_cli_errors.py)
    "protocol file is empty": (lambda t, r, s: ["run", "--sim", "-p", str(_raw(t, "p.yaml", ""))], "p.yaml"),
    "protocol is a folder": (lambda t, r, s: ["run", "--sim", "-p", str(t / "in")], "in"),
    "protocol not UTF-8": (lambda t, r, s: ["run", "--sim", "-p", str(_raw(t, "p.yaml", b"name: \xff\xfe\n"))],
                           "p.yaml"),
    "objects file missing": (lambda t, r, s: ["run", "--sim", "-p",
                                              str(_proto(t, r, objects_file=str(t / "nope.yaml")))],
                             "nope.yaml"),
    "zero trials per object": (lambda t, r, s: ["run", "--sim", "-p", str(_proto(t, r, trials_per_object=0))],
                               "trials_per_object"),
    # recording folders (run --sim --recording, detect)
    "recording folder missing": (lambda t, r, s: _sim(t, r, t / "in" / "no-rec"), "recording folder not found"),
    "recording without intrinsics": (lambda t, r, s: _sim(t, r, _recording(t, intrinsics=None)),
                                     "intrinsics file not found"),
    "intrinsics negative fx": (lambda t, r, s: _sim(t, r, _recording(t, _good_depth(), intrinsics=(
        DEFAULT_REC / "intrinsics.yaml").read_text().replace("fx: 525.0", "fx: -525.0"))), "fx"),
    "frame wrong dtype": (lambda t, r, s: _sim(t, r, _recording(t, np.ones((480, 640), np.int32))), "dtype int32"),
    "frame wrong shape": (lambda t, r, s: _sim(t, r, _recording(t, np.ones((480, 640, 3), np.float32))), "shape"),
    "frame size not the intrinsics'": (lambda t, r, s: _sim(t, r, _recording(t, np.ones((240, 320), np.float32))),
                                       "intrinsics say"),
    "frame all NaN": (lambda t, r, s: _sim(t, r, _recording(t, np.full((480, 640), np.nan, np.float32))),
                      "no valid depth"),
    "frame all zeros": (lambda t, r, s: _sim(t, r, _recording(t, np.zeros((480, 640), np.float32))),
                        "no valid depth"),
    "frame in millimetres as .npy": (lambda t, r, s: _sim(t, r, _recording(t, np.full((480, 640), 700.0, np.float32))),
                                     "wrong units"),
    "truncated .npy": (lambda t, r, s: _sim(t, r, _recording(t, _npy_bytes(_good_depth())[:1000])), "truncated"),
    "truncated .png": (lambda t, r, s: _sim(t, r, _recording(t, _png_bytes()[:2000], suffix=".png")), "truncated"),
    "detect: frame file missing": (lambda t, r, s: _detect(t, t / "in" / "none.npy"), "none.npy"),
    "detect: bare frame without intrinsics": (lambda t, r, s: _detect(t, _raw(t, "f.npy", _npy_bytes(_good_depth()))),
                                              "intrinsics"),
    "intrinsics cx NaN (bare frame)": (lambda t, r, s: _bare(t, _intr(cx=".nan")), "cx"),
    "intrinsics fx inf": (lambda t, r, s: _sim(t, r, _recording(t, _good_depth(), intrinsics=_intr(fx=".inf"))),
                          "fx"),
    "intrinsics zero focal length": (lambda t, r, s: _bare(t, _intr(fy="0")), "fy"),
    "intrinsics zero width": (lambda t, r, s: _bare(t, _intr(width="0")), "width"),
    "intrinsics negative height": (lambda t, r, s: _bare(t, _intr(height="-480")), "height"),
    "intrinsics principal point outside the image": (lambda t, r, s: _bare(t, _intr(cx="5000")), "principal point"),
    "intrinsics NaN table distance": (lambda t, r, s: _bare(t, _intr(table_distance_m=".nan")),
                                          "table_distance_m"),
    "frame is an .npz named .npy (recording)": (lambda t, r, s: _sim(t, r, _recording(t, _npz_bytes())),
                                                ".npz archive"),
    "frame is an .npz named .npy (bare)": (lambda t, r, s: _bare(t, _intr(), _npz_bytes()), ".npz archive"),
    "frame is random bytes": (lambda t, r, s: _bare(t, _intr(), RANDOM), "cannot read"),
    "frame all negative": (lambda t, r, s: _sim(t, r, _recording(t, -_good_depth())), "no valid depth"),
    # detect's command line
    "detect: unknown detector option": (lambda t, r, s: _detect(t, DEFAULT_REC, "--option", "foo=1"),
                                        "has no option 'foo'"),
    "detect: option of the wrong type": (lambda t, r, s: _detect(t, DEFAULT_REC, "-m", "prop-gqcnn", "--option",
                                                                 "num_candidates=many"), "num_candidates"),
    "detect: NaN option": (lambda t, r, s: _detect(t, DEFAULT_REC, "--option", "margin_m=nan"), "margin_m"),
    "detect: object option from text": (lambda t, r, s: _detect(t, DEFAULT_REC, "-m", "prop-gqcnn", "--option",
                                                                "scorer=1"), "cannot be set"),
    "detect: -o an existing folder": (lambda t, r, s: _detect(t, DEFAULT_REC, "-o", str(t)), "is a folder"),
    "detect: -o not a PNG": (lambda t, r, s: _detect(t, DEFAULT_REC, "-o", str(t / "in" / "o.txt")), ".png"),
    "detect: device without CUDA": (lambda t, r, s: _detect(t, DEFAULT_REC, "-m", "gqstn", "--option",
                                                            "device=cuda:7"), "cuda"),
    # weights files
    "weights random bytes": (lambda t, r, s: _weights(t, RANDOM), "not a readable"),
    "weights random bytes behind a zip header": (lambda t, r, s: _weights(t, b"PK\x03\x04" + RANDOM),
                                                 "not a readable"),
    "weights claim a huge network": (lambda t, r, s: _weights(t, _ckpt("gqstn", config={"backbone_width": 10**6})),
                                     "backbone_width"),
    "weights hold a NaN tensor": (lambda t, r, s: _weights(t, _ckpt("gqstn", state_dict={
        "x.weight": __import__("torch").tensor([float("nan")])})), "NaN"),
    "weights without a kind": (lambda t, r, s: _weights(t, {k: v for k, v in _ckpt("gqstn").items() if k != "kind"}),
                               "kind"),
    "eval --weights random bytes": (lambda t, r, s: _eval_weights(t, "gqstn", RANDOM), "not a readable"),
    "eval --weights for a model not evaluated": (lambda t, r, s: _eval_weights(t, "multigrasp", RANDOM),
                                                 "not evaluated"),
    "eval --weights for a detector without weights": (lambda t, r, s: _eval_weights(t, "centroid", RANDOM),
                                                      "no option 'weights'"),
    "gqcnn-convert: config.json random bytes": (lambda t, r, s: _release(t, {"config.json": RANDOM}), "config.json"),
    "gqcnn-convert: architecture of another kind": (lambda t, r, s: _release(t, {"config.json": b'{"gqcnn": []}'}),
                                                    "gqcnn"),
    "gqcnn-convert: im_height not a number": (lambda t, r, s: _release(t, {"config.json": release_json(
        im_height="big")}), "architecture"),
    "gqcnn-convert: std is an .npz": (lambda t, r, s: _release(t, {"im_std.npy": _npz_bytes()}), ".npz archive"),
    "gqcnn-convert: checkpoint index random bytes": (lambda t, r, s: _release(t, {"model.ckpt.index": RANDOM}),
                                                     "checkpoint"),
    "gqcnn-convert: weights of the wrong rank": (lambda t, r, s: _release(t, {
        "weights_npy/im_stream__conv1_1__conv1_1_weights.npy": _npy_bytes(np.ones(3, np.float32))}), "architecture"),
    "gqcnn-convert: output not .pt": (lambda t, r, s: _release(t, {}, out="converted.txt"), ".pt"),
    # other commands' options
    "calibrate --center not numbers": (lambda t, r, s: ["calibrate", "--hardware", str(r.write_dryrun_hardware(
        t / "in")), "--center", "a,b,c"], "--center"),
    "calibrate --dpi 0": (lambda t, r, s: ["calibrate", "--print-board", str(t / "in" / "b.png"), "--dpi", "0"],
                          "--dpi"),
    "bench gqcnn --n 0": (lambda t, r, s: ["bench", "gqcnn", "--n", "0"], "--n"),
    "bench models --threads 0": (lambda t, r, s: ["bench", "models", "--threads", "0"], "--threads"),
    "bench sim --trials -1": (lambda t, r, s: ["bench", "sim", "--trials", "-1"], "--trials"),
    "record --interval nan": (lambda t, r, s: ["record", "--hardware", str(r.write_dryrun_hardware(t / "in")),
                                               "--out", str(t / "in" / "rec"), "--interval", "nan"], "--interval"),
    "train --compress nan": (lambda t, r, s: ["train", "gqstn", "--data", str(t), "--out", str(t / "in" / "o"),
                                              "--compress", "nan"], "--compress"),
    "train --epochs 0": (lambda t, r, s: ["train", "gqstn", "--data", str(t), "--out", str(t / "in" / "o"),
                                          "--epochs", "0"], "--epochs"),
    "train --input-size 10**6": (lambda t, r, s: ["train", "gqstn", "--data", str(t), "--out", str(t / "in" / "o"),
                                                  "--input-size", "1000000"], "input_size"),
    "train --device cuda:9": (lambda t, r, s: ["train", "gqstn", "--data", str(t), "--out", str(t / "in" / "o"),
                                               "--device", "cuda:9"], "cuda"),
    "emulate arm --time-scale nan": (lambda t, r, s: ["emulate", "arm", "--time-scale", "nan"], "--time-scale"),
    "emulate gripper --time-scale inf": (lambda t, r, s: ["emulate", "gripper", "--port", "0", "--time-scale", "inf"],
                                         "--time-scale"),
    "emulate arm --host ''": (lambda t, r, s: ["emulate", "arm", "--host", ""], "not a loopback address"),
    "emulate arm on the lab network": (lambda t, r, s: ["emulate", "arm", "--host", "0.0.0.0"], "not a loopback"),
    "emulate gripper on the lab network": (lambda t, r, s: ["emulate", "gripper", "--port", "0", "--host",
                                                            "192.168.1.10"], "not a loopback address"),
    "protocol seed beyond 64 bits": (lambda t, r, s: ["validate", str(_proto(t, r, seed=2**70))], "seed"),
    "eval --limit 0": (lambda t, r, s: ["eval", "centroid", "--data", str(t), "--limit", "0"], "--limit"),
    # weights files
    "weights file missing": (lambda t, r, s: _weights(t, None), "does not exist"),
    "weights truncated": (lambda t, r, s: _weights(t, b"PK\x03\x04" + b"\0" * 100), "not a readable"),
    "weights pickled code": (lambda t, r, s: _weights(t, pickle.dumps(_Exploit())), "not a readable"),
    "weights of another model": (lambda t, r, s: _weights(t, _ckpt("multigrasp")), "benchbot-gqstn"),
    "weights wrong architecture": (lambda t, r, s: _weights(t, _ckpt("gqstn", config={"no_such_option": 1})),
                                   "config"),
    # hardware YAML
    "hardware unknown key": (lambda t, r, s: _hw(t, r, speed=1), "speed"),
    "hardware ur5 without host": (lambda t, r, s: _hw(t, r, robot={"kind": "ur5"}), "host"),
    "hardware unknown camera kind": (lambda t, r, s: _hw(t, r, camera={"kind": "webcam"}), "webcam"),
    "hardware drop pose outside workspace": (lambda t, r, s: _hw(t, r, drop_pose=[2, 0, 0.2, 3.14, 0, 0]),
                                             "drop_pose"),
    "hardware file missing": (lambda t, r, s: ["run", "--hardware", str(t / "in" / "hw-none.yaml"), "-p",
                                               str(_proto(t, r))], "hw-none.yaml"),
    # calibration files
    "calibration file missing": (lambda t, r, s: _hw(t, r, calibration=str(t / "in" / "cal-none.yaml")),
                                 "cal-none.yaml"),
    "calibration not a rigid transform": (lambda t, r, s: _cal(t, r, _cal_yaml(
        T_base_camera=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])), "T_base_camera"),
    "calibration with NaN": (lambda t, r, s: _cal(t, r, _cal_yaml(residual_mm=float("nan"))), "cal.yaml"),
    "calibration missing key": (lambda t, r, s: _cal(t, r, yaml.safe_dump({"T_base_camera": GOOD_T})), "method"),
    # results database
    "db is not SQLite": (lambda t, r, s: ["report", "--db", str(_raw(t, "x.db", "hello, not a database\n" * 50))],
                         "not a benchbot results database"),
    "db of another application": (lambda t, r, s: ["run", *(_sim(t, r)[1:]), "--db", str(_foreign_db(t))],
                                  "not a benchbot results database"),
    "db newer schema version": (lambda t, r, s: _schema(s, "999", ["runs", "--db", str(s / "r.db")]),
                                "newer than this benchbot"),
    "db schema version garbled": (lambda t, r, s: _schema(s, "v-two", ["report", "--db", str(s / "r.db")]),
                                  "no valid schema version"),
    "db in use by another run": (lambda t, r, s: _flock(s, _sim(t, r)), "in use by a running benchbot"),
    "db locked by another writer": (lambda t, r, s: _sqlite_lock(s, _sim(t, r, None, "--new")), "locked"),
    "db disk full": (lambda t, r, s: _disk_full(s, _sim(t, r, None, "--new")), "disk"),
    "db path is a folder": (lambda t, r, s: ["report", "--db", str(s / "res")], "no results database"),
    # command-line arguments
    "no backend chosen": (lambda t, r, s: ["run", "-p", str(_proto(t, r))], "no backend chosen"),
    "--new with --resume": (lambda t, r, s: _sim(t, r, None, "--new", "--resume"), "--new cannot be combined"),
    "method not in protocol": (lambda t, r, s: _sim(t, r, None, "--method", "gqstn"), "not in protocol"),
    "unknown backend": (lambda t, r, s: ["run", "--backend", "gazebo", "-p", str(_proto(t, r))], "gazebo"),
    "report unknown run": (lambda t, r, s: ["report", "--db", str(s / "r.db"), "--run", "no-such-run"],
                           "no-such-run"),
    "report unknown format": (lambda t, r, s: ["report", "--db", str(s / "r.db"), "--format", "docx"], "docx"),
    "outcomes CSV bad line": (lambda t, r, s: _outcomes(t, r, "soup-can/1/centroid,maybe\n"), "outcomes.csv"),
    "train unknown model": (lambda t, r, s: ["train", "resnet", "--data", str(t), "--out", str(t / "in" / "o")],
                            "unknown model kind"),
    "train multigrasp --coords": (lambda t, r, s: ["train", "multigrasp", "--data", str(t),
                                                   "--out", str(t / "in" / "o"), "--coords"], "GQ-STN option"),
    "train view without camera": (lambda t, r, s: ["train", "gqstn", "--data", str(_tiny_dataset(t)),
                                                   "--out", str(t / "in" / "o"), "--view-m", "0.4"],
                                  "records no camera"),
}


def _release(tmp, broken: dict[str, bytes], out="converted.pt"):
    """A tiny, convertible GQ-CNN release folder with some files replaced; gqcnn-convert on it."""
    rel = write_tiny_release(tmp / "in" / "release")
    for name, content in broken.items():
        (rel / name).write_bytes(content)
    return ["gqcnn-convert", str(rel), str(tmp / "in" / out)]


def _tiny_dataset(tmp) -> Path:
    from tests.train.conftest import make_dataset

    root = tmp / "in" / "ds"
    return root if root.exists() else make_dataset(root)


def _foreign_db(tmp) -> Path:
    p = tmp / "in" / "other.db"
    p.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        c.execute("INSERT INTO notes (text) VALUES ('mine')")
    c.close()
    return p


def _schema(state: Path, version: str, argv):
    c = sqlite3.connect(state / "r.db")
    c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [version])
    c.commit()
    c.close()
    return argv


HOLD: list = []  # resources held while the CLI runs (released by the test)


def _flock(state: Path, argv):
    fd = os.open(str(state / "r.db") + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    HOLD.append(lambda: os.close(fd))
    return argv + ["--db", str(state / "r.db"), "--results", str(state / "res")]


def _sqlite_lock(state: Path, argv):
    c = sqlite3.connect(state / "r.db", isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    HOLD.append(lambda: (c.rollback(), c.close()))
    HOLD.append(("busy", 0.3))  # seconds the CLI's Store waits for the lock
    return argv + ["--db", str(state / "r.db"), "--results", str(state / "res")]


def _disk_full(state: Path, argv):
    HOLD.append(("disk_full", True))
    return argv + ["--db", str(state / "r.db"), "--results", str(state / "res")]


# ---------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def base_state(tmp_path_factory, rel):
    """A results DB and folder holding one unfinished --sim run (2 of 3 trials done)."""
    return rel.write_partial_run(tmp_path_factory.mktemp("state"))


def _run_cli(argv, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchbot", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_changes_nothing(case, tmp_path, base_state, rel, capsys, monkeypatch):
    state = tmp_path / "state"
    shutil.copytree(base_state, state, ignore=shutil.ignore_patterns("*.lock"))
    build, expected = CASES[case]
    HOLD.clear()
    EXPLOIT_MARKER.unlink(missing_ok=True)
    argv = build(tmp_path, rel, state)
    if "--db" not in argv and argv[0] in ("run", "report", "runs"):
        argv += ["--db", str(state / "r.db")]
    if argv[0] == "run" and "--results" not in argv:
        argv += ["--results", str(state / "res")]
    for h in HOLD:
        if isinstance(h, tuple) and h[0] == "busy":
            from benchbot.results.store import Store

            monkeypatch.setattr(Store.__init__, "__kwdefaults__",
                                {"readonly": False, "busy_timeout_s": h[1], "_in_place": False})
        if isinstance(h, tuple) and h[0] == "disk_full":
            _simulate_full_disk(monkeypatch)
    before = rel.tree_hash(state)
    try:
        code, err = _run_cli(argv, capsys, monkeypatch)
    finally:
        for h in HOLD:
            if callable(h):
                h()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and " — fix: " in lines[0], err
    assert expected in lines[0], err
    assert rel.tree_hash(state) == before, "the results database or folder changed"
    assert not (tmp_path / "in" / "overlay.png").exists()
    assert not list((tmp_path / "in").glob("converted.*")), "gqcnn-convert wrote its output"
    assert not EXPLOIT_MARKER.exists(), "a pickled weights file ran code"


def _simulate_full_disk(monkeypatch):
    """Every write the CLI's SQLite connections attempt fails as SQLite fails on a full disk."""
    import sqlite3 as sq

    class FullDisk(sq.Connection):
        def execute(self, sql, *a):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "CREATE")):
                raise sq.OperationalError("database or disk is full")
            return super().execute(sql, *a)

    real = sq.connect
    monkeypatch.setattr(sq, "connect", lambda *a, **kw: real(*a, factory=FullDisk, **kw))


def test_the_sweep_has_at_least_30_distinct_inputs():
    assert len(CASES) >= 30

"""`benchbot eval --frames`: real recorded frames with object masks, per method."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.paths import RECORDINGS_DIR
from benchbot.core.types import Grasp
from benchbot.devices.cameras.recording import read_recording
from benchbot.models.robustness import load_evaluator
from benchbot.perception.inpaint import inpaint_frame
from benchbot.perception.workspace import prepare_frame, recording_workspace
from benchbot.train.eval_frames import (
    ROBOT_LABEL,
    _one,
    evaluate_frames,
    frames_acceptance,
    object_hulls,
    read_masks,
)

DEFAULT, KINECT = RECORDINGS_DIR / "default", RECORDINGS_DIR / "kinect2_overhead"


def test_shipped_masks_label_objects_and_robot():
    masks = read_masks(read_recording(DEFAULT))
    assert len(masks) == 20
    for i, m in enumerate(masks):
        objects = {int(v) for v in np.unique(m) if 0 < v < ROBOT_LABEL}
        assert objects == ({1} if i < 10 else {1, 2, 3, 4, 5, 6}) and (m == ROBOT_LABEL).sum() > 15000
        assert (m[400:, 150:200] == ROBOT_LABEL).mean() > 0.8  # a finger
    (k,) = read_masks(read_recording(KINECT))
    assert {int(v) for v in np.unique(k)} == {0, 1, 2, ROBOT_LABEL} and k[150:190, 195:230].any()


def test_hull_counts_the_inside_of_a_u_shape():
    m = np.zeros((40, 40), np.uint8)
    m[5:35, 5:10] = m[5:35, 30:35] = m[30:35, 5:35] = 1  # a U
    m[0:3, 0:40] = ROBOT_LABEL
    h = object_hulls(m)
    assert h[20, 20] == 1 and h[2, 20] == ROBOT_LABEL and h[20, 38] == 0


class Fixed:
    name = "fixed"

    def __init__(self, g):
        self.g = g

    def detect(self, frame):
        return self.g


def test_one_frame_outcomes():
    rec = read_recording(DEFAULT)
    seen = prepare_frame(inpaint_frame(rec.frame(0)), recording_workspace(rec))
    mask = object_hulls(read_masks(rec)[0])
    ev = load_evaluator()
    finger = _one(Fixed(Grasp(450.0, 170.0, 0.0, 40.0, 0.62)), seen, 0.01, ev, mask, ("default", 0))
    assert finger.on_robot and not finger.on_object and finger.detect_ms >= 10.0
    on = _one(Fixed(Grasp(200.0, 320.0, 0.3, 60.0, 0.63)), seen, 0.0, ev, mask, ("default", 0))
    assert on.on_object and not on.on_robot and 0.0 <= on.q <= 1.0
    off = _one(Fixed(Grasp(3.0, 320.0, 0.0, 60.0, 0.63)), seen, 0.0, ev, mask, ("default", 0))
    assert off.q is None and off.q_null_reason and not off.on_object


def test_evaluate_frames_tables_and_targets():
    table = evaluate_frames([DEFAULT, KINECT], ["gqstn", "multigrasp", "centroid"], limit=1)
    assert [r.n_frames for r in table.rows] == [2, 2, 2]
    by = {r.method: r for r in table.rows}
    assert by["gqstn"].on_object_pct == 100.0 and by["multigrasp"].on_robot_pct == 0.0  # fingers masked out
    md = table.to_markdown()
    assert "| gqstn | 2 |" in md and "kinect2_overhead:" in md and "load average" in md
    checks = frames_acceptance(table)
    assert checks["default: multigrasp never on the robot"] and checks["kinect2_overhead: gqstn on object ≥ 90 %"]


def test_cli(tmp_path):
    run = [sys.executable, "-m", "benchbot.cli", "eval"]
    out = subprocess.run(run + ["centroid", "--no-baselines", "--frames", str(KINECT)], capture_output=True, text=True)
    assert out.returncode == 0 and "| centroid | 1 |" in out.stdout and "Traceback" not in out.stderr
    both = subprocess.run(run + ["centroid", "--frames", str(KINECT), "--data", str(tmp_path)], capture_output=True,
                          text=True)
    assert both.returncode == 2 and both.stderr.startswith("error: give either --data")
    bare = tmp_path / "rec"
    shutil.copytree(KINECT, bare)
    shutil.rmtree(bare / "masks")
    missing = subprocess.run(run + ["centroid", "--frames", str(bare)], capture_output=True, text=True)
    assert missing.returncode == 2 and "object mask not found" in missing.stderr and "Traceback" not in missing.stderr


def test_missing_mask_is_a_one_line_error(tmp_path):
    bare = tmp_path / "rec"
    shutil.copytree(KINECT, bare)
    (bare / "masks" / "00000.png").write_bytes(b"")
    with pytest.raises(BenchbotError, match="cannot read the mask"):
        read_masks(read_recording(bare))
    shutil.rmtree(bare / "masks")
    with pytest.raises(BenchbotError, match="object mask not found"):
        read_masks(read_recording(bare))

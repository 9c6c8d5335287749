"""The shipped GQ-STN and MultiGrasp checkpoints load (weights_only) and detect on a frame of the
kind they were trained on (MuJoCo render, Kinect v2 intrinsics, 70 cm above the table)."""
from pathlib import Path

import pytest

from benchbot.config.protocol import default_protocol_path, load_protocol
from benchbot.core.types import Placement
from benchbot.detectors import load_detector
from benchbot.harness.runner import validate_grasp
from benchbot.perception.inpaint import inpaint_frame

WEIGHTS = Path(__file__).resolve().parents[2] / "benchbot" / "data" / "weights"


@pytest.fixture(scope="module")
def sim_frame():
    from benchbot.harness.cells.mujoco import make_physics_workcell

    cell = make_physics_workcell(load_protocol(default_protocol_path()), seed=3)
    try:
        cell.stage.place(Placement("soup-can/1", "soup-can", 11))
        return inpaint_frame(cell.camera.capture())
    finally:
        cell.close()


@pytest.mark.parametrize("name", ["gqstn", "multigrasp"])
def test_shipped_model_detects_a_valid_grasp(name, sim_frame):
    assert (WEIGHTS / name / f"{name}.pt").is_file() and (WEIGHTS / "MODEL_CARD.md").is_file()
    grasp = load_detector(name).detect(sim_frame)
    assert validate_grasp(grasp, sim_frame) is None
    assert abs(grasp.depth_m - 0.7) < 0.1  # near the table, 70 cm below the camera

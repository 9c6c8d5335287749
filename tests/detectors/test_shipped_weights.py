"""The shipped GQ-STN and MultiGrasp checkpoints load (weights_only) and detect on a real frame."""
from pathlib import Path

import pytest

from benchbot.cameras.recording import ReplayCamera
from benchbot.detectors import load_detector
from benchbot.harness.runner import validate_grasp
from benchbot.perception.inpaint import inpaint_frame

WEIGHTS = Path(__file__).resolve().parents[2] / "benchbot" / "data" / "weights"


@pytest.mark.parametrize("name", ["gqstn", "multigrasp"])
def test_shipped_model_detects_a_valid_grasp(name):
    assert (WEIGHTS / name / f"{name}.pt").is_file() and (WEIGHTS / "MODEL_CARD.md").is_file()
    frame = inpaint_frame(ReplayCamera().capture())
    grasp = load_detector(name).detect(frame)
    assert validate_grasp(grasp, frame) is None

"""The harness calls the typed interfaces only: what it used to probe with getattr/hasattr
(an operator's `review`/`uncovered`/current trial, a camera's recording) is part of Operator and
Camera, with defaults."""
import inspect

import numpy as np

from benchbot.core.interfaces import Camera, GraspPlan, Judgement, Operator, as_operator
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.devices.cameras.averaging import MedianCamera
from benchbot.devices.cameras.recording import write_recording
from benchbot.devices.cameras.replay import ReplayCamera
from benchbot.harness import attempt, runner
from benchbot.harness.cells import hardware
from benchbot.harness.operator import ScriptedOperator


def test_the_harness_does_not_probe_operators_or_cameras():
    for module in (runner, attempt, hardware):
        src = inspect.getsource(module)
        assert 'getattr(self.operator' not in src and 'hasattr(self.operator' not in src
        assert 'getattr(camera, "recording"' not in src


class _Plain(Operator):
    def __init__(self, yes: bool) -> None:
        self.yes, self.asked = yes, []

    def instruct(self, message):
        pass

    def confirm(self, message):
        self.asked.append(message)
        return self.yes

    def judge(self, summary):
        return Judgement("success", "operator")


def _plan() -> GraspPlan:
    return GraspPlan("r1", "t1", 1, 1, "centroid", "mug", 1, Grasp(10.0, 20.0, 0.0, 30.0, 0.7), None, None, {})


def test_operator_defaults_confirm_the_plan_and_cover_every_trial():
    op = _Plain(True)
    assert op.review(_plan()) == "go" and op.asked[0].startswith("Execute ")
    assert _Plain(False).review(_plan()) == "abort"
    assert op.uncovered(["a", "b"]) == [] and op.begin_trial("a") is None


def test_a_duck_typed_operator_is_adapted_and_keeps_its_own_methods():
    class Duck:
        def instruct(self, message):
            pass

        def confirm(self, message):
            return False

        def judge(self, summary):
            return Judgement("failure", "operator")

        def uncovered(self, trial_ids):
            return trial_ids[:1]

    op = as_operator(Duck())
    assert isinstance(op, Operator) and as_operator(op) is op
    assert op.review(_plan()) == "abort" and op.uncovered(["x", "y"]) == ["x"]
    scripted = ScriptedOperator({})
    assert as_operator(scripted) is scripted
    scripted.begin_trial("t7")
    assert scripted.current_trial == "t7"


def test_cameras_say_whether_they_replay_a_recording(tmp_path):
    folder = write_recording(tmp_path / "r", [DepthFrame(np.full((4, 4), 0.7, np.float32),
                                                         Intrinsics(10, 10, 1.5, 1.5, 4, 4))])
    replay = ReplayCamera(folder)
    assert replay.recording.folder == folder
    assert MedianCamera(replay, 3).recording is replay.recording  # the wrapper passes it through

    class Live(Camera):
        intrinsics = Intrinsics(10, 10, 1.5, 1.5, 4, 4)

        def capture(self):
            raise AssertionError

        def connect(self):
            pass

        def close(self):
            pass

        is_connected = True

    assert Live().recording is None

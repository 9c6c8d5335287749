"""Small typed interfaces every backend implements. The harness only knows these."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from benchbot.core.types import DepthFrame, Grasp, GraspPose, GripperStatus, Intrinsics, Placement, Pose


class Device(ABC):
    """A device the harness connects, uses and closes: `with device: ...` connects it (unless it
    already is) and always closes it. `close` is safe to call twice and after a failed connect."""

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    def __enter__(self) -> Self:
        if not self.is_connected:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Camera(Device):
    """Captures depth frames in metres. `capture` stamps `captured_at` with perf_counter().
    Drivers that open the device when built report connected from then on."""

    intrinsics: Intrinsics

    @abstractmethod
    def capture(self) -> DepthFrame: ...

    @property
    def recording(self) -> Any:
        """The recording a replaying camera plays (`devices.cameras.recording.Recording`: its frames,
        workspace and camera pose), None for a live camera."""
        return None


class Arm(Device):
    """A robot arm commanded with tool poses in the robot base frame. Every pose reaching an
    Arm has passed the harness's safety gate; backends may re-check but never skip."""

    @abstractmethod
    def home(self) -> None: ...

    @abstractmethod
    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None: ...

    @abstractmethod
    def current_pose(self) -> Pose: ...

    @abstractmethod
    def stop(self) -> None: ...

    @property
    def protective_stopped(self) -> bool:
        """True while the controller holds a protective stop (arms without one: never)."""
        return False

    def recover(self) -> None:
        """Clear a protective stop so the arm can move again (arms without one: nothing to do)."""


class Gripper(Device):
    """A parallel-jaw gripper (Robotiq 2F-85 or equivalent)."""

    @abstractmethod
    def activate(self) -> None: ...

    @abstractmethod
    def open(self, width_m: float) -> GripperStatus: ...

    @abstractmethod
    def grip(self, force: float = 1.0, speed: float = 1.0) -> GripperStatus:
        """Close until an object is detected or the jaws are fully closed."""

    @abstractmethod
    def status(self) -> GripperStatus: ...


@runtime_checkable
class Detector(Protocol):
    """A grasp detector plugin. `detect` gets an inpainted frame and returns one grasp."""

    name: str

    def detect(self, frame: DepthFrame) -> Grasp: ...


@runtime_checkable
class RobustnessEvaluator(Protocol):
    """A frozen classifier that gives P(robust) for a grasp on a frame."""

    name: str
    threshold: float

    def quality(self, frame: DepthFrame, grasp: Grasp) -> float: ...

    def qualities(self, frame: DepthFrame, grasps: Sequence[Grasp]) -> np.ndarray:
        """P(robust) per grasp (NaN where not scored): one pass for many grasps."""
        ...


@dataclass
class Execution:
    """What happened on the robot for one attempt."""

    grasp_pose: GraspPose | None
    gripper: GripperStatus | None
    lifted_m: float | None = None  # object height gain after the hold, when measurable (physics)
    log: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Judgement:
    """The verdict on one attempt. kind: success | failure | redo | abort."""

    kind: str
    source: str  # operator | physics | simulated | scripted
    cause: str | None = None  # slipped | missed | collision | dropped | other (failures)
    note: str | None = None


@runtime_checkable
class Stage(Protocol):
    """Puts the object of a trial slot in the workcell: the operator (real), a recorded frame
    (replay) or a seeded drop (physics). Also the outcome source for that backend."""

    outcome_source: str

    def place(self, placement: Placement) -> None: ...

    def prepare(self, frame: DepthFrame, grasp: Grasp, opening_m: float) -> None:
        """Just before the grasp is executed (emulated backends set up what the grasp will meet)."""
        ...

    def judge(self, placement: Placement, execution: Execution) -> Judgement | None:
        """The backend's own verdict, or None when a person must judge."""
        ...


@dataclass(frozen=True)
class GraspPlan:
    """What the operator is shown before the arm moves: the detected grasp of one attempt.
    `trial_no` counts from 1 in the run's schedule of `n_trials`; `overlay` is the overlay PNG
    (depth + grasp), absolute, or None when overlays are off."""

    run_id: str
    trial_id: str
    trial_no: int
    n_trials: int
    method: str
    object_name: str
    attempt_no: int
    grasp: Grasp
    q: float | None
    threshold: float | None
    timings_s: dict[str, float]
    overlay: str | None = None

    def summary(self) -> str:
        q = "n/a" if self.q is None else f"{self.q:.3f}"
        g = self.grasp
        return (f"trial {self.trial_no}/{self.n_trials} {self.method} on {self.object_name}: grasp at "
                f"({g.row:.0f}, {g.col:.0f}) θ={math.degrees(g.angle_rad):.0f}° width {g.width_px:.0f} px "
                f"depth {g.depth_m:.3f} m q={q}")


REVIEW_ANSWERS = ("go", "skip", "abort")  # go: execute; skip: void this attempt, nothing moves; abort: stop the run


class Operator(ABC):
    """The person at the bench (or a script standing in for one). `review` answers one of
    REVIEW_ANSWERS for the planned grasp before motion (default: `confirm` it, else abort);
    `begin_trial` says which trial the next `judge` is about; `uncovered` names the trials it could
    not judge (a person judges every one). `as_operator` adapts an object that only has
    instruct/confirm/judge."""

    @abstractmethod
    def instruct(self, message: str) -> None: ...

    @abstractmethod
    def confirm(self, message: str) -> bool: ...

    @abstractmethod
    def judge(self, summary: str) -> Judgement: ...

    def review(self, plan: GraspPlan) -> str:
        return "go" if self.confirm(f"Execute {plan.summary()}?") else "abort"

    def begin_trial(self, trial_id: str) -> None:
        return None

    def uncovered(self, trial_ids: list[str]) -> list[str]:
        return []


class _AdaptedOperator(Operator):
    """An operator object that does not derive from Operator: its own methods where it has them,
    Operator's defaults for the rest."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def instruct(self, message: str) -> None:
        self.inner.instruct(message)

    def confirm(self, message: str) -> bool:
        return bool(self.inner.confirm(message))

    def judge(self, summary: str) -> Judgement:
        return self.inner.judge(summary)

    def review(self, plan: GraspPlan) -> str:
        own = getattr(self.inner, "review", None)
        return own(plan) if own is not None else super().review(plan)

    def begin_trial(self, trial_id: str) -> None:
        own = getattr(self.inner, "begin_trial", None)
        if own is not None:
            own(trial_id)

    def uncovered(self, trial_ids: list[str]) -> list[str]:
        own = getattr(self.inner, "uncovered", None)
        return list(own(trial_ids)) if own is not None else []


def as_operator(operator: Any) -> Operator:
    """`operator` as an Operator (itself when it already is one)."""
    return operator if isinstance(operator, Operator) else _AdaptedOperator(operator)

"""Dry-run ("chatterbox") arm: kinematic, logs every command, can inject faults for tests."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from ..errors import DeviceError
from ..types import Pose

if TYPE_CHECKING:  # backends do not import the harness at run time (layering)
    from ..harness.safety import SafetyGate

Fault = Literal["protective_stop", "unreachable", "disconnect"]
FAULTS: tuple[str, ...] = ("protective_stop", "unreachable", "disconnect")

TOOL_DOWN = np.diag([1.0, -1.0, -1.0])  # tool z pointing straight down, x along base x
DEFAULT_HOME_POSE = Pose(np.array([0.40, 0.0, 0.40]), TOOL_DOWN, "base")


def pose_record(pose: Pose) -> list[float]:
    """A pose as UR's [x, y, z, rx, ry, rz] for logs (NaN-safe)."""
    try:
        return [round(v, 6) for v in pose.as_rotvec()]
    except ValueError:
        return [float(v) for v in np.asarray(pose.position_m, float).ravel()[:3]] + [math.nan] * 3


def move_duration_s(distance_m: float, speed_mps: float, accel_mps2: float) -> float:
    """Duration of a trapezoidal (or triangular) speed profile over `distance_m`."""
    if distance_m <= 0:
        return 0.0
    ramp_m = speed_mps**2 / accel_mps2  # accelerate + decelerate
    if distance_m >= ramp_m:
        return distance_m / speed_mps + speed_mps / accel_mps2
    return 2.0 * math.sqrt(distance_m / accel_mps2)


class DryRunArm:
    """A kinematic arm: `move_linear` jumps to the target (instantly unless `sleep` is given,
    then it sleeps the duration of a trapezoidal profile at the commanded speed/accel).

    `gate`: an optional SafetyGate re-checked on every move (defence in depth).
    `inject(fault, after_moves=n)`: the move after `n` more successful moves raises DeviceError.
    """

    def __init__(self, home_pose: Pose = DEFAULT_HOME_POSE, gate: SafetyGate | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.home_pose = home_pose
        self.gate = gate
        self.sleep = sleep
        self.log: list[dict[str, Any]] = []
        self.connected = False
        self.moves_done = 0
        self._pose = home_pose
        self._protective_stopped = False
        self._faults: list[tuple[int, str]] = []  # (trigger at moves_done, fault)

    # -- fault injection -------------------------------------------------------------------
    def inject(self, fault: Fault, after_moves: int = 0) -> None:
        """Make the move after `after_moves` further successful moves fail with `fault`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
        if after_moves < 0:
            raise ValueError("after_moves must be >= 0")
        self._faults.append((self.moves_done + after_moves, fault))

    @property
    def protective_stopped(self) -> bool:
        return self._protective_stopped

    def recover(self) -> None:
        """Clear a protective stop (on a UR: unlock it on the pendant or dashboard)."""
        self.log.append({"cmd": "recover"})
        self._protective_stopped = False

    # -- Arm interface ---------------------------------------------------------------------
    def connect(self) -> None:
        self.log.append({"cmd": "connect"})
        self.connected = True

    def home(self) -> None:
        self._ready("home")
        self.log.append({"cmd": "home", "pose": pose_record(self.home_pose)})
        self._pose = self.home_pose

    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None:
        entry: dict[str, Any] = {"cmd": "move_linear", "pose": pose_record(pose),
                                 "speed_mps": speed_mps, "accel_mps2": accel_mps2}
        self.log.append(entry)
        self._ready("move_linear")
        if self.gate is not None:
            self.gate.check(pose, speed_mps, accel_mps2, start=self._pose)
        self._fire_fault(entry)
        distance = float(np.linalg.norm(np.asarray(pose.position_m, float) - self._pose.position_m))
        duration = move_duration_s(distance, speed_mps, accel_mps2)
        entry["duration_s"] = duration
        if self.sleep is not None:
            self.sleep(duration)
        self._pose = Pose(np.array(pose.position_m, float), np.array(pose.rotation, float), "base")
        self.moves_done += 1

    def current_pose(self) -> Pose:
        self._ready("current_pose", moving=False)
        return self._pose

    def stop(self) -> None:
        self.log.append({"cmd": "stop"})

    def close(self) -> None:
        self.log.append({"cmd": "close"})
        self.connected = False

    # -- internals -------------------------------------------------------------------------
    def _ready(self, cmd: str, moving: bool = True) -> None:
        if not self.connected:
            raise DeviceError(f"dry-run arm: '{cmd}' while not connected", "call connect() first")
        if moving and self._protective_stopped:
            raise DeviceError("dry-run arm: robot is in a protective stop",
                              "clear the stop (recover()) before moving again")

    def _fire_fault(self, entry: dict[str, Any]) -> None:
        due = [f for f in self._faults if f[0] <= self.moves_done]
        if not due:
            return
        self._faults.remove(due[0])
        fault = due[0][1]
        entry["fault"] = fault
        if fault == "protective_stop":
            self._protective_stopped = True
            raise DeviceError("dry-run arm: protective stop during move_linear (injected)",
                              "check for a collision, then unlock the protective stop")
        if fault == "unreachable":
            raise DeviceError("dry-run arm: target pose unreachable (no inverse-kinematics solution, injected)",
                              "choose a pose inside the robot's reach")
        self.connected = False
        raise DeviceError("dry-run arm: connection to the robot lost (injected)",
                          "check the network cable and reconnect")

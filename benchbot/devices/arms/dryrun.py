"""Dry-run ("chatterbox") arm: kinematic, logs every command, can inject faults for tests.

Two kinds: a Cartesian one (a tool pose only; home is a straight line to `home_pose`), and, given
`home_joints_rad`, a UR5 twin that tracks its joint angles (inverse kinematics on every move) so
that homing is a joint move whose path the safety gate checks, as on the real arm."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from benchbot.core.errors import DeviceError
from benchbot.core.geometry import TOOL_DOWN
from benchbot.core.interfaces import Arm
from benchbot.core.logs import CommandLog
from benchbot.core.types import Pose
from benchbot.devices.arms.ur_kinematics import ROBOTIQ_2F85_TCP_OFFSET, home_path_samples, tcp_fk, tcp_ik
from benchbot.devices.arms.ur_kinematics import profile_duration_s as move_duration_s  # trapezoidal profile duration

if TYPE_CHECKING:
    from benchbot.config.hardware import ArmConfig
    from benchbot.devices.safety import SafetyGate

Fault = Literal["protective_stop", "unreachable", "disconnect"]
FAULTS: tuple[str, ...] = ("protective_stop", "unreachable", "disconnect")

DEFAULT_HOME_POSE = Pose(np.array([0.40, 0.0, 0.40]), TOOL_DOWN, "base")


class DryRunArm(Arm):
    """A kinematic arm: `move_linear` jumps to the target (instantly unless `sleep` is given,
    then it sleeps the duration of a trapezoidal profile at the commanded speed/accel).

    `gate`: an optional SafetyGate re-checked on every move (defence in depth).
    `home_joints_rad` (+ `tcp_offset`): a UR5 twin; home is then the forward kinematics of those
    joints, moves that UR5 cannot reach fail as `unreachable`, and `home_path()` is the sampled path;
    it starts at `start_joints_rad` (where the arm was left; default: home).
    `inject(fault, after_moves=n)`: the move after `n` more successful moves raises DeviceError.
    `start_freedrive()`/`end_freedrive()`: hand-guiding; `guide(pose)` plays the operator's hand.
    """

    def __init__(self, home_pose: Pose = DEFAULT_HOME_POSE, gate: SafetyGate | None = None,
                 sleep: Callable[[float], None] | None = None, *, home_joints_rad: Any = None,
                 tcp_offset: Any = ROBOTIQ_2F85_TCP_OFFSET, start_joints_rad: Any = None) -> None:
        self.home_joints_rad = None if home_joints_rad is None else np.asarray(home_joints_rad, float)
        self.tcp_offset = np.asarray(tcp_offset, float)
        self._q = None
        self._pose = home_pose
        if self.home_joints_rad is not None:
            home_pose = Pose.from_matrix(tcp_fk(self.home_joints_rad, self.tcp_offset))
            self._q = np.asarray(self.home_joints_rad if start_joints_rad is None else start_joints_rad, float)
            self._pose = Pose.from_matrix(tcp_fk(self._q, self.tcp_offset))
        self.home_pose = home_pose
        self.gate = gate
        self.sleep = sleep
        self.log = CommandLog(__name__)  # the latest commands (bounded); the run log keeps them all
        self.connected = False
        self.freedrive = False
        self.moves_done = 0
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

    @property
    def is_connected(self) -> bool:
        return self.connected

    def home(self) -> None:
        self._ready("home")
        self.log.append({"cmd": "home", "pose": self.home_pose.as_record()})
        self._pose = self.home_pose
        if self.home_joints_rad is not None:
            self._q = self.home_joints_rad.copy()

    def home_path(self) -> list[tuple[Pose, dict[str, np.ndarray]]] | None:
        """The UR5 twin's joint path to home (None for the Cartesian kind: a straight line)."""
        if self._q is None or self.home_joints_rad is None:
            return None
        return home_path_samples(self._q, self.home_joints_rad, self.tcp_offset)

    def joint_positions(self) -> np.ndarray | None:
        return None if self._q is None else self._q.copy()

    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None:
        entry: dict[str, Any] = {"cmd": "move_linear", "pose": pose.as_record(),
                                 "speed_mps": speed_mps, "accel_mps2": accel_mps2}
        self.log.append(entry)
        self._ready("move_linear")
        if self.gate is not None:
            self.gate.check(pose, speed_mps, accel_mps2, start=self._pose)
        self._fire_fault(entry)
        q = self._solve(pose)
        distance = float(np.linalg.norm(np.asarray(pose.position_m, float) - self._pose.position_m))
        duration = move_duration_s(distance, speed_mps, accel_mps2)
        entry["duration_s"] = duration
        if self.sleep is not None:
            self.sleep(duration)
        self._set(pose, q)
        self.moves_done += 1

    def current_pose(self) -> Pose:
        self._ready("current_pose", moving=False)
        return self._pose

    def stop(self) -> None:
        self.log.append({"cmd": "stop"})

    # -- freedrive (hand-guiding) ----------------------------------------------------------
    def start_freedrive(self) -> None:
        self._ready("start_freedrive")
        self.log.append({"cmd": "start_freedrive"})
        self.freedrive = True

    def end_freedrive(self) -> None:
        self.log.append({"cmd": "end_freedrive"})
        self.freedrive = False

    def guide(self, pose: Pose) -> None:
        """The operator's hand moves the arm to `pose` (only while in freedrive)."""
        if not self.freedrive:
            raise DeviceError("dry-run arm: pushed by hand while not in freedrive (the brakes hold it)",
                              "call start_freedrive() first")
        self._set(pose, self._solve(pose))
        self.log.append({"cmd": "guided", "pose": pose.as_record()})

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
        if moving and self.freedrive:
            raise DeviceError(f"dry-run arm: '{cmd}' while in freedrive", "end freedrive first")

    def _solve(self, pose: Pose) -> np.ndarray | None:
        """The UR5 twin's joint angles at `pose` (nearest the current ones); None for the Cartesian kind."""
        if self._q is None:
            return None
        q = tcp_ik(pose.as_matrix(), self._q, self.tcp_offset)
        if q is None:
            raise DeviceError("dry-run arm: target pose unreachable (no inverse-kinematics solution)",
                              "choose a pose inside the robot's reach")
        return q

    def _set(self, pose: Pose, q: np.ndarray | None) -> None:
        self._pose = Pose(np.array(pose.position_m, float), np.array(pose.rotation, float), "base")
        if q is not None:
            self._q = q

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


def from_config(cfg: ArmConfig, gate: SafetyGate | None = None) -> DryRunArm:
    """A kinematic UR5 twin with the configured home and TCP: its homing is checked like the real one."""
    return DryRunArm(gate=gate, home_joints_rad=cfg.home_joints_rad, tcp_offset=cfg.tcp_offset)

"""UR5 over RTDE with SDU's `ur-rtde` package (extra `benchbot[ur]`).

Moves are sent asynchronously and watched from Python, so that Ctrl-C, a protective stop, an
emergency stop, a stopped control script or a timeout all end the move with `stopL` and a
DeviceError naming the cause. Safety status is checked before, during and after every motion.
On connect: RTDE at the configured frequency, then the TCP offset and the payload are set.
Homing is a moveJ; `home_path()` reports its sampled path so the safety gate can check it first.
Freedrive (ur_rtde's teachMode) lets the operator position the arm by hand while our control
script keeps running (no pendant jogging needed, which remote control would not allow).
"""
from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from benchbot.core.errors import BenchbotError, DeviceError, UnsafeMotionError, missing_extra
from benchbot.core.interfaces import Arm
from benchbot.core.logs import CommandLog
from benchbot.core.types import Pose
from benchbot.devices.arms.ur_kinematics import (
    ROBOTIQ_2F85_TCP_OFFSET,
    UR5_HOME_JOINTS_RAD,
    home_path_samples,
    profile_duration_s,
    tcp_fk,
)

if TYPE_CHECKING:
    from benchbot.config.hardware import ArmConfig
    from benchbot.devices.safety import SafetyGate

# Robotiq 2F-85 with its coupling: ≈ 0.925 kg; centre of gravity an estimate, ~55 mm out along tool z.
ROBOTIQ_2F85_PAYLOAD_KG, ROBOTIQ_2F85_COG_M = 0.925, (0.0, 0.0, 0.055)
RTDE_PORT, DASHBOARD_PORT = 30004, 29999

SAFETY_MODES = {1: "NORMAL", 2: "REDUCED", 3: "PROTECTIVE_STOP", 4: "RECOVERY", 5: "SAFEGUARD_STOP",
                6: "SYSTEM_EMERGENCY_STOP", 7: "ROBOT_EMERGENCY_STOP", 8: "VIOLATION", 9: "FAULT",
                10: "VALIDATE_JOINT_ID", 11: "UNDEFINED", 12: "AUTOMATIC_MODE_SAFEGUARD_STOP",
                13: "SYSTEM_THREE_POSITION_ENABLING_STOP"}
_MOVABLE_SAFETY_MODES = (1, 2)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class URConfig:
    """How to reach and drive the UR5. Speeds of the home move are joint speeds (rad/s)."""

    host: str
    tcp_offset: tuple[float, ...] = ROBOTIQ_2F85_TCP_OFFSET  # flange → fingertip centre, UR pose vector
    home_joints_rad: tuple[float, ...] = UR5_HOME_JOINTS_RAD
    payload_kg: float = ROBOTIQ_2F85_PAYLOAD_KG  # set on connect (setPayload): mass on the flange
    payload_cog_m: tuple[float, ...] = ROBOTIQ_2F85_COG_M  # its centre of gravity, flange frame
    rtde_frequency_hz: float = 125.0  # CB3: 125; e-Series: up to 500
    home_speed_radps: float = 0.5
    home_accel_radps2: float = 0.8
    connect_timeout_s: float = 5.0
    move_timeout_margin_s: float = 5.0  # on top of the expected duration of each move
    position_tolerance_m: float = 0.002  # how close a finished move must end to its target
    joint_tolerance_rad: float = 0.01
    stop_decel_mps2: float = 2.0
    recover_timeout_s: float = 10.0
    poll_period_s: float = 0.008
    dashboard_port: int = DASHBOARD_PORT

    def __post_init__(self) -> None:
        if len(self.tcp_offset) != 6 or len(self.home_joints_rad) != 6 or len(self.payload_cog_m) != 3:
            raise BenchbotError("UR config: tcp_offset and home_joints_rad need 6 values each, payload_cog_m 3",
                                "give [x, y, z, rx, ry, rz], six joint angles in radians and [cx, cy, cz] in metres")


def _modules() -> tuple[Any, Any]:
    try:
        import rtde_control
        import rtde_receive
    except ImportError:
        raise missing_extra("ur-rtde", "ur") from None
    return rtde_control, rtde_receive


def _probe(host: str, port: int, timeout_s: float) -> None:
    """Fail fast, with a clear message, when nothing listens at host:port."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise DeviceError(f"no UR controller answers at {host}:{port} ({e})",
                          "check the robot is on, the network cable, and the IP in the hardware config") from None


class URDashboard:
    """Minimal client of the UR dashboard server (29999): one command, one reply line."""

    def __init__(self, host: str, port: int = DASHBOARD_PORT, timeout_s: float = 5.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s

    def send(self, command: str) -> str:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as s:
                f = s.makefile("rw", encoding="utf-8", newline="\n")
                f.readline()  # "Connected: Universal Robots Dashboard Server"
                f.write(command + "\n")
                f.flush()
                reply = f.readline().strip()
                log.debug("dashboard %s -> %s", command, reply)
                return reply
        except OSError as e:
            raise DeviceError(f"UR dashboard server at {self.host}:{self.port} failed: {e}",
                              "check the network connection to the robot") from None


@dataclass
class URArm(Arm):
    """The `Arm` interface on a UR5 through ur_rtde. Poses are TCP poses in the base frame."""

    config: URConfig
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.perf_counter
    log: CommandLog = field(default_factory=lambda: CommandLog(__name__))  # the latest; all in the run log
    _c: Any = field(default=None, init=False, repr=False)  # rtde_control.RTDEControlInterface
    _r: Any = field(default=None, init=False, repr=False)  # rtde_receive.RTDEReceiveInterface
    _freedrive: bool = field(default=False, init=False, repr=False)

    # -- connection ----------------------------------------------------------------------------------
    def connect(self) -> None:
        rtde_control, rtde_receive = _modules()
        host = self.config.host
        for port in (RTDE_PORT, self.config.dashboard_port):
            _probe(host, port, self.config.connect_timeout_s)
        hz = self.config.rtde_frequency_hz
        try:
            self._r = rtde_receive.RTDEReceiveInterface(host, hz)
            self._c = rtde_control.RTDEControlInterface(host, hz)
        except RuntimeError as e:
            self._disconnect_quietly()
            raise DeviceError(f"could not start RTDE control of the UR at {host}: {e}",
                              "put the robot in remote control mode, release its brakes, and check that "
                              "no other program controls it") from None
        self.log.append({"cmd": "connect", "host": host})
        self._check_safe("after connecting")
        self._set_tool()
        self._wait_fresh_state()

    def _set_tool(self) -> None:
        """TCP offset and payload (mass, centre of gravity): the controller's collision detection and
        dynamics depend on the payload, the motion targets on the TCP."""
        cfg = self.config
        if not self._c.setTcp(list(cfg.tcp_offset)):
            raise DeviceError("the UR controller refused setTcp", "check robot.tcp_offset in the hardware config")
        if not self._c.setPayload(float(cfg.payload_kg), [float(v) for v in cfg.payload_cog_m]):
            raise DeviceError("the UR controller refused setPayload",
                              "check robot.payload_kg / payload_cog_m (within the UR5's 5 kg)")

    def close(self) -> None:
        self.log.append({"cmd": "close"})
        if self._c is not None:
            try:
                self._c.stopScript()
            except RuntimeError:
                pass
        self._disconnect_quietly()

    @property
    def is_connected(self) -> bool:
        return self._c is not None and self._r is not None

    def _disconnect_quietly(self) -> None:
        for iface in (self._c, self._r):
            if iface is not None:
                try:
                    iface.disconnect()
                except RuntimeError:
                    pass
        self._c = self._r = None

    # -- motion ------------------------------------------------------------------------------------
    @property
    def home_pose(self) -> Pose:
        """The TCP pose at the home joints (forward kinematics with the configured TCP offset)."""
        return Pose.from_matrix(tcp_fk(self.config.home_joints_rad, self.config.tcp_offset))

    def home_path(self) -> list[tuple[Pose, dict[str, np.ndarray]]]:
        """Sampled TCP poses and wrist/flange centres along the moveJ from the current joints to home."""
        q = self._receiver().getActualQ()
        return home_path_samples(q, self.config.home_joints_rad, self.config.tcp_offset)

    def home(self) -> None:
        cfg = self.config
        target = list(cfg.home_joints_rad)
        self.log.append({"cmd": "home", "q": target})
        dist = float(np.max(np.abs(np.subtract(target, self._receiver().getActualQ()))))
        expected = profile_duration_s(dist, cfg.home_speed_radps, cfg.home_accel_radps2)
        self._run_async("moveJ", lambda: self._c.moveJ(target, cfg.home_speed_radps, cfg.home_accel_radps2, True),
                        expected, lambda: self._joints_at(target))

    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None:
        if pose.frame != "base":
            raise BenchbotError(f"URArm got a pose in frame '{pose.frame}'", "convert it to the base frame")
        target = pose.as_rotvec()
        if not all(math.isfinite(v) for v in (*target, speed_mps, accel_mps2)):
            raise UnsafeMotionError("URArm refused a move with NaN or infinite values", "check the grasp pose")
        self.log.append({"cmd": "move_linear", "pose": [round(v, 6) for v in target],
                         "speed_mps": speed_mps, "accel_mps2": accel_mps2})
        start = self.current_pose()
        dist = float(np.linalg.norm(np.asarray(target[:3]) - start.position_m))
        expected = profile_duration_s(dist, speed_mps, accel_mps2)
        self._run_async("moveL", lambda: self._c.moveL(target, speed_mps, accel_mps2, True),
                        expected, lambda: self._pose_at(target))

    def current_pose(self) -> Pose:
        return Pose.from_rotvec(self._receiver().getActualTCPPose(), "base")

    def stop(self) -> None:
        """Decelerate to a halt (stopL); if the control script does not answer, kill it."""
        self.log.append({"cmd": "stop"})
        if self._c is None:
            return
        try:
            self._c.stopL(self.config.stop_decel_mps2)
        except RuntimeError:
            self._c.stopScript()

    def start_freedrive(self) -> None:
        """Teach (freedrive) mode: the operator moves the arm by hand; moves are refused until ended."""
        self.log.append({"cmd": "start_freedrive"})
        self._check_safe("before freedrive")
        self._ensure_script()
        if not self._c.teachMode():
            raise DeviceError("the UR controller refused freedrive (teach mode)",
                              "check the pendant for a popup or an active safety stop")
        self._freedrive = True

    def end_freedrive(self) -> None:
        """Back to position control: the arm holds where the operator left it."""
        self.log.append({"cmd": "end_freedrive"})
        if self._c is not None and self._freedrive:
            if not self._c.endTeachMode():
                raise DeviceError("the UR controller did not leave freedrive", "end it on the teach pendant")
            self._wait_fresh_state()
        self._freedrive = False

    def recover(self) -> None:
        """Unlock a protective stop through the dashboard and restart the control script."""
        self.log.append({"cmd": "recover"})
        r = self._receiver()
        dash = URDashboard(self.config.host, self.config.dashboard_port, self.config.connect_timeout_s)
        deadline = self.clock() + self.config.recover_timeout_s
        while r.isProtectiveStopped():
            dash.send("close safety popup")
            dash.send("unlock protective stop")  # a CB3 refuses this until 5 s after the stop
            if self.clock() > deadline:
                raise DeviceError("the protective stop could not be unlocked",
                                  "unlock it on the teach pendant after checking the cause")
            self.sleep(0.5)
        if r.isEmergencyStopped():
            raise DeviceError("the UR5 is emergency-stopped", "release the emergency stop and re-enable the arm")
        self._ensure_script()

    @property
    def protective_stopped(self) -> bool:
        r = self._receiver()
        return bool(r.isProtectiveStopped()) or int(r.getSafetyMode()) == 3

    # -- internals ---------------------------------------------------------------------------------
    def _receiver(self) -> Any:
        if self._r is None or self._c is None:
            raise DeviceError("UR arm used before connect()", "call connect() first")
        return self._r

    def _check_safe(self, when: str) -> None:
        r = self._receiver()
        if not r.isConnected():
            raise DeviceError(f"RTDE connection to the UR lost {when}", "check the network cable and reconnect")
        # bits and mode are read one after the other and may come from two RTDE packages
        mode = int(r.getSafetyMode())
        if r.isEmergencyStopped() or mode in (6, 7):
            raise DeviceError(f"the UR5 is emergency-stopped ({when})",
                              "release the emergency stop, power the arm on and re-run")
        if r.isProtectiveStopped() or mode == 3:
            raise DeviceError(f"the UR5 went into a protective stop ({when})",
                              "check for a collision, then unlock the stop (pendant or recover())")
        if mode not in _MOVABLE_SAFETY_MODES:
            raise DeviceError(f"the UR5 safety mode is {SAFETY_MODES.get(mode, mode)} ({when})",
                              "clear the safety condition on the teach pendant")

    def _ensure_script(self) -> None:
        """(Re)start ur_rtde's control script if it is not running (e.g. after a stop or an error)."""
        if self._c.isProgramRunning():
            return
        self._c.reuploadScript()
        deadline = self.clock() + self.config.connect_timeout_s
        while not self._c.isProgramRunning():
            if self.clock() > deadline:
                raise DeviceError("the ur_rtde control script does not start on the UR",
                                  "put the robot in remote control mode and check the pendant for errors")
            self.sleep(self.config.poll_period_s)
        self._freedrive = False  # a restarted script is in position control
        self._set_tool()

    def _run_async(self, name: str, send: Callable[[], bool], expected_s: float,
                   arrived: Callable[[], bool]) -> None:
        """Send an async move, then watch it until done; stop the arm on any problem."""
        if self._freedrive:
            raise DeviceError(f"{name} refused: the arm is in freedrive", "end freedrive first")
        self._check_safe(f"before {name}")
        self._ensure_script()
        before = self._c.getAsyncOperationProgressEx().operationId()
        t0 = self.clock()
        if not send():
            self._wait_fresh_state()
            self._check_safe(f"when sending {name}")
            raise DeviceError(f"the UR controller rejected {name}: target unreachable (no inverse-kinematics "
                              "solution) or the control script failed",
                              "check the target pose is within reach; see the pendant log")
        try:
            self._watch(name, before, t0, t0 + expected_s * 1.5 + self.config.move_timeout_margin_s, arrived)
        except KeyboardInterrupt:
            self.stop()
            raise
        log.debug("%s done in %.3f s (expected %.3f s)", name, self.clock() - t0, expected_s)

    def _watch(self, name: str, before: int, t0: float, deadline: float, arrived: Callable[[], bool]) -> None:
        while True:
            status = self._c.getAsyncOperationProgressEx()
            started = status.operationId() != before
            if started and not status.isAsyncOperationRunning():
                break
            if not started and self.clock() - t0 > 0.5 and arrived():
                break  # a controller that does not report async progress
            self._check_safe(f"during {name}")
            if not self._c.isProgramRunning():
                self._wait_fresh_state()
                self._check_safe(f"during {name}")  # name a safety stop if that was the cause
                raise DeviceError(f"the ur_rtde control script stopped during {name}",
                                  "see the teach pendant's log, then retry")
            if self.clock() > deadline:
                self.stop()
                raise DeviceError(f"{name} did not finish within {deadline - t0:.1f} s; the arm was stopped",
                                  "check the speed settings and the robot's speed slider")
            self.sleep(self.config.poll_period_s)
        self._wait_fresh_state()
        self._check_safe(f"after {name}")
        if not arrived():
            raise DeviceError(f"{name} ended away from its target (stopped early)",
                              "check for obstacles, then retry")

    def _wait_fresh_state(self, packages: int = 2, timeout_s: float = 1.0) -> None:
        """Wait until `packages` new RTDE states have arrived (the receive side lags by one)."""
        r = self._receiver()
        seen = {r.getTimestamp()}
        deadline = self.clock() + timeout_s
        while len(seen) <= packages:
            if self.clock() > deadline:
                raise DeviceError("no fresh RTDE state from the UR within 1 s", "check the network connection")
            self.sleep(0.002)
            seen.add(r.getTimestamp())

    def _pose_at(self, target: list[float]) -> bool:
        actual = np.asarray(self._receiver().getActualTCPPose()[:3])
        return float(np.linalg.norm(actual - np.asarray(target[:3]))) <= self.config.position_tolerance_m

    def _joints_at(self, target: list[float]) -> bool:
        actual = np.asarray(self._receiver().getActualQ())
        return float(np.max(np.abs(actual - np.asarray(target)))) <= self.config.joint_tolerance_rad


def from_config(cfg: ArmConfig, gate: SafetyGate | None = None) -> URArm:
    """A UR5 over RTDE (ur-rtde), not connected; the safety gate wraps it (GatedArm) in the caller."""
    return URArm(URConfig(host=cfg.host or "", tcp_offset=tuple(cfg.tcp_offset),
                          home_joints_rad=tuple(cfg.home_joints_rad), payload_kg=cfg.payload_kg,
                          payload_cog_m=tuple(cfg.payload_cog_m), rtde_frequency_hz=cfg.rtde_frequency_hz,
                          connect_timeout_s=cfg.connect_timeout_s))

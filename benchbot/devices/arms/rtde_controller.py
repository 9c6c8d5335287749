"""The emulated UR controller behind the RTDE emulator: a kinematic UR5 plus the command
handshake of ur_rtde's control script (input_int_register_0 = command, output_int_register_0:
1 ready, 2 done). Thread-safe; stepped by the emulator's clock thread.

Also modelled: the payload (setPayload, published as `payload`/`payload_cog`), teach (freedrive)
mode, in which a test's "hand" may move the arm (`hand_guide`), moves are a runtime error and
isSteady is false.
Not modelled: dynamics, joint limits, self-collision, blending, force mode, servoing,
speed scaling; the uploaded URScript is never interpreted (its command protocol is emulated).
Command numbers are those of ur_rtde 1.6.5's control script (RTDE::RobotCommand::Type).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from benchbot.core.logs import CommandLog
from benchbot.devices.arms.ur_kinematics import UR5_HOME_JOINTS_RAD as UR5_HOME_Q
from benchbot.devices.arms.ur_kinematics import (
    matrix_to_pose,
    pose_to_matrix,
    profile_duration_s,
    tcp_fk,
    tcp_ik,
)

# ur_rtde 1.6.5 control-script command numbers (`elif cmd == N:` in its rtde_control script)
NO_CMD, MOVEJ, MOVEJ_IK, MOVEL, MOVEL_FK = 0, 1, 2, 3, 4
SET_PAYLOAD, TEACH_MODE, END_TEACH_MODE = 17, 18, 19
SET_TCP, PROTECTIVE_STOP, STOPL, STOPJ = 29, 31, 33, 34
GET_TCP_OFFSET, IS_STEADY, STOP_SCRIPT = 40, 47, 255
COMMAND_NAMES = {MOVEJ: "movej", MOVEJ_IK: "movej_ik", MOVEL: "movel", MOVEL_FK: "movel_fk",
                 SET_PAYLOAD: "set_payload", TEACH_MODE: "teach_mode", END_TEACH_MODE: "end_teach_mode",
                 SET_TCP: "set_tcp", PROTECTIVE_STOP: "protective_stop", STOPL: "stopl", STOPJ: "stopj",
                 GET_TCP_OFFSET: "get_tcp_offset", IS_STEADY: "is_steady", STOP_SCRIPT: "stop_script"}

# RTDE enumerations
RUNTIME_STOPPED, RUNTIME_PLAYING = 1, 2
ROBOT_MODE_RUNNING = 7
JOINT_MODE_RUNNING = 253
SAFETY_NORMAL, SAFETY_PROTECTIVE_STOP = 1, 3
SAFETY_BIT_NORMAL, SAFETY_BIT_PROTECTIVE = 1 << 0, 1 << 2
STATUS_BIT_POWER_ON, STATUS_BIT_PROGRAM_RUNNING = 1 << 0, 1 << 1
ROTATION_SPEED_RADPS, ROTATION_ACCEL_RADPS2 = 1.0, 2.0  # used when a linear move is mostly rotation


def profile_fraction(t: float, distance: float, speed: float, accel: float) -> float:
    """Fraction of `distance` covered at time t along that profile."""
    total = profile_duration_s(distance, speed, accel)
    if t >= total or distance <= 0:
        return 1.0
    v_peak = min(speed, math.sqrt(distance * accel))
    t_ramp = v_peak / accel
    if t < t_ramp:
        s = 0.5 * accel * t * t
    elif t < total - t_ramp:
        s = 0.5 * accel * t_ramp**2 + v_peak * (t - t_ramp)
    else:
        s = distance - 0.5 * accel * (total - t) ** 2
    return min(1.0, max(0.0, s / distance))


@dataclass
class _Move:
    kind: str  # "linear" | "joint"
    start_tcp: np.ndarray
    end_tcp: np.ndarray
    start_q: np.ndarray
    end_q: np.ndarray
    distance: float  # metres (linear), radians (rotation-dominated linear, joint)
    speed: float
    accel: float
    duration_s: float
    synchronous: bool
    elapsed_s: float = 0.0


class URControllerModel:
    """Kinematic UR5 and the state the RTDE emulator publishes."""

    def __init__(self, home_q: tuple[float, ...] = UR5_HOME_Q, table_z_m: float | None = None) -> None:
        self.lock = threading.RLock()
        self.table_z_m = table_z_m
        self.q = np.array(home_q, dtype=float)
        self.qd = np.zeros(6)
        self.tcp_offset = np.zeros(6)
        self.payload_kg = 0.0
        self.payload_cog_m = np.zeros(3)
        self.teach_mode = False
        self.tcp = tcp_fk(self.q, self.tcp_offset)
        self.tcp_speed = np.zeros(6)
        self.t_s = 0.0
        self.safety_mode = SAFETY_NORMAL
        self.program: str | None = None
        self.in_int = [0] * 48
        self.in_double = [0.0] * 48
        self.out_int = [0] * 48
        self.out_double = [0.0] * 48
        self.executing = False
        self.move: _Move | None = None
        self.async_op_id = 0
        self.async_wr_count = 0
        self.log = CommandLog(__name__)  # the latest commands and events (bounded), for tests and debugging
        self.scripts: list[str] = []  # names of uploaded programs

    # -- state published over RTDE -----------------------------------------------------------
    @property
    def program_running(self) -> bool:
        return self.program is not None

    def value(self, name: str) -> Any:
        """Current value of an RTDE output variable (zero of its type when not modelled)."""
        with self.lock:
            tcp = matrix_to_pose(self.tcp)
            if name in ("actual_q", "target_q"):
                return list(self.q)
            if name in ("actual_qd", "target_qd"):
                return list(self.qd)
            if name in ("actual_TCP_pose", "target_TCP_pose"):
                return list(tcp)
            if name in ("actual_TCP_speed", "target_TCP_speed"):
                return list(self.tcp_speed)
            if name == "payload_cog":
                return list(self.payload_cog_m)
            simple = {
                "timestamp": self.t_s, "robot_mode": ROBOT_MODE_RUNNING, "joint_mode": [JOINT_MODE_RUNNING] * 6,
                "safety_mode": self.safety_mode, "safety_status": self.safety_mode,
                "runtime_state": RUNTIME_PLAYING if self.program_running else RUNTIME_STOPPED,
                "robot_status_bits": STATUS_BIT_POWER_ON | (STATUS_BIT_PROGRAM_RUNNING if self.program_running else 0),
                "safety_status_bits": SAFETY_BIT_PROTECTIVE if self.protective_stopped else SAFETY_BIT_NORMAL,
                "speed_scaling": 1.0, "target_speed_fraction": 1.0, "actual_main_voltage": 48.0,
                "payload": self.payload_kg,
                "actual_robot_voltage": 48.0, "joint_temperatures": [30.0] * 6, "actual_joint_voltage": [48.0] * 6,
            }
            if name in simple:
                return simple[name]
            for prefix, store in (("output_int_register_", self.out_int), ("output_double_register_", self.out_double),
                                  ("input_int_register_", self.in_int), ("input_double_register_", self.in_double)):
                if name.startswith(prefix):
                    return store[int(name[len(prefix):])]
            return None  # caller packs a zero of the variable's type

    @property
    def protective_stopped(self) -> bool:
        return self.safety_mode == SAFETY_PROTECTIVE_STOP

    # -- inputs ---------------------------------------------------------------------------------
    def set_inputs(self, names: list[str], values: list[Any]) -> None:
        with self.lock:
            for name, v in zip(names, values, strict=True):
                if name.startswith("input_int_register_"):
                    self.in_int[int(name[len("input_int_register_"):])] = int(v)
                elif name.startswith("input_double_register_"):
                    self.in_double[int(name[len("input_double_register_"):])] = float(v)

    # -- programs and safety -------------------------------------------------------------------
    def start_program(self, name: str) -> None:
        with self.lock:
            self.program = name
            self.scripts.append(name)
            self.executing = False
            self.move = None
            self.teach_mode = False
            if name == "rtde_control":
                self.out_int[0] = 1  # signal_ready()
                self.out_int[2] = 0
            self._event("program_started", name=name)
            if name != "rtde_control":  # not interpreted: it "runs" and ends at once
                self.stop_program(f"program '{name}' is not interpreted by the emulator")

    def stop_program(self, reason: str) -> None:
        with self.lock:
            if self.program is not None:
                self._event("program_stopped", name=self.program, reason=reason)
            self.program = None
            self.move = None
            self.executing = False
            self.teach_mode = False  # teach_mode() ends with the program that started it

    def trigger_protective_stop(self, reason: str = "requested") -> None:
        with self.lock:
            self.safety_mode = SAFETY_PROTECTIVE_STOP
            self.move = None
            self.qd[:] = 0.0
            self.tcp_speed[:] = 0.0
            self._event("protective_stop", reason=reason)
            self.stop_program("protective stop")

    def hand_guide(self, pose: Any) -> None:
        """The operator's hand moves the TCP to `pose` ([x, y, z, rx, ry, rz]); only in teach mode."""
        with self.lock:
            if not self.teach_mode:
                raise RuntimeError("the arm is not in teach (freedrive) mode: its brakes hold it")
            target = pose_to_matrix(pose)
            q = tcp_ik(target, self.q, self.tcp_offset)
            if q is None:
                raise RuntimeError("the hand cannot take the arm there (outside its reach)")
            self.q, self.tcp = q, target
            self._event("hand_guided", pose=[float(v) for v in pose])

    def unlock_protective_stop(self) -> None:
        with self.lock:
            if self.protective_stopped:
                self.safety_mode = SAFETY_NORMAL
                self._event("protective_stop_unlocked")

    # -- clock -------------------------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        """Advance time by dt_s: move the arm, then run one cycle of the control script."""
        with self.lock:
            self.t_s += dt_s
            q0, p0 = self.q.copy(), matrix_to_pose(self.tcp)
            if self.move is not None:
                self._advance(dt_s)
            if dt_s > 0:
                self.qd = (self.q - q0) / dt_s
                self.tcp_speed = (matrix_to_pose(self.tcp) - p0) / dt_s
                self.tcp_speed[3:] = _angular_velocity(p0[3:], self.tcp[:3, :3], dt_s)
            if self.table_z_m is not None and self.tcp[2, 3] < self.table_z_m and not self.protective_stopped:
                self.trigger_protective_stop(f"tool hit the table (z = {self.tcp[2, 3]:.4f} m)")
            if self.program == "rtde_control":
                self._script_cycle()

    def _advance(self, dt_s: float) -> None:
        m = self.move
        assert m is not None
        m.elapsed_s += dt_s
        s = profile_fraction(m.elapsed_s, m.distance, m.speed, m.accel)
        self.q = m.start_q + s * (m.end_q - m.start_q)  # joint interpolation (approximate for moveL)
        if m.kind == "joint":
            self.tcp = tcp_fk(self.q, self.tcp_offset)
        else:
            self.tcp = _interpolate(m.start_tcp, m.end_tcp, s)
        if s >= 1.0:
            self.q, self.tcp = m.end_q.copy(), m.end_tcp.copy()
            self.move = None
            self._event("move_done", kind=m.kind, pose=list(matrix_to_pose(self.tcp)))
            self._write_async(running=False)
            if m.synchronous:
                self.out_int[0] = 2  # signal_done_with_cmd()

    # -- the control script's main loop ------------------------------------------------------------
    def _script_cycle(self) -> None:
        if self.move is not None and self.move.synchronous:
            return  # the script is blocked inside movel/movej
        cmd = self.in_int[0]
        if cmd == NO_CMD:
            self.executing = False
            self.out_int[0] = 1  # signal_ready()
        elif not self.executing:
            self.executing = True
            self._process(cmd)

    def _process(self, cmd: int) -> None:
        d = self.in_double
        name = COMMAND_NAMES.get(cmd, f"unsupported({cmd})")
        entry = self._event("command", cmd=cmd, name=name)
        done = True
        if cmd in (MOVEL, MOVEL_FK, MOVEJ, MOVEJ_IK) and self.teach_mode:
            self._event("runtime_error", reason="move commanded while in teach mode")
            self.stop_program("move while in teach mode")
            return
        if cmd in (MOVEL, MOVEL_FK, MOVEJ, MOVEJ_IK):
            asynchronous = self.in_int[1] == 1
            entry.update(target=[float(x) for x in d[0:6]], speed=d[6], accel=d[7], asynchronous=asynchronous)
            ok = self._start_move(cmd, np.array(d[0:6]), d[6], d[7], not asynchronous)
            if not ok:
                return  # runtime error: the script stopped, nothing is signalled
            done = asynchronous
        elif cmd == SET_TCP:
            self.tcp_offset = np.array(d[0:6], dtype=float)
            self.tcp = tcp_fk(self.q, self.tcp_offset)
            entry["tcp_offset"] = list(self.tcp_offset)
        elif cmd == GET_TCP_OFFSET:
            self.out_double[0:6] = [float(x) for x in self.tcp_offset]
        elif cmd == SET_PAYLOAD:
            self.payload_kg = float(d[0])
            self.payload_cog_m = np.array(d[1:4], dtype=float)  # CB3 script: set_payload(mass, cog)
            entry.update(mass_kg=self.payload_kg, cog_m=list(self.payload_cog_m))
        elif cmd in (TEACH_MODE, END_TEACH_MODE):
            self.teach_mode = cmd == TEACH_MODE
        elif cmd == IS_STEADY:
            self.out_int[1] = 1 if self.move is None and not self.teach_mode else 0
        elif cmd in (STOPL, STOPJ):
            if self.move is not None:
                self._event("move_stopped", kind=self.move.kind)
            self.move = None  # deceleration is not modelled: the arm halts at once
            self._write_async(running=False)
        elif cmd == PROTECTIVE_STOP:
            self.trigger_protective_stop("protective_stop() called by the control script")
            return
        elif cmd == STOP_SCRIPT:
            self.stop_program("stop script command")
            return
        else:
            entry["note"] = "not emulated: acknowledged without effect"
        if done:
            self.out_int[0] = 2  # signal_done_with_cmd()

    def _start_move(self, cmd: int, target: np.ndarray, speed: float, accel: float, synchronous: bool) -> bool:
        if cmd in (MOVEL, MOVEJ_IK):
            end_tcp = pose_to_matrix(target)
            end_q = tcp_ik(end_tcp, self.q, self.tcp_offset)
            if end_q is None:
                self._event("runtime_error", reason="inverse kinematics failed: pose unreachable",
                            target=[float(x) for x in target])
                self.stop_program("inverse kinematics failed")
                return False
        else:
            end_q = target.copy()
            end_tcp = tcp_fk(end_q, self.tcp_offset)
        if cmd in (MOVEL, MOVEL_FK):
            dist = float(np.linalg.norm(end_tcp[:3, 3] - self.tcp[:3, 3]))
            angle = float(np.linalg.norm(Rotation.from_matrix(end_tcp[:3, :3] @ self.tcp[:3, :3].T).as_rotvec()))
            linear_s = profile_duration_s(dist, speed, accel)
            if profile_duration_s(angle, ROTATION_SPEED_RADPS, ROTATION_ACCEL_RADPS2) > linear_s:
                dist, speed, accel = angle, ROTATION_SPEED_RADPS, ROTATION_ACCEL_RADPS2
            kind = "linear"
        else:
            dist = float(np.max(np.abs(end_q - self.q)))
            kind = "joint"
        self.move = _Move(kind, self.tcp.copy(), end_tcp, self.q.copy(), end_q, dist, speed, accel,
                          profile_duration_s(dist, speed, accel), synchronous)
        self.async_op_id = (self.async_op_id + 1) % 128
        self._write_async(running=True)
        return True

    def _write_async(self, running: bool) -> None:
        """The async progress register (output_int_register_2) as ur_rtde's script writes it."""
        self.async_wr_count = (self.async_wr_count + 1) % 128
        self.out_int[2] = (self.async_op_id << 24) | (self.async_wr_count << 16) | (0x8000 if running else 0)

    def _event(self, event: str, **info: Any) -> dict[str, Any]:
        entry = {"t_s": round(self.t_s, 4), "event": event, **info}
        self.log.append(entry)
        return entry


def _interpolate(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Straight line in position, shortest rotation in orientation."""
    m = np.eye(4)
    m[:3, 3] = a[:3, 3] + s * (b[:3, 3] - a[:3, 3])
    rel = Rotation.from_matrix(b[:3, :3] @ a[:3, :3].T).as_rotvec()
    m[:3, :3] = Rotation.from_rotvec(s * rel).as_matrix() @ a[:3, :3]
    return m


def _angular_velocity(rotvec_before: np.ndarray, r_now: np.ndarray, dt_s: float) -> np.ndarray:
    rel = Rotation.from_matrix(r_now) * Rotation.from_rotvec(rotvec_before).inv()
    return rel.as_rotvec() / dt_s

"""Robotiq 2F-85 client over Modbus (pymodbus): Modbus TCP, RTU over TCP, or serial RTU.

    gripper = RobotiqGripper(RobotiqConfig(transport="serial", serial_port="/dev/ttyUSB0"))
    gripper.activate()
    gripper.open(0.085)
    status = gripper.grip(force=0.5, speed=0.5)   # status.object_detected, status.position_m

The config may also be a plain dict with the same keys. From a hardware config's `gripper:`
section, build it with `benchbot.devices.grippers.make_gripper` (the one gripper factory).

Every wait is bounded: timeouts, gripper faults (gFLT) and lost connections raise DeviceError.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from benchbot.core.errors import BenchbotError, DeviceError, missing_extra
from benchbot.core.interfaces import Gripper
from benchbot.core.types import GripperStatus
from benchbot.devices.grippers.robotiq_registers import (
    INPUT_ADDR,
    N_REGISTERS,
    OBJ_CONTACT_CLOSING,
    OBJ_CONTACT_OPENING,
    OBJ_MOVING,
    OUTPUT_ADDR,
    STA_ACTIVE,
    STA_RESET,
    UNIT_ID,
    Command,
    PositionMap,
    Status,
    fault_fix,
    fault_message,
    quiet_pymodbus_logs,
)

Transport = Literal["tcp", "rtu-tcp", "serial"]
# Default TCP ports: a Modbus TCP gateway listens on 502; UR's rs485 URCap forwards the e-Series
# wrist RS-485 on 54321. Port 502 of the robot controller itself is the UR's OWN Modbus server.
DEFAULT_PORTS = {"tcp": 502, "rtu-tcp": 54321}
# Contact this close to the calibrated closed stop is the fingers meeting, not an object (≈ 1 mm).
CLOSED_MARGIN = 3
_MODBUS_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                      4: "device failure", 6: "device busy", 10: "gateway path unavailable",
                      11: "gateway target did not respond"}
TRANSPORTS = ("tcp", "rtu-tcp", "serial")

log = logging.getLogger(__name__)


@dataclass
class RobotiqConfig:
    """How to reach the gripper and how to map its positions to metres.

    transport: "serial" (USB–RS-485 adapter, 115200 8N1; the default), "rtu-tcp" (RTU frames over
    a TCP socket: a transparent RS-485 ↔ TCP gateway, or a UR e-Series wrist port forwarded by UR's
    rs485 tool-communication URCap, port 54321) or "tcp" (a Modbus TCP ↔ RTU gateway, port 502).
    tcp and rtu-tcp need an explicit `host`: there is no fallback to the robot's IP, whose port 502
    is the UR controller's own Modbus server, not the gripper.
    """

    transport: Transport = "serial"
    host: str | None = None  # tcp / rtu-tcp: the gateway's (or e-Series robot's) address
    port: int | None = None  # None: 502 for tcp, 54321 for rtu-tcp
    serial_port: str = "/dev/ttyUSB0"
    baudrate: int = 115200
    device_id: int = UNIT_ID
    timeout_s: float = 1.0  # one Modbus request
    retries: int = 2  # reconnect-and-retry attempts per request before giving up
    activation_timeout_s: float = 10.0
    motion_timeout_s: float = 5.0
    poll_s: float = 0.01  # pause between status reads while waiting
    stroke_m: float = 0.085
    open_position: int = 0  # gPO at full opening (`benchbot calibrate-gripper` measures it)
    closed_position: int = 255  # gPO at full closure, empty jaws (real units: ≈ 0xE3–0xE6)
    open_speed: float = 1.0  # fraction of max for open()
    open_force: float = 1.0

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise BenchbotError(f"unknown gripper transport '{self.transport}'",
                                f"use one of: {', '.join(TRANSPORTS)}")
        if self.transport != "serial" and not self.host:
            raise BenchbotError(f"gripper config: transport '{self.transport}' needs 'host' (the gateway's address)",
                                "set gripper.host explicitly, or use transport 'serial' for a USB–RS-485 adapter")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise BenchbotError(f"gripper config: port {self.port} out of 1..65535", "fix gripper.port")
        for name in ("timeout_s", "activation_timeout_s", "motion_timeout_s", "stroke_m"):
            if not getattr(self, name) > 0:
                raise BenchbotError(f"gripper config: {name} must be > 0", f"set a positive {name}")
        if self.retries < 0 or self.poll_s < 0:
            raise BenchbotError("gripper config: retries and poll_s must be ≥ 0", "fix the gripper config")
        if not 1 <= self.device_id <= 247:
            raise BenchbotError(f"gripper config: device_id {self.device_id} out of 1..247",
                                "the 2F-85 answers on unit id 9")
        try:
            PositionMap(self.stroke_m, self.open_position, self.closed_position)
        except ValueError as e:
            raise BenchbotError(f"gripper config: {e}", "fix open_position/closed_position") from None

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RobotiqConfig:
        known = {f.name for f in fields(RobotiqConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BenchbotError(f"gripper config: unknown key '{unknown[0]}'",
                                f"use only: {', '.join(sorted(known))}")
        return RobotiqConfig(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def tcp_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.transport, 502)

    @property
    def address(self) -> str:
        return self.serial_port if self.transport == "serial" else f"{self.host}:{self.tcp_port}"


def _fraction_to_byte(value: float, name: str) -> int:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise BenchbotError(f"gripper {name} must be a fraction in [0, 1], got {value}",
                            f"pass {name} between 0 (minimum) and 1 (maximum)")
    return int(round(value * 255))


class RobotiqGripper(Gripper):
    """A Robotiq 2F-85 behind Modbus. Implements `benchbot.core.interfaces.Gripper`."""

    def __init__(self, config: RobotiqConfig | dict[str, Any] | None = None) -> None:
        self.config = RobotiqConfig.from_dict(config) if isinstance(config, dict) else config or RobotiqConfig()
        self.map = PositionMap(self.config.stroke_m, self.config.open_position, self.config.closed_position)
        self._client = None
        self.last_status: Status | None = None

    # ---- connection ----
    def _make_client(self):
        from pymodbus import FramerType
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        quiet_pymodbus_logs()
        cfg = self.config
        if cfg.transport == "serial":
            try:
                import serial  # noqa: F401
            except ImportError:
                raise missing_extra("pyserial", "robotiq") from None
            return ModbusSerialClient(cfg.serial_port, framer=FramerType.RTU, baudrate=cfg.baudrate,
                                      bytesize=8, parity="N", stopbits=1, timeout=cfg.timeout_s,
                                      retries=0, reconnect_delay=0)
        framer = FramerType.SOCKET if cfg.transport == "tcp" else FramerType.RTU
        return ModbusTcpClient(cfg.host or "", port=cfg.tcp_port, framer=framer, timeout=cfg.timeout_s,
                               retries=0, reconnect_delay=0)

    def connect(self) -> None:
        """Open the Modbus link (done on first use anyway)."""
        if self._client is not None and self._client.connected:
            return
        self._drop_client()
        client = self._make_client()
        if not client.connect():
            client.close()
            raise DeviceError(f"cannot connect to the Robotiq gripper at {self.config.address} "
                              f"({self.config.transport})", self._connect_fix())
        self._client = client
        log.debug("connected to the gripper at %s (%s)", self.config.address, self.config.transport)

    def _connect_fix(self) -> str:
        if self.config.transport == "serial":
            return ("check the USB–RS-485 adapter, the port name, permissions (dialout group), "
                    "24 V power, and that no other program holds the port")
        return "check the gripper/gateway is powered and reachable at that host and port"

    def _drop_client(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a broken socket must not hide the real error
                pass
        self._client = None

    def close(self) -> None:
        """Close the Modbus link (the gripper keeps its state)."""
        self._drop_client()

    @property
    def is_connected(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    # ---- raw register access with bounded retries ----
    def _request(self, what: str, call):
        from pymodbus.exceptions import ModbusException, ModbusIOException

        cfg = self.config
        last, link_up = "no answer", False
        for _ in range(cfg.retries + 1):
            try:
                self.connect()
            except DeviceError as e:
                last, link_up = e.message, False
                continue
            try:
                response = call(self._client)
            except (ModbusException, OSError) as e:
                link_up = True
                last = "timed out" if isinstance(e, ModbusIOException) else (str(e).strip() or type(e).__name__)
                self._drop_client()  # a fresh socket also discards late replies
                log.info("gripper at %s: no answer while trying to %s (%s)", cfg.address, what, last)
                continue
            if response.isError():
                code = getattr(response, "exception_code", None)
                meaning = _MODBUS_EXCEPTIONS.get(code, "unknown") if isinstance(code, int) else "unknown"
                raise DeviceError(f"Robotiq gripper at {cfg.address} (unit {cfg.device_id}) "
                                  f"refused to {what}: Modbus exception {code} ({meaning})",
                                  f"check gripper.device_id (the 2F-85 uses {UNIT_ID}) and the transport framing")
            return response
        tries = f"{cfg.retries + 1} attempts, {cfg.timeout_s:g} s timeout each"
        if link_up:  # the link is up but nothing answers: wrong unit id, framing, baud rate or power
            raise DeviceError(f"lost contact with the Robotiq gripper at {cfg.address} (unit {cfg.device_id}): "
                              f"no answer while trying to {what} ({tries}; {last})",
                              f"check gripper.device_id (a 2F-85 answers only its own unit id, {UNIT_ID} by "
                              f"default), the transport ('{cfg.transport}') and baud rate, and the gripper's power")
        raise DeviceError(f"lost contact with the Robotiq gripper at {cfg.address} while trying to {what} "
                          f"({tries}): {last}", self._connect_fix())

    def write_command(self, cmd: Command) -> None:
        """Write the 3 command registers at 0x03E8 (FC16)."""
        regs = cmd.to_registers()
        log.debug("write %s = %s", cmd, regs)
        self._request("write a command", lambda c: c.write_registers(OUTPUT_ADDR, regs,
                                                                     device_id=self.config.device_id))

    def read_status(self) -> Status:
        """Read the 3 status registers at 0x07D0 (FC04)."""
        r = self._request("read its status", lambda c: c.read_input_registers(
            INPUT_ADDR, count=N_REGISTERS, device_id=self.config.device_id))
        if len(r.registers) != N_REGISTERS:
            raise DeviceError(f"Robotiq gripper sent {len(r.registers)} status registers, expected 3",
                              "check that the device at that address is a Robotiq 2F gripper")
        self.last_status = Status.from_registers(r.registers)
        return self.last_status

    # ---- behaviour ----
    def _check_fault(self, st: Status, doing: str) -> None:
        if st.fault:
            raise DeviceError(f"{fault_message(st.fault)} (while {doing})", fault_fix(st.fault))
        if st.kflt:
            raise DeviceError(f"Robotiq controller fault 0x{st.kflt:X} (kFLT, while {doing})",
                              "see the controller fault table in the Robotiq manual; re-activate")

    def _wait(self, done, timeout_s: float, doing: str) -> Status:
        deadline = time.perf_counter() + timeout_s
        while True:
            st = self.read_status()
            self._check_fault(st, doing)
            if done(st):
                return st
            if time.perf_counter() > deadline:
                raise DeviceError(f"Robotiq gripper did not finish {doing} within {timeout_s:g} s "
                                  f"(gSTA={st.sta}, gOBJ={st.obj}, gPR={st.position_request}, gPO={st.position})",
                                  "check for obstructions and the gripper's LED; raise the timeout if it is slow")
            if self.config.poll_s:
                time.sleep(self.config.poll_s)

    def activate(self) -> None:
        """Reset (rACT=0), then activate (rACT=1) and wait for gSTA=3. Clears faults."""
        self.write_command(Command(act=False))
        self._wait(lambda s: not s.act and s.sta == STA_RESET, self.config.timeout_s * 2 + 1.0, "the reset")
        t0 = time.perf_counter()
        self.write_command(Command(act=True))
        self._wait(lambda s: s.sta == STA_ACTIVE, self.config.activation_timeout_s, "the activation")
        log.info("gripper at %s activated in %.2f s", self.config.address, time.perf_counter() - t0)

    def go_to(self, position: int, speed: int, force: int, doing: str = "moving") -> Status:
        """Raw move: request register position/speed/force (0–255 each) and wait until the fingers
        stop (at the request, or on contact). Returns the final status registers."""
        st = self.read_status()
        if not st.activated:
            raise DeviceError(f"Robotiq gripper is not activated (gACT={int(st.act)}, gSTA={st.sta}); cannot {doing}",
                              "call activate() first (the harness does it at the start of a run)")
        self._check_fault(st, doing)
        t0 = time.perf_counter()
        self.write_command(Command(act=True, gto=True, position=position, speed=speed, force=force))
        st = self._wait(lambda s: s.position_request == position and s.obj != OBJ_MOVING,
                        self.config.motion_timeout_s, doing)
        log.debug("%s: gPO=%d gOBJ=%d after %.3f s", doing, st.position, st.obj, time.perf_counter() - t0)
        return st

    def open(self, width_m: float) -> GripperStatus:
        """Open (or close) to `width_m` between the fingertips, at the configured open speed/force."""
        if not (math.isfinite(width_m) and 0.0 <= width_m <= self.config.stroke_m + 1e-9):
            raise BenchbotError(f"gripper opening {width_m} m is outside 0..{self.config.stroke_m} m",
                                "ask for an opening within the gripper's stroke")
        st = self.go_to(self.map.to_position(width_m), _fraction_to_byte(self.config.open_speed, "open_speed"),
                        _fraction_to_byte(self.config.open_force, "open_force"), f"opening to {width_m * 1000:.1f} mm")
        return self._to_status(st)

    def grip(self, force: float = 1.0, speed: float = 1.0) -> GripperStatus:
        """Close (rPR=255) until the fingers stop on an object (gOBJ=2) or at their closed stop."""
        st = self.go_to(255, _fraction_to_byte(speed, "speed"), _fraction_to_byte(force, "force"), "gripping")
        return self._to_status(st)

    def use_calibration(self, open_position: int, closed_position: int) -> None:
        """Map positions with these measured ends (see `robotiq_calibration.calibrate_gripper`)."""
        self.config = replace(self.config, open_position=open_position, closed_position=closed_position)
        self.map = PositionMap(self.config.stroke_m, open_position, closed_position)

    def status(self) -> GripperStatus:
        return self._to_status(self.read_status())

    def _to_status(self, st: Status) -> GripperStatus:
        contact = st.obj in (OBJ_CONTACT_OPENING, OBJ_CONTACT_CLOSING)
        fingers_met = st.position >= self.map.closed_position - CLOSED_MARGIN  # no object between them
        return GripperStatus(
            activated=st.activated,
            moving=st.moving,
            object_detected=st.activated and st.gto and contact and not fingers_met,
            position_m=self.map.to_width_m(st.position),
            fault=fault_message(st.fault) if st.fault else None,
        )

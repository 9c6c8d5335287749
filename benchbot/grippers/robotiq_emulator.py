"""A Robotiq 2F-85 emulator: a real pymodbus server with the gripper's register map and behaviour.

`GripperModel` is the time-driven behaviour (activation, motion, contact, faults); the server
wraps it in a pymodbus Modbus server (Modbus TCP, RTU framing over TCP, or serial RTU) running
in a background thread. Point `RobotiqGripper` (or any Modbus tool) at `handle.host:handle.port`.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..errors import BenchbotError, missing_extra
from .robotiq_registers import (
    INPUT_ADDR, MAJOR_FAULTS, N_REGISTERS, OBJ_AT_POSITION, OBJ_CONTACT_CLOSING, OBJ_MOVING,
    OUTPUT_ADDR, STA_ACTIVATING, STA_ACTIVE, STA_RESET, UNIT_ID, Command, PositionMap, Status,
    quiet_pymodbus_logs,
)

Framing = Literal["tcp", "rtu-tcp", "serial"]
FRAMINGS = ("tcp", "rtu-tcp", "serial")


@dataclass(frozen=True)
class ModelParams:
    """Physical figures of a 2F-85 (manual: 20–150 mm/s, 20–235 N, 85 mm stroke)."""

    stroke_m: float = 0.085
    min_speed_mps: float = 0.020
    max_speed_mps: float = 0.150
    activation_s: float = 1.5  # reset → gSTA=3 (the real unit opens/closes to find its limits)
    release_speed_mps: float = 0.020  # automatic release moves slowly


class GripperModel:
    """What the gripper does over (simulated) time. Not thread-safe: callers hold a lock.

    Times passed in are simulated seconds; positions are register units (0 open … 255 closed)
    kept as floats so slow motions are smooth.
    """

    def __init__(self, params: ModelParams = ModelParams(), object_width_m: float | None = None) -> None:
        self.params = params
        self.map = PositionMap(params.stroke_m)
        self.cmd = Command()
        self.sta = STA_RESET
        self.obj = OBJ_MOVING
        self.fault = 0
        self.position = 0.0
        self.current = 0
        self.t = 0.0
        self.activation_end: float | None = None
        self.moving = False
        self.releasing = False
        self.target = 0.0
        self.rate = 0.0  # register units per second
        self.object_width_m = object_width_m

    # ---- inputs ----
    def set_object_width(self, width_m: float | None, t: float) -> None:
        """An object of this width between the jaws (None: nothing). A held object that gets
        narrower or disappears makes the fingers close on (gOBJ 3 = object lost)."""
        self.advance(t)
        self.object_width_m = width_m
        if self.obj == OBJ_CONTACT_CLOSING and self.cmd.gto and not self.moving:
            contact = self._contact_position()
            if contact is None or contact > self.position + 0.5:
                self._start_motion(self.cmd.position, self.cmd.speed)

    def inject_fault(self, code: int, t: float) -> None:
        """Raise gFLT=code and stop; cleared by a reset (rACT=0), like the real unit."""
        self.advance(t)
        self.fault = int(code) & 0x0F
        if self.fault:
            self.moving = False
            self.current = 0

    def command(self, cmd: Command, t: float) -> None:
        """A new robot-output register set was written."""
        self.advance(t)
        rising = cmd.act and not self.cmd.act
        self.cmd = cmd
        if not cmd.act:  # reset: stop, clear every fault
            self.sta, self.obj, self.fault, self.current = STA_RESET, OBJ_MOVING, 0, 0
            self.moving = self.releasing = False
            self.activation_end = None
            if cmd.gto:
                self.fault = 0x07  # action asked without activation
            return
        if cmd.atr:  # automatic release overrides everything but rACT
            self.sta, self.fault, self.releasing = STA_RESET, 0x0B, True
            target = self.map.open_position if cmd.ard else self.map.closed_position
            self._start_motion(target, None)
            return
        if self.fault in MAJOR_FAULTS or self.fault in (0x08, 0x09):
            return  # needs a reset first
        if rising or self.sta == STA_RESET:
            self.sta, self.obj, self.fault = STA_ACTIVATING, OBJ_MOVING, 0
            self.moving = False
            self.activation_end = t + self.params.activation_s
        if self.sta == STA_ACTIVATING:
            if cmd.gto:
                self.fault = 0x05  # delayed until the activation completes
            return
        if self.fault in (0x05, 0x07):
            self.fault = 0
        if cmd.gto:
            self._start_motion(cmd.position, cmd.speed)
        else:
            self.moving = False
            self.current = 0

    # ---- time ----
    def advance(self, t: float) -> None:
        """Bring the state forward to simulated time t."""
        while self.t < t:
            if self.sta == STA_ACTIVATING and self.activation_end is not None:
                if self.activation_end > t:
                    self.t = t
                    return
                self.t = self.activation_end
                self._finish_activation()
                continue
            if not self.moving:
                self.t = t
                return
            stop_at, contact = self._stop_point()
            needed = abs(stop_at - self.position) / self.rate
            if self.t + needed > t:
                step = self.rate * (t - self.t)
                self.position += step if stop_at > self.position else -step
                self.t = t
                return
            self.t += needed
            self._arrive(stop_at, contact)

    def status(self) -> Status:
        return Status(act=self.cmd.act, gto=self.cmd.gto and self.cmd.act, sta=self.sta, obj=self.obj,
                      fault=self.fault, position_request=self.cmd.position,
                      position=int(min(255, max(0, round(self.position)))), current=self.current)

    # ---- internals ----
    def _finish_activation(self) -> None:
        self.sta, self.activation_end = STA_ACTIVE, None
        self.position = float(self.map.open_position)  # ends open after finding its limits
        self.obj, self.current = OBJ_MOVING, 0
        if self.fault == 0x05:
            self.fault = 0
        if self.cmd.gto:
            self._start_motion(self.cmd.position, self.cmd.speed)

    def _start_motion(self, target: int, speed: int | None) -> None:
        p = self.params
        speed_mps = (p.release_speed_mps if speed is None
                     else p.min_speed_mps + (p.max_speed_mps - p.min_speed_mps) * speed / 255.0)
        span = self.map.closed_position - self.map.open_position
        self.rate = speed_mps / p.stroke_m * span
        self.target = float(target)
        self.obj = OBJ_MOVING
        self.current = int(round(10 + 15 * speed_mps / p.max_speed_mps))  # ≈ 100–250 mA moving
        self.moving = True
        stop_at, contact = self._stop_point()
        if abs(stop_at - self.position) < 1e-9:  # already there, or already touching
            self._arrive(stop_at, contact)

    def _contact_position(self) -> float | None:
        if self.object_width_m is None:
            return None
        m = self.map
        frac = min(1.0, max(0.0, self.object_width_m / m.stroke_m))
        return m.closed_position - frac * (m.closed_position - m.open_position)

    def _stop_point(self) -> tuple[float, bool]:
        """Where the current motion ends and whether that is a contact with the object."""
        contact = None if self.releasing else self._contact_position()
        closing = self.target > self.position
        if closing and contact is not None and contact < self.target:
            # an object at least as wide as the opening is touched at once
            return max(contact, self.position), True
        return self.target, False

    def _arrive(self, position: float, contact: bool) -> None:
        self.position = position
        self.moving = False
        if self.releasing:
            self.releasing = False
            self.fault = 0x0F
            self.current = 0
            return
        self.obj = OBJ_CONTACT_CLOSING if contact else OBJ_AT_POSITION
        # Holding an object draws current that grows with the force request; free fingers none.
        self.current = int(round(5 + 40 * self.cmd.force / 255)) if contact else 0


class EmulatorHandle:
    """A running emulator. Use as a context manager, or call `stop()`."""

    def __init__(self, model: GripperModel, time_scale: float, framing: Framing, device_id: int) -> None:
        if not time_scale > 0:
            raise BenchbotError(f"time_scale must be > 0, got {time_scale}", "pass a positive factor")
        self.model = model
        self.time_scale = float(time_scale)
        self.framing = framing
        self.device_id = device_id
        self.host: str = ""
        self.port: int | None = None
        self.serial_port: str | None = None
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._unresponsive = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self.requests = 0  # Modbus requests answered (for tests and diagnostics)

    # ---- user controls ----
    def sim_time(self) -> float:
        return (time.perf_counter() - self._t0) * self.time_scale

    def set_object_width(self, width_m: float | None) -> None:
        """Width of the object between the jaws for the next grips (None: no object)."""
        if width_m is not None and not (math.isfinite(width_m) and width_m >= 0):
            raise BenchbotError(f"object width must be ≥ 0 m, got {width_m}", "pass a width in metres or None")
        with self._lock:
            self.model.set_object_width(width_m, self.sim_time())

    def inject_fault(self, code: int) -> None:
        """Set gFLT (e.g. 0x0E overcurrent); a reset (re-activation) clears it."""
        if not 0 <= int(code) <= 0x0F:
            raise BenchbotError(f"fault code must be 0x00..0x0F, got {code}", "use a gFLT code from the manual")
        with self._lock:
            self.model.inject_fault(int(code), self.sim_time())

    def set_unresponsive(self, flag: bool) -> None:
        """Silently ignore every request (clients see Modbus timeouts) until cleared."""
        self._unresponsive = bool(flag)

    def drop_connections(self) -> None:
        """Close every open client connection (the listener stays up)."""
        server, loop = self._server, self._loop
        if server is None or loop is None:
            return

        def _drop() -> None:
            for conn in list(server.active_connections.values()):
                conn.close()

        loop.call_soon_threadsafe(_drop)

    def client_config(self, **overrides):
        """A `RobotiqConfig` pointing at this emulator (no polling pause), for tests and --sim."""
        from .robotiq import RobotiqConfig

        cfg = dict(transport=self.framing, host=self.host or "127.0.0.1", port=self.port or 502,
                   serial_port=self.serial_port or "/dev/ttyUSB0", device_id=self.device_id, poll_s=0.0)
        cfg.update(overrides)
        return RobotiqConfig(**cfg)

    def status(self) -> Status:
        with self._lock:
            self.model.advance(self.sim_time())
            return self.model.status()

    @property
    def address(self) -> str:
        return self.serial_port or f"{self.host}:{self.port}"

    # ---- Modbus hooks (run in the server thread) ----
    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None):
        from pymodbus.constants import ExcCodes

        if self._unresponsive:
            return ExcCodes.DEVICE_BUSY  # its reply is dropped in _trace_packet
        out_off, in_off = OUTPUT_ADDR - start_address, INPUT_ADDR - start_address
        with self._lock:
            t = self.sim_time()
            if values is not None:  # a write: only the command registers are writable
                regs = list(registers[out_off:out_off + N_REGISTERS])
                first = address - start_address - out_off
                for i, v in enumerate(values):
                    if 0 <= first + i < N_REGISTERS:
                        regs[first + i] = int(v)
                self.model.command(Command.from_registers(regs), t)
            else:
                self.model.advance(t)
            registers[in_off:in_off + N_REGISTERS] = self.model.status().to_registers()
            self.requests += 1
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return b"" if (sending and self._unresponsive) else data

    # ---- lifecycle ----
    def _device(self):
        from pymodbus.simulator import DataType, SimData, SimDevice

        blocks = [SimData(OUTPUT_ADDR, values=Command().to_registers(), datatype=DataType.REGISTERS),
                  SimData(INPUT_ADDR, values=self.model.status().to_registers(),
                          datatype=DataType.REGISTERS, readonly=True)]
        return SimDevice(self.device_id, simdata=blocks, action=self._action)

    async def _make_server(self, host: str, port: int, serial_port: str | None, baudrate: int):
        from pymodbus import FramerType
        from pymodbus.server import ModbusSerialServer, ModbusTcpServer

        quiet_pymodbus_logs()

        if self.framing == "serial":
            return ModbusSerialServer(self._device(), framer=FramerType.RTU, port=serial_port or "",
                                      baudrate=baudrate, trace_packet=self._trace_packet)
        framer = FramerType.SOCKET if self.framing == "tcp" else FramerType.RTU
        return ModbusTcpServer(self._device(), framer=framer, address=(host, port),
                               trace_packet=self._trace_packet)

    def _start(self, host: str, port: int, serial_port: str | None, baudrate: int) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop

            async def boot() -> None:
                server = await self._make_server(host, port, serial_port, baudrate)
                await server.serve_forever(background=True)
                self._server = server

            try:
                loop.run_until_complete(boot())
            except BaseException as e:  # reported to the starting thread
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name=f"robotiq-emulator-{self.framing}", daemon=True)
        self._thread.start()
        ready.wait(10.0)
        if failure or self._server is None:
            why = failure[0] if failure else "timed out"
            where = serial_port if self.framing == "serial" else f"{host}:{port}"
            raise BenchbotError(f"could not start the gripper emulator on {where}: {why}",
                                "pick another port (port 0 picks a free one) or close what holds it")
        if self.framing == "serial":
            self.serial_port = serial_port
        else:
            sock = self._server.transport.sockets[0].getsockname()
            self.host, self.port = sock[0], int(sock[1])

    def stop(self) -> None:
        """Stop the server and its thread (idempotent)."""
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        if server is not None:
            try:
                asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5.0)
            except Exception:  # the loop is going down anyway
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        self._server = None

    def __enter__(self) -> "EmulatorHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(host: str = "127.0.0.1", port: int = 0, framing: Framing = "tcp",
                   time_scale: float = 1.0, object_width_m: float | None = None, *,
                   serial_port: str | None = None, baudrate: int = 115200,
                   device_id: int = UNIT_ID, params: ModelParams = ModelParams()) -> EmulatorHandle:
    """Start an emulated 2F-85 in a background thread and return its handle.

    framing: "tcp" (Modbus TCP), "rtu-tcp" (RTU frames over TCP, like a gateway or the UR tool
    socket) or "serial" (RTU on `serial_port`; needs pyserial). port=0 picks a free port (see
    `handle.port`). time_scale > 1 runs the gripper's clock faster than the wall clock.
    """
    if framing not in FRAMINGS:
        raise BenchbotError(f"unknown framing '{framing}'", f"use one of: {', '.join(FRAMINGS)}")
    if framing == "serial":
        if not serial_port:
            raise BenchbotError("serial framing needs a serial port", "pass serial_port='/dev/ttyUSB0' (or a pty)")
        try:
            import serial  # noqa: F401
        except ImportError:
            raise missing_extra("pyserial", "robotiq") from None
    handle = EmulatorHandle(GripperModel(params, object_width_m), time_scale, framing, device_id)
    handle._start(host, port, serial_port, baudrate)
    return handle


def serve_emulator(host: str = "127.0.0.1", port: int = 5020, framing: Framing = "tcp",
                   time_scale: float = 1.0, object_width_m: float | None = None, *,
                   serial_port: str | None = None, baudrate: int = 115200,
                   on_ready: Callable[[EmulatorHandle], None] | None = None,
                   stop_event: threading.Event | None = None) -> None:
    """Run the emulator until Ctrl-C (or `stop_event` is set). `on_ready` gets the handle once
    it listens, e.g. to print its address."""
    handle = start_emulator(host, port, framing, time_scale, object_width_m,
                            serial_port=serial_port, baudrate=baudrate)
    stop_event = stop_event or threading.Event()
    try:
        if on_ready is not None:
            on_ready(handle)
        while not stop_event.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()

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
from typing import Any, Literal

from benchbot.core.errors import BenchbotError, missing_extra
from benchbot.devices.grippers.robotiq import RobotiqGripper
from benchbot.devices.grippers.robotiq_model import GripperModel, ModelParams
from benchbot.devices.grippers.robotiq_registers import (
    INPUT_ADDR,
    N_REGISTERS,
    OUTPUT_ADDR,
    UNIT_ID,
    Command,
    Status,
    quiet_pymodbus_logs,
)

Framing = Literal["tcp", "rtu-tcp", "serial"]
FRAMINGS = ("tcp", "rtu-tcp", "serial")


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
        self.ignored = 0  # requests for other unit ids, left unanswered

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
        from benchbot.devices.grippers.robotiq import RobotiqConfig

        cfg = dict(transport=self.framing, host=self.host or "127.0.0.1", port=self.port or 502,
                   serial_port=self.serial_port or "/dev/ttyUSB0", device_id=self.device_id, poll_s=0.0)
        cfg.update(overrides)
        return RobotiqConfig(**cfg)

    def calibrated_client(self, **overrides):
        """An activated `RobotiqGripper` for this emulator, calibrated as `benchbot calibrate-gripper`
        calibrates a real unit (close and open fully, read gPO): the jaws must be empty."""
        from benchbot.devices.grippers.robotiq import RobotiqGripper
        from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper

        gripper = RobotiqGripper(self.client_config(**overrides))
        try:
            cal = calibrate_gripper(gripper)
        except BaseException:
            gripper.close()
            raise
        gripper.use_calibration(cal.open_position, cal.closed_position)
        return gripper

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

    def _trace_pdu(self, sending: bool, pdu):
        """Drop requests for other unit ids before pymodbus handles them: a device on an RS-485
        bus stays silent (no exception reply), so the client times out."""
        if not sending and pdu.dev_id != self.device_id:
            self.ignored += 1
            return None
        return pdu

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
                                      baudrate=baudrate, trace_packet=self._trace_packet, trace_pdu=self._trace_pdu)
        framer = FramerType.SOCKET if self.framing == "tcp" else FramerType.RTU
        return ModbusTcpServer(self._device(), framer=framer, address=(host, port),
                               trace_packet=self._trace_packet, trace_pdu=self._trace_pdu)

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

    def __enter__(self) -> EmulatorHandle:
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


class EmulatedRobotiqGripper(RobotiqGripper):
    """The dry-run gripper: the real Modbus client (`RobotiqGripper`) talking to an in-process
    2F-85 emulator on loopback. `connect` starts the emulator, then activates and calibrates the
    client as `benchbot calibrate-gripper` does a real unit (jaws empty); `close` closes the client
    and stops the emulator. `emulator` is the running handle (None while closed)."""

    def __init__(self, time_scale: float = 50.0, **client_overrides: Any) -> None:
        super().__init__()
        self.time_scale = time_scale
        self._overrides = client_overrides
        self.emulator: EmulatorHandle | None = None

    def connect(self) -> None:
        if self.emulator is None:
            from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper

            self.emulator = emu = start_emulator(time_scale=self.time_scale)
            try:
                self.config = emu.client_config(**self._overrides)
                cal = calibrate_gripper(self)  # requests reconnect through here: emulator is set
                self.use_calibration(cal.open_position, cal.closed_position)
            except BaseException:
                self.close()
                raise
        super().connect()

    def close(self) -> None:
        super().close()
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

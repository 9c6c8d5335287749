"""An emulated UR controller on a loopback address, so that the real `ur_rtde` client (and URArm)
can be tested end to end without a robot or URSim.

Serves, on `host`:
  - RTDE on 30004: protocol version 1/2, controller version, output/input recipe setup
    (NOT_FOUND for unknown names, IN_USE for input registers held by another client), start/pause,
    data packages at the client's frequency, input data packages written into the controller;
  - the dashboard server on 29999 (the commands ur_rtde and URArm use, see DASHBOARD_REPLIES);
  - the script socket on 30003: an uploaded `def rtde_control(): ... end` program "runs" the
    emulated control script; the URScript text itself is never interpreted.
ur_rtde's ports are fixed, so two emulators need two loopback addresses (127.0.0.2, ...).
See rtde_controller.py for what the emulated robot does and does not model; rtde_wire.py holds the
packet formats. This module (~400 lines) holds the three servers, which share one controller model
and one register-ownership table: one emulated controller, so one module.
"""
from __future__ import annotations

import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchbot.core.errors import BenchbotError
from benchbot.devices.arms import rtde_wire as w
from benchbot.devices.arms.rtde_controller import UR5_HOME_Q, URControllerModel

RTDE_PORT, DASHBOARD_PORT, SCRIPT_PORT = 30004, 29999, 30003
CB3_VERSION = (3, 15, 7, 106331)  # UR5 CB3, PolyScope 3.15.7
CLOCK_HZ = 125.0


@dataclass
class _Claims:
    """Input variables held by each RTDE connection (a register has one writer)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: dict[str, int] = field(default_factory=dict)

    def claim(self, conn_id: int, names: list[str]) -> bool:
        with self.lock:
            if any(self.owner.get(n, conn_id) != conn_id for n in names):
                return False
            for n in names:
                self.owner[n] = conn_id
            return True

    def release(self, conn_id: int) -> None:
        with self.lock:
            self.owner = {n: c for n, c in self.owner.items() if c != conn_id}


class RTDEEmulator:
    """Background emulator; use `start_rtde_emulator()` to build and start one."""

    def __init__(self, host: str = "127.0.0.1", *, home_q: tuple[float, ...] = UR5_HOME_Q,
                 time_scale: float = 1.0, table_z_m: float | None = None, script_start_delay_s: float = 0.1,
                 controller_version: tuple[int, int, int, int] = CB3_VERSION,
                 ports: tuple[int, int, int] = (RTDE_PORT, DASHBOARD_PORT, SCRIPT_PORT)) -> None:
        self.host = host
        self.model = URControllerModel(home_q, table_z_m)
        self.time_scale = time_scale
        self.script_start_delay_s = script_start_delay_s
        self.version = controller_version
        self.ports = ports
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[socket.socket] = []
        self._conns: list[socket.socket] = []
        self._claims = _Claims()
        self._conn_ids = iter(range(1, 1 << 30))
        self.connections = 0  # RTDE connections accepted so far

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> RTDEEmulator:
        handlers = (self._serve_rtde, self._serve_dashboard, self._serve_script)
        try:
            for port in self.ports:
                self._listeners.append(_listen(self.host, port))
        except OSError as e:
            self._close_listeners()
            raise BenchbotError(f"cannot start the RTDE emulator on {self.host}: {e}",
                                "stop whatever uses that address (URSim, another emulator) or pick another "
                                "loopback address, e.g. --host 127.0.0.2") from None
        for listener, handler in zip(self._listeners, handlers, strict=True):
            self._spawn(self._accept_loop, listener, handler)
        self._spawn(self._clock)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._close_listeners()
        for c in list(self._conns):
            _close(c)
        for t in self._threads:
            t.join(timeout=2.0)

    def __enter__(self) -> RTDEEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test hooks --------------------------------------------------------------------------------
    def trigger_protective_stop(self, reason: str = "triggered by the test") -> None:
        self.model.trigger_protective_stop(reason)

    @property
    def log(self) -> list[dict[str, Any]]:
        with self.model.lock:
            return list(self.model.log)

    def commands(self) -> list[str]:
        """Names of the control-script commands received so far, in order."""
        return [e["name"] for e in self.log if e["event"] == "command"]

    # -- internals -------------------------------------------------------------------------------
    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True, name=f"rtde-emulator-{fn.__name__}")
        t.start()
        self._threads.append(t)

    def _close_listeners(self) -> None:
        for s in self._listeners:
            _close(s)

    def _clock(self) -> None:
        period = 1.0 / CLOCK_HZ
        last = time.perf_counter()
        while not self._stop.wait(period):
            now = time.perf_counter()
            self.model.step((now - last) * self.time_scale)
            last = now

    def _accept_loop(self, listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            self._spawn(self._run_handler, handler, conn)

    def _run_handler(self, handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
        try:
            handler(conn)
        except OSError:
            pass  # the client went away
        finally:
            _close(conn)
            if conn in self._conns:
                self._conns.remove(conn)

    # -- RTDE ------------------------------------------------------------------------------------
    def _serve_rtde(self, conn: socket.socket) -> None:
        conn_id = next(self._conn_ids)
        self.connections += 1
        session = _RTDESession(self, conn, conn_id)
        try:
            session.run()
        finally:
            self._claims.release(conn_id)

    # -- dashboard ---------------------------------------------------------------------------------
    def _serve_dashboard(self, conn: socket.socket) -> None:
        conn.sendall(b"Connected: Universal Robots Dashboard Server\n")
        buf = b""
        while not self._stop.is_set():
            r, _, _ = select.select([conn], [], [], 0.2)
            if not r:
                continue
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                reply = self._dashboard_reply(line.decode("utf-8", "replace").strip())
                conn.sendall((reply + "\n").encode())
                if reply == "Disconnected":
                    return

    def _dashboard_reply(self, command: str) -> str:
        m = self.model
        low = command.lower()
        with m.lock:
            m.log.append({"t_s": round(m.t_s, 4), "event": "dashboard", "command": command})
            if low == "polyscopeversion":
                major, minor, bugfix, build = self.version
                return f"URSoftware {major}.{minor}.{bugfix}.{build} (Mar 03 2022)"
            if low == "unlock protective stop":
                if not m.protective_stopped:
                    return "Protective stop releasing"  # what PolyScope 3.x answers as well
                m.unlock_protective_stop()
                return "Protective stop releasing"
            if low == "stop":
                m.stop_program("dashboard stop")
                return "Stopped"
            if low == "running":
                return f"Program running: {str(m.program_running).lower()}"
            if low == "programstate":
                return f"PLAYING {m.program}" if m.program_running else "STOPPED <unnamed>"
            if low == "safetymode":
                return "Safetymode: " + ("PROTECTIVE_STOP" if m.protective_stopped else "NORMAL")
            if low == "safetystatus":
                return "Safetystatus: " + ("PROTECTIVE_STOP" if m.protective_stopped else "NORMAL")
            if low == "quit":
                return "Disconnected"
            for prefix, reply in DASHBOARD_REPLIES.items():
                if low.startswith(prefix):
                    return reply
        return f"could not understand: '{command}'"

    # -- script socket -----------------------------------------------------------------------------
    def _serve_script(self, conn: socket.socket) -> None:
        buf = ""
        while not self._stop.is_set():
            r, _, _ = select.select([conn], [], [], 0.2)
            if not r:
                continue
            data = conn.recv(1 << 16)
            if not data:
                return
            buf += data.decode("utf-8", "replace")
            buf = self._take_programs(buf)

    def _take_programs(self, buf: str) -> str:
        """Start every complete `def name(): ... end` program in buf; return the remainder."""
        while True:
            start = _PROGRAM_DEF.search(buf)
            if start is None:
                if "\n" in buf and not buf.lstrip().startswith("def"):
                    line, buf = buf.split("\n", 1)  # a one-line script command (e.g. stopl(1.0))
                    if line.strip():
                        self._one_line_command(line.strip())
                    continue
                return buf
            end = _PROGRAM_END.search(buf, start.end())
            if end is None:
                return buf
            # a controller takes a moment to compile and start a program
            timer = threading.Timer(self.script_start_delay_s, self.model.start_program, (start.group(1),))
            timer.daemon = True
            timer.start()
            buf = buf[end.end():]

    def _one_line_command(self, line: str) -> None:
        m = self.model
        with m.lock:
            m.log.append({"t_s": round(m.t_s, 4), "event": "script_line", "line": line})
            if line.startswith(("stopl", "stopj", "halt")):
                m.move = None


_PROGRAM_DEF = re.compile(r"^def\s+(\w+)\s*\(\s*\)\s*:", re.MULTILINE)
_PROGRAM_END = re.compile(r"^end\b[^\n]*\n?", re.MULTILINE)

DASHBOARD_REPLIES = {
    "close safety popup": "closing safety popup", "close popup": "closing popup",
    "robotmode": "Robotmode: RUNNING", "power on": "Powering on", "power off": "Powering off",
    "brake release": "Brake releasing", "play": "Starting program", "pause": "Pausing program",
    "is in remote control": "true", "get robot model": "UR5", "get serial number": "2019300001",
    "get loaded program": "No program loaded", "popup": "showing popup", "addtolog": "Added log message",
    "isprogramsaved": "true", "load": "File not found: emulator cannot load programs",
}


class _RTDESession:
    """One RTDE client connection."""

    def __init__(self, emu: RTDEEmulator, conn: socket.socket, conn_id: int) -> None:
        self.emu, self.conn, self.conn_id = emu, conn, conn_id
        self.protocol = 1
        self.out_names: list[str] = []
        self.out_types: list[str] = []
        self.period_s = 1.0 / CLOCK_HZ
        self.inputs: dict[int, tuple[list[str], list[str]]] = {}
        self.started = False

    def run(self) -> None:
        buf = b""
        next_send = time.perf_counter()
        while not self.emu._stop.is_set():
            now = time.perf_counter()
            wait = max(0.0, next_send - now) if self.started and self.out_names else 0.05
            r, _, _ = select.select([self.conn], [], [], wait)
            if r:
                data = self.conn.recv(1 << 16)
                if not data:
                    return
                buf += data
                while len(buf) >= w.HEADER.size:
                    size, kind = w.HEADER.unpack_from(buf)
                    if size < w.HEADER.size or len(buf) < size:
                        break
                    self._handle(kind, buf[w.HEADER.size:size])
                    buf = buf[size:]
            now = time.perf_counter()
            if self.started and self.out_names and now >= next_send:
                self._send_data()
                next_send = max(next_send + self.period_s, now - self.period_s)

    def _event(self, event: str, **info: Any) -> None:
        m = self.emu.model
        with m.lock:
            m.log.append({"t_s": round(m.t_s, 4), "event": event, "connection": self.conn_id, **info})

    def _reply(self, kind: int, payload: bytes) -> None:
        self.conn.sendall(w.message(kind, payload))

    def _handle(self, kind: int, payload: bytes) -> None:
        if kind == w.REQUEST_PROTOCOL_VERSION:
            version = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 0
            ok = version in (1, 2)
            if ok:
                self.protocol = version
            self._reply(kind, struct.pack(">B", int(ok)))
        elif kind == w.GET_URCONTROL_VERSION:
            self._reply(kind, struct.pack(">IIII", *self.emu.version))
        elif kind == w.SETUP_OUTPUTS:
            self._setup_outputs(payload)
        elif kind == w.SETUP_INPUTS:
            self._setup_inputs(payload)
        elif kind == w.START:
            self.started = True
            self._reply(kind, b"\x01")
        elif kind == w.PAUSE:
            self.started = False
            self._reply(kind, b"\x01")
        elif kind == w.DATA_PACKAGE and payload:
            recipe = self.inputs.get(payload[0])
            if recipe is None:
                self._event("rtde_unknown_recipe", recipe_id=payload[0])
            else:
                names, types = recipe
                self.emu.model.set_inputs(names, w.unpack_values(types, payload[1:]))
        # other message types are ignored, as the controller does

    def _setup_outputs(self, payload: bytes) -> None:
        frequency = CLOCK_HZ if self.protocol == 1 else struct.unpack(">d", payload[:8])[0]
        names = w.split_names(payload if self.protocol == 1 else payload[8:])
        types = [w.output_type(n) for n in names]
        valid = bool(names) and "NOT_FOUND" not in types and 0 < frequency <= 500
        if valid:
            self.out_names, self.out_types = names, types
            self.period_s = 1.0 / frequency
        self._event("rtde_setup_outputs", valid=valid, frequency=frequency, names=names, types=types)
        self._reply(w.SETUP_OUTPUTS, bytes([1 if valid else 0]) + ",".join(types).encode())

    def _setup_inputs(self, payload: bytes) -> None:
        names = w.split_names(payload)
        types = [w.input_type(n) for n in names]
        if "NOT_FOUND" not in types and not self.emu._claims.claim(self.conn_id, names):
            types = ["IN_USE" if self.emu._claims.owner.get(n) not in (None, self.conn_id) else t
                     for n, t in zip(names, types, strict=True)]
        recipe_id = 0
        if names and "NOT_FOUND" not in types and "IN_USE" not in types:
            recipe_id = len(self.inputs) + 1
            self.inputs[recipe_id] = (names, types)
        self._event("rtde_setup_inputs", recipe_id=recipe_id, names=names, types=types)
        self._reply(w.SETUP_INPUTS, bytes([recipe_id]) + ",".join(types).encode())

    def _send_data(self) -> None:
        model = self.emu.model
        with model.lock:
            values = [model.value(n) for n in self.out_names]
        values = [v if v is not None else _zero(t) for v, t in zip(values, self.out_types, strict=True)]
        self._reply(w.DATA_PACKAGE, b"\x01" + w.pack_values(self.out_types, values))


def _zero(rtde_type: str) -> Any:
    fmt = w.TYPE_FORMATS[rtde_type]
    n = int(fmt[0]) if fmt[0].isdigit() else 1
    base = 0.0 if fmt[-1] == "d" else (False if fmt == "?" else 0)
    return [base] * n if rtde_type.startswith("VECTOR") else base


def _listen(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        s.listen(8)
    except OSError:
        s.close()
        raise
    s.settimeout(0.2)
    return s


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()

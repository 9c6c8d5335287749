"""The RTDE controller emulator in a child process (`start_rtde_emulator`) or in the foreground
(`run_rtde_emulator`, `benchbot emulate arm`): ur_rtde's constructors hold the GIL while they wait
for the controller, so a client and an emulator cannot share one interpreter."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from benchbot.core.errors import BenchbotError
from benchbot.core.paths import PACKAGE_DIR
from benchbot.devices.arms.rtde_emulator import RTDEEmulator
from benchbot.devices.arms.ur_kinematics import matrix_to_pose


class EmulatorProcess:
    """Handle on an emulator running in a child Python process.

    ur_rtde's constructors hold Python's GIL while they wait for the controller, so a client and
    an emulator cannot share one interpreter: the emulator runs in its own process
    (`python -m benchbot.devices.arms.rtde_emulator_process --pipe`) and this handle talks to it in JSON lines
    over its stdin/stdout.
    """

    def __init__(self, host: str, options: dict[str, Any], start_timeout_s: float = 60.0) -> None:
        self.host = host
        self._lock = threading.Lock()
        env = dict(os.environ)
        root = str(PACKAGE_DIR.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchbot.devices.arms.rtde_emulator_process", "--pipe", host, json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        reply = self._read(start_timeout_s)
        if reply is None or reply.get("status") != "ready":
            self._kill()
            if reply is None:
                raise BenchbotError(f"the RTDE emulator on {host} did not start within {start_timeout_s:.0f} s",
                                    "check the machine load and try again")
            raise BenchbotError(reply.get("message", "the RTDE emulator failed to start"), reply.get("fix", ""))
        self.ports = tuple(reply["ports"])

    def _read(self, timeout_s: float) -> dict[str, Any] | None:
        assert self._proc.stdout is not None
        r, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        line = self._proc.stdout.readline() if r else ""
        return json.loads(line) if line else None

    def _call(self, op: str, *args: Any, timeout_s: float = 30.0) -> Any:
        with self._lock:
            if self._proc.poll() is not None:
                raise BenchbotError("the RTDE emulator process is not running", "start it again")
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps({"op": op, "args": list(args)}) + "\n")
            self._proc.stdin.flush()
            reply = self._read(timeout_s)
        if reply is None:
            raise BenchbotError(f"the RTDE emulator did not answer '{op}'", "restart it")
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error"))
        return reply.get("value")

    def trigger_protective_stop(self, reason: str = "triggered by the test") -> None:
        self._call("protective_stop", reason)

    def log(self) -> list[dict[str, Any]]:
        return self._call("log")

    def hand_guide(self, pose: list[float]) -> None:
        """Move the arm by hand to the TCP pose [x, y, z, rx, ry, rz] (only in teach/freedrive mode)."""
        self._call("hand_guide", [float(v) for v in pose])

    def commands(self) -> list[str]:
        """Names of the control-script commands received so far, in order."""
        return [e["name"] for e in self.log() if e["event"] == "command"]

    def state(self) -> dict[str, Any]:
        """q, TCP pose, TCP offset, payload, teach mode, safety mode, running program, emulated time."""
        return self._call("state")

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                self._call("stop", timeout_s=10.0)
            except (BenchbotError, RuntimeError, OSError, ValueError):
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None:
                f.close()

    def _kill(self) -> None:
        self._proc.kill()
        self._proc.wait(timeout=10)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pipe_main(host: str, options_json: str) -> None:
    """Child side of EmulatorProcess: JSON requests on stdin, JSON replies on stdout."""
    options = json.loads(options_json)
    if "home_q" in options:
        options["home_q"] = tuple(options["home_q"])
    if "controller_version" in options:
        options["controller_version"] = tuple(options["controller_version"])

    def send(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        emu = RTDEEmulator(host, **options).start()
    except BenchbotError as e:
        send({"status": "error", "message": e.message, "fix": e.fix})
        return
    send({"status": "ready", "ports": list(emu.ports)})
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "stop":
                send({"ok": True})
                return
            try:
                send({"ok": True, "value": _child_op(emu, request["op"], request.get("args", []))})
            except Exception as e:  # report, keep serving
                send({"ok": False, "error": f"{type(e).__name__}: {e}"})
    finally:  # stop request, or the parent went away (stdin closed)
        emu.stop()


def _child_op(emu: RTDEEmulator, op: str, args: list[Any]) -> Any:
    m = emu.model
    if op == "protective_stop":
        return emu.trigger_protective_stop(*args)
    if op == "log":
        return _jsonable(emu.log)
    if op == "hand_guide":
        return m.hand_guide(*args)
    if op == "state":
        with m.lock:
            return {"q": [float(x) for x in m.q], "tcp_pose": [float(x) for x in matrix_to_pose(m.tcp)],
                    "tcp_offset": [float(x) for x in m.tcp_offset], "safety_mode": m.safety_mode,
                    "program": m.program, "moving": m.move is not None, "t_s": m.t_s,
                    "payload_kg": m.payload_kg, "payload_cog_m": [float(x) for x in m.payload_cog_m],
                    "teach_mode": m.teach_mode, "rtde_connections": emu.connections}
    raise ValueError(f"unknown emulator operation {op!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def start_rtde_emulator(host: str = "127.0.0.1", **options: Any) -> EmulatorProcess:
    """Start an emulated UR5 controller in a child process; call `.stop()` when done.

    options: home_q (joint angles, rad), time_scale (emulated seconds per real second),
    table_z_m (a protective stop when the TCP goes below it), controller_version,
    script_start_delay_s (real seconds from a script upload to the program running).
    Raises BenchbotError when the address's ports are taken.
    """
    return EmulatorProcess(host, options)


def run_rtde_emulator(host: str = "127.0.0.1", *, echo: Callable[[str], None] = print, **options: Any) -> None:
    """Run the emulator in the foreground until Ctrl-C (for `benchbot emulate arm`)."""
    emu = RTDEEmulator(host, **options).start()
    echo(f"UR5 controller emulator on {host}: RTDE {emu.ports[0]}, dashboard {emu.ports[1]}, "
         f"script {emu.ports[2]} (Ctrl-C to stop)")
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            with emu.model.lock:
                new, seen = emu.model.log.since(seen)  # the log is bounded: count, never index
            for entry in new:
                if not entry["event"].startswith(("dashboard", "rtde_setup")):
                    echo(" ".join(f"{k}={v}" for k, v in entry.items()))
    except KeyboardInterrupt:
        echo("stopping the emulator")
    finally:
        emu.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--pipe":
        _pipe_main(sys.argv[2], sys.argv[3])
    else:
        run_rtde_emulator(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1")

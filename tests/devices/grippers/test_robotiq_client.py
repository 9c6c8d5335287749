"""RobotiqGripper against the emulator over real sockets on 127.0.0.1, and against a raw
RTU responder to check the bytes on the wire."""
import socket
import sys
import threading
import time

import pytest

from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.interfaces import Gripper
from benchbot.devices.grippers.robotiq import RobotiqConfig, RobotiqGripper
from benchbot.devices.grippers.robotiq_emulator import ModelParams, start_emulator
from benchbot.devices.grippers.robotiq_registers import (
    FAULT_MESSAGES,
    Command,
    Status,
    check_crc,
    status_response_frame,
    write_response_frame,
)

SCALE = 1000.0  # emulator clock runs 1000× faster than the wall clock


def client_for(emu, **kw) -> RobotiqGripper:
    cfg = dict(transport=emu.framing, host=emu.host, port=emu.port, timeout_s=0.5, poll_s=0.0)
    cfg.update(kw)
    return RobotiqGripper(cfg)


@pytest.fixture(params=["tcp", "rtu-tcp"])
def emu(request):
    with start_emulator(framing=request.param, time_scale=SCALE) as handle:
        yield handle


def test_client_implements_gripper_interface():
    assert isinstance(RobotiqGripper(), Gripper)


def test_open_grip_cycle_with_and_without_object(emu):
    with emu.calibrated_client(timeout_s=0.5) as g:  # activated, finger stops measured
        st = g.open(0.085)
        assert st.activated and not st.moving and st.position_m == pytest.approx(0.085)
        emu.set_object_width(0.05)
        st = g.grip(force=0.5, speed=0.5)
        assert st.object_detected and st.fault is None
        assert st.position_m == pytest.approx(0.05, abs=0.0005)
        emu.set_object_width(None)
        assert g.status().position_m < 0.05  # the held object is gone: fingers close on
        g.open(0.085)
        st = g.grip()
        assert not st.object_detected and st.position_m == 0.0
        assert emu.status().obj == 3 and emu.status().position == ModelParams().closed_stop
        st = g.open(0.04)
        assert st.position_m == pytest.approx(0.04, abs=0.0004) and not st.object_detected


def test_fresh_gripper_refuses_to_move_until_activated(emu):
    with client_for(emu) as g:
        st = g.status()
        assert not st.activated
        with pytest.raises(DeviceError, match="not activated"):
            g.grip()
        with pytest.raises(DeviceError, match="not activated"):
            g.open(0.085)


def test_go_command_without_activation_reports_fault_07(emu):
    with client_for(emu) as g:
        g.write_command(Command(act=False, gto=True, position=255, speed=255, force=255))
        st = g.status()
        assert st.fault is not None and "0x07" in st.fault and "rACT" in st.fault
        g.activate()  # the reset clears it
        assert g.status().fault is None and g.status().activated


@pytest.mark.parametrize("code", sorted(FAULT_MESSAGES))
def test_each_fault_code_becomes_a_device_error(code):
    with start_emulator(framing="tcp", time_scale=SCALE) as emu, client_for(emu) as g:
        g.activate()
        emu.inject_fault(code)
        with pytest.raises(DeviceError) as err:
            g.grip()
        assert f"0x{code:02X}" in err.value.message
        assert FAULT_MESSAGES[code] in err.value.message
        assert err.value.fix
        g.activate()  # reset + activation clears the fault
        assert g.grip().fault is None


def test_unresponsive_gripper_times_out_with_device_error(emu):
    with client_for(emu, timeout_s=0.2, retries=1) as g:
        g.activate()
        emu.set_unresponsive(True)
        with pytest.raises(DeviceError, match="no answer"):
            g.grip()
        emu.set_unresponsive(False)
        assert g.grip().activated  # recovers once the gripper answers again


def test_dropped_connection_is_reopened_transparently(emu):
    with client_for(emu) as g:
        g.activate()
        emu.drop_connections()
        time.sleep(0.05)
        assert g.open(0.085).position_m == pytest.approx(0.085)


def test_reconnects_after_emulator_restart():
    first = start_emulator(framing="rtu-tcp", time_scale=SCALE)
    port = first.port
    g = RobotiqGripper(RobotiqConfig(transport="rtu-tcp", host="127.0.0.1", port=port, timeout_s=0.3,
                                     retries=1, poll_s=0.0))
    try:
        g.activate()
        assert g.status().activated
        first.stop()
        with pytest.raises(DeviceError, match="127.0.0.1"):
            g.status()
        with start_emulator(port=port, framing="rtu-tcp", time_scale=SCALE) as second:
            assert second.port == port
            assert not g.status().activated  # a restarted gripper needs activation again
            g.activate()
            assert g.open(0.085).activated
    finally:
        g.close()
        first.stop()


def test_wrong_unit_id_gets_silence_and_a_timeout_naming_device_id(emu):
    """A device on an RS-485 bus ignores frames for other unit ids: no reply at all, not an
    exception reply. The client times out with one line that points at gripper.device_id."""
    from pymodbus import FramerType
    from pymodbus.client import ModbusTcpClient
    from pymodbus.exceptions import ModbusIOException

    framer = FramerType.SOCKET if emu.framing == "tcp" else FramerType.RTU
    raw = ModbusTcpClient(emu.host, port=emu.port, framer=framer, timeout=0.3, retries=0)
    try:
        assert raw.connect()
        with pytest.raises(ModbusIOException):  # silence, where an exception reply would be returned
            raw.read_input_registers(0x07D0, count=3, device_id=3)
    finally:
        raw.close()
    with client_for(emu, device_id=3, timeout_s=0.2, retries=1) as g:
        with pytest.raises(DeviceError, match=r"\(unit 3\): no answer while trying to read its status") as err:
            g.status()
        assert "gripper.device_id" in err.value.fix and "\n" not in err.value.one_line()
    assert emu.requests == 0 and emu.ignored >= 3  # the model never saw them
    with client_for(emu) as g:
        assert not g.status().activated  # unit 9 still answers


def test_nothing_listening_is_a_device_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = RobotiqGripper(RobotiqConfig(transport="tcp", host="127.0.0.1", port=port, timeout_s=0.2, retries=0))
    with pytest.raises(DeviceError, match="cannot connect"):
        g.activate()


def test_bad_arguments_are_user_errors(emu):
    with client_for(emu) as g:
        g.activate()
        with pytest.raises(BenchbotError, match="outside"):
            g.open(0.2)
        with pytest.raises(BenchbotError, match="force"):
            g.grip(force=1.5)
    with pytest.raises(BenchbotError, match="transport"):
        RobotiqConfig(transport="usb")  # type: ignore[arg-type]
    with pytest.raises(BenchbotError, match="unknown key 'slave'"):
        RobotiqGripper({"slave": 9})
    with pytest.raises(BenchbotError):
        RobotiqConfig(open_position=255, closed_position=0)


@pytest.mark.parametrize("transport", ["tcp", "rtu-tcp"])
def test_socket_transports_need_an_explicit_host(transport):
    """No default host: a gripper must never be looked for on the robot controller by accident."""
    with pytest.raises(BenchbotError, match="needs 'host'") as err:
        RobotiqConfig(transport=transport)
    assert "gripper.host" in err.value.fix
    assert RobotiqConfig().transport == "serial"  # the default cannot reach a robot controller
    assert RobotiqConfig(transport="tcp", host="10.0.0.5").address == "10.0.0.5:502"
    assert RobotiqConfig(transport="rtu-tcp", host="10.0.0.2").address == "10.0.0.2:54321"  # UR rs485 URCap


def test_serial_without_pyserial_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)  # makes `import serial` fail
    g = RobotiqGripper(RobotiqConfig(transport="serial", serial_port="/dev/null"))
    with pytest.raises(BenchbotError) as err:
        g.status()
    assert "pyserial" in err.value.message and "benchbot[robotiq]" in err.value.fix


def test_emulator_rejects_writes_to_status_registers(emu):
    from pymodbus import FramerType
    from pymodbus.client import ModbusTcpClient

    framer = FramerType.SOCKET if emu.framing == "tcp" else FramerType.RTU
    c = ModbusTcpClient(emu.host, port=emu.port, framer=framer, timeout=1)
    try:
        assert c.connect()
        assert c.write_registers(0x07D0, [1, 2, 3], device_id=9).isError()
        # FC03 reads of the status block work too (the manual's own examples use it)
        r = c.read_holding_registers(0x07D0, count=3, device_id=9)
        assert not r.isError() and Status.from_registers(r.registers).sta == 0
    finally:
        c.close()


# ---- bytes on the wire: a minimal RTU device on a raw TCP socket ----

class RawRtuDevice:
    """Answers FC16 writes and FC04 reads like a 2F-85 that finishes every motion at once
    (closing stops on an object at gPO=0xBD), and records every request frame."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.cmd = Command()
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _status(self) -> Status:
        c = self.cmd
        if not c.act:
            return Status()
        obj = 0 if not c.gto else (2 if c.position == 255 else 3)
        pos = 0xBD if (c.gto and c.position == 255) else (c.position if c.gto else 0)
        return Status(act=True, gto=c.gto, sta=3, obj=obj, position_request=c.position, position=pos)

    def _serve(self) -> None:
        conn, _ = self.srv.accept()
        buf = b""
        with conn:
            while True:
                data = conn.recv(256)
                if not data:
                    return
                buf += data
                need = 15 if len(buf) > 1 and buf[1] == 0x10 else 8
                if len(buf) < need:
                    continue
                frame, buf = buf[:need], buf[need:]
                self.requests.append(frame)
                assert check_crc(frame)
                if frame[1] == 0x10:
                    self.cmd = Command.from_bytes(frame[7:13])
                    conn.sendall(write_response_frame())
                else:
                    conn.sendall(status_response_frame(self._status()))

    def close(self) -> None:
        self.srv.close()


def test_client_sends_the_manuals_frames_byte_for_byte():
    dev = RawRtuDevice()
    g = RobotiqGripper(RobotiqConfig(transport="rtu-tcp", host="127.0.0.1", port=dev.port,
                                     timeout_s=1.0, poll_s=0.0))
    try:
        g.activate()
        st = g.grip(force=1.0, speed=1.0)
        assert st.object_detected and st.position_m == pytest.approx(0.085 * (255 - 0xBD) / 255)
        g.open(0.085)
    finally:
        g.close()
        dev.close()
    frames = [f.hex(" ").upper() for f in dev.requests]
    writes = [f for f in frames if f.startswith("09 10")]
    assert writes == ["09 10 03 E8 00 03 06 00 00 00 00 00 00 73 30",  # reset (clear rACT)
                      "09 10 03 E8 00 03 06 01 00 00 00 00 00 72 E1",  # set rACT
                      "09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29",  # close, full speed/force
                      "09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19"]  # open, full speed/force
    assert {f for f in frames if not f.startswith("09 10")} == {"09 04 07 D0 00 03 B1 CE"}


# ---- speed figure for the --sim replay run (printed, not asserted) ----

def bench_open_grip_cycle(n: int = 20, framing: str = "tcp") -> float:
    """Mean wall time (s) of open(8.5 cm) + grip on a 5 cm object against the emulator."""
    with start_emulator(framing=framing, time_scale=SCALE) as emu, client_for(emu) as g:
        g.activate()
        t0 = time.perf_counter()
        for _ in range(n):
            emu.set_object_width(0.05)
            g.open(0.085)
            assert g.grip().object_detected
        return (time.perf_counter() - t0) / n


def test_benchmark_open_grip_cycle(capsys):
    for framing in ("tcp", "rtu-tcp"):
        mean_s = bench_open_grip_cycle(5, framing)
        with capsys.disabled():
            print(f"\n[bench] {framing}: open+grip cycle {mean_s * 1000:.1f} ms (time_scale={SCALE:g})")


def test_serve_emulator_blocks_until_stopped_and_reports_its_port():
    from benchbot.devices.grippers.robotiq_emulator import serve_emulator

    ready, stop = threading.Event(), threading.Event()
    seen = {}

    def on_ready(handle):
        seen["handle"] = handle
        ready.set()

    t = threading.Thread(target=serve_emulator, kwargs=dict(port=0, framing="rtu-tcp", time_scale=SCALE,
                                                             object_width_m=0.06, on_ready=on_ready,
                                                             stop_event=stop))
    t.start()
    try:
        assert ready.wait(10)
        h = seen["handle"]
        assert h.port and h.port > 0
        p = ModelParams()  # an object is between the jaws, so use the model's known stops
        with client_for(h, open_position=p.open_stop, closed_position=p.closed_stop) as g:
            g.activate()
            st = g.grip()
            assert st.object_detected and st.position_m == pytest.approx(0.06, abs=0.0004)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    with pytest.raises(DeviceError):
        client_for(h, timeout_s=0.2, retries=0).status()


def test_emulator_argument_errors():
    with pytest.raises(BenchbotError, match="framing"):
        start_emulator(framing="udp")  # type: ignore[arg-type]
    with pytest.raises(BenchbotError, match="serial port"):
        start_emulator(framing="serial")
    with pytest.raises(BenchbotError, match="time_scale"):
        start_emulator(time_scale=0)
    with start_emulator(time_scale=SCALE) as emu:
        with pytest.raises(BenchbotError, match="could not start"):
            start_emulator(port=emu.port)  # port taken
        with pytest.raises(BenchbotError):
            emu.inject_fault(0x10)
        with pytest.raises(BenchbotError):
            emu.set_object_width(-0.01)


def test_handle_client_config_points_at_the_emulator():
    with start_emulator(framing="rtu-tcp", time_scale=SCALE) as emu:
        with RobotiqGripper(emu.client_config(timeout_s=0.5)) as g:
            g.activate()
            assert g.status().activated
        with emu.calibrated_client(timeout_s=0.5) as g:
            emu.set_object_width(0.02)
            assert g.grip().position_m == pytest.approx(0.02, abs=0.0004)

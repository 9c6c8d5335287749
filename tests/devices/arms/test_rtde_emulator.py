"""The RTDE emulator's wire protocol (raw sockets, in process) and its controller model."""
from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.devices.arms import rtde_wire as w
from benchbot.devices.arms.rtde_controller import (
    MOVEL,
    NO_CMD,
    SAFETY_PROTECTIVE_STOP,
    STOP_SCRIPT,
    UR5_HOME_Q,
    URControllerModel,
    profile_duration_s,
    profile_fraction,
)
from benchbot.devices.arms.rtde_emulator import RTDEEmulator
from benchbot.devices.arms.ur_kinematics import matrix_to_pose, pose_to_matrix, tcp_fk, tcp_ik


def recv_msg(s: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 3:
        head += s.recv(3 - len(head))
    size, kind = w.HEADER.unpack(head)
    body = b""
    while len(body) < size - 3:
        body += s.recv(size - 3 - len(body))
    return kind, body


def recv_kind(s: socket.socket, kind: int) -> bytes:
    while True:
        k, body = recv_msg(s)
        if k == kind:
            return body


@pytest.fixture
def emu(free_loopback):
    host = free_loopback
    try:
        e = RTDEEmulator(host, script_start_delay_s=0.0).start()
    except BenchbotError as err:
        pytest.skip(err.one_line())
    yield e
    e.stop()


def rtde(emu) -> socket.socket:
    s = socket.create_connection((emu.host, 30004), timeout=5)
    s.sendall(w.message(w.REQUEST_PROTOCOL_VERSION, struct.pack(">H", 2)))
    assert recv_msg(s) == (w.REQUEST_PROTOCOL_VERSION, b"\x01")
    return s


def test_handshake_version_outputs_and_data(emu):
    s = rtde(emu)
    s.sendall(w.message(w.GET_URCONTROL_VERSION))
    assert struct.unpack(">IIII", recv_msg(s)[1])[:2] == (3, 15)
    names = ["timestamp", "actual_q", "safety_mode", "runtime_state", "joint_mode"]
    s.sendall(w.message(w.SETUP_OUTPUTS, struct.pack(">d", 125.0) + (",".join(names) + ",").encode()))
    kind, body = recv_msg(s)
    assert body[0] == 1 and body[1:].decode().split(",") == ["DOUBLE", "VECTOR6D", "INT32", "UINT32", "VECTOR6INT32"]
    s.sendall(w.message(w.START))
    assert recv_kind(s, w.START) == b"\x01"
    body = recv_kind(s, w.DATA_PACKAGE)
    values = w.unpack_values(["DOUBLE", "VECTOR6D", "INT32", "UINT32", "VECTOR6INT32"], body[1:])
    assert np.allclose(values[1], UR5_HOME_Q) and values[2] == 1 and values[4] == [253] * 6
    s.close()


def test_unknown_output_is_not_found(emu):
    s = rtde(emu)
    s.sendall(w.message(w.SETUP_OUTPUTS, struct.pack(">d", 125.0) + b"actual_q,no_such_thing"))
    body = recv_msg(s)[1]
    assert body[0] == 0 and body[1:].decode() == "VECTOR6D,NOT_FOUND"
    s.close()


def test_input_registers_are_written_and_held_by_one_client(emu):
    a, b = rtde(emu), rtde(emu)
    a.sendall(w.message(w.SETUP_INPUTS, b"input_int_register_0,input_double_register_0,"))
    body = recv_msg(a)[1]
    assert body[0] == 1 and body[1:].decode() == "INT32,DOUBLE"
    b.sendall(w.message(w.SETUP_INPUTS, b"input_int_register_0"))
    assert recv_msg(b)[1] == b"\x00IN_USE"
    a.sendall(w.message(w.START))
    recv_kind(a, w.START)
    a.sendall(w.message(w.DATA_PACKAGE, b"\x01" + w.pack_values(["INT32", "DOUBLE"], [7, 0.5])))
    deadline = time.monotonic() + 5
    while emu.model.in_int[0] != 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.model.in_int[0] == 7 and emu.model.in_double[0] == 0.5
    a.close()
    b.close()


def test_dashboard_and_script_socket(emu):
    d = socket.create_connection((emu.host, 29999), timeout=5).makefile("rw", newline="\n")
    assert "Dashboard Server" in d.readline()
    for command, reply in [("PolyscopeVersion", "URSoftware 3.15.7.106331 (Mar 03 2022)"),
                           ("running", "Program running: false"), ("bogus", "could not understand: 'bogus'")]:
        d.write(command + "\n")
        d.flush()
        assert d.readline().strip() == reply
    with socket.create_connection((emu.host, 30003), timeout=5) as s:
        s.sendall(b"def rtde_control():\n  textmsg(\"hi\")\n  end_marker = 1\nend\n")
        deadline = time.monotonic() + 5
        while not emu.model.program_running and time.monotonic() < deadline:
            time.sleep(0.01)
    assert emu.model.program == "rtde_control"
    d.write("running\n")
    d.flush()
    assert d.readline().strip() == "Program running: true"


def test_bind_failure_is_a_benchbot_error(emu):
    with pytest.raises(BenchbotError, match="cannot start"):
        RTDEEmulator(emu.host).start()


def run_until(model: URControllerModel, cond, max_steps: int = 2000) -> None:
    for _ in range(max_steps):
        model.step(0.008)
        if cond():
            return
    raise AssertionError("condition not reached")


def test_model_movel_handshake_and_timing():
    m = URControllerModel()
    m.start_program("rtde_control")
    m.step(0.008)
    assert m.out_int[0] == 1  # ready
    target = matrix_to_pose(m.tcp) + np.array([0.0, 0.0, -0.1, 0, 0, 0])
    m.in_double[:8] = [*target, 0.1, 0.5]
    m.in_int[0], m.in_int[1] = MOVEL, 0
    m.step(0.008)
    assert m.move is not None and m.out_int[0] == 1
    t0 = m.t_s
    run_until(m, lambda: m.out_int[0] == 2)
    assert m.t_s - t0 == pytest.approx(profile_duration_s(0.1, 0.1, 0.5), abs=0.02)
    assert np.allclose(matrix_to_pose(m.tcp)[:3], target[:3])
    m.in_int[0] = NO_CMD
    m.step(0.008)
    assert m.out_int[0] == 1
    m.in_int[0] = STOP_SCRIPT
    m.step(0.008)
    assert not m.program_running


def test_model_unreachable_stops_the_program_and_protective_stop_halts():
    m = URControllerModel(table_z_m=0.0)
    m.start_program("rtde_control")
    m.in_double[:8] = [2.0, 0, 0.2, 3.14, 0, 0, 0.1, 0.5]
    m.in_int[0] = MOVEL
    m.step(0.008)
    assert not m.program_running and m.log[-1]["reason"] == "inverse kinematics failed"
    m.in_int[0] = NO_CMD
    m.start_program("rtde_control")
    target = matrix_to_pose(m.tcp)
    target[2] = -0.1
    m.in_double[:8] = [*target, 0.25, 1.0]
    m.in_int[0] = MOVEL
    run_until(m, lambda: m.safety_mode == SAFETY_PROTECTIVE_STOP)
    assert -0.01 < m.tcp[2, 3] < 0.0 and m.move is None and not m.program_running
    m.unlock_protective_stop()
    assert not m.protective_stopped


def test_profile_and_kinematics():
    assert profile_fraction(0.0, 1.0, 0.5, 1.0) == 0.0
    assert profile_fraction(10.0, 1.0, 0.5, 1.0) == 1.0
    half = profile_duration_s(1.0, 0.5, 1.0) / 2
    assert profile_fraction(half, 1.0, 0.5, 1.0) == pytest.approx(0.5)
    offset = [0, 0, 0.174, 0, 0, 0]
    t = tcp_fk(UR5_HOME_Q, offset)
    t2 = t @ pose_to_matrix([0.02, -0.03, 0.05, 0.1, 0, 0.3])
    q = tcp_ik(t2, np.array(UR5_HOME_Q), offset)
    assert q is not None and np.allclose(tcp_fk(q, offset), t2, atol=1e-6)


def test_wire_types():
    assert w.output_type("output_int_register_47") == "INT32"
    assert w.output_type("output_int_register_48") == "NOT_FOUND"
    assert w.input_type("actual_q") == "NOT_FOUND"
    assert w.input_type("input_bit_register_64") == "BOOL"
    data = w.pack_values(["VECTOR3D", "UINT8", "BOOL"], [[1.0, 2.0, 3.0], 7, True])
    assert w.unpack_values(["VECTOR3D", "UINT8", "BOOL"], data) == [[1.0, 2.0, 3.0], 7, True]


def test_receive_interface_reads_the_emulator(emulator_factory):
    import rtde_receive

    emulator = emulator_factory()
    r = rtde_receive.RTDEReceiveInterface(emulator.host)
    try:
        assert np.allclose(r.getActualQ(), UR5_HOME_Q)
        assert r.getSafetyMode() == 1 and not r.isProtectiveStopped()
        emulator.trigger_protective_stop()
        deadline = time.monotonic() + 5
        while not r.isProtectiveStopped() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.isProtectiveStopped() and r.getSafetyMode() == 3
    finally:
        r.disconnect()


def test_is_steady_answers_ur_rtde_1_6_5_on_its_own_command_number(emulator_factory):
    """ur_rtde 1.6.5's script handles is_steady as command 47 (48 does not exist there)."""
    import rtde_control

    emulator = emulator_factory(time_scale=1.0)
    c = rtde_control.RTDEControlInterface(emulator.host)
    try:
        assert c.isSteady() is True  # at rest
        assert emulator.commands()[-1] == "is_steady"
        c.moveL([0.3, -0.3, 0.2, np.pi, 0.0, 0.0], 0.05, 0.5, True)  # asynchronous
        assert c.isSteady() is False
        c.stopL(2.0)
        c.teachMode()
        assert c.isSteady() is False  # as documented: false in teach mode
        c.endTeachMode()
        assert c.isSteady() is True
    finally:
        c.stopScript()
        c.disconnect()

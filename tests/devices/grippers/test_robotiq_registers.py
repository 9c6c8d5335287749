"""Register encoding and RTU frames checked byte for byte against the 2F-85 manual's examples."""
import pytest

from benchbot.devices.grippers.robotiq_registers import (
    FAULT_MESSAGES,
    Command,
    PositionMap,
    Status,
    check_crc,
    crc16_modbus,
    fault_fix,
    fault_message,
    read_status_frame,
    status_response_frame,
    write_command_frame,
    write_response_frame,
)


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


def test_crc_reference_value():
    # The standard CRC-16/MODBUS check value for "123456789".
    assert crc16_modbus(b"123456789") == 0x4B37


@pytest.mark.parametrize("cmd, frame", [
    (Command(), "09 10 03 E8 00 03 06 00 00 00 00 00 00 73 30"),  # activation step: clear rACT
    (Command(act=True), "09 10 03 E8 00 03 06 01 00 00 00 00 00 72 E1"),  # set rACT
    (Command(act=True, gto=True, position=255, speed=255, force=255),
     "09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29"),  # close, full speed and force
    (Command(act=True, gto=True, position=0, speed=255, force=255),
     "09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19"),  # open, full speed and force
])
def test_command_frames_match_manual(cmd, frame):
    assert write_command_frame(cmd) == hx(frame)
    assert Command.from_bytes(hx(frame)[7:13]) == cmd


def test_write_response_and_read_requests_match_manual():
    assert write_response_frame() == hx("09 10 03 E8 00 03 01 30")
    assert read_status_frame() == hx("09 04 07 D0 00 03 B1 CE")  # FC04, 3 registers
    assert read_status_frame(count=1, function=3) == hx("09 03 07 D0 00 01 85 CF")
    assert read_status_frame(count=3, function=3) == hx("09 03 07 D0 00 03 04 0E")


@pytest.mark.parametrize("frame, expect", [
    ("09 03 02 11 00 55 D5", dict(act=True, sta=1)),  # activation in progress
    ("09 03 02 31 00 4C 15", dict(act=True, sta=3)),  # activation completed
    ("09 03 06 39 00 00 FF 0E 0A F7 8B",
     dict(act=True, gto=True, sta=3, obj=0, position_request=255, position=0x0E, current=0x0A)),
    ("09 03 06 B9 00 00 FF BD 00 1D 7C",
     dict(act=True, gto=True, sta=3, obj=2, position_request=255, position=0xBD, current=0)),
])
def test_status_responses_from_manual_decode(frame, expect):
    raw = hx(frame)
    assert check_crc(raw)
    n = raw[2]
    data = raw[3:3 + n] + bytes(6 - n)
    st = Status.from_bytes(data)
    for key, value in expect.items():
        assert getattr(st, key) == value, key
    if n == 6:
        assert status_response_frame(st, function=3) == raw
    else:
        assert status_response_frame(st, count=1, function=3) == raw


def test_crc_detects_corruption():
    frame = bytearray(hx("09 03 06 B9 00 00 FF BD 00 1D 7C"))
    frame[6] ^= 0x01
    assert not check_crc(bytes(frame))


def test_status_bits_and_fault_nibbles_roundtrip():
    st = Status(act=True, gto=True, sta=3, obj=1, fault=0x0E, kflt=0x9, position_request=12,
                position=200, current=7)
    assert st.to_bytes() == bytes([0b01111001, 0, 0x9E, 12, 200, 7])
    assert Status.from_registers(st.to_registers()) == st
    assert st.activated and not st.moving and st.current_ma == 70.0
    cmd = Command(act=True, gto=False, atr=True, ard=True, position=3, speed=4, force=5)
    assert cmd.to_bytes()[0] == 0x31
    assert Command.from_registers(cmd.to_registers()) == cmd


def test_out_of_range_bytes_rejected():
    with pytest.raises(ValueError):
        Command(position=256).to_bytes()


@pytest.mark.parametrize("code", sorted(FAULT_MESSAGES))
def test_every_fault_has_a_message_and_fix(code):
    msg = fault_message(code)
    assert f"0x{code:02X}" in msg and FAULT_MESSAGES[code] in msg
    assert fault_fix(code)


def test_fault_texts_name_the_cause():
    assert "activation" in fault_message(0x05)
    assert "rACT" in fault_message(0x07)
    assert "temperature" in fault_message(0x08)
    assert "1 second" in fault_message(0x09)
    assert "voltage" in fault_message(0x0A)
    assert "overcurrent" in fault_message(0x0E)
    assert "unknown" in fault_message(0x03)
    assert fault_message(0) == "no fault"


def test_position_map_linear_with_calibrated_ends():
    m = PositionMap()
    assert m.to_position(0.085) == 0 and m.to_position(0.0) == 255
    assert m.to_width_m(0) == pytest.approx(0.085) and m.to_width_m(255) == 0.0
    assert m.to_width_m(m.to_position(0.05)) == pytest.approx(0.05, abs=0.0002)
    assert m.to_position(1.0) == 0 and m.to_position(-1.0) == 255  # clamped
    cal = PositionMap(0.085, open_position=3, closed_position=227)
    assert cal.to_width_m(227) == 0.0 and cal.to_width_m(255) == 0.0
    assert cal.to_width_m(3) == pytest.approx(0.085)
    assert cal.to_position(0.0425) == 115
    with pytest.raises(ValueError):
        PositionMap(0.085, open_position=200, closed_position=100)

"""Robotiq 2F-85 Modbus register map: command/status encoding, fault texts, RTU frames.

From Robotiq's 2F-85/2F-140 instruction manual (section "Control", Modbus RTU):
- unit (slave) id 9; robot output = gripper commands, 3 registers at 0x03E8 (FC16 write);
  robot input = gripper status, 3 registers at 0x07D0 (FC04 read; the gripper also answers FC03).
- Registers are big-endian: byte 0 is the high byte of the first register.
Pure functions only: no I/O here, so the emulator and the client share one definition.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

UNIT_ID = 9
OUTPUT_ADDR = 0x03E8  # robot output (commands), 3 registers
INPUT_ADDR = 0x07D0  # robot input (status), 3 registers
N_REGISTERS = 3

# Byte 0 of the command: action request bits.
BIT_ACT = 0x01  # rACT: activate (0 = reset)
BIT_GTO = 0x08  # rGTO: go to requested position (0 = stop)
BIT_ATR = 0x10  # rATR: automatic release (emergency)
BIT_ARD = 0x20  # rARD: automatic release direction (0 = closing, 1 = opening)

# gSTA (status bits 4-5)
STA_RESET = 0  # in reset (or automatic release)
STA_ACTIVATING = 1
STA_ACTIVE = 3

# gOBJ (status bits 6-7)
OBJ_MOVING = 0  # fingers moving toward the requested position, no object detected
OBJ_CONTACT_OPENING = 1  # stopped on a contact while opening
OBJ_CONTACT_CLOSING = 2  # stopped on a contact while closing
OBJ_AT_POSITION = 3  # at the requested position: no object, or object lost

FAULT_MESSAGES: dict[int, str] = {
    0x05: "action delayed: the activation (re-activation) must complete before this action",
    0x07: "the activation bit (rACT) must be set before any action",
    0x08: "maximum operating temperature exceeded; wait for the gripper to cool down",
    0x09: "no communication for at least 1 second",
    0x0A: "under minimum operating voltage",
    0x0B: "automatic release in progress",
    0x0C: "internal fault; contact Robotiq support",
    0x0D: "activation fault: check that nothing obstructs the fingers",
    0x0E: "overcurrent triggered",
    0x0F: "automatic release completed",
}
MAJOR_FAULTS = frozenset({0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F})  # need a reset (rACT 0 → 1)


def fault_message(code: int) -> str:
    """Human text for a gFLT code (0 → "no fault")."""
    if code == 0:
        return "no fault"
    text = FAULT_MESSAGES.get(code, "unknown fault (not in the 2F-85 manual)")
    return f"gripper fault 0x{code:02X}: {text}"


def fault_fix(code: int) -> str:
    """What the operator should do about a gFLT code."""
    if code in (0x05, 0x07):
        return "activate the gripper first (reset, then set rACT) and retry"
    if code == 0x08:
        return "wait for the gripper to cool down, then re-activate it"
    if code == 0x09:
        return "check the Modbus link (cable, adapter, UR tool I/O settings), then re-activate"
    if code == 0x0A:
        return "check the 24 V supply of the gripper, then re-activate"
    if code in MAJOR_FAULTS:
        return "clear the fault with a reset (rACT 0 then 1: re-activate); power-cycle if it persists"
    return "see the fault table in the Robotiq 2F-85 manual"


def _regs_from_bytes(data: bytes) -> list[int]:
    if len(data) != 2 * N_REGISTERS:
        raise ValueError(f"expected {2 * N_REGISTERS} bytes, got {len(data)}")
    return [(data[i] << 8) | data[i + 1] for i in range(0, len(data), 2)]


def _bytes_from_regs(regs: list[int]) -> bytes:
    if len(regs) != N_REGISTERS:
        raise ValueError(f"expected {N_REGISTERS} registers, got {len(regs)}")
    return b"".join(int(r & 0xFFFF).to_bytes(2, "big") for r in regs)


def _byte(value: int, name: str) -> int:
    if not 0 <= int(value) <= 255:
        raise ValueError(f"{name} must be 0..255, got {value}")
    return int(value)


@dataclass(frozen=True)
class Command:
    """Robot output registers: what the gripper is asked to do."""

    act: bool = False
    gto: bool = False
    atr: bool = False
    ard: bool = False
    position: int = 0  # rPR: 0 = open, 255 = closed
    speed: int = 0  # rSP
    force: int = 0  # rFR

    def to_bytes(self) -> bytes:
        action = (BIT_ACT * self.act) | (BIT_GTO * self.gto) | (BIT_ATR * self.atr) | (BIT_ARD * self.ard)
        return bytes([action, 0, 0, _byte(self.position, "position"),
                      _byte(self.speed, "speed"), _byte(self.force, "force")])

    def to_registers(self) -> list[int]:
        return _regs_from_bytes(self.to_bytes())

    @staticmethod
    def from_bytes(data: bytes) -> Command:
        a = data[0]
        return Command(bool(a & BIT_ACT), bool(a & BIT_GTO), bool(a & BIT_ATR), bool(a & BIT_ARD),
                       data[3], data[4], data[5])

    @staticmethod
    def from_registers(regs: list[int]) -> Command:
        return Command.from_bytes(_bytes_from_regs(list(regs)))


@dataclass(frozen=True)
class Status:
    """Robot input registers: what the gripper reports."""

    act: bool = False  # gACT
    gto: bool = False  # gGTO
    sta: int = STA_RESET  # gSTA
    obj: int = OBJ_MOVING  # gOBJ
    fault: int = 0  # gFLT (low nibble of byte 2)
    kflt: int = 0  # controller fault (high nibble of byte 2; universal controller only)
    position_request: int = 0  # gPR echo
    position: int = 0  # gPO
    current: int = 0  # gCU; ≈ 10 × value mA

    @property
    def activated(self) -> bool:
        return self.act and self.sta == STA_ACTIVE

    @property
    def moving(self) -> bool:
        return self.activated and self.gto and self.obj == OBJ_MOVING

    @property
    def current_ma(self) -> float:
        return 10.0 * self.current

    def to_bytes(self) -> bytes:
        b0 = int(self.act) | (int(self.gto) << 3) | ((self.sta & 3) << 4) | ((self.obj & 3) << 6)
        b2 = (self.fault & 0x0F) | ((self.kflt & 0x0F) << 4)
        return bytes([b0, 0, b2, _byte(self.position_request, "gPR"),
                      _byte(self.position, "gPO"), _byte(self.current, "gCU")])

    def to_registers(self) -> list[int]:
        return _regs_from_bytes(self.to_bytes())

    @staticmethod
    def from_bytes(data: bytes) -> Status:
        b0 = data[0]
        return Status(bool(b0 & 0x01), bool(b0 & 0x08), (b0 >> 4) & 3, (b0 >> 6) & 3,
                      data[2] & 0x0F, data[2] >> 4, data[3], data[4], data[5])

    @staticmethod
    def from_registers(regs: list[int]) -> Status:
        return Status.from_bytes(_bytes_from_regs(list(regs)))


@dataclass(frozen=True)
class PositionMap:
    """Linear map between register positions and fingertip opening.

    `open_position` gives `stroke_m` of opening, `closed_position` gives 0. Defaults follow the
    manual (0 = 85 mm open, 255 = closed); calibrate both ends on your unit if needed.
    """

    stroke_m: float = 0.085
    open_position: int = 0
    closed_position: int = 255

    def __post_init__(self) -> None:
        if not self.stroke_m > 0:
            raise ValueError("stroke_m must be > 0")
        if not (0 <= self.open_position < self.closed_position <= 255):
            raise ValueError("need 0 <= open_position < closed_position <= 255")

    def to_width_m(self, position: float) -> float:
        span = self.closed_position - self.open_position
        frac = (self.closed_position - position) / span
        return self.stroke_m * min(1.0, max(0.0, frac))

    def to_position(self, width_m: float) -> int:
        frac = min(1.0, max(0.0, width_m / self.stroke_m))
        span = self.closed_position - self.open_position
        return int(round(self.closed_position - frac * span))


def quiet_pymodbus_logs() -> None:
    """pymodbus logs every timeout at ERROR with frame dumps; our DeviceErrors already say it.
    A NullHandler stops Python's last-resort stderr printing but still lets an application
    that configures logging see these records."""
    logger = logging.getLogger("pymodbus")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


# ---- Modbus RTU frames (for tests, logs and raw-socket debugging) ----

def crc16_modbus(data: bytes) -> int:
    """Modbus RTU CRC-16 (poly 0xA001 reflected, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    """Append the CRC, low byte first, as RTU framing does."""
    return body + crc16_modbus(body).to_bytes(2, "little")


def check_crc(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16_modbus(frame[:-2]).to_bytes(2, "little") == frame[-2:]


def write_command_frame(cmd: Command, unit: int = UNIT_ID) -> bytes:
    """RTU FC16 request writing the 3 command registers at 0x03E8."""
    data = cmd.to_bytes()
    body = bytes([unit, 0x10]) + OUTPUT_ADDR.to_bytes(2, "big") + N_REGISTERS.to_bytes(2, "big")
    return with_crc(body + bytes([len(data)]) + data)


def write_response_frame(unit: int = UNIT_ID) -> bytes:
    body = bytes([unit, 0x10]) + OUTPUT_ADDR.to_bytes(2, "big") + N_REGISTERS.to_bytes(2, "big")
    return with_crc(body)


def read_status_frame(unit: int = UNIT_ID, count: int = N_REGISTERS, function: int = 0x04) -> bytes:
    """RTU read request for `count` status registers at 0x07D0 (FC04, or FC03)."""
    body = bytes([unit, function]) + INPUT_ADDR.to_bytes(2, "big") + count.to_bytes(2, "big")
    return with_crc(body)


def status_response_frame(status: Status, unit: int = UNIT_ID, count: int = N_REGISTERS,
                          function: int = 0x04) -> bytes:
    data = status.to_bytes()[: 2 * count]
    return with_crc(bytes([unit, function, len(data)]) + data)

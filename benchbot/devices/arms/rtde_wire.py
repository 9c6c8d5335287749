"""RTDE wire format (protocol version 2): message types, variable types, packing.

Every message: uint16 size (header included), uint8 type, payload; all big-endian.
Variable names and types follow Universal Robots' RTDE guide.
"""
from __future__ import annotations

import re
import struct
from typing import Any

HEADER = struct.Struct(">HB")

REQUEST_PROTOCOL_VERSION = ord("V")
GET_URCONTROL_VERSION = ord("v")
TEXT_MESSAGE = ord("M")
DATA_PACKAGE = ord("U")
SETUP_OUTPUTS = ord("O")
SETUP_INPUTS = ord("I")
START = ord("S")
PAUSE = ord("P")

# struct format (without byte order) and element count of each RTDE type
TYPE_FORMATS: dict[str, str] = {
    "BOOL": "?", "UINT8": "B", "UINT32": "I", "UINT64": "Q", "INT32": "i", "DOUBLE": "d",
    "VECTOR3D": "3d", "VECTOR6D": "6d", "VECTOR6INT32": "6i", "VECTOR6UINT32": "6I",
}

_OUTPUTS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "DOUBLE": ("timestamp", "actual_execution_time", "speed_scaling", "target_speed_fraction",
               "actual_momentum", "actual_main_voltage", "actual_robot_voltage", "actual_robot_current",
               "standard_analog_input0", "standard_analog_input1", "standard_analog_output0",
               "standard_analog_output1", "io_current", "euromap67_24V_voltage", "euromap67_24V_current",
               "tool_analog_input0", "tool_analog_input1", "tool_output_current", "tool_temperature",
               "tcp_force_scalar", "payload", "joint_position_deviation_ratio", "collision_detection_ratio"),
    "VECTOR6D": ("target_q", "target_qd", "target_qdd", "target_current", "target_moment", "actual_q",
                 "actual_qd", "actual_qdd", "actual_current", "actual_current_window",
                 "actual_current_as_torque", "actual_moment", "joint_control_output", "actual_TCP_pose",
                 "actual_TCP_speed", "actual_TCP_force", "target_TCP_pose", "target_TCP_speed",
                 "joint_temperatures", "actual_joint_voltage", "payload_inertia", "ft_raw_wrench"),
    "VECTOR3D": ("actual_tool_accelerometer", "elbow_position", "elbow_velocity", "payload_cog"),
    "UINT64": ("actual_digital_input_bits", "actual_digital_output_bits"),
    "INT32": ("robot_mode", "safety_mode", "safety_status", "tool_output_voltage"),
    "VECTOR6INT32": ("joint_mode",),
    "UINT32": ("runtime_state", "robot_status_bits", "safety_status_bits", "analog_io_types",
               "euromap67_input_bits", "euromap67_output_bits", "tool_mode", "tool_analog_input_types",
               "output_bit_registers0_to_31", "output_bit_registers32_to_63", "input_bit_registers0_to_31",
               "input_bit_registers32_to_63", "script_control_line", "time_scale_source"),
    "UINT8": ("tool_output_mode", "tool_digital_output0_mode", "tool_digital_output1_mode"),
}
OUTPUT_TYPES: dict[str, str] = {name: t for t, names in _OUTPUTS_BY_TYPE.items() for name in names}

INPUT_TYPES: dict[str, str] = {
    "speed_slider_mask": "UINT32", "speed_slider_fraction": "DOUBLE",
    "standard_digital_output_mask": "UINT8", "standard_digital_output": "UINT8",
    "configurable_digital_output_mask": "UINT8", "configurable_digital_output": "UINT8",
    "tool_digital_output_mask": "UINT8", "tool_digital_output": "UINT8",
    "standard_analog_output_mask": "UINT8", "standard_analog_output_type": "UINT8",
    "standard_analog_output_0": "DOUBLE", "standard_analog_output_1": "DOUBLE",
    "input_bit_registers0_to_31": "UINT32", "input_bit_registers32_to_63": "UINT32",
    "external_force_torque": "VECTOR6D",
}

_REGISTER = re.compile(r"^(input|output)_(int|double|bit)_register_(\d+)$")
_REGISTER_TYPES = {"int": "INT32", "double": "DOUBLE", "bit": "BOOL"}


def register_type(name: str) -> str | None:
    """Type of an `(input|output)_(int|double|bit)_register_N` name, None if not one or out of range."""
    m = _REGISTER.match(name)
    if not m:
        return None
    index = int(m.group(3))
    ok = 64 <= index <= 127 if m.group(2) == "bit" else 0 <= index <= 47
    return _REGISTER_TYPES[m.group(2)] if ok else None


def output_type(name: str) -> str:
    return OUTPUT_TYPES.get(name) or register_type(name) or "NOT_FOUND"


def input_type(name: str) -> str:
    if name.startswith("output_"):
        return "NOT_FOUND"
    return INPUT_TYPES.get(name) or register_type(name) or "NOT_FOUND"


def recipe_struct(types: list[str]) -> struct.Struct:
    return struct.Struct(">" + "".join(TYPE_FORMATS[t] for t in types))


def pack_values(types: list[str], values: list[Any]) -> bytes:
    flat: list[Any] = []
    for t, v in zip(types, values, strict=True):
        if t.startswith("VECTOR"):
            flat.extend(v)
        else:
            flat.append(v)
    return recipe_struct(types).pack(*flat)


def unpack_values(types: list[str], data: bytes) -> list[Any]:
    flat = list(recipe_struct(types).unpack(data))
    out: list[Any] = []
    for t in types:
        n = int(TYPE_FORMATS[t][0]) if TYPE_FORMATS[t][0].isdigit() else 1
        out.append(flat[:n] if t.startswith("VECTOR") else flat[0])
        flat = flat[n:]
    return out


def message(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(HEADER.size + len(payload), kind) + payload


def split_names(payload: bytes) -> list[str]:
    """Comma-separated names; ur_rtde ends the list with a trailing comma."""
    return [n for n in payload.decode("ascii", "replace").split(",") if n]

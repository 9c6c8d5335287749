"""Dry-run arm: kinematics, logging, the optional gate and fault injection."""
from __future__ import annotations

import numpy as np
import pytest

from benchbot.core.errors import DeviceError, UnsafeMotionError
from benchbot.core.interfaces import Arm
from benchbot.core.types import Pose
from benchbot.devices.arms.dryrun import DEFAULT_HOME_POSE, TOOL_DOWN, DryRunArm, move_duration_s
from benchbot.devices.safety import SafetyGate


def pose(x: float, y: float, z: float) -> Pose:
    return Pose(np.array([x, y, z]), TOOL_DOWN, "base")


def connected(**kw) -> DryRunArm:
    arm = DryRunArm(**kw)
    arm.connect()
    return arm


def test_is_an_arm_and_moves_kinematically():
    arm = connected()
    assert isinstance(arm, Arm)
    assert np.allclose(arm.current_pose().position_m, DEFAULT_HOME_POSE.position_m)
    arm.move_linear(pose(0.3, 0.2, 0.1), 0.1, 0.5)
    assert np.allclose(arm.current_pose().position_m, [0.3, 0.2, 0.1])
    arm.home()
    assert np.allclose(arm.current_pose().position_m, DEFAULT_HOME_POSE.position_m)
    assert [e["cmd"] for e in arm.log] == ["connect", "move_linear", "home"]
    assert arm.log[1]["pose"][:3] == [0.3, 0.2, 0.1] and arm.log[1]["speed_mps"] == 0.1


def test_not_connected_is_a_device_error():
    with pytest.raises(DeviceError, match="not connected"):
        DryRunArm().move_linear(pose(0.3, 0.2, 0.1), 0.1, 0.5)


def test_simulated_duration_uses_the_injected_sleep():
    slept: list[float] = []
    arm = connected(home_pose=pose(0.4, 0.0, 0.4), sleep=slept.append)
    arm.move_linear(pose(0.4, 0.0, 0.1), 0.1, 0.5)  # 0.3 m at 0.1 m/s, ramps 0.2 s
    assert slept == [pytest.approx(0.3 / 0.1 + 0.1 / 0.5)]
    assert arm.log[-1]["duration_s"] == pytest.approx(3.2)


def test_move_duration_profiles():
    assert move_duration_s(0.0, 0.1, 0.5) == 0.0
    assert move_duration_s(0.004, 0.1, 1.0) == pytest.approx(2 * np.sqrt(0.004))  # triangular
    assert move_duration_s(0.01, 0.1, 1.0) == pytest.approx(0.2)  # exactly at the switch


def test_gate_is_rechecked():
    arm = connected(gate=SafetyGate())
    with pytest.raises(UnsafeMotionError, match="table"):
        arm.move_linear(pose(0.4, 0.0, -0.1), 0.1, 0.5)
    assert np.allclose(arm.current_pose().position_m, DEFAULT_HOME_POSE.position_m)


def test_protective_stop_is_sticky_until_recover():
    arm = connected()
    arm.inject("protective_stop", after_moves=2)
    arm.move_linear(pose(0.4, 0.1, 0.3), 0.1, 0.5)
    arm.move_linear(pose(0.4, 0.1, 0.2), 0.1, 0.5)
    with pytest.raises(DeviceError, match="protective stop"):
        arm.move_linear(pose(0.4, 0.1, 0.1), 0.1, 0.5)
    assert arm.protective_stopped
    assert np.allclose(arm.current_pose().position_m, [0.4, 0.1, 0.2])  # did not move
    with pytest.raises(DeviceError, match="protective stop"):
        arm.move_linear(pose(0.4, 0.1, 0.3), 0.1, 0.5)
    arm.recover()
    assert not arm.protective_stopped
    arm.move_linear(pose(0.4, 0.1, 0.3), 0.1, 0.5)
    assert arm.log[-1]["cmd"] == "move_linear" and "fault" not in arm.log[-1]


def test_unreachable_fails_once():
    arm = connected()
    arm.inject("unreachable")
    with pytest.raises(DeviceError, match="unreachable"):
        arm.move_linear(pose(0.4, 0.1, 0.3), 0.1, 0.5)
    arm.move_linear(pose(0.4, 0.1, 0.3), 0.1, 0.5)
    assert arm.moves_done == 1


def test_disconnect_needs_reconnect():
    arm = connected()
    arm.inject("disconnect", after_moves=1)
    arm.move_linear(pose(0.4, 0.1, 0.3), 0.1, 0.5)
    with pytest.raises(DeviceError, match="connection"):
        arm.move_linear(pose(0.4, 0.1, 0.2), 0.1, 0.5)
    with pytest.raises(DeviceError, match="not connected"):
        arm.home()
    arm.connect()
    arm.home()


def test_inject_rejects_unknown_faults():
    with pytest.raises(ValueError):
        DryRunArm().inject("meteor")  # type: ignore[arg-type]

"""URArm driven end to end through the real ur_rtde client against the RTDE emulator."""
from __future__ import annotations

import numpy as np
import pytest

from benchbot.config.protocol import Motion
from benchbot.core.errors import DeviceError, UnsafeMotionError
from benchbot.core.types import GraspPose, GripperStatus, Pose
from benchbot.devices.arms.rtde_controller import UR5_HOME_Q
from benchbot.devices.arms.ur_kinematics import matrix_to_pose, tcp_fk
from benchbot.devices.arms.ur_rtde import ROBOTIQ_2F85_TCP_OFFSET, URArm, URConfig, URDashboard
from benchbot.devices.safety import GatedArm, SafetyGate
from benchbot.harness.primitive import execute_grasp

DOWN = np.diag([1.0, -1.0, -1.0])


def connected_arm(emu, **cfg) -> URArm:
    arm = URArm(URConfig(host=emu.host, connect_timeout_s=2.0, **cfg))
    arm.connect()
    return arm


def test_connect_sets_the_fingertip_tcp_and_reads_the_pose(emulator_factory):
    emu = emulator_factory()
    arm = connected_arm(emu)
    try:
        expected = matrix_to_pose(tcp_fk(UR5_HOME_Q, ROBOTIQ_2F85_TCP_OFFSET))
        assert np.allclose(arm.current_pose().as_rotvec()[:3], expected[:3], atol=1e-4)
        assert emu.commands()[0] == "set_tcp"
        assert np.allclose(emu.state()["tcp_offset"], ROBOTIQ_2F85_TCP_OFFSET)
        assert not arm.protective_stopped
    finally:
        arm.close()


def test_move_linear_and_home_reach_their_targets(emulator_factory):
    emu = emulator_factory(time_scale=4.0)
    arm = connected_arm(emu)
    try:
        start = arm.current_pose()
        target = Pose(start.position_m + [0.05, 0.02, -0.06], start.rotation, "base")
        arm.move_linear(target, 0.25, 1.0)
        assert np.linalg.norm(arm.current_pose().position_m - target.position_m) < 0.002
        moves = [e for e in emu.log() if e["event"] == "command" and e["name"] == "movel"]
        assert moves[-1]["speed"] == 0.25 and moves[-1]["accel"] == 1.0 and moves[-1]["asynchronous"]
        assert np.allclose(moves[-1]["target"][:3], target.position_m, atol=1e-9)
        arm.home()
        assert np.allclose(emu.state()["q"], UR5_HOME_Q, atol=0.01)
        assert "movej" in emu.commands()
    finally:
        arm.close()


def test_unreachable_pose_is_a_device_error_and_the_arm_recovers(emulator_factory):
    emu = emulator_factory(time_scale=4.0)
    arm = connected_arm(emu)
    try:
        with pytest.raises(UnsafeMotionError):
            arm.move_linear(Pose(np.array([np.nan, 0.0, 0.2]), DOWN, "base"), 0.25, 1.0)
        far = Pose(np.array([1.6, 0.0, 0.2]), DOWN, "base")
        with pytest.raises(DeviceError, match="unreachable"):
            arm.move_linear(far, 0.25, 1.0)
        assert any(e["event"] == "runtime_error" for e in emu.log())
        start = arm.current_pose()
        near = Pose(start.position_m + [0, 0, -0.02], start.rotation, "base")
        arm.move_linear(near, 0.25, 1.0)  # the control script was re-uploaded
        assert np.linalg.norm(arm.current_pose().position_m - near.position_m) < 0.002
    finally:
        arm.close()


def test_protective_stop_during_a_move_then_recover(emulator_factory):
    emu = emulator_factory(time_scale=1.0)
    arm = connected_arm(emu)
    calls = {"n": 0}

    def sleep_then_collide(s: float) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            emu.trigger_protective_stop("collision (test)")

    arm.sleep = sleep_then_collide
    try:
        start = arm.current_pose()
        target = Pose(start.position_m + [0, 0, -0.15], start.rotation, "base")
        with pytest.raises(DeviceError, match="protective stop"):
            arm.move_linear(target, 0.05, 0.5)
        assert arm.protective_stopped
        assert np.linalg.norm(arm.current_pose().position_m - target.position_m) > 0.05  # halted early
        with pytest.raises(DeviceError, match="protective stop"):
            arm.move_linear(start, 0.05, 0.5)  # refused before anything is sent
        arm.recover()
        assert not arm.protective_stopped
        assert "unlock protective stop" in [e.get("command") for e in emu.log()]
        arm.move_linear(start, 0.25, 1.0)
        assert np.linalg.norm(arm.current_pose().position_m - start.position_m) < 0.002
    finally:
        arm.close()


def test_ctrl_c_while_moving_stops_the_arm(emulator_factory):
    emu = emulator_factory(time_scale=1.0)
    arm = connected_arm(emu)
    calls = {"n": 0}

    def interrupted(s: float) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    try:
        start = arm.current_pose()
        target = Pose(start.position_m + [0, 0, -0.15], start.rotation, "base")
        arm.sleep = interrupted
        with pytest.raises(KeyboardInterrupt):
            arm.move_linear(target, 0.05, 0.5)
        assert emu.commands()[-1] == "stopl"
        assert not emu.state()["moving"]
        assert np.linalg.norm(arm.current_pose().position_m - target.position_m) > 0.05
    finally:
        arm.close()


def test_table_collision_in_the_emulator_is_a_protective_stop(emulator_factory):
    emu = emulator_factory(time_scale=4.0, table_z_m=0.05)
    arm = connected_arm(emu)
    try:
        start = arm.current_pose()
        below = Pose(np.array([start.position_m[0], start.position_m[1], 0.0]), start.rotation, "base")
        with pytest.raises(DeviceError, match="protective stop"):
            arm.move_linear(below, 0.25, 1.0)
        assert any(e["event"] == "protective_stop" and "table" in e["reason"] for e in emu.log())
    finally:
        arm.close()


def test_grasp_primitive_end_to_end_behind_the_gate(emulator_factory):
    class Gripper:
        def activate(self) -> None: ...
        def close(self) -> None: ...
        def open(self, width_m: float) -> GripperStatus: return GripperStatus(True, False, False, width_m)
        def grip(self, force: float = 1.0, speed: float = 1.0) -> GripperStatus:
            return GripperStatus(True, False, True, 0.03)
        def status(self) -> GripperStatus: return GripperStatus(True, False, True, 0.03)

    emu = emulator_factory(time_scale=8.0)
    arm = connected_arm(emu)
    try:
        home = arm.current_pose()
        centre = home.position_m + [0.05, 0.05, -0.15]  # z ≈ 0.11 m above the base plane
        grasp = GraspPose(centre, np.array([0.0, 0.0, -1.0]), home.rotation[:, 0], 0.04, "base")
        gated = GatedArm(arm, SafetyGate())
        ex = execute_grasp(gated, Gripper(), grasp, Motion(hold_s=0.0), 0.085, sleep=lambda s: None)
        assert [e["step"] for e in ex.log][:3] == ["open", "pregrasp", "approach"]
        assert np.linalg.norm(arm.current_pose().position_m - (centre + [0, 0, 0.15])) < 0.002
        assert emu.commands().count("movel") == 3
    finally:
        arm.close()


def test_dashboard_client_talks_to_the_emulator(emulator_factory):
    emu = emulator_factory()
    assert URDashboard(emu.host).send("PolyscopeVersion").startswith("URSoftware 3.15")
    assert URDashboard(emu.host).send("safetymode") == "Safetymode: NORMAL"


def test_no_controller_is_a_quick_device_error():
    pytest.importorskip("rtde_control")
    arm = URArm(URConfig(host="127.0.0.1", connect_timeout_s=0.5, dashboard_port=1))
    with pytest.raises(DeviceError, match="no UR controller"):
        arm.connect()  # nothing listens on port 1 (and maybe not on 30004)


# ---- homing through the gate, freedrive, payload, RTDE frequency (issue 13)

def test_gated_homing_retracts_straight_up_then_joint_moves_home(emulator_factory):
    emu = emulator_factory(time_scale=8.0)
    arm = connected_arm(emu)
    gated = GatedArm(arm, SafetyGate())
    try:
        home = arm.home_pose
        low = Pose(np.array([0.45, 0.05, 0.03]), DOWN, "base")
        gated.move_linear(low, 0.25, 1.0)
        gated.home()
        moves = [e for e in emu.log() if e["event"] == "command" and e["name"] in ("movel", "movej")]
        assert [m["name"] for m in moves] == ["movel", "movel", "movej"]
        retract = moves[1]["target"]
        assert np.allclose(retract[:3], [0.45, 0.05, home.position_m[2]], atol=1e-6)
        assert np.allclose(emu.state()["q"], UR5_HOME_Q, atol=0.01)
    finally:
        arm.close()


def test_a_dangerous_joint_path_home_is_refused_before_any_movej(emulator_factory):
    over_the_top = [np.radians(a) for a in (205, -160, 90, -10, -90, -155)]  # reaching back over the robot
    emu = emulator_factory(time_scale=8.0, home_q=over_the_top)
    arm = connected_arm(emu)
    gated = GatedArm(arm, SafetyGate())
    try:
        with pytest.raises(UnsafeMotionError, match="unsafe homing refused: TCP is 0.1.. m from the base axis"):
            gated.home()
        assert not any(n in ("movej", "movel") for n in emu.commands())
        assert np.allclose(emu.state()["q"], over_the_top, atol=1e-9)
    finally:
        arm.close()


def test_freedrive_lets_the_hand_move_the_arm_and_blocks_commanded_motion(emulator_factory):
    emu = emulator_factory(time_scale=4.0)
    arm = connected_arm(emu)
    try:
        start = arm.current_pose()
        with pytest.raises(RuntimeError, match="not in teach"):
            emu.hand_guide([0.4, -0.2, 0.2, np.pi, 0.0, 0.0])  # the brakes hold it
        arm.start_freedrive()
        assert emu.state()["teach_mode"] and "teach_mode" in emu.commands()
        with pytest.raises(DeviceError, match="freedrive"):
            arm.move_linear(start, 0.1, 0.5)
        touched = [0.42, -0.18, 0.05, np.pi, 0.0, 0.0]
        emu.hand_guide(touched)
        arm.end_freedrive()
        assert not emu.state()["teach_mode"] and emu.commands()[-1] == "end_teach_mode"
        assert np.allclose(arm.current_pose().position_m, touched[:3], atol=1e-4)
        up = Pose(np.array([0.42, -0.18, 0.10]), DOWN, "base")
        arm.move_linear(up, 0.1, 0.5)  # position control again
        assert np.linalg.norm(arm.current_pose().position_m - up.position_m) < 0.002
    finally:
        arm.close()


def test_connect_sets_payload_and_rtde_frequency(emulator_factory):
    import rtde_receive

    emu = emulator_factory()
    arm = connected_arm(emu, payload_kg=1.3, payload_cog_m=(0.0, 0.01, 0.06), rtde_frequency_hz=250.0)
    try:
        state = emu.state()
        assert state["payload_kg"] == pytest.approx(1.3) and np.allclose(state["payload_cog_m"], [0.0, 0.01, 0.06])
        assert emu.commands()[:2] == ["set_tcp", "set_payload"]
        setups = [e for e in emu.log() if e["event"] == "rtde_setup_outputs"]
        assert setups and all(e["frequency"] == 250.0 for e in setups)  # receive and control interfaces
        r = rtde_receive.RTDEReceiveInterface(emu.host)  # the controller publishes the payload
        try:
            assert r.getPayload() == pytest.approx(1.3) and np.allclose(r.getPayloadCog(), [0.0, 0.01, 0.06])
        finally:
            r.disconnect()
    finally:
        arm.close()
    default = URConfig(host="x")
    assert (default.payload_kg, default.rtde_frequency_hz) == (0.925, 125.0)  # a 2F-85 on a CB3

"""Homing goes through the safety gate: retract straight up first, then the path home (a sampled
joint path for a UR5, a straight line otherwise) is checked before anything moves; after a fault
the gripper is re-activated only once the arm is up and home."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchbot.core.errors import UnsafeMotionError
from benchbot.core.geometry import overhead_camera_transform
from benchbot.core.types import GripperStatus, Pose
from benchbot.devices.arms.dryrun import TOOL_DOWN, DryRunArm
from benchbot.devices.arms.ur_kinematics import (
    ROBOTIQ_2F85_TCP_OFFSET,
    UR5_HOME_JOINTS_RAD,
    arm_points,
    tcp_fk,
)
from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits, tilt_deg
from benchbot.harness.primitive import go_home
from benchbot.harness.workcell import Workcell

# Reaching back over the robot to −x (TCP 0.33 m high): a moveJ home from here sweeps the TCP
# 0.11 m past the base axis although both ends are outside the keep-out.
OVER_THE_TOP_Q = tuple(math.radians(a) for a in (205, -160, 90, -10, -90, -155))


def twin(**kw) -> tuple[DryRunArm, GatedArm]:
    backend = DryRunArm(home_joints_rad=UR5_HOME_JOINTS_RAD, **kw)
    arm = GatedArm(backend, SafetyGate())
    arm.connect()
    return backend, arm


def test_default_home_is_tool_down_beside_the_workspace_and_clear_of_every_limit():
    tcp, points = arm_points(UR5_HOME_JOINTS_RAD, ROBOTIQ_2F85_TCP_OFFSET)
    home = Pose.from_matrix(tcp)
    gate = SafetyGate()
    assert gate.violation(home, 0.1, 0.5) is None and gate.home_path_violation([(home, points)]) is None
    assert tilt_deg(home.rotation) < 0.01 and home.position_m[0] > 0.2  # at +x, like the workspace
    assert math.hypot(*home.position_m[:2]) > 0.45  # well outside the 0.2 m keep-out
    # the first gated move from home to a grasp in front of the robot is allowed (the old home was refused)
    pregrasp = Pose(np.array([0.45, 0.0, 0.13]), TOOL_DOWN, "base")
    assert gate.violation(pregrasp, 0.25, 1.2, start=home) is None
    old_joints = (0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0)
    old = Pose.from_matrix(tcp_fk(old_joints, ROBOTIQ_2F85_TCP_OFFSET))
    assert "base axis" in gate.violation(pregrasp, 0.25, 1.2, start=old)


def test_default_home_leaves_an_overhead_cameras_view_clear():
    # a Kinect v2 (512×424, fx 364) 0.69 m above the table, over (0.45, 0): the shipped recording's setup
    t_base_camera = overhead_camera_transform(0.69)
    tcp, points = arm_points(UR5_HOME_JOINTS_RAD, ROBOTIQ_2F85_TCP_OFFSET)
    chain = [p for p in points.values()] + [tcp[:3, 3]]
    samples = [a + s * (b - a) for a, b in zip(chain, chain[1:], strict=False) for s in np.linspace(0, 1, 20)]
    cam = np.linalg.inv(t_base_camera)
    for p in samples:
        x, y, z = cam[:3, :3] @ p + cam[:3, 3]
        assert z <= 0 or not (abs(364.4 * x / z) < 256 and abs(364.4 * y / z) < 212), p


def test_homing_retracts_straight_up_first_then_joint_moves_home():
    backend, arm = twin()
    low = Pose(np.array([0.45, 0.05, 0.03]), TOOL_DOWN, "base")
    arm.move_linear(low, 0.25, 1.0)
    go_home(arm)
    moves = [e for e in backend.log if e["cmd"] in ("move_linear", "home")]
    assert [e["cmd"] for e in moves] == ["move_linear", "move_linear", "home"]
    retract = moves[1]["pose"]
    assert retract[:2] == [0.45, 0.05] and retract[2] == pytest.approx(backend.home_pose.position_m[2], abs=1e-6)
    assert np.allclose(backend.joint_positions(), UR5_HOME_JOINTS_RAD)
    home_entry = [e for e in arm.log if e["cmd"] == "home"][-1]
    assert home_entry["allowed"] is True and arm.log[-1]["cmd"] == "move_linear"  # the retract, inside the homing


def test_a_joint_path_home_through_the_keep_out_is_refused_before_moving():
    backend, arm = twin(start_joints_rad=OVER_THE_TOP_Q)
    start = backend.current_pose()
    assert SafetyGate().violation(start, 0.1, 0.5) is None  # the arm stands somewhere allowed
    with pytest.raises(UnsafeMotionError, match="unsafe homing refused: TCP is 0.1.. m from the base axis, "
                                                r"inside base_keepout_radius_m=0.2 \(.*% of the way home\)") as e:
        go_home(arm)
    assert "\n" not in e.value.one_line() and "freedrive" in e.value.fix
    assert [e["cmd"] for e in backend.log] == ["connect", "stop"]  # nothing moved; go_home stopped it
    assert np.allclose(backend.joint_positions(), OVER_THE_TOP_Q)
    assert arm.refused[-1]["cmd"] == "home"


def test_the_wrist_and_flange_are_checked_along_the_path_too():
    _, arm = twin()
    low_ceiling = SafetyGate(SafetyLimits(workspace_max_m=(0.7, 0.7, 0.55)))
    assert low_ceiling.violation(arm.arm.home_pose, 0.1, 0.5) is None  # the TCP alone would pass
    arm.gate = low_ceiling
    with pytest.raises(UnsafeMotionError, match=r"wrist 2 z 0\.58.. m outside workspace \[0\.0, 0\.55\] m"):
        arm.home()  # the wrist housing would be above the box


def test_a_retract_the_gate_refuses_refuses_the_homing():
    backend, arm = twin()
    arm.move_linear(Pose(np.array([0.45, 0.05, 0.1]), TOOL_DOWN, "base"), 0.25, 1.0)
    arm.gate = SafetyGate(SafetyLimits(workspace_max_m=(0.7, 0.7, 0.3)))  # home height above the box
    with pytest.raises(UnsafeMotionError, match="cannot retract straight up first: tool z 0.326. m outside"):
        arm.home()
    assert backend.log[-1]["cmd"] == "move_linear" and backend.log[-1]["pose"][2] == 0.1


def test_a_straight_line_home_is_gated_like_any_linear_move():
    backend = DryRunArm()  # Cartesian: home is a straight line to (0.4, 0, 0.4)
    arm = GatedArm(backend, SafetyGate())
    arm.connect()
    arm.move_linear(Pose(np.array([0.3, 0.35, 0.45]), TOOL_DOWN, "base"), 0.25, 1.0)
    arm.move_linear(Pose(np.array([-0.4, 0.35, 0.45]), TOOL_DOWN, "base"), 0.25, 1.0)
    arm.move_linear(Pose(np.array([-0.4, 0.0, 0.45]), TOOL_DOWN, "base"), 0.25, 1.0)
    with pytest.raises(UnsafeMotionError, match="path passes 0.000 m from the base axis"):
        arm.home()  # the line to (0.4, 0, 0.4) crosses the robot's column
    assert backend.log[-1]["cmd"] == "move_linear"


class FaultedGripper:
    """Reports a fault; records where the arm's TCP was when it was re-activated."""

    def __init__(self, arm: DryRunArm) -> None:
        self.arm = arm
        self.activated_at: list[np.ndarray] = []

    def status(self) -> GripperStatus:
        return GripperStatus(True, False, False, 0.0, fault="gFLT 0x0A (test)")

    def activate(self) -> None:
        self.activated_at.append(self.arm.current_pose().position_m.copy())
        self.arm.log.append({"cmd": "gripper activate"})


def test_recover_reactivates_a_faulted_gripper_only_once_the_arm_is_up_and_home():
    backend, arm = twin()
    arm.move_linear(Pose(np.array([0.45, 0.05, 0.03]), TOOL_DOWN, "base"), 0.25, 1.0)  # faulted at the grasp
    gripper = FaultedGripper(backend)
    cell = Workcell("test", SafetyLimits(), lambda _wc: None, arm=arm, gripper=gripper, t_base_camera=np.eye(4))
    cell.recover()
    assert [e["cmd"] for e in backend.log][-3:] == ["move_linear", "home", "gripper activate"]
    assert np.allclose(gripper.activated_at[0], backend.home_pose.position_m)

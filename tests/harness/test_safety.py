"""Safety gate: nothing outside the limits reaches the wrapped arm; everything inside does."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from benchbot.config.protocol import Motion
from benchbot.core.errors import DeviceError, UnsafeMotionError
from benchbot.core.types import Pose
from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits, tilt_deg

DOWN = np.diag([1.0, -1.0, -1.0])
LIMITS = SafetyLimits(workspace_min_m=(-0.6, -0.6, 0.0), workspace_max_m=(0.6, 0.6, 0.6), table_z_m=0.02,
                      min_height_above_table_m=0.01, max_tilt_deg=25.0, max_speed_mps=0.5,
                      max_accel_mps2=1.2, base_keepout_radius_m=0.2, max_reach_m=0.8)


class RecordingArm:
    """Minimal Arm that only records what reaches it."""

    def __init__(self) -> None:
        self.pose = Pose(np.array([0.4, 0.0, 0.3]), DOWN, "base")
        self.home_pose = self.pose  # a straight-line home (no joint path to report)
        self.received: list[tuple[Pose, float, float]] = []

    def connect(self) -> None: ...
    def home(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

    def current_pose(self) -> Pose:
        return self.pose

    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None:
        self.received.append((pose, speed_mps, accel_mps2))
        self.pose = pose


def oracle_ok(start: Pose, pose: Pose, speed: float, accel: float, lim: SafetyLimits = LIMITS) -> bool:
    """Independent statement of the limits (path keep-out checked by dense sampling)."""
    p, r = pose.position_m, pose.rotation
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(r)) and math.isfinite(speed) and math.isfinite(accel)):
        return False
    if not (0 < speed <= lim.max_speed_mps and 0 < accel <= lim.max_accel_mps2):
        return False
    if p[2] < lim.table_z_m + lim.min_height_above_table_m:
        return False
    jaw = r[:, 0] * lim.jaw_opening_m / 2  # both fingertips clear the table too
    if min(p[2] + jaw[2], p[2] - jaw[2]) < lim.table_z_m + lim.min_height_above_table_m:
        return False
    if np.any(p < np.array(lim.workspace_min_m)) or np.any(p > np.array(lim.workspace_max_m)):
        return False
    if np.linalg.norm(p - [0, 0, lim.shoulder_height_m]) > lim.max_reach_m:
        return False
    approach = r[:, 2]
    if math.degrees(math.acos(np.clip(-approach[2], -1, 1))) > lim.max_tilt_deg:
        return False
    ts = np.linspace(0, 1, 2001)[:, None]
    path = start.position_m[None, :2] * (1 - ts) + p[None, :2] * ts
    closest = float(np.min(np.linalg.norm(path, axis=1)))
    assume(abs(closest - lim.base_keepout_radius_m) > 1e-3)  # sampling cannot settle a near-tie
    return closest >= lim.base_keepout_radius_m


coord = st.floats(-0.9, 0.9, allow_nan=False)
weird = st.sampled_from([math.nan, math.inf, -math.inf])


def mostly(inside: st.SearchStrategy, *outside: st.SearchStrategy) -> st.SearchStrategy:
    """`inside` 3 times in 4, else one of `outside` (both outcomes of the property get exercised)."""
    return st.integers(0, 3).flatmap(lambda k: inside if k else st.one_of(*outside))


positions = mostly(st.tuples(st.floats(-0.6, 0.6), st.floats(-0.6, 0.6), st.floats(0.03, 0.6)),
                   st.tuples(coord, coord, st.floats(-0.1, 0.8)), st.tuples(coord, coord, weird))
rotvecs = mostly(st.tuples(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3), st.floats(-3.1, 3.1)),
                 st.tuples(st.floats(-0.8, 0.8), st.floats(-0.8, 0.8), st.floats(-3.1, 3.1)))
speeds = mostly(st.floats(0.001, 0.5), st.floats(-0.1, 0.8, allow_nan=False), weird)
accels = mostly(st.floats(0.001, 1.2), st.floats(-0.1, 2.0, allow_nan=False), weird)
starts = mostly(st.tuples(st.floats(0.25, 0.6), st.floats(-0.6, 0.6), st.floats(0.05, 0.6)),
                st.tuples(coord, coord, st.floats(0.05, 0.6)))


def pose_from(pos: tuple[float, float, float], rv: tuple[float, float, float]) -> Pose:
    # tool pointing down, then tilted by a small rotation about base x/y and turned about z
    r = Rotation.from_rotvec([rv[0], rv[1], 0]).as_matrix() @ DOWN @ Rotation.from_rotvec([0, 0, rv[2]]).as_matrix()
    return Pose(np.array(pos, float), r, "base")


@settings(max_examples=400, deadline=None)
@given(positions, rotvecs, speeds, accels, starts)
def test_gated_arm_forwards_exactly_the_safe_motions(pos, rv, speed, accel, start_pos):
    arm = RecordingArm()
    arm.pose = Pose(np.array(start_pos, float), DOWN, "base")
    start = arm.pose
    gated = GatedArm(arm, SafetyGate(LIMITS))
    pose = pose_from(pos, rv)
    expected = oracle_ok(start, pose, speed, accel)
    if expected:
        gated.move_linear(pose, speed, accel)
        assert len(arm.received) == 1 and arm.received[0][0] is pose
        assert gated.log[-1]["allowed"] is True
    else:
        with pytest.raises(UnsafeMotionError):
            gated.move_linear(pose, speed, accel)
        assert arm.received == []
        assert gated.log[-1]["allowed"] is False and gated.refused


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5), st.floats(0.05, 0.5)),
       st.floats(-3.1, 3.1), st.floats(0.01, 0.5), st.floats(0.01, 1.2))
def test_everything_inside_the_limits_is_forwarded(pos, yaw, speed, accel):
    if math.hypot(pos[0], pos[1]) < 0.21:
        pos = (0.3, pos[1] if abs(pos[1]) > 0.21 else 0.3, pos[2])
    assume(math.dist(pos, (0.0, 0.0, LIMITS.shoulder_height_m)) <= LIMITS.max_reach_m)
    arm = RecordingArm()
    arm.pose = Pose(np.array([pos[0], pos[1], 0.4]), DOWN, "base")  # straight above: path is vertical
    pose = pose_from(pos, (0.0, 0.0, yaw))
    GatedArm(arm, SafetyGate(LIMITS)).move_linear(pose, speed, accel)
    assert len(arm.received) == 1


@pytest.mark.parametrize("mutate, word", [
    (lambda p: Pose(p.position_m + [0, 0, -0.5], p.rotation, "base"), "table_z_m"),
    (lambda p: Pose(p.position_m + [0.5, 0, 0], p.rotation, "base"), "workspace"),
    (lambda p: Pose(p.position_m, Rotation.from_rotvec([0.7, 0, 0]).as_matrix() @ p.rotation, "base"), "max_tilt_deg"),
    (lambda p: Pose(np.array([0.05, 0.0, 0.3]), p.rotation, "base"), "base_keepout_radius_m"),
    (lambda p: Pose(p.position_m, p.rotation, "camera"), "base frame"),
    (lambda p: Pose(p.position_m * np.nan, p.rotation, "base"), "NaN"),
    (lambda p: Pose(p.position_m, p.rotation * 2, "base"), "rotation"),
])
def test_refusal_names_the_violated_limit(mutate, word):
    good = Pose(np.array([0.4, 0.1, 0.2]), DOWN, "base")
    SafetyGate(LIMITS).check(good, 0.1, 0.5)
    with pytest.raises(UnsafeMotionError, match=word):
        SafetyGate(LIMITS).check(mutate(good), 0.1, 0.5)


def test_speed_and_accel_caps_and_non_finite():
    good = Pose(np.array([0.4, 0.1, 0.2]), DOWN, "base")
    gate = SafetyGate(LIMITS)
    for speed, accel, word in [(0.6, 0.5, "max_speed_mps"), (0.0, 0.5, "max_speed_mps"),
                               (0.1, 1.5, "max_accel_mps2"), (math.nan, 0.5, "speed_mps"),
                               (0.1, math.inf, "accel_mps2")]:
        with pytest.raises(UnsafeMotionError, match=word):
            gate.check(good, speed, accel)


def test_path_through_the_base_column_is_refused_even_if_both_ends_are_fine():
    arm = RecordingArm()
    arm.pose = Pose(np.array([0.4, 0.0, 0.3]), DOWN, "base")
    target = Pose(np.array([-0.4, 0.0, 0.3]), DOWN, "base")
    SafetyGate(LIMITS).check(target, 0.1, 0.5)  # the end pose alone is fine
    with pytest.raises(UnsafeMotionError, match="path"):
        GatedArm(arm, SafetyGate(LIMITS)).move_linear(target, 0.1, 0.5)
    assert arm.received == []


def test_from_protocol_takes_speed_caps_and_validates():
    motion = Motion(max_speed_mps=0.3, speed_mps=0.2, approach_speed_mps=0.05, max_accel_mps2=0.8, accel_mps2=0.5)
    lim = SafetyLimits.from_protocol(motion, (-0.5, -0.5, 0.0), (0.5, 0.5, 0.5), table_z_m=0.01, max_tilt_deg=10)
    assert (lim.max_speed_mps, lim.max_accel_mps2, lim.table_z_m, lim.max_tilt_deg) == (0.3, 0.8, 0.01, 10)
    with pytest.raises(ValueError):
        SafetyLimits(workspace_min_m=(0, 0, 0), workspace_max_m=(1, -1, 1))
    with pytest.raises(ValueError):
        SafetyLimits(max_speed_mps=math.nan)


def test_tilt_of_straight_down_is_zero():
    assert tilt_deg(DOWN) == pytest.approx(0.0)
    assert tilt_deg(np.eye(3)) == pytest.approx(180.0)


def test_freedrive_needs_an_arm_that_has_it():
    gated = GatedArm(RecordingArm(), SafetyGate(LIMITS))
    with pytest.raises(DeviceError, match="RecordingArm has no freedrive"):
        gated.start_freedrive()


def test_gated_arm_forwards_stop_home_close_and_logs():
    arm = RecordingArm()
    gated = GatedArm(arm, SafetyGate(LIMITS))
    gated.connect()
    gated.home()
    gated.stop()
    gated.close()
    assert [e["cmd"] for e in gated.log] == ["connect", "home", "stop", "close"]
    assert gated.current_pose() is arm.pose


def test_open_jaws_tilted_about_the_approach_are_checked_at_both_fingertips():
    gate = SafetyGate()  # table z 0, 5 mm clearance, 85 mm jaws, 30° tilt allowed
    tilt_across_jaws = Rotation.from_rotvec([0.0, math.radians(30), 0.0]).as_matrix() @ DOWN  # jaw axis dips
    low = Pose(np.array([0.45, 0.0, 0.015]), tilt_across_jaws, "base")  # TCP 15 mm up, one fingertip ~6 mm under
    with pytest.raises(UnsafeMotionError, match=r"fingertip is at z -0\.006"):
        gate.check(low, 0.1, 0.5)
    gate.check(Pose(np.array([0.45, 0.0, 0.027]), tilt_across_jaws, "base"), 0.1, 0.5)  # both tips ≥ 5 mm
    tilt_along_jaws = Rotation.from_rotvec([math.radians(30), 0.0, 0.0]).as_matrix() @ DOWN  # tips stay level
    gate.check(Pose(np.array([0.45, 0.0, 0.015]), tilt_along_jaws, "base"), 0.1, 0.5)
    narrow = SafetyGate(SafetyLimits(jaw_opening_m=0.02))  # the protocol's opening sets the width
    narrow.check(low, 0.1, 0.5)

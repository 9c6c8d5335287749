"""Motion-safety gate: every tool pose and speed is checked here before any arm backend sees it.

Frame: the robot base frame (UR convention: z up, base at the origin). Poses are the TCP pose,
i.e. the fingertip centre of the gripper once the TCP offset is set on the robot.

Default limits, for a UR5 bolted on the table top (base origin on the table surface):
  - workspace box x, y in [-0.70, 0.70] m, z in [0.0, 0.70] m (UR5 reach is 0.85 m);
  - table at z = 0.0 m; fingertip centre and both fingertips (TCP ± half the protocol's jaw
    opening along tool x: with 85 mm jaws and 30° tilt one is ~21 mm lower) at least 5 mm above it;
  - a keep-out cylinder of radius 0.20 m around the base z axis (the robot's own column),
    checked along the whole straight-line path, not just at its end;
  - fingertip centre within 0.80 m of the shoulder (0.089 m above the base): beyond that the
    UR5 is near its singular, fully stretched configuration;
  - approach axis (tool z) at most 30° from straight down;
  - speed and acceleration capped by the protocol's `motion.max_speed_mps` / `max_accel_mps2`.

Homing (`GatedArm.home`) is gated too: retract straight up to the home's height (a gated linear
move), then check the whole path home before moving. An arm whose home is a joint move reports the
sampled path (`home_path()`: TCP pose and wrist/flange centres along the moveJ); the TCP and
fingertips must stay in the box, above the table clearance and outside the keep-out, the wrist and
flange centres in the box and `LINK_RADIUS_M` higher. Other arms home in a straight line, checked
like any linear move.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from benchbot.config.hardware import ArmConfig, HardwareConfig
from benchbot.config.protocol import Motion
from benchbot.core.errors import DeviceError, UnsafeMotionError
from benchbot.core.interfaces import Arm
from benchbot.core.logs import CommandLog
from benchbot.core.types import Pose

log = logging.getLogger(__name__)
DEFAULT_WORKSPACE_MIN_M = (-0.70, -0.70, 0.0)
DEFAULT_WORKSPACE_MAX_M = (0.70, 0.70, 0.70)
DEFAULT_TABLE_Z_M = 0.0
DEFAULT_MIN_HEIGHT_ABOVE_TABLE_M = 0.005
DEFAULT_MAX_TILT_DEG = 30.0
DEFAULT_BASE_KEEPOUT_RADIUS_M = 0.20
DEFAULT_MAX_REACH_M = 0.80
DEFAULT_JAW_OPENING_M = 0.085  # Robotiq 2F-85 fully open
UR5_SHOULDER_HEIGHT_M = 0.089159
LINK_RADIUS_M = 0.045  # UR5 wrist housings: their centres keep this much more clearance above the table
HOME_SPEED_MPS, HOME_ACCEL_MPS2 = 0.25, 0.5  # the retract before homing (capped by the limits)

_FIX = "check the grasp, the camera-to-base calibration and the safety limits"
_HOME_FIX = "jog the arm clear by hand (freedrive on the pendant), then retry; check robot.home_joints_rad"
HomePath = Sequence[tuple[Pose, Mapping[str, np.ndarray]]]


@dataclass(frozen=True)
class SafetyLimits:
    """Limits on commanded tool poses (base frame) and Cartesian speed/acceleration."""

    workspace_min_m: tuple[float, float, float] = DEFAULT_WORKSPACE_MIN_M
    workspace_max_m: tuple[float, float, float] = DEFAULT_WORKSPACE_MAX_M
    table_z_m: float = DEFAULT_TABLE_Z_M
    min_height_above_table_m: float = DEFAULT_MIN_HEIGHT_ABOVE_TABLE_M
    max_tilt_deg: float = DEFAULT_MAX_TILT_DEG
    max_speed_mps: float = 0.5
    max_accel_mps2: float = 1.2
    base_keepout_radius_m: float = DEFAULT_BASE_KEEPOUT_RADIUS_M  # 0 disables
    max_reach_m: float = DEFAULT_MAX_REACH_M  # from the shoulder; inf disables
    shoulder_height_m: float = UR5_SHOULDER_HEIGHT_M
    jaw_opening_m: float = DEFAULT_JAW_OPENING_M  # fingertips: TCP ± half of it along tool x

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_min_m, float), np.asarray(self.workspace_max_m, float)
        values = [*lo, *hi, self.table_z_m, self.min_height_above_table_m, self.max_tilt_deg, self.jaw_opening_m,
                  self.max_speed_mps, self.max_accel_mps2, self.base_keepout_radius_m, self.shoulder_height_m]
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(np.isfinite(values)):
            raise ValueError("safety limits must be finite, workspace min/max must be 3 values each")
        if np.any(lo >= hi):
            raise ValueError(f"workspace min {tuple(lo)} must be below max {tuple(hi)} on every axis")
        if self.max_speed_mps <= 0 or self.max_accel_mps2 <= 0 or not 0 <= self.max_tilt_deg <= 180:
            raise ValueError("max speed/accel must be > 0 and max tilt within [0, 180] degrees")
        if (self.min_height_above_table_m < 0 or self.base_keepout_radius_m < 0 or self.jaw_opening_m < 0
                or not self.max_reach_m > 0):
            raise ValueError("min height, keep-out radius, jaw opening must be >= 0 and max reach > 0")

    @property
    def min_tool_z_m(self) -> float:
        return self.table_z_m + self.min_height_above_table_m

    @staticmethod
    def from_protocol(motion: Motion,
                      workspace_min_m: tuple[float, float, float] = DEFAULT_WORKSPACE_MIN_M,
                      workspace_max_m: tuple[float, float, float] = DEFAULT_WORKSPACE_MAX_M,
                      table_z_m: float = DEFAULT_TABLE_Z_M, **overrides: Any) -> SafetyLimits:
        """Limits whose speed/accel caps are the protocol's; other fields from args/defaults."""
        return SafetyLimits(workspace_min_m=tuple(map(float, workspace_min_m)),  # type: ignore[arg-type]
                            workspace_max_m=tuple(map(float, workspace_max_m)),  # type: ignore[arg-type]
                            table_z_m=float(table_z_m), max_speed_mps=motion.max_speed_mps,
                            max_accel_mps2=motion.max_accel_mps2, **overrides)


def tilt_deg(rotation: np.ndarray) -> float:
    """Angle between the tool z axis (approach) and straight down (−z of the base)."""
    return math.degrees(math.acos(float(np.clip(-rotation[2, 2], -1.0, 1.0))))


def fingertips_m(position_m: np.ndarray, rotation: np.ndarray, opening_m: float) -> np.ndarray:
    """The two fingertip centres (2×3): the TCP ± half the jaw opening along the tool x (jaw) axis."""
    half = 0.5 * opening_m * np.asarray(rotation, float)[:, 0]
    p = np.asarray(position_m, float)
    return np.stack([p + half, p - half])


def _segment_distance_to_z_axis(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest horizontal distance from the base z axis to the segment a→b."""
    a2, b2 = a[:2], b[:2]
    d = b2 - a2
    n = float(d @ d)
    t = 0.0 if n == 0 else float(np.clip(-(a2 @ d) / n, 0.0, 1.0))
    return float(np.linalg.norm(a2 + t * d))


class SafetyGate:
    """Checks poses and speeds against `SafetyLimits`; raises UnsafeMotionError naming the limit."""

    def __init__(self, limits: SafetyLimits | None = None) -> None:
        self.limits = limits or SafetyLimits()

    def violation(self, pose: Pose, speed_mps: float, accel_mps2: float,
                  start: Pose | None = None) -> str | None:
        """The first violated limit, as a sentence, or None when the motion is allowed.
        With `start`, the straight-line path start→pose is checked against the keep-out cylinder."""
        lim = self.limits
        if pose.frame != "base":
            return f"pose is in frame '{pose.frame}', expected the robot base frame"
        for name, value in (("speed_mps", speed_mps), ("accel_mps2", accel_mps2)):
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                return f"{name} is not a finite number ({value!r})"
        p = np.asarray(pose.position_m, dtype=float)
        r = np.asarray(pose.rotation, dtype=float)
        if p.shape != (3,) or r.shape != (3, 3):
            return "pose must have a 3-vector position and a 3×3 rotation"
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(r))):
            return "pose contains NaN or infinite values"
        if np.abs(r.T @ r - np.eye(3)).max() > 1e-6 or np.linalg.det(r) <= 0:
            return "pose rotation is not a proper rotation matrix"
        if not 0 < speed_mps <= lim.max_speed_mps:
            return f"speed {speed_mps:.3f} m/s outside (0, max_speed_mps={lim.max_speed_mps}]"
        if not 0 < accel_mps2 <= lim.max_accel_mps2:
            return f"acceleration {accel_mps2:.3f} m/s² outside (0, max_accel_mps2={lim.max_accel_mps2}]"
        reason = self._place_violation("tool", p, keepout=False) or self._fingertip_violation(p, r)
        if reason is not None:
            return reason
        reach = float(np.linalg.norm(p - np.array([0.0, 0.0, lim.shoulder_height_m])))
        if reach > lim.max_reach_m:
            return f"tool is {reach:.3f} m from the shoulder, beyond max_reach_m={lim.max_reach_m}"
        tilt = tilt_deg(r)
        if tilt > lim.max_tilt_deg:
            return f"approach axis tilted {tilt:.1f}° from straight down, beyond max_tilt_deg={lim.max_tilt_deg}"
        if lim.base_keepout_radius_m > 0:
            a = p if start is None else np.asarray(start.position_m, dtype=float)
            if start is not None and not np.all(np.isfinite(a)):
                return "start pose contains NaN or infinite values"
            dist = _segment_distance_to_z_axis(a, p)
            if dist < lim.base_keepout_radius_m:
                where = "target" if start is None else "path"
                return (f"{where} passes {dist:.3f} m from the base axis, inside "
                        f"base_keepout_radius_m={lim.base_keepout_radius_m}")
        return None

    def home_path_violation(self, path: HomePath) -> str | None:
        """The first limit broken along a sampled path home (see the module doc), or None."""
        for i, (tcp, points) in enumerate(path):
            reason = self.arm_violation(tcp, points)
            if reason is not None:
                where = "at the start" if i == 0 else f"{i / max(1, len(path) - 1):.0%} of the way home"
                return f"{reason} ({where})"
        return None

    def arm_violation(self, tcp: Pose, points: Mapping[str, np.ndarray]) -> str | None:
        """One arm configuration: TCP and fingertips in the box, above the table clearance, outside
        the keep-out; the named wrist/flange centres in the box and LINK_RADIUS_M higher."""
        p = np.asarray(tcp.position_m, float)
        reason = self._place_violation("TCP", p) or self._fingertip_violation(p, np.asarray(tcp.rotation, float))
        for name, point in points.items():
            reason = reason or self._place_violation(name, np.asarray(point, float), keepout=False,
                                                     extra_clearance_m=LINK_RADIUS_M)
        return reason

    def _place_violation(self, name: str, p: np.ndarray, keepout: bool = True,
                         extra_clearance_m: float = 0.0) -> str | None:
        """A point below the table clearance, outside the workspace box or (keepout) inside the keep-out."""
        lim = self.limits
        if not np.all(np.isfinite(p)):
            return f"{name} position is not finite"
        floor = lim.min_tool_z_m + extra_clearance_m
        if p[2] < floor:
            extra = f" + {extra_clearance_m * 1000:.0f} mm (link radius)" if extra_clearance_m else ""
            return f"{name} z {p[2]:.4f} m is below table_z_m + min_height_above_table_m{extra} = {floor:.4f} m"
        lo, hi = np.asarray(lim.workspace_min_m), np.asarray(lim.workspace_max_m)
        for i, axis in enumerate("xyz"):
            if not lo[i] <= p[i] <= hi[i]:
                return f"{name} {axis} {p[i]:.4f} m outside workspace [{lo[i]}, {hi[i]}] m"
        dist = float(np.hypot(p[0], p[1]))
        if keepout and dist < lim.base_keepout_radius_m:
            return (f"{name} is {dist:.3f} m from the base axis, "
                    f"inside base_keepout_radius_m={lim.base_keepout_radius_m}")
        return None

    def _fingertip_violation(self, p: np.ndarray, r: np.ndarray) -> str | None:
        lim = self.limits
        low = float(fingertips_m(p, r, lim.jaw_opening_m)[:, 2].min())
        if low < lim.min_tool_z_m:
            return (f"a fingertip is at z {low:.4f} m (jaws {lim.jaw_opening_m * 1000:.0f} mm open, approach "
                    f"tilted {tilt_deg(r):.1f}°), below table_z_m + min_height_above_table_m = "
                    f"{lim.min_tool_z_m:.4f} m")
        return None

    def check(self, pose: Pose, speed_mps: float, accel_mps2: float, start: Pose | None = None) -> None:
        """Raise UnsafeMotionError if the motion violates any limit; return None otherwise."""
        reason = self.violation(pose, speed_mps, accel_mps2, start)
        if reason is not None:
            raise UnsafeMotionError(f"unsafe motion refused: {reason}", _FIX)


@runtime_checkable
class _Freedrive(Protocol):
    """An arm the operator can move by hand (UR teach mode, the dry-run arm)."""

    def start_freedrive(self) -> None: ...

    def end_freedrive(self) -> None: ...


class GatedArm(Arm):
    """An `Arm` that checks every motion with a `SafetyGate` before forwarding it to `arm`.

    Straight-line paths are checked from the arm's current pose. Refused motions raise
    UnsafeMotionError and never reach the wrapped arm. `log` keeps the latest commands (the run
    log all of them).
    """

    def __init__(self, arm: Arm, gate: SafetyGate) -> None:
        self.arm = arm
        self.gate = gate
        self.log = CommandLog(__name__)  # the latest commands (bounded); the run log keeps them all

    def connect(self) -> None:
        self.log.append({"cmd": "connect"})
        self.arm.connect()

    @property
    def is_connected(self) -> bool:
        return self.arm.is_connected

    @property
    def protective_stopped(self) -> bool:
        return self.arm.protective_stopped

    def recover(self) -> None:
        """Clear a protective stop of the arm behind the gate (no motion: the gate has nothing to check)."""
        self.arm.recover()

    def home(self) -> None:
        """Home without an ungated motion: retract straight up (gated) to the home's height if lower,
        check the path home (module doc), then move. Raises UnsafeMotionError naming the limit."""
        entry: dict[str, Any] = {"cmd": "home"}
        self.log.append(entry)
        reason = self._home_violation()
        entry["allowed"] = reason is None
        if reason is not None:
            entry["reason"] = reason
            log.info("homing refused by the safety gate: %s", reason)
            raise UnsafeMotionError(f"unsafe homing refused: {reason}", _HOME_FIX)
        self.arm.home()

    def _home_violation(self) -> str | None:
        home = getattr(self.arm, "home_pose", None)
        if not isinstance(home, Pose):
            return "the arm does not report its home pose, so the path home cannot be checked"
        lim = self.gate.limits
        current = self.arm.current_pose()
        safe_z = float(home.position_m[2])
        if float(current.position_m[2]) < safe_z - 1e-3:
            up = Pose(np.array([current.position_m[0], current.position_m[1], safe_z]), current.rotation, "base")
            speed, accel = min(HOME_SPEED_MPS, lim.max_speed_mps), min(HOME_ACCEL_MPS2, lim.max_accel_mps2)
            try:
                self.move_linear(up, speed, accel)
            except UnsafeMotionError as e:
                return f"cannot retract straight up first: {e.message.removeprefix('unsafe motion refused: ')}"
            current = self.arm.current_pose()
        path = self.arm.home_path() if hasattr(self.arm, "home_path") else None
        if path is None:  # a straight line home, at the backend's own homing speed
            return self.gate.violation(home, lim.max_speed_mps, lim.max_accel_mps2, start=current)
        return self.gate.home_path_violation(path)

    def _hand_guided(self) -> _Freedrive:
        if not isinstance(self.arm, _Freedrive):
            raise DeviceError(f"{type(self.arm).__name__} has no freedrive", "use a UR arm or the dry-run arm")
        return self.arm

    def start_freedrive(self) -> None:
        """Let the operator move the arm by hand (ur_rtde teachMode); no command moves it meanwhile."""
        self.log.append({"cmd": "start_freedrive"})
        self._hand_guided().start_freedrive()

    def end_freedrive(self) -> None:
        self.log.append({"cmd": "end_freedrive"})
        self._hand_guided().end_freedrive()

    def move_linear(self, pose: Pose, speed_mps: float, accel_mps2: float) -> None:
        entry: dict[str, Any] = {"cmd": "move_linear", "pose": pose.as_record(),
                                 "speed_mps": speed_mps, "accel_mps2": accel_mps2}
        self.log.append(entry)
        reason = self.gate.violation(pose, speed_mps, accel_mps2)  # cheap checks first
        if reason is None:
            reason = self.gate.violation(pose, speed_mps, accel_mps2, start=self.arm.current_pose())
        entry["allowed"] = reason is None
        if reason is not None:
            entry["reason"] = reason
            log.info("motion refused by the safety gate: %s", reason)
            raise UnsafeMotionError(f"unsafe motion refused: {reason}", _FIX)
        self.arm.move_linear(pose, speed_mps, accel_mps2)

    def current_pose(self) -> Pose:
        return self.arm.current_pose()

    def stop(self) -> None:
        self.log.append({"cmd": "stop"})
        self.arm.stop()

    def close(self) -> None:
        self.log.append({"cmd": "close"})
        self.arm.close()

    @property
    def refused(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e.get("allowed") is False]


def gated_arm(cfg: ArmConfig, limits: SafetyLimits) -> GatedArm:
    """The arm of a `robot:` config behind a safety gate with `limits`, not connected."""
    from benchbot.devices.arms import make_arm

    gate = SafetyGate(limits)
    return GatedArm(make_arm(cfg, gate), gate)


def make_gated_arm(hw: HardwareConfig, motion: Motion | None = None, **limits_overrides: Any) -> GatedArm:
    """The configured arm behind the safety gate (workspace, table, tilt, speed caps), connected.
    `limits_overrides`: SafetyLimits fields to change (calibration allows a steeper tilt)."""
    limits = SafetyLimits.from_protocol(motion or Motion(), workspace_min_m=hw.workspace.min_m,
                                        workspace_max_m=hw.workspace.max_m, table_z_m=hw.table_z_m,
                                        **limits_overrides)
    arm = gated_arm(hw.robot, limits)
    arm.connect()
    return arm

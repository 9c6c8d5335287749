"""Hardware config: one YAML describing the robot, gripper, camera, calibration and workcell.

Validated at the edge like the protocol (unknown keys, wrong types → one line naming file, key
and fix). Relative paths (calibration, camera recording) are resolved against the YAML's folder.
See benchbot/config/defaults/hardware.example.yaml for a commented example.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchbot.config.protocol import _read_yaml, validate_mapping, validation_error
from benchbot.core.errors import BenchbotError
from benchbot.core.paths import DEFAULTS_DIR
from benchbot.devices.arms.ur_kinematics import ROBOTIQ_2F85_TCP_OFFSET, UR5_HOME_JOINTS_RAD
from benchbot.perception.workspace import WorkspaceSpec, hardware_workspace

EXAMPLE = "benchbot/config/defaults/hardware.example.yaml"


def example_hardware_path() -> Path:
    return DEFAULTS_DIR / "hardware.example.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RobotConfig(_Strict):
    kind: Literal["ur5", "dryrun"] = "dryrun"
    host: str | None = None  # controller IP (RTDE); required for ur5
    # tool down beside the workspace (+x, −y), clear of the camera's view; `doctor` checks it
    home_joints_rad: tuple[float, float, float, float, float, float] = UR5_HOME_JOINTS_RAD
    # TCP offset from the flange, UR pose vector [x, y, z, rx, ry, rz] (m, axis-angle rad):
    # the fingertip centre of a Robotiq 2F-85 with its coupling is ~0.174 m along tool z.
    tcp_offset: tuple[float, float, float, float, float, float] = ROBOTIQ_2F85_TCP_OFFSET
    # what hangs on the flange, set on connect (setPayload): Robotiq 2F-85 + coupling ≈ 0.925 kg
    payload_kg: float = Field(0.925, ge=0.0, le=5.0)  # UR5: 5 kg maximum
    payload_cog_m: tuple[float, float, float] = (0.0, 0.0, 0.055)  # centre of gravity, flange frame (estimate)
    rtde_frequency_hz: float = Field(125.0, gt=0.0, le=500.0)  # CB3 UR5: 125 Hz; e-Series: 500 Hz
    connect_timeout_s: float = Field(2.0, gt=0.0, le=60.0)

    @model_validator(mode="after")
    def _host(self) -> "RobotConfig":
        if self.kind == "ur5" and not self.host:
            raise ValueError("robot kind 'ur5' needs 'host' (the controller's IP address)")
        if any(not math.isfinite(v) for v in (*self.home_joints_rad, *self.tcp_offset, *self.payload_cog_m)):
            raise ValueError("home_joints_rad, tcp_offset and payload_cog_m must be finite numbers")
        return self


class GripperConfig(_Strict):
    kind: Literal["robotiq-2f85", "emulator", "dryrun"] = "dryrun"
    # serial: RTU on a USB/RS-485 adapter (CB3 arms have no RS-485 at the wrist); rtu-tcp: RTU frames
    # over TCP (an RS-485 gateway, or an e-Series wrist via UR's rs485 URCap, port 54321); tcp: a
    # Modbus TCP gateway (port 502). Never the robot controller's own port 502: that is not the gripper.
    transport: Literal["tcp", "rtu-tcp", "serial"] = "serial"
    host: str | None = None  # tcp / rtu-tcp: required, no fallback to the robot's IP
    port: int | None = Field(None, ge=1, le=65535)  # default 502 (tcp) or 54321 (rtu-tcp)
    serial_port: str | None = None  # e.g. /dev/ttyUSB0
    baudrate: int = Field(115200, gt=0)
    device_id: int = Field(9, ge=1, le=247)  # Robotiq's default Modbus slave id
    timeout_s: float = Field(1.0, gt=0.0, le=30.0)
    calibration: str | None = None  # finger stops file written by `benchbot calibrate-gripper`

    @model_validator(mode="after")
    def _transport(self) -> "GripperConfig":
        if self.kind == "dryrun":
            return self
        if self.transport == "serial" and not self.serial_port:
            raise ValueError("transport 'serial' needs 'serial_port' (e.g. /dev/ttyUSB0)")
        if self.transport != "serial" and not self.host:
            raise ValueError(f"transport '{self.transport}' needs 'host' (the gateway's or e-Series robot's "
                             "address; it never defaults to the robot's IP)")
        return self


class CameraConfig(_Strict):
    # replay | kinect2 | k4a | k4a-playback | mujoco (see benchbot.devices.cameras.CAMERA_KINDS)
    kind: str = "replay"
    serial: str | None = None  # pick one device among several (k4a); recorded in metadata
    recording: str | None = None  # replay: recording folder; k4a-playback: .mkv file
    order: Literal["cycle", "once"] = "cycle"  # replay / k4a-playback
    median_frames: int = Field(1, ge=1, le=100)  # >1: per-pixel median of N frames (MedianCamera)
    depth_mode: Literal["NFOV_UNBINNED", "NFOV_2X2BINNED", "WFOV_UNBINNED", "WFOV_2X2BINNED"] = "NFOV_UNBINNED"
    undistort: bool = True  # remap device frames to a distortion-free pinhole (kinect2, k4a)
    unmirror: bool = True  # kinect2: libfreenect2 frames are mirrored left-right
    warmup_frames: int = Field(5, ge=0, le=300)  # frames dropped after starting a device
    timeout_s: float = Field(2.0, gt=0.0, le=60.0)


class Workspace(_Strict):
    """Box the TCP must stay in, robot base frame (m)."""

    min_m: tuple[float, float, float] = (-0.70, -0.70, 0.0)
    max_m: tuple[float, float, float] = (0.70, 0.70, 0.70)

    @model_validator(mode="after")
    def _ordered(self) -> "Workspace":
        if any(lo >= hi for lo, hi in zip(self.min_m, self.max_m)):
            raise ValueError("every min_m value must be below the matching max_m value")
        return self


class HardwareConfig(_Strict):
    name: str = "workcell"
    robot: RobotConfig = RobotConfig()
    gripper: GripperConfig = GripperConfig()
    camera: CameraConfig = CameraConfig()
    calibration: str | None = None  # camera-to-base calibration YAML (`benchbot calibrate` writes it)
    # where `benchbot calibrate` shows the board to the camera (base frame, m): in view, ~0.3–0.4 m below it
    calibration_center_m: tuple[float, float, float] | None = None
    workspace: Workspace = Workspace()
    # where detectors may look (see docs): automatic table region, polygon_px (image) or polygon_m (base x/y)
    detection_workspace: WorkspaceSpec | None = None
    table_z_m: float = 0.0  # table surface height in the base frame
    # where grasped objects are dropped: UR pose vector [x, y, z, rx, ry, rz], base frame
    drop_pose: tuple[float, float, float, float, float, float] = (0.30, -0.40, 0.25, 3.1416, 0.0, 0.0)

    @model_validator(mode="after")
    def _consistent(self) -> "HardwareConfig":
        lo, hi = self.workspace.min_m, self.workspace.max_m
        if not lo[2] <= self.table_z_m < hi[2]:
            raise ValueError("table_z_m must lie inside the workspace's z range")
        if not all(lo[i] <= self.drop_pose[i] <= hi[i] for i in range(3)):
            raise ValueError("drop_pose position lies outside the workspace box")
        c = self.calibration_center_m
        if c is not None and not all(lo[i] <= c[i] <= hi[i] for i in range(3)):
            raise ValueError("calibration_center_m lies outside the workspace box")
        return self

    @model_validator(mode="after")
    def _gripper_is_not_the_robot(self) -> "HardwareConfig":
        g = self.gripper
        if (g.kind != "dryrun" and g.transport == "tcp" and g.host and g.host == self.robot.host
                and (g.port or 502) == 502):
            raise ValueError("gripper tcp on the robot's IP, port 502, is the UR controller's own Modbus server, "
                             "not the gripper: use serial (USB/RS-485), rtu-tcp port 54321 (e-Series rs485 "
                             "URCap) or a Modbus TCP gateway's own address")
        return self

    @property
    def is_real(self) -> bool:
        """True when any device is physical (then a calibration is mandatory)."""
        return (self.robot.kind == "ur5" or self.gripper.kind == "robotiq-2f85"
                or self.camera.kind in ("kinect2", "k4a"))


def _validation_error(path: Path, err: ValidationError) -> BenchbotError:
    return validation_error(path, err, EXAMPLE)


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())


def load_hardware(path: str | Path) -> HardwareConfig:
    """Load and validate a hardware YAML; relative paths become absolute. Raises BenchbotError."""
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        data = {}
    cfg: HardwareConfig = validate_mapping(HardwareConfig, path, data, EXAMPLE)  # type: ignore[assignment]
    _check_camera_kind(path, cfg.camera.kind)
    base = path.resolve().parent
    camera = cfg.camera.model_copy(update={"recording": _resolve(base, cfg.camera.recording)})
    gripper = cfg.gripper.model_copy(update={"calibration": _resolve(base, cfg.gripper.calibration)})
    return cfg.model_copy(update={"calibration": _resolve(base, cfg.calibration), "camera": camera,
                                  "gripper": gripper})


def _check_camera_kind(path: Path, kind: str) -> None:
    from benchbot.devices.cameras import CAMERA_KINDS

    if kind not in CAMERA_KINDS:
        raise BenchbotError(f"{path}: key 'camera.kind': unknown camera kind '{kind}'",
                            f"use one of: {', '.join(sorted(CAMERA_KINDS))}")


def require_calibration(cfg: HardwareConfig):
    """The camera-to-base calibration for a run on this hardware; raises BenchbotError when it is
    missing or invalid (runs on real hardware must not start without one)."""
    from benchbot.calibration.handeye import load_calibration

    if not cfg.calibration:
        raise BenchbotError("no camera-to-robot calibration in the hardware config",
                            "run `benchbot calibrate --hardware <hw.yaml>` and set 'calibration:' to its output")
    p = Path(cfg.calibration)
    if not p.is_file():
        raise BenchbotError(f"calibration file {p} not found",
                            "run `benchbot calibrate --hardware <hw.yaml>` (or fix the 'calibration:' path)")
    cal = load_calibration(p)
    if cal.camera_serial and cfg.camera.serial and cal.camera_serial != cfg.camera.serial:
        raise BenchbotError(f"calibration {p} was made for camera {cal.camera_serial}, the config uses "
                            f"{cfg.camera.serial}", "run `benchbot calibrate --hardware <hw.yaml>` for this camera")
    return cal


# ---------------------------------------------------------------- the hardware workcell

# robot kind → factory(robot: RobotConfig, gate) -> Arm, or a lazy "module:function" string
ARM_KINDS: dict[str, Any] = {
    "dryrun": "benchbot.config.hardware:_dryrun_arm",
    "ur5": "benchbot.config.hardware:_ur5_arm",
}


def _dryrun_arm(robot: RobotConfig, gate: Any = None) -> Any:
    """A kinematic UR5 twin with the configured home and TCP: its homing is checked like the real one."""
    from benchbot.devices.arms.dryrun import DryRunArm

    return DryRunArm(gate=gate, home_joints_rad=robot.home_joints_rad, tcp_offset=robot.tcp_offset)


def _ur5_arm(robot: RobotConfig, gate: Any = None) -> Any:
    """A UR5 over RTDE (ur-rtde); the safety gate wraps it (GatedArm) in the caller."""
    try:
        from benchbot.devices.arms.ur_rtde import URArm, URConfig
    except ImportError as e:
        raise BenchbotError(f"the UR5 backend is not available in this install ({e})",
                            "update benchbot or use robot kind 'dryrun'") from None

    return URArm(URConfig(host=robot.host or "", tcp_offset=tuple(robot.tcp_offset),
                          home_joints_rad=tuple(robot.home_joints_rad), payload_kg=robot.payload_kg,
                          payload_cog_m=tuple(robot.payload_cog_m), rtde_frequency_hz=robot.rtde_frequency_hz,
                          connect_timeout_s=robot.connect_timeout_s))


def _arm_factory(kind: str) -> Any:
    import importlib

    entry = ARM_KINDS.get(kind)
    if entry is None:
        raise BenchbotError(f"unknown robot kind '{kind}'", f"use one of: {', '.join(sorted(ARM_KINDS))}")
    if callable(entry):
        return entry
    module, _, name = entry.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ModuleNotFoundError, AttributeError):
        raise BenchbotError(f"robot kind '{kind}' is not available in this install ({entry} is missing)",
                            "update benchbot or use robot kind 'dryrun'") from None


class OperatorStage:
    """Real workcell: the operator places each object and judges each attempt (the runner asks)."""

    outcome_source = "operator"

    def place(self, placement: Any) -> None:
        return None

    def judge(self, placement: Any, execution: Any) -> None:
        return None


def table_distance_from(t_base_camera: Any, table_z_m: float) -> float | None:
    """Distance along the optical axis from the camera to the table plane (None if it looks away)."""
    import numpy as np

    from benchbot.perception.table import TablePlane

    t = np.asarray(t_base_camera, float)
    if t[2, 2] >= -1e-6 or t[2, 3] <= table_z_m:  # optical axis not pointing down at the table
        return None
    return TablePlane.from_camera_pose(t, table_z_m).axis_distance_m


def build_hardware_workcell(loaded: Any, run_cfg: Any) -> Any:
    """The workcell of `benchbot run --hardware hw.yaml`: camera, arm (behind the safety gate),
    gripper and an operator stage from the hardware config. Real devices need a calibration.
    Building it only checks the config; `with workcell:` connects the devices."""
    from benchbot.core.types import Pose
    from benchbot.devices.cameras import make_camera
    from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits
    from benchbot.harness.workcell import Workcell, camera_transform_from_table
    from benchbot.perception.table import TablePlane

    if not getattr(run_cfg, "hardware", None):
        raise BenchbotError("no hardware config given", "pass --hardware hw.yaml (see benchbot/config/defaults/hardware.example.yaml)")
    hw = load_hardware(run_cfg.hardware)
    cal = require_calibration(hw) if (hw.is_real or hw.calibration) else None
    if hw.gripper.kind != "dryrun":
        robotiq_config(hw)  # the gripper calibration must load before any device opens
    limits = SafetyLimits.from_protocol(loaded.protocol.motion, workspace_min_m=hw.workspace.min_m,
                                        workspace_max_m=hw.workspace.max_m, table_z_m=hw.table_z_m,
                                        jaw_opening_m=loaded.protocol.gripper.opening_m)
    gate = SafetyGate(limits)
    arm = GatedArm(_arm_factory(hw.robot.kind)(hw.robot, gate=gate), gate)  # not connected yet

    def connect(wc: Any) -> None:
        camera = make_camera(hw)
        wc.on_close(camera.close)
        wc.camera = camera
        if cal is None:  # dry-run bench without a calibration: the camera pose from the table in its first frame
            rec = getattr(camera, "recording", None)
            t_base_camera, plane = camera_transform_from_table(rec.frame(0) if rec is not None else camera.capture())
            t_base_camera[2, 3] += hw.table_z_m
            wc.t_base_camera, wc.table_distance_m, wc.table_prior = t_base_camera, plane.axis_distance_m, plane
        wc.workspace = hardware_workspace(hw, cal.T_base_camera if cal is not None else None, camera.intrinsics,
                                          getattr(camera, "recording", None))
        closers: list[Any] = []
        try:
            wc.gripper, wc.describe["gripper"] = _make_gripper(hw, closers)
        finally:
            for fn in closers:
                wc.on_close(fn)
        wc.on_close(arm.close)
        arm.connect()

    plane = TablePlane.from_camera_pose(cal.T_base_camera, hw.table_z_m) if cal is not None else None
    return Workcell("hardware", limits, connect, arm=arm, stage=OperatorStage(),
                    t_base_camera=cal.T_base_camera if cal is not None else None,
                    table_distance_m=plane.axis_distance_m if plane is not None else None,
                    drop_pose=Pose.from_rotvec(list(hw.drop_pose)), table_prior=plane, table_z_m=hw.table_z_m,
                    describe={"camera": f"{hw.camera.kind}" + (f" (median of {hw.camera.median_frames})"
                                                               if hw.camera.median_frames > 1 else ""),
                              "arm": hw.robot.kind + (f" at {hw.robot.host}" if hw.robot.host else ""),
                              "gripper": hw.gripper.kind,
                              "calibration": str(cal.path) if cal is not None else "none (overhead camera assumed)",
                              "hardware": str(run_cfg.hardware)})


def robotiq_config(cfg: HardwareConfig, retries: int = 2, require_calibration: bool = True) -> Any:
    """The Robotiq client config for this hardware config, with the finger stops of its
    `gripper.calibration` file (required unless `require_calibration` is False: then used if it loads)."""
    from benchbot.devices.grippers.robotiq import RobotiqConfig
    from benchbot.devices.grippers.robotiq_calibration import FIX, load_gripper_calibration

    g = cfg.gripper
    if require_calibration and not g.calibration:
        raise BenchbotError("no gripper calibration in the hardware config (where do the fingers stop?)",
                            f"{FIX} and set gripper.calibration to its output")
    ends: dict[str, int] = {}
    try:
        if g.calibration:
            cal = load_gripper_calibration(g.calibration)
            ends = {"open_position": cal.open_position, "closed_position": cal.closed_position}
    except BenchbotError:
        if require_calibration:
            raise
    return RobotiqConfig(transport=g.transport, host=g.host, port=g.port, serial_port=g.serial_port or "/dev/ttyUSB0",
                         baudrate=g.baudrate, device_id=g.device_id, timeout_s=g.timeout_s, retries=retries, **ends)


def _make_gripper(hw: HardwareConfig, closers: list[Any]) -> tuple[Any, str]:
    from benchbot.devices.grippers.robotiq import RobotiqGripper

    if hw.gripper.kind == "dryrun":  # an in-process 2F-85 emulator: real Modbus, no hardware
        from benchbot.devices.grippers.robotiq_emulator import start_emulator

        emu = start_emulator(time_scale=50.0)
        closers.append(emu.stop)
        gripper = emu.calibrated_client(poll_s=0.01)  # activated, finger stops measured
        closers.append(gripper.close)
        return gripper, f"Robotiq 2F-85 emulator (in-process, {emu.host}:{emu.port})"
    rc = robotiq_config(hw)
    gripper = RobotiqGripper(rc)
    closers.append(gripper.close)
    gripper.activate()
    return gripper, f"Robotiq 2F-85 ({rc.transport} {rc.address})"


def calibrate_gripper_hardware(hw_path: str | Path, out: str | Path | None = None) -> tuple[Any, Path]:
    """`benchbot calibrate-gripper`: measure the configured gripper's finger stops (jaws EMPTY) and
    save them to `out`, else the config's `gripper.calibration`, else beside the hardware YAML."""
    from benchbot.devices.grippers.robotiq import RobotiqGripper
    from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper, save_gripper_calibration

    hw = load_hardware(hw_path)
    if hw.gripper.kind == "dryrun":
        raise BenchbotError("gripper kind 'dryrun' has no finger stops to measure",
                            "set gripper.kind to robotiq-2f85 (or emulator) in the hardware YAML")
    path = Path(out) if out else Path(hw.gripper.calibration) if hw.gripper.calibration else \
        Path(hw_path).parent / "gripper_calibration.yaml"
    if path.exists() and not path.is_file():
        raise BenchbotError(f"{path} exists and is not a file", "pass --out with a file path")
    with RobotiqGripper(robotiq_config(hw, require_calibration=False)) as gripper:
        cal = calibrate_gripper(gripper)
    try:
        return cal, save_gripper_calibration(path, cal)
    except OSError as e:
        raise BenchbotError(f"cannot write {path}: {e.strerror or e} (measured open gPO {cal.open_position}, "
                            f"closed gPO {cal.closed_position})", "pass --out with a writable file path") from None


def make_gated_arm(hw: HardwareConfig, motion: Any = None, **limits_overrides: Any) -> Any:
    """The configured arm behind the safety gate (workspace, table, tilt, speed caps), connected.
    `limits_overrides`: SafetyLimits fields to change (calibration allows a steeper tilt)."""
    from benchbot.config.protocol import Motion
    from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits

    limits = SafetyLimits.from_protocol(motion or Motion(), workspace_min_m=hw.workspace.min_m,
                                        workspace_max_m=hw.workspace.max_m, table_z_m=hw.table_z_m,
                                        **limits_overrides)
    gate = SafetyGate(limits)
    arm = GatedArm(_arm_factory(hw.robot.kind)(hw.robot, gate=gate), gate)
    arm.connect()
    return arm


def record_from_hardware(hw_path: str | Path, out: str | Path, n_frames: int, interval_s: float = 0.0,
                         fmt: str = "png", notes: str = "", camera_factory: Any = None) -> Path:
    """`benchbot record`: capture frames from the configured camera into a recording folder.
    With a calibration, the camera pose and table distance go into intrinsics.yaml too."""
    from benchbot.devices.cameras import make_camera
    from benchbot.devices.cameras.recording import record

    hw = load_hardware(hw_path)
    extra: dict[str, Any] = {}
    if hw.calibration and Path(hw.calibration).is_file():
        from benchbot.calibration.handeye import load_calibration

        t = load_calibration(hw.calibration).T_base_camera
        extra["T_camera_world"] = {"from_frame": "camera", "to_frame": "robot_base",
                                   "translation": [float(v) for v in t[:3, 3]],
                                   "rotation": [[float(v) for v in row] for row in t[:3, :3]]}
        dist = table_distance_from(t, hw.table_z_m)
        if dist:
            extra["table_distance_m"] = round(dist, 4)
    camera = (camera_factory or make_camera)(hw)
    try:
        meta = {"camera_kind": hw.camera.kind, "serial": hw.camera.serial or getattr(camera, "serial", None),
                "source": f"benchbot record --hardware {hw_path}", "notes": notes,
                "median_frames": hw.camera.median_frames}
        return record(camera, out, n_frames, interval_s, meta, fmt=fmt, extra_intrinsics=extra)  # type: ignore[arg-type]
    finally:
        camera.close()

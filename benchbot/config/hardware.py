"""Hardware config: one YAML describing the robot, gripper, camera, calibration and workcell.

Validated at the edge like the protocol (unknown keys, wrong types → one line naming file, key
and fix). Relative paths (calibration, camera recording) are resolved against the YAML's folder.
See benchbot/config/defaults/hardware.example.yaml for a commented example.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from benchbot.config.protocol import _read_yaml, validate_mapping
from benchbot.config.robot import CAMERA_KIND_NAMES, ROBOTIQ_2F85_TCP_OFFSET, UR5_HOME_JOINTS_RAD
from benchbot.config.workspace import WorkspaceSpec
from benchbot.core.errors import BenchbotError
from benchbot.core.paths import DEFAULTS_DIR

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
    def _host(self) -> RobotConfig:
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
    def _transport(self) -> GripperConfig:
        if self.kind == "dryrun":
            return self
        if self.transport == "serial" and not self.serial_port:
            raise ValueError("transport 'serial' needs 'serial_port' (e.g. /dev/ttyUSB0)")
        if self.transport != "serial" and not self.host:
            raise ValueError(f"transport '{self.transport}' needs 'host' (the gateway's or e-Series robot's "
                             "address; it never defaults to the robot's IP)")
        return self


class CameraConfig(_Strict):
    # replay | kinect2 | k4a | k4a-playback | mujoco (benchbot.config.robot.CAMERA_KIND_NAMES)
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
    def _ordered(self) -> Workspace:
        if any(lo >= hi for lo, hi in zip(self.min_m, self.max_m, strict=True)):
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
    def _consistent(self) -> HardwareConfig:
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
    def _gripper_is_not_the_robot(self) -> HardwareConfig:
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
    cfg = validate_mapping(HardwareConfig, path, data, EXAMPLE)
    _check_camera_kind(path, cfg.camera.kind)
    base = path.resolve().parent
    camera = cfg.camera.model_copy(update={"recording": _resolve(base, cfg.camera.recording)})
    gripper = cfg.gripper.model_copy(update={"calibration": _resolve(base, cfg.gripper.calibration)})
    return cfg.model_copy(update={"calibration": _resolve(base, cfg.calibration), "camera": camera,
                                  "gripper": gripper})


def _check_camera_kind(path: Path, kind: str) -> None:
    if kind not in CAMERA_KIND_NAMES:
        raise BenchbotError(f"{path}: key 'camera.kind': unknown camera kind '{kind}'",
                            f"use one of: {', '.join(sorted(CAMERA_KIND_NAMES))}")


# the typed config of each device kind (the factories next to each kind take these)
ArmConfig = RobotConfig

"""A workcell bundles the backends of one run; `build_workcell` is the only place that knows
which concrete backends exist (replay, mujoco, hardware). The runner sees the interfaces only."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import time

import numpy as np

from ..errors import BenchbotError
from ..perception.table import TablePlane, table_plane
from ..interfaces import Arm, Camera, Execution, Gripper, Stage
from ..protocol import LoadedProtocol, Protocol
from ..types import DepthFrame, Grasp, GraspPose, Placement, Pose
from .jawline import measure
from .primitive import execute_grasp, go_home, release
from .safety import GatedArm, SafetyGate, SafetyLimits

# Camera looking straight down: camera x → base x, camera y (image rows) → base −y, optical axis → base −z.
DOWN_LOOKING = np.diag([1.0, -1.0, -1.0])


def overhead_camera_transform(table_distance_m: float, table_z_m: float = 0.0,
                              xy_m: tuple[float, float] = (0.45, 0.0)) -> np.ndarray:
    """T_base_camera of a camera `table_distance_m` above the table, looking straight down."""
    t = np.eye(4)
    t[:3, :3] = DOWN_LOOKING
    t[:3, 3] = [xy_m[0], xy_m[1], table_z_m + table_distance_m]
    return t


def camera_transform_from_table(frame: DepthFrame, xy_m: tuple[float, float] = (0.45, 0.0)
                                ) -> tuple[np.ndarray, TablePlane]:
    """T_base_camera for a fixed camera above a table, from the frame's table plane: base z is the
    table normal, the table is z = 0, base x follows the camera's x. Also returns the plane (its
    distance_m is the camera's height). (Real runs use the hand-eye calibration instead.)"""
    plane = table_plane(frame)
    z = plane.normal  # toward the camera: "up"
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, :3] = np.stack([x, y, z])  # rows: base axes in camera coordinates
    t[:3, 3] = [xy_m[0], xy_m[1], plane.distance_m]
    return t, plane


@dataclass
class Workcell:
    backend: str
    camera: Camera
    arm: Arm  # always a GatedArm: every motion passes the safety gate
    gripper: Gripper
    stage: Stage
    t_base_camera: np.ndarray
    limits: SafetyLimits
    table_distance_m: float | None = None
    drop_pose: Pose | None = None
    table_prior: TablePlane | None = None  # used when a frame's own table fit fails (calibration / first frame)
    workspace: Any = None  # perception.workspace.WorkspaceSpec: where detectors may look (None: automatic)
    table_z_m: float = 0.0
    describe: dict[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep  # the hold; simulated backends pass simulated time
    closers: list[Callable[[], None]] = field(default_factory=list)

    def execute(self, grasp_base: GraspPose, proto: Protocol) -> Execution:
        return execute_grasp(self.arm, self.gripper, grasp_base, proto.motion, proto.gripper.opening_m,
                             force=proto.gripper.force, grip_speed=proto.gripper.speed, sleep=self.sleep)

    def release(self, proto: Protocol) -> None:
        release(self.arm, self.gripper, proto.gripper.opening_m, self.drop_pose, proto.motion)
        go_home(self.arm)

    def safe_state(self) -> None:
        """Right after a fault: stop the arm where it is."""
        self.arm.stop()

    def recover(self) -> None:
        """Make the cell usable again after a fault (on hardware only once the operator agreed):
        unlock a protective stop, re-activate a faulted or deactivated gripper (a reset clears gFLT), go home.
        Raises if that fails, so the run stops with its remaining trials still pending."""
        inner = getattr(self.arm, "arm", self.arm)  # the backend behind the safety gate
        if getattr(inner, "protective_stopped", False) and hasattr(inner, "recover"):
            inner.recover()
        try:
            st = self.gripper.status()
            faulted = st.fault is not None or not st.activated  # a reset/power blip deactivates it
        except Exception:  # lost connection: the client reconnects on the next request
            faulted = True
        if faulted:
            self.gripper.activate()
        go_home(self.arm)

    def close(self) -> None:
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception:  # closing must not mask the run's own outcome
                pass


class ReplayStage:
    """Replays the frame of each placement; judges with the jaw-line model (source `simulated`).

    `prepare` tells the emulated gripper how wide the object between the jaws is, so the real
    Modbus client reads a real gOBJ from the emulator, as it would from a 2F-85.
    """

    outcome_source = "simulated"

    def __init__(self, camera: Any, emulator: Any) -> None:
        self.camera = camera
        self.emulator = emulator
        self._collision: str | None = None
        self._reason = ""

    def place(self, placement: Placement) -> None:
        self.camera.select(placement.placement_id)

    def prepare(self, frame: DepthFrame, grasp: Grasp, opening_m: float) -> None:
        jaw = measure(frame, grasp, opening_m)
        self._collision = jaw.reason if jaw.collision else None
        self._reason = jaw.reason
        self.emulator.set_object_width(None if jaw.collision else jaw.object_width_m)

    def judge(self, placement: Placement, execution: Execution) -> Any:
        from ..interfaces import Judgement

        if self._collision:
            return Judgement("failure", "simulated", "collision", self._collision)
        held = execution.gripper is not None and execution.gripper.object_detected
        if held:
            return Judgement("success", "simulated", None, "jaw-line model: object between the jaws, gripper "
                                                           "reported contact")
        return Judgement("failure", "simulated", "missed", self._reason)


def _replay(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from ..arms.dryrun import DryRunArm
    from ..cameras.recording import ReplayCamera, default_recording_path
    from ..grippers.robotiq import RobotiqConfig, RobotiqGripper
    from ..grippers.robotiq_emulator import start_emulator

    from ..perception.workspace import recording_workspace

    camera = ReplayCamera(cfg.recording or default_recording_path())
    t_base_camera, plane = camera_transform_from_table(camera.recording.frame(0))
    workspace = recording_workspace(camera.recording)
    limits = SafetyLimits.from_protocol(loaded.protocol.motion)
    gate = SafetyGate(limits)
    emulator = start_emulator(time_scale=50.0)
    closers: list[Callable[[], None]] = [emulator.stop, camera.close]
    try:
        gripper = RobotiqGripper(RobotiqConfig(transport="tcp", host=emulator.host, port=emulator.port))
        gripper.activate()
        closers.append(gripper.close)
        arm = GatedArm(DryRunArm(gate=gate), gate)
        arm.connect()
    except BaseException:
        for fn in reversed(closers):
            fn()
        raise
    return Workcell("replay", camera, arm, gripper, ReplayStage(camera, emulator),
                    t_base_camera, limits, table_distance_m=plane.distance_m, table_prior=plane, workspace=workspace,
                    describe={"camera": f"replay of {camera.recording.folder}", "arm": "dry-run (kinematic)",
                              "gripper": f"Robotiq 2F-85 emulator (Modbus TCP {emulator.host}:{emulator.port})"},
                    sleep=lambda _s: None, closers=closers)


def _mujoco(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from ..sim.workcell import make_physics_workcell

    sim = make_physics_workcell(loaded, seed=cfg.seed if cfg.seed is not None else loaded.protocol.seed)
    limits = SafetyLimits.from_protocol(loaded.protocol.motion, workspace_min_m=tuple(sim.workspace_min_m),
                                        workspace_max_m=tuple(sim.workspace_max_m), table_z_m=sim.table_z_m)
    gate = SafetyGate(limits)
    try:
        sim.arm.connect()
        sim.gripper.activate()
    except BaseException:
        sim.close()
        raise
    return Workcell("mujoco", sim.camera, GatedArm(sim.arm, gate), sim.gripper, sim.stage, sim.t_base_camera,
                    limits, table_distance_m=getattr(sim, "table_distance_m", None),
                    table_prior=TablePlane.from_camera_pose(sim.t_base_camera, sim.table_z_m),
                    table_z_m=sim.table_z_m,
                    describe={"camera": "MuJoCo depth render (Kinect v2 intrinsics)", "arm": "MuJoCo",
                              "gripper": "MuJoCo 2F-85"},
                    sleep=getattr(sim, "sleep", time.sleep), closers=[sim.close])


def _hardware(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from ..hardware import build_hardware_workcell

    return build_hardware_workcell(loaded, cfg)


BACKENDS: dict[str, Callable[[LoadedProtocol, Any], Workcell]] = {
    "replay": _replay, "mujoco": _mujoco, "hardware": _hardware}


def build_workcell(backend: str, loaded: LoadedProtocol, cfg: Any) -> Workcell:
    if backend not in BACKENDS:
        raise BenchbotError(f"unknown backend '{backend}'", f"use one of: {', '.join(BACKENDS)}")
    return BACKENDS[backend](loaded, cfg)

"""A workcell bundles the backends of one run; `build_workcell` is the only place that knows
which concrete backends exist (replay, mujoco, hardware). The runner sees the interfaces only.

Building a workcell validates its configuration and touches no device; `with workcell:` connects
the devices (RTDE control, gripper activation, camera stream) and leaving the block closes them."""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from benchbot.config.protocol import LoadedProtocol, Protocol
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Arm, Camera, Execution, Gripper, Stage
from benchbot.core.types import DepthFrame, Grasp, GraspPose, Placement, Pose
from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits
from benchbot.harness.jawline import measure
from benchbot.harness.primitive import execute_grasp, go_home, release
from benchbot.perception.table import TablePlane, table_plane

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


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # closing must not mask the run's own outcome
        pass


@dataclass
class Workcell:
    """`opener(workcell)` runs on enter: it connects the devices, fills in what only a connected
    cell knows (e.g. the gripper, a table distance measured by the camera) and registers each
    device's close with `on_close`. Closing runs them in reverse, also after a failed enter."""

    backend: str
    limits: SafetyLimits
    opener: Callable[["Workcell"], None]
    camera: Camera | None = None
    arm: Arm | None = None  # always a GatedArm: every motion passes the safety gate
    gripper: Gripper | None = None
    stage: Stage | None = None
    t_base_camera: np.ndarray | None = None
    table_distance_m: float | None = None
    drop_pose: Pose | None = None
    table_prior: TablePlane | None = None  # used when a frame's own table fit fails (calibration / first frame)
    workspace: Any = None  # perception.workspace.WorkspaceSpec: where detectors may look (None: automatic)
    table_z_m: float = 0.0
    describe: dict[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep  # the hold; simulated backends pass simulated time
    _closers: ExitStack = field(default_factory=ExitStack, repr=False)
    _connected: bool = field(default=False, repr=False)

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.callback(_quietly, fn)

    def __enter__(self) -> "Workcell":
        if not self._connected:
            try:
                self.opener(self)
            except BaseException:
                self.close()
                raise
            self._connected = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        unlock a protective stop, go home (gated: straight up first), then re-activate a faulted or
        deactivated gripper (a reset clears gFLT) — only up there, as activation moves the jaws and
        may drop what they hold. Raises if that fails, so the run stops with its remaining trials pending."""
        inner = getattr(self.arm, "arm", self.arm)  # the backend behind the safety gate
        if getattr(inner, "protective_stopped", False) and hasattr(inner, "recover"):
            inner.recover()
        go_home(self.arm)
        try:
            st = self.gripper.status()
            faulted = st.fault is not None or not st.activated  # a reset/power blip deactivates it
        except Exception:  # lost connection: the client reconnects on the next request
            faulted = True
        if faulted:
            self.gripper.activate()

    def close(self) -> None:
        self._closers.close()


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
        from benchbot.core.interfaces import Judgement

        if self._collision:
            return Judgement("failure", "simulated", "collision", self._collision)
        held = execution.gripper is not None and execution.gripper.object_detected
        if held:
            return Judgement("success", "simulated", None, "jaw-line model: object between the jaws, gripper "
                                                           "reported contact")
        return Judgement("failure", "simulated", "missed", self._reason)


def _replay(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from benchbot.devices.arms.dryrun import DryRunArm
    from benchbot.devices.cameras.recording import ReplayCamera, default_recording_path

    camera = ReplayCamera(cfg.recording or default_recording_path())  # reads and checks the recording
    from benchbot.perception.workspace import recording_workspace

    t_base_camera, plane = camera_transform_from_table(camera.recording.frame(0))
    limits = SafetyLimits.from_protocol(loaded.protocol.motion, jaw_opening_m=loaded.protocol.gripper.opening_m)
    gate = SafetyGate(limits)
    stage = ReplayStage(camera, None)

    def connect(wc: Workcell) -> None:
        from benchbot.devices.grippers.robotiq_emulator import start_emulator

        emulator = start_emulator(time_scale=50.0)
        wc.on_close(emulator.stop)
        stage.emulator = emulator
        gripper = emulator.calibrated_client(poll_s=0.01)  # activated, finger stops measured
        wc.on_close(gripper.close)
        wc.gripper = gripper
        wc.describe["gripper"] = f"Robotiq 2F-85 emulator (Modbus TCP {emulator.host}:{emulator.port})"
        wc.on_close(wc.arm.close)
        wc.arm.connect()

    wc = Workcell("replay", limits, connect, camera=camera, arm=GatedArm(DryRunArm(gate=gate), gate), stage=stage,
                  t_base_camera=t_base_camera, table_distance_m=plane.distance_m, table_prior=plane,
                  workspace=recording_workspace(camera.recording),
                  describe={"camera": f"replay of {camera.recording.folder}", "arm": "dry-run (kinematic)",
                            "gripper": "Robotiq 2F-85 emulator (Modbus TCP)"},
                  sleep=lambda _s: None)
    wc.on_close(camera.close)
    return wc


def _mujoco(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from benchbot.harness.cells.mujoco import make_physics_workcell

    # cfg.seed is the run's seed (the runner passes a resumed run's stored seed): depth noise follows it
    sim = make_physics_workcell(loaded, seed=cfg.seed if cfg.seed is not None else loaded.protocol.seed)
    try:
        limits = SafetyLimits.from_protocol(loaded.protocol.motion, workspace_min_m=tuple(sim.workspace_min_m),
                                            workspace_max_m=tuple(sim.workspace_max_m), table_z_m=sim.table_z_m,
                                            jaw_opening_m=loaded.protocol.gripper.opening_m)
    except BaseException:
        sim.close()
        raise
    gate = SafetyGate(limits)

    def connect(wc: Workcell) -> None:
        sim.arm.connect()
        sim.gripper.activate()

    wc = Workcell("mujoco", limits, connect, camera=sim.camera, arm=GatedArm(sim.arm, gate), gripper=sim.gripper,
                  stage=sim.stage, t_base_camera=sim.t_base_camera,
                  table_distance_m=getattr(sim, "table_distance_m", None),
                  table_prior=TablePlane.from_camera_pose(sim.t_base_camera, sim.table_z_m), table_z_m=sim.table_z_m,
                  describe={"camera": "MuJoCo depth render (Kinect v2 intrinsics)", "arm": "MuJoCo",
                            "gripper": "MuJoCo 2F-85"},
                  sleep=getattr(sim, "sleep", time.sleep))
    wc.on_close(sim.close)
    return wc


def _hardware(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from benchbot.config.hardware import build_hardware_workcell

    return build_hardware_workcell(loaded, cfg)


BACKENDS: dict[str, Callable[[LoadedProtocol, Any], Workcell]] = {
    "replay": _replay, "mujoco": _mujoco, "hardware": _hardware}


def build_workcell(backend: str, loaded: LoadedProtocol, cfg: Any) -> Workcell:
    """The workcell of a backend, not yet connected: use it as `with build_workcell(...) as wc:`."""
    if backend not in BACKENDS:
        raise BenchbotError(f"unknown backend '{backend}'", f"use one of: {', '.join(BACKENDS)}")
    return BACKENDS[backend](loaded, cfg)

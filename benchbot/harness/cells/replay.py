"""The replay workcell (`benchbot run --sim`): recorded depth frames, the kinematic dry-run arm, the
pymodbus 2F-85 emulator behind the real Modbus client, and the jaw-line model as the judge."""
from __future__ import annotations

from typing import Any

import numpy as np

from benchbot.config.protocol import LoadedProtocol
from benchbot.core.interfaces import Execution, Judgement
from benchbot.core.types import DepthFrame, Grasp, Placement
from benchbot.devices.arms.dryrun import DryRunArm
from benchbot.devices.cameras.recording import default_recording_path
from benchbot.devices.cameras.replay import ReplayCamera
from benchbot.devices.grippers.robotiq_emulator import EmulatedRobotiqGripper, EmulatorHandle
from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits
from benchbot.harness.jawline import measure
from benchbot.harness.workcell import Workcell, connected
from benchbot.perception.table import TablePlane, table_plane
from benchbot.perception.workspace import recording_workspace


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


class ReplayStage:
    """Replays the frame of each placement; judges with the jaw-line model (source `simulated`).

    `prepare` tells the emulated gripper how wide the object between the jaws is, so the real
    Modbus client reads a real gOBJ from the emulator, as it would from a 2F-85.
    """

    outcome_source = "simulated"

    def __init__(self, camera: ReplayCamera, gripper: EmulatedRobotiqGripper) -> None:
        self.camera = camera
        self.gripper = gripper
        self._collision: str | None = None
        self._reason = ""

    @property
    def emulator(self) -> EmulatorHandle | None:
        """The running 2F-85 emulator (None while the cell is closed)."""
        return self.gripper.emulator

    def place(self, placement: Placement) -> None:
        self.camera.select(placement.placement_id)

    def prepare(self, frame: DepthFrame, grasp: Grasp, opening_m: float) -> None:
        jaw = measure(frame, grasp, opening_m)
        self._collision = jaw.reason if jaw.collision else None
        self._reason = jaw.reason
        connected(self.emulator, "gripper emulator").set_object_width(None if jaw.collision else jaw.object_width_m)

    def judge(self, placement: Placement, execution: Execution) -> Judgement:
        if self._collision:
            return Judgement("failure", "simulated", "collision", self._collision)
        held = execution.gripper is not None and execution.gripper.object_detected
        if held:
            return Judgement("success", "simulated", None, "jaw-line model: object between the jaws, gripper "
                                                           "reported contact")
        return Judgement("failure", "simulated", "missed", self._reason)


def build_replay_workcell(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    camera = ReplayCamera(cfg.recording or default_recording_path())  # reads and checks the recording
    t_base_camera, plane = camera_transform_from_table(camera.recording.frame(0))
    limits = SafetyLimits.from_protocol(loaded.protocol.motion, jaw_opening_m=loaded.protocol.gripper.opening_m)
    gate = SafetyGate(limits)
    gripper = EmulatedRobotiqGripper(time_scale=50.0, poll_s=0.01)  # activated, finger stops measured on connect
    arm = GatedArm(DryRunArm(gate=gate), gate)

    def connect(wc: Workcell) -> None:
        wc.attach(gripper)
        wc.describe["gripper"] = f"Robotiq 2F-85 emulator (Modbus TCP {gripper.config.address})"
        wc.attach(arm)

    wc = Workcell("replay", limits, connect, camera=camera, arm=arm,
                  gripper=gripper, stage=ReplayStage(camera, gripper), t_base_camera=t_base_camera,
                  table_prior=plane,
                  workspace=recording_workspace(camera.recording),
                  describe={"camera": f"replay of {camera.recording.folder}", "arm": "dry-run (kinematic)",
                            "gripper": "Robotiq 2F-85 emulator (Modbus TCP)"},
                  sleep=lambda _s: None)
    wc.on_close(camera.close)
    return wc

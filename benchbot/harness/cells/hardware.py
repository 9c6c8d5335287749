"""The hardware workcell (`benchbot run --hardware hw.yaml`): the configured camera, arm (behind
the safety gate) and gripper, with the operator placing objects and judging attempts."""
from __future__ import annotations

from typing import Any

from benchbot.calibration.calfile import require_calibration
from benchbot.config.hardware import load_hardware
from benchbot.config.protocol import LoadedProtocol
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Execution
from benchbot.core.types import DepthFrame, Grasp, Placement, Pose
from benchbot.devices import cameras
from benchbot.devices.grippers import describe_gripper, make_gripper, robotiq_config
from benchbot.devices.safety import SafetyLimits, gated_arm
from benchbot.harness.cells.replay import camera_transform_from_table
from benchbot.harness.workcell import Workcell
from benchbot.perception.table import TablePlane
from benchbot.perception.workspace import hardware_workspace


class OperatorStage:
    """Real workcell: the operator places each object and judges each attempt (the runner asks)."""

    outcome_source = "operator"

    def place(self, placement: Placement) -> None:
        return None

    def prepare(self, frame: DepthFrame, grasp: Grasp, opening_m: float) -> None:
        return None

    def judge(self, placement: Placement, execution: Execution) -> None:
        return None


def build_hardware_workcell(loaded: LoadedProtocol, run_cfg: Any) -> Workcell:
    """The workcell of `benchbot run --hardware hw.yaml`: camera, arm (behind the safety gate),
    gripper and an operator stage from the hardware config. Real devices need a calibration.
    Building it only checks the config; `with workcell:` connects the devices."""
    if not getattr(run_cfg, "hardware", None):
        raise BenchbotError("no hardware config given",
                            "pass --hardware hw.yaml (see benchbot/config/defaults/hardware.example.yaml)")
    hw = load_hardware(run_cfg.hardware)
    cal = require_calibration(hw) if (hw.is_real or hw.calibration) else None
    if hw.gripper.kind != "dryrun":
        robotiq_config(hw.gripper)  # the gripper calibration must load before any device opens
    limits = SafetyLimits.from_protocol(loaded.protocol.motion, workspace_min_m=hw.workspace.min_m,
                                        workspace_max_m=hw.workspace.max_m, table_z_m=hw.table_z_m,
                                        jaw_opening_m=loaded.protocol.gripper.opening_m)
    arm = gated_arm(hw.robot, limits)  # not connected yet

    def connect(wc: Workcell) -> None:
        wc.camera = camera = wc.attach(cameras.make_camera(hw))  # a live camera opens when built
        if cal is None:  # dry-run bench without a calibration: the camera pose from the table in its first frame
            rec = camera.recording
            t_base_camera, plane = camera_transform_from_table(rec.frame(0) if rec is not None else camera.capture())
            t_base_camera[2, 3] += hw.table_z_m
            wc.t_base_camera, wc.table_prior = t_base_camera, plane
        wc.workspace = hardware_workspace(hw, cal.T_base_camera if cal is not None else None, camera.intrinsics,
                                          camera.recording)
        wc.gripper = gripper = wc.attach(make_gripper(hw.gripper))
        if hw.gripper.kind != "dryrun":  # the dry-run emulator comes up activated and calibrated
            gripper.activate()
        wc.describe["gripper"] = describe_gripper(hw.gripper, gripper)
        wc.attach(arm)

    plane = TablePlane.from_camera_pose(cal.T_base_camera, hw.table_z_m) if cal is not None else None
    return Workcell("hardware", limits, connect, arm=arm, stage=OperatorStage(),
                    t_base_camera=cal.T_base_camera if cal is not None else None,
                    drop_pose=Pose.from_rotvec(list(hw.drop_pose)), table_prior=plane, table_z_m=hw.table_z_m,
                    describe={"camera": f"{hw.camera.kind}" + (f" (median of {hw.camera.median_frames})"
                                                               if hw.camera.median_frames > 1 else ""),
                              "arm": hw.robot.kind + (f" at {hw.robot.host}" if hw.robot.host else ""),
                              "gripper": hw.gripper.kind,
                              "calibration": str(cal.path) if cal is not None else "none (overhead camera assumed)",
                              "hardware": str(run_cfg.hardware)})

"""Grippers behind `benchbot.core.interfaces.Gripper`, built from the hardware config's `gripper:`.

kind "robotiq-2f85" (a real 2F-85) and "emulator" (a 2F-85 emulator served elsewhere, e.g.
`benchbot emulate gripper`) are reached over Modbus with the config's transport; kind "dryrun" is
an in-process emulator on loopback (`EmulatedRobotiqGripper`): real Modbus, no hardware.
"""
from __future__ import annotations

from benchbot.config.hardware import GripperConfig
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Gripper
from benchbot.devices.grippers.robotiq import RobotiqConfig, RobotiqGripper


def robotiq_config(cfg: GripperConfig, retries: int = 2, require_calibration: bool = True) -> RobotiqConfig:
    """The Robotiq client config of a `gripper:` config, with the finger stops of its
    `calibration` file (required unless `require_calibration` is False: then used if it loads)."""
    from benchbot.devices.grippers.robotiq_calibration import FIX, load_gripper_calibration

    if require_calibration and not cfg.calibration:
        raise BenchbotError("no gripper calibration in the hardware config (where do the fingers stop?)",
                            f"{FIX} and set gripper.calibration to its output")
    ends: dict[str, int] = {}
    try:
        if cfg.calibration:
            cal = load_gripper_calibration(cfg.calibration)
            ends = {"open_position": cal.open_position, "closed_position": cal.closed_position}
    except BenchbotError:
        if require_calibration:
            raise
    return RobotiqConfig(transport=cfg.transport, host=cfg.host, port=cfg.port,
                         serial_port=cfg.serial_port or "/dev/ttyUSB0", baudrate=cfg.baudrate,
                         device_id=cfg.device_id, timeout_s=cfg.timeout_s, retries=retries, **ends)


def make_gripper(cfg: GripperConfig) -> Gripper:
    """The gripper of a `gripper:` config, not connected (a real one still needs `activate()`
    after connecting; the dry-run emulator comes up activated and calibrated)."""
    if cfg.kind == "dryrun":
        from benchbot.devices.grippers.robotiq_emulator import EmulatedRobotiqGripper

        return EmulatedRobotiqGripper(time_scale=50.0, poll_s=0.01)
    return RobotiqGripper(robotiq_config(cfg))


def describe_gripper(cfg: GripperConfig, gripper: Gripper) -> str:
    """One line for the run's metadata: what the gripper is and where it was reached."""
    address = getattr(getattr(gripper, "config", None), "address", "?")
    if cfg.kind == "dryrun":
        return f"Robotiq 2F-85 emulator (in-process, {address})"
    return f"Robotiq 2F-85 ({cfg.transport} {address})"


__all__ = ["describe_gripper", "make_gripper", "robotiq_config"]

"""Gripper calibration: where this 2F-85's fingers really stop, in register units (gPO).

The manual's ends (0 open, 255 closed) are requests, not positions: a real unit closed on nothing
stops near 0xE3–0xE6. `calibrate_gripper` closes fully with EMPTY jaws, opens fully, and reads gPO
at both stops; the client then maps positions to metres between them and treats a contact at the
closed stop as the fingers meeting, not as an object. `benchbot calibrate-gripper` saves the
result as a small YAML file that the hardware config's `gripper.calibration` points to.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchbot.core.errors import BenchbotError
from benchbot.devices.grippers.robotiq_registers import OBJ_AT_POSITION, OBJ_CONTACT_CLOSING

CALIBRATE_SPEED = 128  # rSP: about 85 mm/s
CALIBRATE_FORCE = 64  # rFR: low, in case a finger is in the way
MIN_CLOSED_STOP = 200  # a "closed" stop below this is an object between the jaws
MAX_OPEN_STOP = 40  # an "open" stop above this is something blocking the fingers
MIN_SPAN = MIN_CLOSED_STOP - MAX_OPEN_STOP  # a file with less is not a measured 2F-85
FIX = "run `benchbot calibrate-gripper --hardware hw.yaml` with empty jaws"


@dataclass(frozen=True)
class GripperCalibration:
    open_position: int  # gPO at full opening
    closed_position: int  # gPO at full closure with empty jaws
    created_at: str  # UTC ISO time
    closed_on_contact: bool = False  # the fingertips met with gOBJ=2 (e.g. custom pads)
    gripper: str = ""  # where it was measured (transport and address)
    path: Path | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    open_position: int = Field(ge=0, le=255)
    closed_position: int = Field(ge=0, le=255)
    created_at: str
    closed_on_contact: bool = False
    gripper: str = ""

    @model_validator(mode="after")
    def _span(self) -> _File:
        if self.closed_position - self.open_position < MIN_SPAN:
            raise ValueError(f"closed_position must exceed open_position by at least {MIN_SPAN}")
        return self


def calibrate_gripper(gripper: Any) -> GripperCalibration:
    """Measure the open and closed stops of an activated-or-not `RobotiqGripper` (jaws EMPTY).
    Ends open. Raises DeviceError/BenchbotError when something is between or against the fingers."""
    st = gripper.read_status()
    if not st.activated:
        gripper.activate()
    opened = gripper.go_to(0, CALIBRATE_SPEED, CALIBRATE_FORCE, "opening fully (calibration)")
    if opened.obj != OBJ_AT_POSITION:
        raise BenchbotError(f"the fingers stopped on something while opening (gPO {opened.position})",
                            "clear whatever blocks the fingers, then calibrate again")
    closed = gripper.go_to(255, CALIBRATE_SPEED, CALIBRATE_FORCE, "closing fully (calibration)")
    if closed.obj not in (OBJ_AT_POSITION, OBJ_CONTACT_CLOSING) or closed.position < MIN_CLOSED_STOP:
        raise BenchbotError(f"the fingers stopped at gPO {closed.position} (gOBJ {closed.obj}) while closing: "
                            "an object is between the jaws", "remove it and calibrate again with empty jaws")
    opened = gripper.go_to(0, CALIBRATE_SPEED, CALIBRATE_FORCE, "opening fully (calibration)")
    if opened.obj != OBJ_AT_POSITION or opened.position > MAX_OPEN_STOP:
        raise BenchbotError(f"the fingers stopped at gPO {opened.position} while opening",
                            "clear whatever blocks the fingers, then calibrate again")
    cfg = getattr(gripper, "config", None)
    where = f"{cfg.transport} {cfg.address} unit {cfg.device_id}" if cfg is not None else ""
    return GripperCalibration(opened.position, closed.position,
                              dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              closed.obj == OBJ_CONTACT_CLOSING, where)


def save_gripper_calibration(path: str | Path, cal: GripperCalibration) -> Path:
    """Write the calibration YAML atomically (temp file, then rename)."""
    data = {"open_position": int(cal.open_position), "closed_position": int(cal.closed_position),
            "created_at": cal.created_at, "closed_on_contact": bool(cal.closed_on_contact), "gripper": cal.gripper}
    _File.model_validate(data)  # never write what we could not read back
    from benchbot.config.protocol import write_yaml_atomic

    return write_yaml_atomic(Path(path), data, "Robotiq 2F-85 finger stops in register units "
                                               "(benchbot calibrate-gripper)")


def load_gripper_calibration(path: str | Path) -> GripperCalibration:
    """Read and validate a gripper calibration YAML; BenchbotError (one line) on any problem."""
    from benchbot.config.protocol import _read_yaml, validation_error

    path = Path(path)
    if not path.is_file():
        raise BenchbotError(f"gripper calibration {path} not found", f"{FIX} (or fix gripper.calibration)")
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise BenchbotError(f"{path}: expected a mapping at the top level", FIX)
    try:
        f = _File.model_validate(data)
    except ValidationError as e:
        raise BenchbotError(validation_error(path, e).message, FIX) from None
    return GripperCalibration(f.open_position, f.closed_position, f.created_at, f.closed_on_contact, f.gripper, path)


def calibrate_gripper_hardware(hw_path: str | Path, out: str | Path | None = None) -> tuple[GripperCalibration, Path]:
    """`benchbot calibrate-gripper`: measure the configured gripper's finger stops (jaws EMPTY) and
    save them to `out`, else the config's `gripper.calibration`, else beside the hardware YAML."""
    from benchbot.config.hardware import load_hardware
    from benchbot.devices.grippers import robotiq_config
    from benchbot.devices.grippers.robotiq import RobotiqGripper

    hw = load_hardware(hw_path)
    if hw.gripper.kind == "dryrun":
        raise BenchbotError("gripper kind 'dryrun' has no finger stops to measure",
                            "set gripper.kind to robotiq-2f85 (or emulator) in the hardware YAML")
    path = Path(out) if out else Path(hw.gripper.calibration) if hw.gripper.calibration else \
        Path(hw_path).parent / "gripper_calibration.yaml"
    if path.exists() and not path.is_file():
        raise BenchbotError(f"{path} exists and is not a file", "pass --out with a file path")
    with RobotiqGripper(robotiq_config(hw.gripper, require_calibration=False)) as gripper:
        cal = calibrate_gripper(gripper)
    try:
        return cal, save_gripper_calibration(path, cal)
    except OSError as e:
        raise BenchbotError(f"cannot write {path}: {e.strerror or e} (measured open gPO {cal.open_position}, "
                            f"closed gPO {cal.closed_position})", "pass --out with a writable file path") from None

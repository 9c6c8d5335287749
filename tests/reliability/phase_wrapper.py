"""Test-only launcher: run the real `benchbot` CLI with one phase function wrapped so that the
test knows when the process is inside that phase, and can kill or signal it there.

    python phase_wrapper.py PHASE NTH HOLD_S -- <benchbot CLI arguments>

On the NTH call of PHASE's function the wrapper writes `@@IN-PHASE <PHASE>@@` to stderr and then
holds HOLD_S seconds *inside* the function (a SIGKILL sent then lands mid-phase; a SIGTERM lets
the phase finish afterwards). PHASE `none` wraps nothing; `a,b` with NTH `2,1` wraps several.
Production code is not changed: the functions are wrapped in this process only.
"""
from __future__ import annotations

import functools
import os
import sys
import time


def _marker(phase: str) -> None:
    sys.stderr.write(f"\n@@IN-PHASE {phase}@@\n")
    sys.stderr.flush()


def _wrap(owner, name: str, phase: str, nth: int, hold_s: float, *, inside=None) -> None:
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] != nth:
            return original(*args, **kwargs)
        if inside is not None:  # the phase decides where "inside" is
            return inside(original, args, kwargs, hold_s)
        _marker(phase)
        time.sleep(hold_s)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _mid_file_write(original, args, kwargs, hold_s):
    """Half of the artifact's bytes are in its .tmp file when the hold starts."""
    path, data = args[0], args[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
    _marker("write-file")
    time.sleep(hold_s)
    return original(*args, **kwargs)


def _mid_transaction(original, args, kwargs, hold_s):
    """The attempt row is inserted, its children and the trial status are not: the transaction is open."""
    _marker("write-db")
    time.sleep(hold_s)
    return original(*args, **kwargs)


def install(phase: str, nth: int, hold_s: float) -> None:
    from benchbot.detectors.centroid import CentroidDetector
    from benchbot.devices.arms.dryrun import DryRunArm
    from benchbot.devices.cameras.replay import ReplayCamera
    from benchbot.devices.grippers.robotiq import RobotiqGripper
    from benchbot.harness import artifacts
    from benchbot.harness.workcell import Workcell
    from benchbot.perception import inpaint
    from benchbot.results.store import Store

    targets = {
        "capture": (ReplayCamera, "capture", None),
        "inpaint": (inpaint, "inpaint_frame", None),
        "detect": (CentroidDetector, "detect", None),
        "motion": (DryRunArm, "move_linear", None),
        "grip": (RobotiqGripper, "grip", None),
        "write-file": (artifacts, "_atomic_write", _mid_file_write),
        "write-db": (Store, "_insert_children", _mid_transaction),
        "activate": (RobotiqGripper, "activate", None),  # start-up: connecting the devices
        "event": (Store, "record_event", None),  # e.g. wind-down: recording that the run was stopped
        "close": (Workcell, "close", None),  # wind-down: closing the devices
    }
    if phase == "none":
        return
    owner, name, inside = targets[phase]
    _wrap(owner, name, phase, nth, hold_s, inside=inside)


def main() -> None:
    phases, nths, hold_s = sys.argv[1].split(","), sys.argv[2].split(","), float(sys.argv[3])
    if sys.argv[4] != "--":
        raise SystemExit("usage: phase_wrapper.py PHASE NTH HOLD_S -- ARGS")
    for phase, nth in zip(phases, nths * len(phases) if len(nths) == 1 else nths, strict=True):
        install(phase, int(nth), hold_s)
    from benchbot import cli

    sys.argv = ["benchbot", *sys.argv[5:]]
    cli.main()


if __name__ == "__main__":
    main()

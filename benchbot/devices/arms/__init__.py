"""Robot arms behind `benchbot.core.interfaces.Arm`, built from the hardware config's `robot:`.

`ARM_KINDS` maps a `robot.kind` to its factory `factory(cfg: ArmConfig, gate) -> Arm`, either a
callable or a lazy "module:function" string (hardware packages load only when that kind is used).
The harness wraps every arm in a `GatedArm` (`benchbot.devices.safety.make_gated_arm`).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from benchbot.config.hardware import ArmConfig
from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Arm

if TYPE_CHECKING:
    from benchbot.devices.safety import SafetyGate

ArmFactory = Callable[[ArmConfig, "SafetyGate | None"], Arm]

ARM_KINDS: dict[str, str | ArmFactory] = {
    "dryrun": "benchbot.devices.arms.dryrun:from_config",
    "ur5": "benchbot.devices.arms.ur_rtde:from_config",
}


def arm_factory(kind: str) -> ArmFactory:
    """The factory of a robot kind; BenchbotError for an unknown or unavailable kind."""
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


def make_arm(cfg: ArmConfig, gate: SafetyGate | None = None) -> Arm:
    """The arm of a `robot:` config, not connected. `gate`: re-checked inside the backend where it
    can (the dry-run twin); the caller still wraps the arm in a `GatedArm`."""
    return arm_factory(cfg.kind)(cfg, gate)


__all__ = ["ARM_KINDS", "arm_factory", "make_arm"]

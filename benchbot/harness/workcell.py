"""A workcell bundles the backends of one run; `build_workcell` is the only place that knows
which concrete backends exist (benchbot.harness.cells: replay, mujoco, hardware). The runner sees
the interfaces only.

Building a workcell validates its configuration and touches no device. `with workcell:` takes the
run lock (when it has one), then connects the devices (RTDE control, gripper activation, camera
stream); leaving the block closes them in reverse order, then releases the lock — one ExitStack,
also after a failed enter."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from benchbot.config.protocol import LoadedProtocol, Protocol
from benchbot.core.errors import BenchbotError
from benchbot.core.geometry import overhead_camera_transform
from benchbot.core.interfaces import Camera, Device, Execution, Gripper, Stage
from benchbot.core.types import GraspPose, Pose
from benchbot.devices.safety import GatedArm, SafetyLimits
from benchbot.harness.lock import RunLock
from benchbot.harness.primitive import execute_grasp, go_home, release
from benchbot.perception.table import TablePlane

__all__ = ["BACKENDS", "Workcell", "build_workcell", "overhead_camera_transform"]

D = TypeVar("D", bound=Device)
T = TypeVar("T")


def connected(part: T | None, name: str) -> T:
    """A part of an entered workcell (devices, camera pose): None means it was used before
    `with workcell:` connected it, or its backend has none."""
    if part is None:
        raise BenchbotError(f"the workcell has no {name}", "use it inside `with workcell:`, which connects it")
    return part


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # closing must not mask the run's own outcome
        pass


@dataclass
class Workcell:
    """`opener(workcell)` runs on enter, after the lock: it connects the devices with `attach`
    (or registers other closers with `on_close`) and fills in what only a connected cell knows
    (e.g. the gripper, a table distance measured by the camera)."""

    backend: str
    limits: SafetyLimits
    opener: Callable[[Workcell], None]
    camera: Camera | None = None
    arm: GatedArm | None = None  # every motion passes the safety gate
    gripper: Gripper | None = None
    stage: Stage | None = None
    t_base_camera: np.ndarray | None = None
    table_prior: TablePlane | None = None  # used when a frame's own table fit fails (calibration / first frame)
    workspace: Any = None  # perception.workspace.WorkspaceSpec: where detectors may look (None: automatic)
    table_z_m: float = 0.0
    drop_pose: Pose | None = None
    describe: dict[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep  # the hold; simulated backends pass simulated time
    lock: RunLock | None = None  # taken first on enter, released last on close
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _connected: bool = field(default=False, repr=False)

    @property
    def table_distance_m(self) -> float | None:
        """Camera to table along the optical axis, from the table prior (None without one)."""
        return self.table_prior.axis_distance_m if self.table_prior is not None else None

    def on_close(self, fn: Callable[[], None]) -> None:
        self._stack.callback(_quietly, fn)

    def attach(self, device: D) -> D:
        """Connect `device` (unless it already is) and close it when the cell closes (also when
        connecting fails half-way)."""
        self.on_close(device.close)
        if not device.is_connected:
            device.connect()
        return device

    def __enter__(self) -> Workcell:
        if not self._connected:
            try:
                if self.lock is not None:
                    self._stack.enter_context(self.lock)
                self.opener(self)
            except BaseException:
                self.close()
                raise
            self._connected = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def execute(self, grasp_base: GraspPose, proto: Protocol) -> Execution:
        return execute_grasp(connected(self.arm, "arm"), connected(self.gripper, "gripper"), grasp_base,
                             proto.motion, proto.gripper.opening_m,
                             force=proto.gripper.force, grip_speed=proto.gripper.speed, sleep=self.sleep)

    def release(self, proto: Protocol) -> None:
        arm = connected(self.arm, "arm")
        release(arm, connected(self.gripper, "gripper"), proto.gripper.opening_m, self.drop_pose, proto.motion)
        go_home(arm)

    def safe_state(self) -> None:
        """Right after a fault: stop the arm where it is."""
        connected(self.arm, "arm").stop()

    def recover(self) -> None:
        """Make the cell usable again after a fault (on hardware only once the operator agreed):
        unlock a protective stop, go home (gated: straight up first), then re-activate a faulted or
        deactivated gripper (a reset clears gFLT) — only up there, as activation moves the jaws and
        may drop what they hold. Raises if that fails, so the run stops with its remaining trials pending."""
        arm, gripper = connected(self.arm, "arm"), connected(self.gripper, "gripper")
        if arm.protective_stopped:
            arm.recover()
        go_home(arm)
        try:
            st = gripper.status()
            faulted = st.fault is not None or not st.activated  # a reset/power blip deactivates it
        except Exception:  # lost connection: the client reconnects on the next request
            faulted = True
        if faulted:
            gripper.activate()


def _replay(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from benchbot.harness.cells.replay import build_replay_workcell

    return build_replay_workcell(loaded, cfg)


def _mujoco(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from benchbot.harness.cells.mujoco import build_mujoco_workcell

    return build_mujoco_workcell(loaded, cfg)


def _hardware(loaded: LoadedProtocol, cfg: Any) -> Workcell:
    from benchbot.harness.cells.hardware import build_hardware_workcell

    return build_hardware_workcell(loaded, cfg)


BACKENDS: dict[str, Callable[[LoadedProtocol, Any], Workcell]] = {
    "replay": _replay, "mujoco": _mujoco, "hardware": _hardware}


def build_workcell(backend: str, loaded: LoadedProtocol, cfg: Any) -> Workcell:
    """The workcell of a backend, not yet connected: use it as `with build_workcell(...) as wc:`."""
    if backend not in BACKENDS:
        raise BenchbotError(f"unknown backend '{backend}'", f"use one of: {', '.join(BACKENDS)}")
    return BACKENDS[backend](loaded, cfg)

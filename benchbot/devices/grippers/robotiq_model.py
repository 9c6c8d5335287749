"""The Robotiq 2F-85's behaviour over (simulated) time, for the emulator: activation, motion
between the finger stops, contact with an object, faults. No I/O; `robotiq_emulator` serves it
over Modbus."""
from __future__ import annotations

from dataclasses import dataclass

from benchbot.core.errors import BenchbotError
from benchbot.devices.grippers.robotiq_registers import (
    MAJOR_FAULTS,
    OBJ_AT_POSITION,
    OBJ_CONTACT_CLOSING,
    OBJ_MOVING,
    STA_ACTIVATING,
    STA_ACTIVE,
    STA_RESET,
    Command,
    PositionMap,
    Status,
)


@dataclass(frozen=True)
class ModelParams:
    """Physical figures of a 2F-85 (manual: 20–150 mm/s, 20–235 N, 85 mm stroke).

    The fingers stop mechanically at gPO `open_stop` (85 mm apart) and `closed_stop` (touching):
    a real unit closed on nothing reads ≈ 0xE3–0xE6, not 255, and reports gOBJ=3 there even
    though rPR asked for 255. `benchbot calibrate-gripper` measures both stops."""

    stroke_m: float = 0.085
    min_speed_mps: float = 0.020
    max_speed_mps: float = 0.150
    activation_s: float = 1.5  # reset → gSTA=3 (the real unit opens/closes to find its limits)
    release_speed_mps: float = 0.020  # automatic release moves slowly
    open_stop: int = 0
    closed_stop: int = 0xE4

    def __post_init__(self) -> None:
        if not 0 <= self.open_stop < self.closed_stop <= 255:
            raise BenchbotError(f"emulator open_stop {self.open_stop} and closed_stop {self.closed_stop} need "
                                "0 ≤ open_stop < closed_stop ≤ 255", "pass register positions in that order")


class GripperModel:
    """What the gripper does over (simulated) time. Not thread-safe: callers hold a lock.

    Times passed in are simulated seconds; positions are register units (open_stop … closed_stop
    for the fingers, 0 … 255 for requests) kept as floats so slow motions are smooth.
    """

    def __init__(self, params: ModelParams = ModelParams(), object_width_m: float | None = None) -> None:
        self.params = params
        self.map = PositionMap(params.stroke_m, params.open_stop, params.closed_stop)  # the true finger gap
        self.cmd = Command()
        self.sta = STA_RESET
        self.obj = OBJ_MOVING
        self.fault = 0
        self.position = float(params.open_stop)
        self.current = 0
        self.t = 0.0
        self.activation_end: float | None = None
        self.moving = False
        self.releasing = False
        self.target = 0.0
        self.rate = 0.0  # register units per second
        self.object_width_m = object_width_m

    # ---- inputs ----
    def set_object_width(self, width_m: float | None, t: float) -> None:
        """An object of this width between the jaws (None: nothing). A held object that gets
        narrower or disappears makes the fingers close on (gOBJ 3 = object lost)."""
        self.advance(t)
        self.object_width_m = width_m
        if self.obj == OBJ_CONTACT_CLOSING and self.cmd.gto and not self.moving:
            contact = self._contact_position()
            if contact is None or contact > self.position + 0.5:
                self._start_motion(self.cmd.position, self.cmd.speed)

    def inject_fault(self, code: int, t: float) -> None:
        """Raise gFLT=code and stop; cleared by a reset (rACT=0), like the real unit."""
        self.advance(t)
        self.fault = int(code) & 0x0F
        if self.fault:
            self.moving = False
            self.current = 0

    def command(self, cmd: Command, t: float) -> None:
        """A new robot-output register set was written."""
        self.advance(t)
        rising = cmd.act and not self.cmd.act
        self.cmd = cmd
        if not cmd.act:  # reset: stop, clear every fault
            self.sta, self.obj, self.fault, self.current = STA_RESET, OBJ_MOVING, 0, 0
            self.moving = self.releasing = False
            self.activation_end = None
            if cmd.gto:
                self.fault = 0x07  # action asked without activation
            return
        if cmd.atr:  # automatic release overrides everything but rACT
            self.sta, self.fault, self.releasing = STA_RESET, 0x0B, True
            target = self.map.open_position if cmd.ard else self.map.closed_position
            self._start_motion(target, None)
            return
        if self.fault in MAJOR_FAULTS or self.fault in (0x08, 0x09):
            return  # needs a reset first
        if rising or self.sta == STA_RESET:
            self.sta, self.obj, self.fault = STA_ACTIVATING, OBJ_MOVING, 0
            self.moving = False
            self.activation_end = t + self.params.activation_s
        if self.sta == STA_ACTIVATING:
            if cmd.gto:
                self.fault = 0x05  # delayed until the activation completes
            return
        if self.fault in (0x05, 0x07):
            self.fault = 0
        if cmd.gto:
            self._start_motion(cmd.position, cmd.speed)
        else:
            self.moving = False
            self.current = 0

    # ---- time ----
    def advance(self, t: float) -> None:
        """Bring the state forward to simulated time t."""
        while self.t < t:
            if self.sta == STA_ACTIVATING and self.activation_end is not None:
                if self.activation_end > t:
                    self.t = t
                    return
                self.t = self.activation_end
                self._finish_activation()
                continue
            if not self.moving:
                self.t = t
                return
            stop_at, contact = self._stop_point()
            needed = abs(stop_at - self.position) / self.rate
            if self.t + needed > t:
                step = self.rate * (t - self.t)
                self.position += step if stop_at > self.position else -step
                self.t = t
                return
            self.t += needed
            self._arrive(stop_at, contact)

    def status(self) -> Status:
        return Status(act=self.cmd.act, gto=self.cmd.gto and self.cmd.act, sta=self.sta, obj=self.obj,
                      fault=self.fault, position_request=self.cmd.position,
                      position=int(min(255, max(0, round(self.position)))), current=self.current)

    # ---- internals ----
    def _finish_activation(self) -> None:
        self.sta, self.activation_end = STA_ACTIVE, None
        self.position = float(self.map.open_position)  # ends open after finding its limits
        self.obj, self.current = OBJ_MOVING, 0
        if self.fault == 0x05:
            self.fault = 0
        if self.cmd.gto:
            self._start_motion(self.cmd.position, self.cmd.speed)

    def _start_motion(self, target: int, speed: int | None) -> None:
        p = self.params
        speed_mps = (p.release_speed_mps if speed is None
                     else p.min_speed_mps + (p.max_speed_mps - p.min_speed_mps) * speed / 255.0)
        span = self.map.closed_position - self.map.open_position
        self.rate = speed_mps / p.stroke_m * span
        self.target = float(min(max(target, self.map.open_position), self.map.closed_position))  # the stops
        self.obj = OBJ_MOVING
        self.current = int(round(10 + 15 * speed_mps / p.max_speed_mps))  # ≈ 100–250 mA moving
        self.moving = True
        stop_at, contact = self._stop_point()
        if abs(stop_at - self.position) < 1e-9:  # already there, or already touching
            self._arrive(stop_at, contact)

    def _contact_position(self) -> float | None:
        if self.object_width_m is None:
            return None
        m = self.map
        frac = min(1.0, max(0.0, self.object_width_m / m.stroke_m))
        return m.closed_position - frac * (m.closed_position - m.open_position)

    def _stop_point(self) -> tuple[float, bool]:
        """Where the current motion ends and whether that is a contact with the object."""
        contact = None if self.releasing else self._contact_position()
        closing = self.target > self.position
        if closing and contact is not None and contact < self.target:
            # an object at least as wide as the opening is touched at once
            return max(contact, self.position), True
        return self.target, False

    def _arrive(self, position: float, contact: bool) -> None:
        self.position = position
        self.moving = False
        if self.releasing:
            self.releasing = False
            self.fault = 0x0F
            self.current = 0
            return
        self.obj = OBJ_CONTACT_CLOSING if contact else OBJ_AT_POSITION
        # Holding an object draws current that grows with the force request; free fingers none.
        self.current = int(round(5 + 40 * self.cmd.force / 255)) if contact else 0

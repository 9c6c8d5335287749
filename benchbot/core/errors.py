"""The one exception type users can fix: the CLI prints it as one line and exits 2."""
import math


class BenchbotError(Exception):
    """A problem the user can fix. `fix` says how; the CLI prints `error: <msg> (fix: <fix>)`."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        text = self.message if not self.fix else f"{self.message} — fix: {self.fix}"
        return " ".join(text.split())


class DeviceError(BenchbotError):
    """A device (camera, arm, gripper) failed; the trial is aborted with this reason."""


class UnsafeMotionError(BenchbotError):
    """A commanded pose or speed violates the motion-safety gate; nothing was sent."""


def missing_extra(package: str, extra: str, system: str = "") -> BenchbotError:
    """Error for a hardware package that is not installed (hardware drivers are optional extras)."""
    fix = f"pip install 'benchbot[{extra}]'"
    if system:
        fix += f" (needs {system})"
    return BenchbotError(f"the '{package}' package is not installed", fix)


def check_number(name: str, value: object, lo: float | None = None, hi: float | None = None, *,
                 integer: bool = False, fix: str = "") -> float:
    """`value` when it is a finite number (an int, not a bool, when `integer`) within [lo, hi];
    otherwise a BenchbotError naming `name` and the accepted range."""
    kind = "an integer" if integer else "a number"
    if lo is not None and hi is not None:
        kind += f" from {lo:g} to {hi:g}"
    elif lo is not None or hi is not None:
        kind += f" ≥ {lo:g}" if lo is not None else f" ≤ {hi:g}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (isinstance(value, int) or not integer) \
            and (isinstance(value, int) or math.isfinite(value)) \
            and (lo is None or value >= lo) and (hi is None or value <= hi):
        return value
    raise BenchbotError(f"{name} = {shown(value)} is not {kind}", fix or f"use {kind}")


def shown(value: object, limit: int = 40) -> str:
    """A short printable form of any value a user gave (huge ints and long text are cut)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"{'-' if value < 0 else ''}<{value.bit_length()}-bit integer>"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def check_loopback(name: str, host: str) -> str:
    """`host` when it is a loopback address (an emulator must never pose as a device on the lab network)."""
    import ipaddress

    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise BenchbotError(f"{name} {shown(host)} is not a loopback address",
                            "serve emulators on 127.0.0.1 (or another 127.x.y.z address)")
    return host

"""The one exception type users can fix: the CLI prints it as one line and exits 2."""


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

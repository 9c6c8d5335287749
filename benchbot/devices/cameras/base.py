"""What the camera drivers share: most open their device when built (the stream must run to read
the intrinsics), so they are connected from then on until closed."""
from __future__ import annotations

from abc import abstractmethod

from benchbot.core.errors import DeviceError
from benchbot.core.interfaces import Camera


class OpenedOnBuild(Camera):
    """A camera its constructor opens. `close` releases it once; `connect` afterwards refuses
    (a closed device stream is not reopened behind the caller's back: build a new camera)."""

    _closed = False

    @property
    def is_connected(self) -> bool:
        return not self._closed

    def connect(self) -> None:
        if self._closed:
            raise DeviceError(f"the {type(self).__name__} was closed",
                              "build a new camera (benchbot.devices.cameras.make_camera)")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    @abstractmethod
    def _release(self) -> None:
        """Stop and close the device (never raises)."""

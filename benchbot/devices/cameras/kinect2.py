"""Kinect v2 (Kinect for Xbox One) through libfreenect2's Python binding `freenect2` (extra `kinect2`).

libfreenect2 delivers 512×424 float32 depth in millimetres (≤ 0, NaN, inf = no data), distorted
by the IR lens and mirrored left-right. The pure functions below turn such arrays, with the
device's factory IR parameters, into an undistorted, un-mirrored `DepthFrame` in metres and the
matching pinhole `Intrinsics`; tests exercise them without a device.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from benchbot.config.hardware import CameraConfig
from benchbot.core.errors import DeviceError, missing_extra
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras.base import OpenedOnBuild

WIDTH, HEIGHT = 512, 424
_FIX_USB = "plug the Kinect v2 into a USB 3 port and check that libfreenect2's Protonect shows depth"
USB_SYSFS = Path("/sys/bus/usb/devices")  # Linux: one folder per USB device
USB_IDS = {("045e", "02d8"), ("045e", "02c4")}  # libfreenect2's Kinect v2 vendor/product ids (and preview)


def kinect2_serials(sysfs: Path | None = None) -> list[str] | None:
    """Serial numbers of the Kinect v2 sensors on the USB bus (the USB serial string that
    libfreenect2 opens devices by), sorted; None where sysfs cannot be read (not Linux)."""
    root = USB_SYSFS if sysfs is None else sysfs
    if not root.is_dir():
        return None
    found = []
    for dev in root.iterdir():
        try:
            ids = ((dev / "idVendor").read_text().strip().lower(), (dev / "idProduct").read_text().strip().lower())
            if ids in USB_IDS:
                found.append((dev / "serial").read_text().strip())
        except OSError:  # interfaces and hubs lack these files; unreadable ones are skipped
            continue
    return sorted(found)


@dataclass(frozen=True)
class IrParams:
    """libfreenect2's IrCameraParams (factory calibration), in the device's mirrored image."""

    fx: float
    fy: float
    cx: float
    cy: float
    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    @staticmethod
    def from_device(params: Any) -> IrParams:
        """From the struct `freenect2.Device().ir_camera_params` returns."""
        return IrParams(*(float(getattr(params, k)) for k in ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "p1", "p2")))

    def camera_matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def dist_coeffs(self) -> np.ndarray:
        return np.array([self.k1, self.k2, self.p1, self.p2, self.k3])  # OpenCV order


def intrinsics_from_ir_params(p: IrParams, unmirror: bool = True, width: int = WIDTH,
                              height: int = HEIGHT) -> Intrinsics:
    """Pinhole intrinsics of the converted frames (undistorted; flipped back when `unmirror`)."""
    cx = (width - 1) - p.cx if unmirror else p.cx
    return Intrinsics(p.fx, p.fy, cx, p.cy, width, height)


@lru_cache(maxsize=4)
def _undistort_maps(p: IrParams, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    k = p.camera_matrix()
    return cv2.initUndistortRectifyMap(k, p.dist_coeffs(), np.eye(3), k, (width, height), cv2.CV_32FC1)


def undistort(image: np.ndarray, p: IrParams, nearest: bool = True) -> np.ndarray:
    """Remap a device image to the distortion-free pinhole with the same fx, fy, cx, cy.
    Depth uses nearest-neighbour so no depth is invented across object edges."""
    import cv2

    h, w = image.shape
    mx, my = _undistort_maps(p, w, h)
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(np.ascontiguousarray(image, np.float32), mx, my, flags, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0)


def depth_frame_from_freenect2(depth_mm: np.ndarray, params: IrParams, captured_at: float = 0.0,
                               undistort_lens: bool = True, unmirror: bool = True,
                               meta: dict[str, Any] | None = None) -> DepthFrame:
    """libfreenect2 depth (mm, mirrored, distorted) → DepthFrame in metres (0 = invalid)."""
    d = np.asarray(depth_mm, np.float32)
    if d.ndim != 2:
        raise DeviceError(f"Kinect v2 depth has shape {d.shape}, expected H×W", _FIX_USB)
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32) / np.float32(1000.0)
    if undistort_lens:
        d = undistort(d, params, nearest=True)
    if unmirror:
        d = d[:, ::-1]
    h, w = d.shape
    return DepthFrame(np.ascontiguousarray(d), intrinsics_from_ir_params(params, unmirror, w, h), captured_at,
                      {"source": "kinect2", **(meta or {})})


def ir_image_from_freenect2(ir: np.ndarray, params: IrParams, undistort_lens: bool = True,
                            unmirror: bool = True) -> np.ndarray:
    """libfreenect2 IR (float 0–65535) → float32 image in the same geometry as the depth frames."""
    img = np.nan_to_num(np.asarray(ir, np.float32))
    if undistort_lens:
        img = undistort(img, params, nearest=False)
    if unmirror:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


class LatestFrames:
    """A freenect2 frame listener keeping the newest frame of each type with its arrival time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: dict[str, tuple[int, float, Any]] = {}  # type name → (count, arrival, frame)

    def __call__(self, frame_type: Any, frame: Any) -> None:
        name = getattr(frame_type, "name", str(frame_type))
        with self._cond:
            count = self._latest.get(name, (0, 0.0, None))[0] + 1
            self._latest[name] = (count, time.perf_counter(), frame)
            self._cond.notify_all()

    def wait(self, name: str, after: float, timeout_s: float, skip: int = 1) -> Any:
        """The first frame of type `name` arriving after `after`, skipping `skip` more (a frame
        arriving just after `after` may have been exposed before it)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            start = None
            while True:
                count, arrival, frame = self._latest.get(name, (0, 0.0, None))
                if frame is not None and arrival > after:
                    if start is None:
                        start = count
                    if count - start >= skip:
                        return frame
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceError(f"no {name} frame from the Kinect v2 within {timeout_s:g} s", _FIX_USB)
                self._cond.wait(left)


def _import_freenect2():
    try:
        import freenect2
    except ImportError:
        raise missing_extra("freenect2", "kinect2", "libfreenect2 built from source") from None
    return freenect2


class Kinect2Camera(OpenedOnBuild):
    """A live Kinect v2. `capture()` waits for a depth frame produced after the call started."""

    kind = "kinect2"

    def __init__(self, serial: str | None = None, timeout_s: float = 2.0, undistort_lens: bool = True,
                 unmirror: bool = True, warmup_frames: int = 5) -> None:
        fn2 = _import_freenect2()
        self._device = _open_device(fn2, serial)
        serials = kinect2_serials() if serial is None else None
        self.serial = serial or (serials[0] if serials and len(serials) == 1 else None)
        self.timeout_s = timeout_s
        self.undistort_lens = undistort_lens
        self.unmirror = unmirror
        self._frames = LatestFrames()
        self._device.start(self._frames)
        self.params = IrParams.from_device(self._device.ir_camera_params)
        self.intrinsics = intrinsics_from_ir_params(self.params, unmirror)
        t = time.perf_counter()
        if warmup_frames:
            self._frames.wait("Depth", t, max(timeout_s, 5.0), skip=warmup_frames)

    def capture(self) -> DepthFrame:
        t0 = time.perf_counter()
        frame = self._frames.wait("Depth", t0, self.timeout_s)
        depth = np.array(frame.to_array(), np.float32, copy=True)
        return depth_frame_from_freenect2(depth, self.params, t0, self.undistort_lens, self.unmirror,
                                          {"sequence": int(frame.sequence), "serial": self.serial})

    def capture_ir(self) -> np.ndarray:
        """IR image (float32, same geometry as depth) for calibration-board detection."""
        frame = self._frames.wait("Ir", time.perf_counter(), self.timeout_s)
        return ir_image_from_freenect2(np.array(frame.to_array(), copy=True), self.params,
                                       self.undistort_lens, self.unmirror)

    def _release(self) -> None:
        try:
            self._device.stop()
            self._device.close()
        except Exception:  # noqa: BLE001 - closing a dead device must not raise
            pass


def _open_device(fn2: Any, serial: str | None) -> Any:
    """The device with this USB serial (libfreenect2's openDevice(serial)), else the default one."""
    if serial is None:
        try:
            return fn2.Device()
        except fn2.NoDeviceError:
            raise DeviceError("no Kinect v2 found", _FIX_USB) from None
    # the binding's Device class opens only the default device; its C API opens one by serial
    ref = fn2.lib.freenect2_open_device_by_serial(fn2._get_freenect2(), serial.encode())
    try:
        return fn2.Device(ref)  # NoDeviceError for a NULL handle
    except fn2.NoDeviceError:
        found = kinect2_serials()
    if found and serial in found:
        raise DeviceError(f"Kinect v2 {serial} is connected but could not be opened",
                          "close other programs using it (Protonect), check the udev rule and USB 3 port") from None
    listed = "unknown (cannot read /sys/bus/usb)" if found is None else ", ".join(found) or "none"
    raise DeviceError(f"no Kinect v2 with serial {serial} is connected; serials found: {listed}",
                      "plug it in, or set camera.serial to one of the serials found") from None


def from_config(cfg: CameraConfig, **_: Any) -> Kinect2Camera:
    return Kinect2Camera(cfg.serial, cfg.timeout_s, cfg.undistort, cfg.unmirror, cfg.warmup_frames)

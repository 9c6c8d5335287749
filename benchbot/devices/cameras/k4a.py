"""Azure Kinect (k4a) live camera and `.mkv` playback through `pyk4a` (extra `k4a`).

The SDK delivers uint16 depth in millimetres (0 = invalid) from a lens with the 8-coefficient
rational (Brown–Conrady) distortion model. The pure functions turn such arrays and the factory
calibration into a distortion-free `DepthFrame` in metres; tests exercise them without a device.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from benchbot.config.hardware import CameraConfig
from benchbot.core.errors import BenchbotError, DeviceError, missing_extra
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras.base import OpenedOnBuild

DEPTH_MODE_SIZES = {  # width, height of the depth image per mode
    "NFOV_UNBINNED": (640, 576), "NFOV_2X2BINNED": (320, 288),
    "WFOV_UNBINNED": (1024, 1024), "WFOV_2X2BINNED": (512, 512),
}
_FIX_USB = "plug the Azure Kinect into USB 3 and its power supply; check that k4aviewer shows depth"


def intrinsics_from_k4a(camera_matrix: np.ndarray, width: int, height: int) -> Intrinsics:
    k = np.asarray(camera_matrix, float)
    return Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))


@lru_cache(maxsize=4)
def _maps(k: tuple[float, ...], dist: tuple[float, ...], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    km = np.array(k, float).reshape(3, 3)
    return cv2.initUndistortRectifyMap(km, np.array(dist, float), np.eye(3), km, (width, height), cv2.CV_32FC1)


def undistort_k4a(image: np.ndarray, camera_matrix: np.ndarray, dist: np.ndarray, nearest: bool = True) -> np.ndarray:
    """Remap to the distortion-free pinhole with the same camera matrix (nearest for depth)."""
    import cv2

    h, w = image.shape
    mx, my = _maps(tuple(np.asarray(camera_matrix, float).ravel()), tuple(np.asarray(dist, float).ravel()), w, h)
    return cv2.remap(np.ascontiguousarray(image, np.float32), mx, my,
                     cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def depth_frame_from_k4a(depth_mm: np.ndarray, camera_matrix: np.ndarray, dist: np.ndarray | None,
                         captured_at: float = 0.0, undistort: bool = True,
                         meta: dict[str, Any] | None = None) -> DepthFrame:
    """k4a depth (uint16 mm, 0 = invalid) → DepthFrame in metres with pinhole intrinsics."""
    d = np.asarray(depth_mm)
    if d.ndim != 2:
        raise DeviceError(f"k4a depth has shape {d.shape}, expected H×W", _FIX_USB)
    m = d.astype(np.float32) / np.float32(1000.0)
    if undistort and dist is not None and np.any(np.asarray(dist) != 0):
        m = undistort_k4a(m, camera_matrix, dist, nearest=True)
    h, w = m.shape
    return DepthFrame(np.ascontiguousarray(m), intrinsics_from_k4a(camera_matrix, w, h), captured_at,
                      {"source": "k4a", **(meta or {})})


def ir_image_from_k4a(ir: np.ndarray, camera_matrix: np.ndarray, dist: np.ndarray | None,
                      undistort: bool = True) -> np.ndarray:
    img = np.asarray(ir, np.float32)
    if undistort and dist is not None and np.any(np.asarray(dist) != 0):
        img = undistort_k4a(img, camera_matrix, dist, nearest=False)
    return img


def _import_pyk4a():
    try:
        import pyk4a
    except ImportError:
        raise missing_extra("pyk4a", "k4a", "the Azure Kinect SDK") from None
    return pyk4a


def _depth_calibration(pyk4a: Any, calibration: Any) -> tuple[np.ndarray, np.ndarray]:
    ct = pyk4a.CalibrationType.DEPTH
    return (np.asarray(calibration.get_camera_matrix(ct), float),
            np.asarray(calibration.get_distortion_coefficients(ct), float))


class K4ACamera(OpenedOnBuild):
    """A live Azure Kinect (depth only). `serial` picks one device among several."""

    kind = "k4a"

    def __init__(self, serial: str | None = None, depth_mode: str = "NFOV_UNBINNED", timeout_s: float = 2.0,
                 undistort: bool = True, warmup_frames: int = 5) -> None:
        pyk4a = _import_pyk4a()
        if depth_mode not in DEPTH_MODE_SIZES:
            raise BenchbotError(f"unknown k4a depth mode '{depth_mode}'", f"use one of {', '.join(DEPTH_MODE_SIZES)}")
        self._pyk4a = pyk4a
        self.timeout_s = timeout_s
        self.undistort = undistort
        fps = pyk4a.FPS.FPS_15 if depth_mode == "WFOV_UNBINNED" else pyk4a.FPS.FPS_30  # SDK limit
        config = pyk4a.Config(color_resolution=pyk4a.ColorResolution.OFF,
                              depth_mode=getattr(pyk4a.DepthMode, depth_mode),
                              camera_fps=fps, synchronized_images_only=False)
        self._device = self._open(pyk4a, config, serial)
        self.serial = getattr(self._device, "serial", None) or serial
        self.camera_matrix, self.dist = _depth_calibration(pyk4a, self._device.calibration)
        w, h = DEPTH_MODE_SIZES[depth_mode]
        self.intrinsics = intrinsics_from_k4a(self.camera_matrix, w, h)
        for _ in range(warmup_frames):
            self._get(max(timeout_s, 5.0))

    @staticmethod
    def _open(pyk4a: Any, config: Any, serial: str | None) -> Any:
        """Try every device: the one with `serial`, else the first that opens and starts."""
        n = pyk4a.connected_device_count()
        if n == 0:
            raise DeviceError("no Azure Kinect found", _FIX_USB)
        tried = []
        for i in range(n):
            dev = pyk4a.PyK4A(config, device_id=i)
            try:
                dev.open()
            except pyk4a.K4AException as e:
                tried.append(f"#{i} cannot open ({e})")
                continue
            found = None
            try:
                found = dev.serial
                if serial and found != serial:
                    tried.append(f"#{i} serial {found}")
                    dev.close()
                    continue
                dev.start()
                return dev
            except pyk4a.K4AException as e:
                tried.append(f"#{i} serial {found} failed ({e})")
                try:
                    dev.close()
                except pyk4a.K4AException:
                    pass
        what = f"with serial {serial}" if serial else "that opens"
        raise DeviceError(f"no Azure Kinect {what} among {n} device(s): {'; '.join(tried)}",
                          "check camera.serial (k4arecorder --list shows serials) and close other programs "
                          "using the camera" if serial else _FIX_USB)

    def _get(self, timeout_s: float) -> Any:
        try:
            cap = self._device.get_capture(timeout=int(timeout_s * 1000))
        except self._pyk4a.K4ATimeoutException:
            raise DeviceError(f"no frame from the Azure Kinect within {timeout_s:g} s", _FIX_USB) from None
        except self._pyk4a.K4AException as e:
            raise DeviceError(f"Azure Kinect capture failed: {e}", _FIX_USB) from None
        return cap

    def _fresh(self, t0: float) -> Any:
        # drop captures queued before t0, then wait for the next one
        while True:
            try:
                self._device.get_capture(timeout=0)
            except self._pyk4a.K4AException:
                break
        while True:
            cap = self._get(self.timeout_s)
            if cap.depth is not None:
                return cap
            if time.perf_counter() - t0 > self.timeout_s:
                raise DeviceError("Azure Kinect captures carry no depth image", _FIX_USB)

    def capture(self) -> DepthFrame:
        t0 = time.perf_counter()
        cap = self._fresh(t0)
        return depth_frame_from_k4a(np.array(cap.depth, copy=True), self.camera_matrix, self.dist, t0, self.undistort,
                                    {"serial": self.serial,
                                     "device_timestamp_usec": getattr(cap, "depth_timestamp_usec", None)})

    def capture_ir(self) -> np.ndarray:
        cap = self._fresh(time.perf_counter())
        if cap.ir is None:
            raise DeviceError("Azure Kinect capture has no IR image", "use a depth mode other than PASSIVE_IR/OFF")
        return ir_image_from_k4a(np.array(cap.ir, copy=True), self.camera_matrix, self.dist, self.undistort)

    def _release(self) -> None:
        try:
            self._device.stop()
        except Exception:  # noqa: BLE001 - closing a dead device must not raise
            pass


class K4APlaybackCamera(OpenedOnBuild):
    """Plays the depth track of an Azure Kinect `.mkv` recording (k4arecorder) as a camera."""

    kind = "k4a-playback"

    def __init__(self, path: str, order: Literal["cycle", "once"] = "cycle", undistort: bool = True) -> None:
        from pathlib import Path

        pyk4a = _import_pyk4a()
        p = Path(path)
        if not p.is_file():
            raise BenchbotError(f"{p}: recording not found", "record one with k4arecorder or fix camera.recording")
        self._pyk4a = pyk4a
        self.path = p
        self.order = order
        self.undistort = undistort
        self._pb = pyk4a.PyK4APlayback(str(p))
        try:
            self._pb.open()
            self.camera_matrix, self.dist = _depth_calibration(pyk4a, self._pb.calibration)
            mode = self._pb.configuration["depth_mode"]
        except pyk4a.K4AException as e:
            raise BenchbotError(f"{p}: cannot open as an Azure Kinect recording ({e})",
                                "check the file with k4aviewer") from None
        name = getattr(mode, "name", str(mode))
        if name not in DEPTH_MODE_SIZES:
            raise BenchbotError(f"{p}: recording has no depth track (depth mode {name})", "record with depth enabled")
        w, h = DEPTH_MODE_SIZES[name]
        self.intrinsics = intrinsics_from_k4a(self.camera_matrix, w, h)
        self.serial = None
        self._index = 0

    def _next_capture(self) -> Any:
        rewound = False
        while True:
            try:
                cap = self._pb.get_next_capture()
            except EOFError:
                if self.order == "once" or rewound:
                    raise DeviceError(f"{self.path}: no depth frames left",
                                      "use order 'cycle' or a longer recording") from None
                self._pb.seek(0)
                rewound = True
                continue
            if cap.depth is not None:
                return cap

    def capture(self) -> DepthFrame:
        t0 = time.perf_counter()
        cap = self._next_capture()
        self._index += 1
        return depth_frame_from_k4a(np.array(cap.depth, copy=True), self.camera_matrix, self.dist, t0, self.undistort,
                                    {"source": "k4a-playback", "recording": str(self.path),
                                     "frame_index": self._index - 1})

    def capture_ir(self) -> np.ndarray:
        cap = self._next_capture()
        if cap.ir is None:
            raise DeviceError(f"{self.path}: recording has no IR track", "record with the IR track enabled")
        return ir_image_from_k4a(np.array(cap.ir, copy=True), self.camera_matrix, self.dist, self.undistort)

    def _release(self) -> None:
        try:
            self._pb.close()
        except Exception:  # noqa: BLE001
            pass


def from_config(cfg: CameraConfig, **_: Any) -> K4ACamera:
    return K4ACamera(cfg.serial, cfg.depth_mode, cfg.timeout_s, cfg.undistort, cfg.warmup_frames)


def playback_from_config(cfg: CameraConfig, **_: Any) -> K4APlaybackCamera:
    if not cfg.recording:
        raise BenchbotError("camera kind 'k4a-playback' needs camera.recording (an .mkv file)",
                            "set camera.recording in the hardware config")
    return K4APlaybackCamera(cfg.recording, cfg.order, cfg.undistort)

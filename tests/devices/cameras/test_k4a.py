import os
import sys
import types

import cv2
import numpy as np
import pytest

from benchbot.config.hardware import CameraConfig
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.devices.cameras.k4a import (
    K4ACamera,
    K4APlaybackCamera,
    depth_frame_from_k4a,
    from_config,
    intrinsics_from_k4a,
    playback_from_config,
)
from benchbot.perception.geometry import deproject

W, H = 640, 576  # NFOV unbinned
K = np.array([[504.2, 0, 322.1], [0, 504.3, 333.7], [0, 0, 1.0]])
# the 8-coefficient rational model the SDK reports (k1, k2, p1, p2, k3, k4, k5, k6)
DIST = np.array([5.2, 3.4, 0.0001, -0.0002, 0.16, 5.5, 5.1, 0.86])
Z0, A = 0.75, 0.3


def native_depth() -> np.ndarray:
    """uint16 mm depth the SDK would deliver for a plane z = Z0 + A·x, through the distorted lens."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    n = cv2.undistortPoints(np.stack([u.ravel(), v.ravel()], 1).reshape(-1, 1, 2), K, DIST).reshape(H, W, 2)
    z = Z0 / (1 - A * n[..., 0])
    d = np.round(z * 1000).astype(np.uint16)
    d[280:290, :] = 0  # a band without data
    return d


def p99_plane_error_mm(frame) -> float:
    d = frame.depth_m
    r, c = np.nonzero(d > 0)
    p = deproject(frame.intrinsics, r, c, d[r, c])
    return float(np.percentile(np.abs(p[:, 2] - (Z0 + A * p[:, 0])), 99) * 1000)


def test_conversion_is_metric_pinhole_and_undistorted():
    f = depth_frame_from_k4a(native_depth(), K, DIST, captured_at=3.0)
    assert f.depth_m.dtype == np.float32 and f.shape == (H, W) and f.captured_at == 3.0
    assert f.intrinsics == intrinsics_from_k4a(K, W, H)
    assert (f.depth_m == 0).any() and f.depth_m.max() < 2.0  # the invalid band stays invalid
    good = p99_plane_error_mm(f)
    bad = p99_plane_error_mm(depth_frame_from_k4a(native_depth(), K, DIST, undistort=False))
    assert good < 2.0 and bad > 4 * good


def test_zero_distortion_is_a_plain_unit_conversion():
    d = native_depth()
    f = depth_frame_from_k4a(d, K, np.zeros(8))
    assert np.array_equal(f.depth_m, d.astype(np.float32) / np.float32(1000))


def test_intrinsics_from_camera_matrix():
    k = intrinsics_from_k4a(K, W, H)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (504.2, 504.3, 322.1, 333.7, 640, 576)


# ---- device and playback classes against a stand-in for the pyk4a API

def _fake_pyk4a(n_devices: int = 1, serials=("000123",), captures: int = 3, fail_open=(), fail_start=()):
    """pyk4a's surface; devices whose index is in `fail_open`/`fail_start` raise K4AException there
    (e.g. a camera held by another program), as the SDK does."""
    mod = types.ModuleType("pyk4a")
    mod.closed = []

    class K4AException(Exception):
        pass

    class K4ATimeoutException(K4AException):
        pass

    class Enum:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    mod.K4AException, mod.K4ATimeoutException = K4AException, K4ATimeoutException
    mod.CalibrationType = Enum(DEPTH=0)
    mod.FPS = Enum(FPS_15=1, FPS_30=2)
    mod.ColorResolution = Enum(OFF=0)
    mod.DepthMode = Enum(NFOV_UNBINNED=types.SimpleNamespace(name="NFOV_UNBINNED"))

    class Config:
        def __init__(self, **kw):
            self.kw = kw

    class Calibration:
        def get_camera_matrix(self, ct):
            return K

        def get_distortion_coefficients(self, ct):
            return DIST

    class Capture:
        def __init__(self, depth):
            self.depth, self.ir, self.depth_timestamp_usec = depth, np.full((H, W), 500, np.uint16), 1

    depth = native_depth()

    class PyK4A:
        def __init__(self, config, device_id=0):
            self.device_id = device_id
            self.opened = False
            self.calibration = Calibration()
            self.queue = 2

        @property
        def serial(self):
            if not self.opened:
                raise K4AException("device not opened")
            return serials[self.device_id]

        def open(self):
            if self.device_id in fail_open:
                raise K4AException("Failed to open device (in use by another process?)")
            self.opened = True

        def start(self):
            if self.device_id in fail_start:
                raise K4AException("Failed to start cameras")

        def close(self):
            mod.closed.append(self.device_id)
            self.opened = False

        def stop(self):
            pass

        def get_capture(self, timeout=-1):
            if timeout == 0:
                if self.queue:
                    self.queue -= 1
                    return Capture(depth)
                raise K4ATimeoutException()
            return Capture(depth)

    class PyK4APlayback:
        def __init__(self, path):
            self.left = captures
            self.calibration = Calibration()
            self.configuration = {"depth_mode": mod.DepthMode.NFOV_UNBINNED}

        def open(self):
            pass

        def close(self):
            pass

        def seek(self, offset):
            self.left = captures

        def get_next_capture(self):
            if self.left == 0:
                raise EOFError()
            self.left -= 1
            return Capture(depth if self.left % 2 == 0 else None) if captures > 1 else Capture(depth)

    mod.Config, mod.PyK4A, mod.PyK4APlayback = Config, PyK4A, PyK4APlayback
    mod.connected_device_count = lambda: n_devices
    return mod


def test_device_class_with_stand_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a())
    cam = from_config(CameraConfig(kind="k4a", warmup_frames=1))
    f = cam.capture()
    assert cam.serial == "000123" and f.meta["serial"] == "000123"
    assert p99_plane_error_mm(f) < 2.0
    assert cam.capture_ir().shape == (H, W)
    cam.close()


def test_device_selection_by_serial(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a(2, ("A1", "B2")))
    assert K4ACamera(serial="B2", warmup_frames=0).serial == "B2"
    with pytest.raises(DeviceError, match="no Azure Kinect with serial C3"):
        K4ACamera(serial="C3")
    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a(0))
    with pytest.raises(DeviceError, match="no Azure Kinect found"):
        K4ACamera()


def test_a_device_that_fails_to_open_does_not_hide_the_others(monkeypatch):
    fake = _fake_pyk4a(3, ("A1", "B2", "C3"), fail_open={0})
    monkeypatch.setitem(sys.modules, "pyk4a", fake)
    assert K4ACamera(warmup_frames=0).serial == "B2"  # the first that opens
    assert K4ACamera(serial="C3", warmup_frames=0).serial == "C3"
    assert 1 in fake.closed  # B2 was opened, checked and closed again


def test_no_matching_device_lists_what_was_tried(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a(3, ("A1", "B2", "C3"), fail_open={0}, fail_start={2}))
    with pytest.raises(DeviceError) as err:
        K4ACamera(serial="Z9")
    msg = err.value.message
    assert msg.startswith("no Azure Kinect with serial Z9 among 3 device(s): ")
    assert "#0 cannot open (Failed to open device" in msg and "#1 serial B2" in msg and "#2 serial C3" in msg
    assert "camera.serial" in err.value.fix and "\n" not in err.value.one_line()
    with pytest.raises(DeviceError, match="#2 serial C3 failed \\(Failed to start cameras\\)"):
        K4ACamera(serial="C3")
    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a(2, ("A1", "B2"), fail_open={0, 1}))
    with pytest.raises(DeviceError, match="no Azure Kinect that opens among 2 device"):
        K4ACamera()


def test_playback_cycles_and_skips_depthless_captures(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a(captures=4))
    mkv = tmp_path / "r.mkv"
    mkv.write_bytes(b"x")
    cam = playback_from_config(CameraConfig(kind="k4a-playback", recording=str(mkv)))
    frames = [cam.capture() for _ in range(5)]  # 2 depth frames per pass → rewinds
    assert [f.meta["frame_index"] for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.shape == (H, W) for f in frames)
    once = K4APlaybackCamera(str(mkv), order="once")
    once.capture(), once.capture()
    with pytest.raises(DeviceError, match="no depth frames left"):
        once.capture()
    with pytest.raises(BenchbotError, match="needs camera.recording"):
        playback_from_config(CameraConfig(kind="k4a-playback"))
    with pytest.raises(BenchbotError, match="not found"):
        K4APlaybackCamera(str(tmp_path / "missing.mkv"))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyk4a", None)
    with pytest.raises(BenchbotError) as e:
        K4ACamera()
    assert "k4a" in e.value.fix and "Azure Kinect SDK" in e.value.fix


def test_real_azure_kinect():
    pytest.importorskip("pyk4a", reason="extra 'k4a' (pyk4a + Azure Kinect SDK) not installed")
    if not os.environ.get("BENCHBOT_DEVICE_TESTS"):
        pytest.skip("set BENCHBOT_DEVICE_TESTS=1 with an Azure Kinect plugged in")
    cam = K4ACamera()
    try:
        assert cam.capture().valid_mask.mean() > 0.5
    finally:
        cam.close()

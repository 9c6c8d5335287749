import sys
import threading
import time
import types

import cv2
import numpy as np
import pytest

from benchbot.config.hardware import CameraConfig
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.devices.cameras.kinect2 import (
    HEIGHT,
    WIDTH,
    IrParams,
    Kinect2Camera,
    LatestFrames,
    depth_frame_from_freenect2,
    from_config,
    intrinsics_from_ir_params,
)
from benchbot.perception.geometry import deproject

# typical factory IR parameters of a Kinect v2 (libfreenect2 reports these per device)
P = IrParams(fx=365.5, fy=365.5, cx=254.9, cy=205.4, k1=0.0905, k2=-0.2683, k3=0.0950, p1=0.0, p2=0.0)
Z0, A, B = 0.8, 0.15, -0.05  # plane z = Z0 + A·x + B·y in the true (un-mirrored) camera frame


def native_frame(params: IrParams = P, with_box: bool = True) -> np.ndarray:
    """What libfreenect2 would deliver (mm, mirrored, lens-distorted) for a tilted plane with a
    10 cm tall box at true x ∈ [0.05, 0.15] m, y ∈ [-0.05, 0.05] m."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    pts = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
    norm = cv2.undistortPoints(pts, params.camera_matrix(), params.dist_coeffs()).reshape(HEIGHT, WIDTH, 2)
    x_true, y = -norm[..., 0], norm[..., 1]  # native images are mirrored
    z = Z0 / (1 - A * x_true - B * y)
    box = (x_true * z > 0.05) & (x_true * z < 0.15) & (np.abs(y * z) < 0.05)
    z = np.where(box & with_box, z - 0.1, z)
    d = (z * 1000).astype(np.float32)
    d[:5, :] = 0.0  # a band of missing data
    d[10, 10] = np.nan
    d[11, 11] = -5.0
    return d


def plane_residual_mm(frame) -> tuple[float, np.ndarray]:
    """99th percentile of |depth − plane| over plane pixels (mm), and the box's points."""
    d = frame.depth_m
    r, c = np.nonzero(d > 0)
    pts = deproject(frame.intrinsics, r, c, d[r, c])
    resid = pts[:, 2] - (Z0 + A * pts[:, 0] + B * pts[:, 1])
    plane = np.abs(resid[resid > -0.05])
    return float(np.percentile(plane, 99) * 1000), pts[resid < -0.05]


def test_conversion_undistorts_and_unmirrors():
    f = depth_frame_from_freenect2(native_frame(), P, captured_at=12.5)
    assert f.depth_m.dtype == np.float32 and f.shape == (HEIGHT, WIDTH) and f.captured_at == 12.5
    assert f.intrinsics == Intrinsics_expected()
    assert np.all(np.isfinite(f.depth_m)) and f.depth_m.min() == 0.0
    med_mm, box_pts = plane_residual_mm(f)
    assert med_mm < 1.0
    # the box is where it really is: on the camera's +x (right) side
    assert len(box_pts) > 200
    assert 0.04 < np.percentile(box_pts[:, 0], 5) and np.percentile(box_pts[:, 0], 95) < 0.16


def Intrinsics_expected():
    return intrinsics_from_ir_params(P, unmirror=True)


def test_skipping_the_undistortion_or_unmirroring_is_visibly_wrong():
    raw = native_frame()
    good, _ = plane_residual_mm(depth_frame_from_freenect2(raw, P))
    distorted, _ = plane_residual_mm(depth_frame_from_freenect2(raw, P, undistort_lens=False))
    assert distorted > 5 * good  # lens distortion bends the plane by mm near the image corners
    # the box stands right of the optical axis; a mirrored frame puts it on the left
    flat = native_frame(with_box=False)
    for unmirror, side in ((True, 1), (False, -1)):
        f = depth_frame_from_freenect2(raw, P, unmirror=unmirror)
        box = depth_frame_from_freenect2(flat, P, unmirror=unmirror).depth_m - f.depth_m > 0.05
        cols = np.nonzero(box)[1]
        assert len(cols) > 200 and np.all(np.sign(cols - f.intrinsics.cx) == side)


def test_intrinsics_flip_principal_point():
    k = intrinsics_from_ir_params(P)
    assert (k.fx, k.fy, k.cy, k.width, k.height) == (P.fx, P.fy, P.cy, 512, 424)
    assert k.cx == pytest.approx(511 - P.cx)
    assert intrinsics_from_ir_params(P, unmirror=False).cx == P.cx


def test_ir_params_from_device_struct():
    s = types.SimpleNamespace(fx=1, fy=2, cx=3, cy=4, k1=5, k2=6, k3=7, p1=8, p2=9)
    assert IrParams.from_device(s) == IrParams(1, 2, 3, 4, 5, 6, 7, 8, 9)


def test_latest_frames_waits_for_a_fresh_frame():
    lf = LatestFrames()
    kind = types.SimpleNamespace(name="Depth")
    lf(kind, "stale")
    t0 = time.perf_counter()

    def feed():
        for i in range(3):
            time.sleep(0.01)
            lf(kind, f"f{i}")

    th = threading.Thread(target=feed)
    th.start()
    got = lf.wait("Depth", t0, timeout_s=5.0, skip=1)
    th.join()
    assert got in ("f1", "f2")  # never the stale one nor the first after t0
    with pytest.raises(DeviceError, match="no Ir frame"):
        lf.wait("Ir", time.perf_counter(), timeout_s=0.05)


# ---- the device class against a stand-in for the freenect2 binding (same API surface)

class _FakeFrame:
    def __init__(self, arr, seq):
        self._arr, self.sequence = arr, seq

    def to_array(self):
        return self._arr


NULL = object()  # the binding's ffi.NULL: what libfreenect2's openDevice returns for no device


def _fake_freenect2(frames: np.ndarray, ir: np.ndarray, present: bool = True, serials=("0123",),
                    busy=()):
    """Same surface as rjw57's freenect2: Device() opens the default device, Device(ref) wraps a
    handle from its cffi `lib` (freenect2_open_device_by_serial), a NULL handle → NoDeviceError."""
    mod = types.ModuleType("freenect2")
    serials = tuple(serials) if present else ()

    class NoDeviceError(RuntimeError):
        pass

    class FrameType:
        Depth = types.SimpleNamespace(name="Depth")
        Ir = types.SimpleNamespace(name="Ir")
        Color = types.SimpleNamespace(name="Color")

    class Device:
        def __init__(self, c_object=None):
            if c_object is None:
                c_object = serials[0] if serials else NULL
            if c_object is NULL:
                raise NoDeviceError()
            self.opened_serial = c_object
            self.ir_camera_params = types.SimpleNamespace(**P.__dict__)
            self.running = False

        def start(self, listener):
            self.running = True

            def run():
                seq = 0
                while self.running:
                    listener(FrameType.Color, _FakeFrame(None, seq))
                    listener(FrameType.Ir, _FakeFrame(ir, seq))
                    listener(FrameType.Depth, _FakeFrame(frames, seq))
                    seq += 1
                    time.sleep(0.005)

            self.thread = threading.Thread(target=run, daemon=True)
            self.thread.start()

        def stop(self):
            self.running = False
            self.thread.join()

        def close(self):
            pass

    def open_by_serial(context, serial: bytes):
        assert context == "freenect2-context"
        s = serial.decode()
        return s if s in serials and s not in busy else NULL

    mod.NoDeviceError, mod.FrameType, mod.Device = NoDeviceError, FrameType, Device
    mod.lib = types.SimpleNamespace(freenect2_open_device_by_serial=open_by_serial)
    mod._get_freenect2 = lambda: "freenect2-context"
    return mod


def test_camera_class_with_stand_in_binding(monkeypatch):
    ir = np.random.default_rng(0).uniform(0, 6000, (HEIGHT, WIDTH)).astype(np.float32)
    monkeypatch.setitem(sys.modules, "freenect2", _fake_freenect2(native_frame(), ir))
    cam = from_config(CameraConfig(kind="kinect2", serial="0123", warmup_frames=2))
    try:
        assert cam.intrinsics == intrinsics_from_ir_params(P)
        t0 = time.perf_counter()
        f = cam.capture()
        assert f.captured_at >= t0 and f.meta["serial"] == "0123" and f.meta["sequence"] >= 2
        assert plane_residual_mm(f)[0] < 1.0
        img = cam.capture_ir()
        assert img.shape == (HEIGHT, WIDTH) and img.dtype == np.float32
    finally:
        cam.close()


def fake_usb(root, devices):
    """A /sys/bus/usb/devices tree: (vendor, product, serial) per device, plus folders without ids."""
    for i, (vendor, product, serial) in enumerate(devices):
        d = root / f"2-{i + 1}"
        d.mkdir(parents=True)
        (d / "idVendor").write_text(vendor + "\n")
        (d / "idProduct").write_text(product + "\n")
        (d / "serial").write_text(serial + "\n")
    (root / "2-1:1.0").mkdir()  # an interface folder: no idVendor
    return root


TWO_KINECTS = [("045e", "02d8", "A1"), ("045e", "02d8", "B2"), ("046d", "c077", "MOUSE")]


def test_usb_serials_come_from_sysfs(tmp_path):
    from benchbot.devices.cameras.kinect2 import kinect2_serials

    root = fake_usb(tmp_path / "usb", [*TWO_KINECTS, ("045e", "02c4", "PREVIEW")])
    assert kinect2_serials(root) == ["A1", "B2", "PREVIEW"]
    assert kinect2_serials(tmp_path / "missing") is None


def test_serial_opens_that_device(monkeypatch, tmp_path):
    import benchbot.devices.cameras.kinect2 as k2

    monkeypatch.setattr(k2, "USB_SYSFS", fake_usb(tmp_path / "usb", TWO_KINECTS))
    monkeypatch.setitem(sys.modules, "freenect2", _fake_freenect2(native_frame(), native_frame(), serials=("A1", "B2")))
    cam = from_config(CameraConfig(kind="kinect2", serial="B2", warmup_frames=1))
    try:
        assert cam._device.opened_serial == "B2" and cam.serial == "B2"
        assert cam.capture().meta["serial"] == "B2"
    finally:
        cam.close()
    first = Kinect2Camera(warmup_frames=0)  # no serial: the default device, serial unknown with two plugged in
    assert first._device.opened_serial == "A1" and first.serial is None
    first.close()


def test_missing_serial_lists_the_serials_found(monkeypatch, tmp_path):
    import benchbot.devices.cameras.kinect2 as k2

    monkeypatch.setattr(k2, "USB_SYSFS", fake_usb(tmp_path / "usb", TWO_KINECTS))
    monkeypatch.setitem(sys.modules, "freenect2", _fake_freenect2(native_frame(), native_frame(), serials=("A1", "B2"),
                                                                  busy=("B2",)))
    with pytest.raises(DeviceError) as err:
        Kinect2Camera(serial="C3")
    assert err.value.message == "no Kinect v2 with serial C3 is connected; serials found: A1, B2"
    assert "camera.serial" in err.value.fix
    with pytest.raises(DeviceError, match="B2 is connected but could not be opened"):
        Kinect2Camera(serial="B2")
    monkeypatch.setattr(k2, "USB_SYSFS", tmp_path / "no-sysfs")
    with pytest.raises(DeviceError, match="serials found: unknown"):
        Kinect2Camera(serial="C3")


def test_single_device_serial_is_recorded(monkeypatch, tmp_path):
    import benchbot.devices.cameras.kinect2 as k2

    monkeypatch.setattr(k2, "USB_SYSFS", fake_usb(tmp_path / "usb", [("045e", "02d8", "ONLY1")]))
    monkeypatch.setitem(sys.modules, "freenect2", _fake_freenect2(native_frame(), native_frame(), serials=("ONLY1",)))
    cam = Kinect2Camera(warmup_frames=0)
    assert cam.serial == "ONLY1"
    cam.close()


def test_no_device_is_a_device_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "freenect2", _fake_freenect2(native_frame(), native_frame(), present=False))
    with pytest.raises(DeviceError, match="no Kinect v2 found"):
        Kinect2Camera()


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "freenect2", None)  # import fails
    with pytest.raises(BenchbotError) as e:
        Kinect2Camera()
    assert "kinect2" in e.value.fix and "libfreenect2" in e.value.fix


def test_real_kinect2():
    pytest.importorskip("freenect2", reason="extra 'kinect2' (freenect2 + libfreenect2) not installed")
    import os

    if not os.environ.get("BENCHBOT_DEVICE_TESTS"):
        pytest.skip("set BENCHBOT_DEVICE_TESTS=1 with a Kinect v2 plugged in")
    cam = Kinect2Camera()
    try:
        f = cam.capture()
        assert f.shape == (HEIGHT, WIDTH) and f.valid_mask.mean() > 0.5
    finally:
        cam.close()

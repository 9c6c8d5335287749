import numpy as np
import pytest
from PIL import Image

from benchbot.config.hardware import CameraConfig, HardwareConfig
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras import CAMERA_KINDS, make_camera, register_camera_kind
from benchbot.devices.cameras.averaging import MedianCamera, median_depth
from benchbot.devices.cameras.recording import read_recording, record, write_recording
from benchbot.devices.cameras.replay import ReplayCamera


def test_median_ignores_invalid_pixels_and_keeps_persistent_holes():
    a = np.array([[1.0, 0.0, 0.0], [np.nan, 2.0, 1.0]], np.float32)
    b = np.array([[3.0, 0.0, 5.0], [1.0, 2.0, 1.2]], np.float32)
    c = np.array([[2.0, 0.0, 0.0], [1.2, np.nan, 1.4]], np.float32)
    m = median_depth([a, b, c])
    assert m[0, 0] == 2.0
    assert m[0, 1] == 0.0 and m[0, 2] == 0.0  # invalid in ≥ half the frames → stays a hole
    assert m[1, 0] == pytest.approx(1.1) and m[1, 1] == 2.0 and m[1, 2] == pytest.approx(1.2)
    with pytest.raises(BenchbotError):
        median_depth([])


def _raw_frames(shared_data, scene: str) -> list[np.ndarray]:
    src = shared_data / "depth_frames" / "gqcnn_primesense_raw_2017"
    return [np.array(Image.open(src / f"{scene}_depth_{i}_mm.png")).astype(np.float32) / 1000 for i in range(10)]


def test_median_of_real_repeated_captures_is_closer_to_a_held_out_frame(shared_data):
    frames = _raw_frames(shared_data, "multiple_objects")
    med = median_depth(frames[:9])
    held = frames[9]

    def mad(x, y):
        ok = (x > 0) & (y > 0)
        return float(np.mean(np.abs(x[ok] - y[ok])))

    assert mad(med, held) < 0.8 * mad(frames[0], held)  # less noise than a single frame
    assert (med == 0).mean() <= (frames[0] == 0).mean() + 0.01  # and no more holes


class Counting:
    def __init__(self):
        self.intrinsics = Intrinsics(10, 10, 1.5, 1.5, 4, 4)
        self.n = 0
        self.closed = False
        self.serial = "S"

    def capture(self):
        self.n += 1
        return DepthFrame(np.full((4, 4), 0.5 + 0.01 * self.n, np.float32), self.intrinsics, float(self.n))

    def close(self):
        self.closed = True


def test_median_camera_wraps_any_camera():
    inner = Counting()
    cam = MedianCamera(inner, 5)
    f = cam.capture()
    assert inner.n == 5 and f.captured_at == 1.0 and f.meta["median_of"] == 5
    assert np.allclose(f.depth_m, 0.53)
    assert cam.serial == "S" and cam.intrinsics == inner.intrinsics
    cam.close()
    assert inner.closed
    with pytest.raises(BenchbotError):
        MedianCamera(inner, 0)


def test_factory_builds_replay_and_median(tmp_path):
    cam = make_camera(HardwareConfig())
    assert isinstance(cam, ReplayCamera) and len(cam) == 20
    rec = write_recording(tmp_path / "r", [DepthFrame(np.full((4, 4), 0.7, np.float32),
                                                       Intrinsics(10, 10, 1.5, 1.5, 4, 4))] * 3)
    cam = make_camera(CameraConfig(kind="replay", recording=str(rec), order="once"))
    for _ in range(3):
        cam.capture()
    with pytest.raises(DeviceError):
        cam.capture()  # the 3 frames are used up
    with pytest.raises(BenchbotError, match="mix recorded frames"):
        make_camera(CameraConfig(kind="replay", median_frames=3))
    register_camera_kind("live-test", lambda cfg, **ctx: Counting())
    try:
        med = make_camera(CameraConfig(kind="live-test", median_frames=4))
        assert isinstance(med, MedianCamera) and med.capture().meta["median_of"] == 4
    finally:
        CAMERA_KINDS.pop("live-test")


def test_factory_errors_and_registry_hook():
    with pytest.raises(BenchbotError, match="unknown camera kind 'webcam'"):
        make_camera(CameraConfig(kind="webcam"))
    register_camera_kind("ghost", "benchbot.devices.cameras.ghost_backend:from_config")
    try:
        with pytest.raises(BenchbotError, match="not available"):
            make_camera(CameraConfig(kind="ghost"))
        seen = {}
        register_camera_kind("ghost", lambda cfg, **ctx: seen.update(ctx) or Counting())
        assert isinstance(make_camera(CameraConfig(kind="ghost"), sim="S"), Counting) and seen == {"sim": "S"}
    finally:
        CAMERA_KINDS.pop("ghost")
    assert {"replay", "kinect2", "k4a", "k4a-playback", "mujoco"} <= set(CAMERA_KINDS)


def test_record_from_a_camera_is_atomic(tmp_path):
    out = record(Counting(), tmp_path / "rec", n_frames=3, interval_s=0.5, sleep=lambda s: None,
                 metadata={"notes": "bench"})
    rec = read_recording(out)
    assert len(rec) == 3 and rec.metadata.serial == "S" and rec.metadata.notes == "bench"
    assert rec.metadata.camera_kind == "Counting"

    class Dies(Counting):
        def capture(self):
            if self.n == 2:
                raise DeviceError("USB unplugged", "replug")
            return super().capture()

    with pytest.raises(DeviceError):
        record(Dies(), tmp_path / "broken", n_frames=5)
    assert not (tmp_path / "broken").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]
    with pytest.raises(BenchbotError):
        record(Counting(), tmp_path / "x", n_frames=0)

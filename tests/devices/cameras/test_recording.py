import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.interfaces import Camera
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras.recording import (
    default_recording_path,
    load_depth_file,
    read_recording,
    write_recording,
)
from benchbot.devices.cameras.replay import ReplayCamera

K = Intrinsics(fx=100.0, fy=100.0, cx=15.5, cy=11.5, width=32, height=24)


def _frames(n: int, seed: int = 0) -> list[DepthFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        d = (0.7 + rng.uniform(-0.05, 0.05, (24, 32))).astype(np.float32)
        d[0, :5] = 0.0  # a hole
        out.append(DepthFrame(d, K))
    return out


def test_default_recording_is_valid_and_small():
    rec = read_recording(default_recording_path())
    assert len(rec) == 20
    assert rec.intrinsics == Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)
    assert rec.table_distance_m == pytest.approx(0.663)
    assert rec.T_camera_world is not None and rec.T_camera_world.shape == (4, 4)
    d = rec.depths[0]
    assert d.dtype == np.float32 and d.shape == (480, 640)
    zero = (d == 0).mean()
    assert 0.05 < zero < 0.3  # raw frames keep their holes
    assert abs(np.median(d[d > 0]) - 0.66) < 0.05
    size = sum(p.stat().st_size for p in default_recording_path().rglob("*") if p.is_file())
    assert size < 5e6
    assert "Apache" in (default_recording_path().parent / "PROVENANCE.md").read_text()


def test_default_recording_matches_shared_source(shared_data):
    src = shared_data / "depth_frames" / "gqcnn_primesense_raw_2017"
    rec = read_recording(default_recording_path())
    raw = np.array(Image.open(src / "multiple_objects_depth_3_mm.png")).astype(np.float32) / np.float32(1000)
    assert np.array_equal(rec.depths[13], raw)


def test_shipped_kinect2_frame_reads_with_trailing_channel():
    rec = read_recording(default_recording_path().parent / "kinect2_overhead")
    assert rec.depths[0].shape == (424, 512)
    assert rec.intrinsics.width == 512


@pytest.mark.parametrize("fmt", ["png", "npy"])
def test_write_read_roundtrip(tmp_path, fmt):
    frames = _frames(3)
    out = write_recording(tmp_path / "rec", frames, {"camera_kind": "test", "serial": "X1"}, fmt=fmt,
                          extra_intrinsics={"table_distance_m": 0.7})
    rec = read_recording(out)
    assert len(rec) == 3 and rec.intrinsics == K and rec.table_distance_m == 0.7
    assert rec.metadata.camera_kind == "test" and rec.metadata.serial == "X1" and rec.metadata.created_at
    tol = 0.0005 + 1e-6 if fmt == "png" else 0.0
    for f, d in zip(frames, rec.depths, strict=True):
        assert np.abs(f.depth_m - d).max() <= tol
        assert d[0, 0] == 0.0
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"0000{i}.{fmt}" for i in range(3)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folder gone


def test_write_is_atomic_on_error(tmp_path):
    def frames():
        yield from _frames(2)
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError):
        write_recording(tmp_path / "rec", frames())
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_empty_frames_with_a_clear_message(tmp_path):
    f = _frames(2)
    f[1] = DepthFrame(np.zeros((24, 32), np.float32), K)
    with pytest.raises(BenchbotError, match="frame 1 from the camera has no valid depth"):
        write_recording(tmp_path / "a", f)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_mixed_intrinsics_and_existing_folder(tmp_path):
    f = _frames(2)
    f[1] = DepthFrame(f[1].depth_m, Intrinsics(99.0, 100.0, 15.5, 11.5, 32, 24))
    with pytest.raises(BenchbotError, match="different intrinsics"):
        write_recording(tmp_path / "a", f)
    assert list(tmp_path.iterdir()) == []
    write_recording(tmp_path / "b", _frames(1))
    with pytest.raises(BenchbotError, match="already exists"):
        write_recording(tmp_path / "b", _frames(1))
    write_recording(tmp_path / "b", _frames(2), overwrite=True)
    assert len(read_recording(tmp_path / "b")) == 2


@pytest.fixture
def rec_dir(tmp_path) -> Path:
    return write_recording(tmp_path / "rec", _frames(3), fmt="npy")


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = e.value.one_line()
    assert "\n" not in text and e.value.fix
    return text


def test_missing_intrinsics(rec_dir):
    (rec_dir / "intrinsics.yaml").unlink()
    with pytest.raises(BenchbotError) as e:
        read_recording(rec_dir)
    assert "intrinsics.yaml" in _one_line(e)


def test_bad_intrinsics_keys(rec_dir):
    info = yaml.safe_load((rec_dir / "intrinsics.yaml").read_text())
    (rec_dir / "intrinsics.yaml").write_text(yaml.safe_dump({**info, "fxx": 3}))
    with pytest.raises(BenchbotError, match="unknown key 'fxx'"):
        read_recording(rec_dir)
    del info["fy"]
    (rec_dir / "intrinsics.yaml").write_text(yaml.safe_dump(info))
    with pytest.raises(BenchbotError, match="missing key 'fy'"):
        read_recording(rec_dir)


def test_wrong_dtype(rec_dir):
    np.save(rec_dir / "frames" / "00001.npy", np.full((24, 32), 700, np.uint16))
    with pytest.raises(BenchbotError) as e:
        read_recording(rec_dir)
    assert "00001.npy" in _one_line(e) and "dtype uint16" in e.value.message


def test_wrong_shape(rec_dir):
    np.save(rec_dir / "frames" / "00001.npy", np.full((20, 32), 0.7, np.float32))
    with pytest.raises(BenchbotError) as e:
        read_recording(rec_dir)
    assert "00001.npy" in _one_line(e) and "intrinsics" in e.value.message


@pytest.mark.parametrize("fill", [0.0, np.nan])
def test_empty_frames(rec_dir, fill):
    np.save(rec_dir / "frames" / "00002.npy", np.full((24, 32), fill, np.float32))
    with pytest.raises(BenchbotError) as e:
        read_recording(rec_dir)
    assert "00002.npy" in _one_line(e) and "no valid depth" in e.value.message


def test_negative_and_infinite_depths_are_invalid_pixels(rec_dir):
    """A depth sensor never measures behind itself: negative (and ±inf) depths are holes (0), like
    NaN, so no detector or inpainting ever sees them."""
    d = np.full((24, 32), 0.7, np.float32)
    d[0, :4], d[1, :2], d[2, 0] = -0.7, np.inf, -np.inf
    np.save(rec_dir / "frames" / "00001.npy", d)
    got = read_recording(rec_dir).depths[1]
    assert (got >= 0).all() and np.isfinite(got).all()
    assert (got[0, :4] == 0).all() and (got[1, :2] == 0).all() and got[2, 0] == 0 and got[5, 5] == np.float32(0.7)
    np.save(rec_dir / "frames" / "00001.npy", np.full((24, 32), -0.7, np.float32))
    with pytest.raises(BenchbotError, match="no valid depth"):
        read_recording(rec_dir)


def test_intrinsics_must_be_finite_and_inside_the_image(rec_dir):
    info = yaml.safe_load((rec_dir / "intrinsics.yaml").read_text())
    for key, value, words in (("cx", float("nan"), "finite"), ("fx", float("inf"), "fx"), ("fy", 0.0, "fy"),
                              ("cy", 1e6, "principal point"), ("width", 0, "width")):
        (rec_dir / "intrinsics.yaml").write_text(yaml.safe_dump({**info, key: value}))
        with pytest.raises(BenchbotError, match=words):
            read_recording(rec_dir)


def test_millimetres_in_npy_are_caught(rec_dir):
    np.save(rec_dir / "frames" / "00000.npy", np.full((24, 32), 700.0, np.float32))
    with pytest.raises(BenchbotError, match="wrong units"):
        read_recording(rec_dir)


def test_truncated_npy(rec_dir):
    p = rec_dir / "frames" / "00001.npy"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(BenchbotError) as e:
        read_recording(rec_dir)
    assert "00001.npy" in _one_line(e) and "truncated" in e.value.message


def test_truncated_png(tmp_path):
    out = write_recording(tmp_path / "rec", _frames(2), fmt="png")
    p = out / "frames" / "00001.png"
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(BenchbotError) as e:
        read_recording(out)
    assert "00001.png" in _one_line(e)


def test_png_must_be_16_bit(tmp_path):
    out = write_recording(tmp_path / "rec", _frames(1), fmt="png")
    Image.fromarray(np.full((24, 32), 70, np.uint8)).save(out / "frames" / "00000.png")
    with pytest.raises(BenchbotError, match="16-bit"):
        load_depth_file(out / "frames" / "00000.png")


def test_duplicate_stem_and_no_frames(rec_dir):
    Image.fromarray(np.full((24, 32), 700, np.uint16)).save(rec_dir / "frames" / "00000.png")
    with pytest.raises(BenchbotError, match="both .npy and .png"):
        read_recording(rec_dir)
    shutil.rmtree(rec_dir / "frames")
    (rec_dir / "frames").mkdir()
    with pytest.raises(BenchbotError, match="no .npy or .png frames"):
        read_recording(rec_dir)


def test_bad_metadata(rec_dir):
    (rec_dir / "metadata.json").write_text("{not json")
    with pytest.raises(BenchbotError, match="metadata.json"):
        read_recording(rec_dir)
    (rec_dir / "metadata.json").write_text(json.dumps({"serial": 5}))
    with pytest.raises(BenchbotError, match="serial"):
        read_recording(rec_dir)


def test_missing_folder(tmp_path):
    with pytest.raises(BenchbotError, match="not found"):
        read_recording(tmp_path / "nope")


def test_replay_cycles_and_stamps_time(rec_dir):
    import time

    cam = ReplayCamera(rec_dir)
    assert isinstance(cam, Camera) and cam.intrinsics == K
    before = time.perf_counter()
    idx = [cam.capture().meta["frame_index"] for _ in range(7)]
    assert idx == [0, 1, 2, 0, 1, 2, 0]
    f = cam.capture()
    assert before <= f.captured_at <= time.perf_counter()
    # frames are copies: a detector scribbling on one cannot change the recording
    f.depth_m[:] = 0
    assert cam.recording.depths[f.meta["frame_index"]].any()


def test_replay_once_runs_out(rec_dir):
    cam = ReplayCamera(rec_dir, order="once")
    for _ in range(3):
        cam.capture()
    with pytest.raises(DeviceError, match="no frames left"):
        cam.capture()


def test_replay_select_is_stable_per_placement(rec_dir):
    a, b = ReplayCamera(rec_dir), ReplayCamera(rec_dir)
    for pid in ["mug-0", "mug-1", "clamp-4", "x"]:
        ia, ib = a.select(pid), b.select(pid)
        assert ia == ib
        fa, fb = a.capture(), b.capture()
        assert fa.meta["frame_index"] == ia and np.array_equal(fa.depth_m, fb.depth_m)
    assert a.select(7) == 1
    assert a.capture().meta["frame_index"] == 1
    assert len({a.select(f"p{i}") for i in range(30)}) == 3  # hashing spreads placements


def test_replay_default_and_bad_order():
    cam = ReplayCamera()
    assert cam.capture().shape == (480, 640)
    with pytest.raises(BenchbotError, match="order"):
        ReplayCamera(order="shuffle")  # type: ignore[arg-type]

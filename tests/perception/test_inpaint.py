"""Inpainting: golden match against autolab_core's DepthImage.inpaint, and its invariants."""
import numpy as np
import pytest
from PIL import Image

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.perception.inpaint import _downscale_nearest, _scaled_shape, inpaint, inpaint_frame

RAW = "depth_frames/gqcnn_primesense_raw_2017/bar_clamp_depth_0_mm.png"
REF = "dexnet_sample/reference_outputs/inpaint_bar_clamp_depth_0_rescale0.5.npy"
INTR = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


def _raw_m(shared_data):
    return (np.array(Image.open(shared_data / RAW)) / 1000.0).astype(np.float32)


def test_matches_autolab_core_reference(shared_data):
    raw = _raw_m(shared_data)
    ref = np.load(shared_data / REF)
    assert (raw == 0).mean() > 0.1  # the frame really has holes
    out = inpaint(raw, 0.5)
    assert out.dtype == np.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    assert np.array_equal(out, ref)  # reached: bit-exact


def test_valid_pixels_untouched_and_no_holes_left(shared_data):
    raw = _raw_m(shared_data)
    raw[10:20, 30:40] = np.nan
    out = inpaint(raw)
    valid = np.isfinite(raw) & (raw > 0)
    assert np.array_equal(out[valid], raw[valid])
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    assert out[~valid].min() >= raw[valid].min() - 1e-6 and out[~valid].max() <= raw[valid].max() + 1e-6


def test_constant_image_fills_with_the_constant():
    d = np.full((60, 80), 0.7, np.float32)
    d[20:40, 10:70] = 0
    d[0, :] = np.nan
    out = inpaint(d, 0.5)
    np.testing.assert_allclose(out, 0.7, atol=1e-6)


def test_single_valid_pixel_survives_downscale():
    d = np.zeros((40, 40), np.float32)
    d[0, 0] = 0.5  # dropped by the ×0.5 nearest downscale (which samples odd pixels)
    out = inpaint(d, 0.5)
    np.testing.assert_allclose(out, 0.5)


def test_all_invalid_raises():
    with pytest.raises(BenchbotError):
        inpaint(np.zeros((10, 10), np.float32))
    with pytest.raises(BenchbotError):
        inpaint(np.full((10, 10), np.nan))


@pytest.mark.parametrize("factor", [0.25, 0.5, 1 / 3, 0.7])
def test_nearest_downscale_matches_skimage(factor):
    skt = pytest.importorskip("skimage.transform")
    x = np.random.default_rng(0).random((48, 64))
    shape = _scaled_shape(x.shape, factor)
    ref = skt.resize(x, shape, order=0, anti_aliasing=False, mode="constant")
    assert np.array_equal(_downscale_nearest(x, shape), ref)


def test_non_integer_factor_still_fills():
    d = np.full((48, 64), 0.6, np.float32)
    d[5:15, 5:25] = 0
    out = inpaint(d, 0.7)
    np.testing.assert_allclose(out, 0.6, atol=1e-6)


def test_inpaint_frame_copies_and_marks(shared_data):
    raw = _raw_m(shared_data)
    frame = DepthFrame(raw[..., None], INTR, captured_at=1.5, meta={"source": "x"})
    out = inpaint_frame(frame)
    assert out is not frame and out.meta["inpainted"] is True and "inpainted" not in frame.meta
    assert out.depth_m.shape == (480, 640) and out.valid_mask.all()
    assert out.captured_at == 1.5 and out.intrinsics == INTR
    assert (frame.depth_m == 0).any()  # input unchanged


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(2, 40), st.integers(2, 40)),
              elements=st.one_of(st.just(0.0), st.just(np.nan), st.floats(0.25, 2.0, width=32))),
       st.sampled_from([0.5, 1.0, 0.25]))
def test_property_fills_every_hole_within_the_valid_range(d, factor):
    valid = np.isfinite(d) & (d > 0)
    if not valid.any():
        with pytest.raises(BenchbotError):
            inpaint(d, factor)
        return
    out = inpaint(d, factor)
    assert np.array_equal(out[valid], d[valid])
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    assert out.min() >= d[valid].min() - 1e-6 and out.max() <= d[valid].max() + 1e-6


def test_tiny_image_falls_back_to_full_size():
    d = np.array([[0, 0.5], [0.6, 0]], np.float32)
    out = inpaint(d, 0.25)
    assert out[0, 1] == 0.5 and out[1, 0] == 0.6 and np.all(out > 0.49) and np.all(out < 0.61)


def test_inpaint_frame_records_which_pixels_were_filled():
    d = np.full((40, 50), 0.7, np.float32)
    d[5:9, 10:20] = 0.0
    d[30, 30] = np.nan
    out = inpaint_frame(DepthFrame(d, Intrinsics(50.0, 50.0, 24.5, 19.5, 50, 40)))
    m = out.meta["inpainted_mask"]
    assert m.shape == d.shape and m.sum() == 41 and m[5:9, 10:20].all() and m[30, 30]

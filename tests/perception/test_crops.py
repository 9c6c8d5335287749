"""Grasp-aligned crops against Berkeley's reference crops (autolab_core + cv2)."""
import numpy as np
import pytest
import torch

from benchbot.core.errors import BenchbotError
from benchbot.core.types import Grasp, Intrinsics
from benchbot.perception.crops import (
    DEXNET2,
    DEXNET4,
    extract_crops,
    extract_crops_reference,
    extract_grasp_crops,
    resized_shape,
    scale_factor,
)


@pytest.fixture(scope="module")
def ref(shared_data):
    d = shared_data / "dexnet_sample" / "reference_outputs"
    im = np.load(shared_data / "depth_frames" / "gqcnn_primesense_single" / "depth_0.npy")[..., 0]
    xy = np.load(d / "crop_grasp_centers_xy.npy")
    theta = np.load(d / "crop_grasp_angles_rad.npy")  # Berkeley's angle sense
    return {"im": im, "rows": xy[:, 1], "cols": xy[:, 0], "angles": -theta,
            "96to32": np.load(d / "crops_dexnet2_96to32.npy")[..., 0],
            "96to96": np.load(d / "crops_dexnet4_96to96.npy")[..., 0]}


@pytest.mark.parametrize("spec", [DEXNET2, DEXNET4], ids=lambda s: s.name)
def test_reference_path_is_exact(ref, spec):
    out = extract_crops_reference(ref["im"], ref["rows"], ref["cols"], ref["angles"], spec)
    np.testing.assert_array_equal(out, ref[spec.name])


def test_fast_path_dexnet2_is_exact(ref):
    out = extract_crops(ref["im"], ref["rows"], ref["cols"], ref["angles"], DEXNET2)
    assert out.shape == (24, 1, 32, 32) and out.dtype == torch.float32
    np.testing.assert_array_equal(out[:, 0].numpy(), ref["96to32"])


def test_fast_path_dexnet4_matches_but_for_rounding_ties(ref):
    out = extract_crops(ref["im"], ref["rows"], ref["cols"], ref["angles"], DEXNET4)[:, 0].numpy()
    differ = out != ref["96to96"]
    # cv2's nearest-neighbour rounding differs from ours only on exact .5 ties: a handful of pixels
    assert differ.mean() < 5e-5
    assert np.abs(out - ref["96to96"]).max() < 5e-3  # a neighbouring pixel, never garbage


def test_bilinear_path_close_to_nearest(ref):
    a = extract_crops(ref["im"], ref["rows"], ref["cols"], ref["angles"], DEXNET4, interp="bilinear")
    b = extract_crops(ref["im"], ref["rows"], ref["cols"], ref["angles"], DEXNET4)
    assert torch.median((a - b).abs()) < 1e-3


def test_bilinear_is_differentiable():
    img = torch.rand(60, 80, dtype=torch.float32, requires_grad=True)
    out = extract_crops(img, [30.0], [40.0], [0.3], DEXNET2, interp="bilinear")
    out.sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_angle_convention_ccw_from_col():
    # a horizontal bar through the centre; a grasp whose jaw axis is vertical (angle pi/2, CCW from
    # +col) must see the bar rotated onto the crop's vertical axis: jaw axis → crop +col.
    img = np.full((192, 192), 1.0, np.float32)
    img[90:102, :] = 0.5  # horizontal bar (constant row band)
    c0 = extract_crops(img, [96.0], [96.0], [0.0], DEXNET4)[0, 0].numpy()
    c90 = extract_crops(img, [96.0], [96.0], [np.pi / 2], DEXNET4)[0, 0].numpy()
    assert c0[48, 10] == 0.5 and c0[10, 48] == 1.0  # bar along the jaw axis (crop rows stay)
    assert c90[10, 48] == 0.5 and c90[48, 10] == 1.0  # bar now across: along crop columns
    # a jaw axis at +45° (towards up-right in the image) lands on the crop's +col axis
    img2 = np.full((192, 192), 1.0, np.float32)
    img2[96 - 20, 96 + 20] = 0.2  # up-right of the centre
    c45 = extract_crops(img2, [96.0], [96.0], [np.pi / 4], DEXNET4)[0, 0].numpy()
    r, c = np.unravel_index(np.argmin(c45), c45.shape)
    assert abs(r - 48) <= 1 and c > 70


def test_grasp_objects_and_empty(ref):
    gs = [Grasp(float(r), float(c), float(a), 20.0, 0.7)
          for r, c, a in zip(ref["rows"][:3], ref["cols"][:3], ref["angles"][:3], strict=True)]
    a = extract_grasp_crops(ref["im"], gs, DEXNET2)
    b = extract_crops(ref["im"], ref["rows"][:3], ref["cols"][:3], ref["angles"][:3], DEXNET2)
    assert torch.equal(a, b)
    assert extract_crops(ref["im"], [], [], [], DEXNET2).shape == (0, 1, 32, 32)


def test_scale_changes_footprint(ref):
    # a smaller scale factor shows a wider area: the crop of a zoomed-out image equals Berkeley's
    # sequence with the combined zoom
    out = extract_crops(ref["im"], ref["rows"][:4], ref["cols"][:4], ref["angles"][:4], DEXNET2, scale=0.9)
    exp = extract_crops_reference(ref["im"], ref["rows"][:4], ref["cols"][:4], ref["angles"][:4], DEXNET2, scale=0.9)
    np.testing.assert_allclose(out[:, 0].numpy(), exp, atol=1e-6, rtol=0)  # float32 rounding only
    wide = extract_crops(ref["im"], ref["rows"][:4], ref["cols"][:4], ref["angles"][:4], DEXNET2)
    assert not torch.equal(out, wide)
    assert resized_shape(480, 640, 1 / 3 * 0.9) == (144, 192)


def test_scale_factor_values():
    prime = Intrinsics(525, 525, 319.5, 239.5, 640, 480)
    kinect2 = Intrinsics(364.42, 364.42, 263.35, 199.57, 512, 424)
    px4 = 552.5 / 0.825
    assert 0.88 < scale_factor(prime, 0.713, px4) < 0.95
    assert 1.2 < scale_factor(kinect2, 0.69, px4) < 1.35
    assert scale_factor(prime, 0.70, 525 / 0.70) == pytest.approx(1.0)
    with pytest.raises(BenchbotError):
        scale_factor(prime, 0.0, px4)


def test_bad_inputs():
    img = np.zeros((50, 50), np.float32)
    with pytest.raises(BenchbotError):
        extract_crops(img, [1.0, 2.0], [1.0], [0.0])
    with pytest.raises(BenchbotError):
        extract_crops(img, [np.nan], [1.0], [0.0])
    with pytest.raises(BenchbotError):
        extract_crops(np.zeros((2, 3, 4)), [1.0], [1.0], [0.0])
    with pytest.raises(BenchbotError):
        extract_crops(img, [1.0], [1.0], [0.0], interp="cubic")


def test_outside_image_is_zero():
    img = np.ones((100, 100), np.float32)
    out = extract_crops(img, [0.0], [0.0], [0.0], DEXNET4)[0, 0]
    assert out[0, 0] == 0 and out[-1, -1] == 1


@pytest.mark.parametrize("scale", [0.75, 0.91, 1.27, 1.5])
@pytest.mark.parametrize("spec", [DEXNET2, DEXNET4], ids=lambda s: s.name)
def test_fast_path_matches_reference_at_any_scale(ref, spec, scale):
    rng = np.random.default_rng(int(scale * 100))
    n = 12
    # upscaling (scale * zoom > 1): skimage blends the resized image's outermost pixels with zeros,
    # torch does not, so only downscaling tests centres near and beyond the image border
    lo, hi = ((-20, -20), (500, 660)) if scale * spec.zoom < 1 else ((100, 100), (380, 540))
    rows, cols = rng.uniform(lo[0], hi[0], n), rng.uniform(lo[1], hi[1], n)
    angles = rng.uniform(-4, 4, n)
    fast = extract_crops(ref["im"], rows, cols, angles, spec, scale=scale)[:, 0].numpy()
    exp = extract_crops_reference(ref["im"], rows, cols, angles, spec, scale=scale)
    err = np.abs(fast - exp)
    assert (err > 1e-6).mean() < 1e-4  # only nearest-neighbour rounding ties
    for k, r, c in zip(*np.nonzero(err > 1e-6), strict=True):  # a tie picks a neighbouring source pixel, never garbage
        around = exp[k, max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        assert around.min() - 1e-6 <= fast[k, r, c] <= around.max() + 1e-6

"""Antipodal sampler: golden edge pixels (Berkeley reference) and properties of every candidate."""
import numpy as np
import pytest
from PIL import Image

from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.perception.geometry import deproject
from benchbot.perception.sampler import (
    SamplerConfig,
    antipodal_candidates,
    edge_pixels,
    in_friction_cone,
    sample_antipodal,
    smooth_depth,
)

SINGLE = "depth_frames/gqcnn_primesense_single"
REF = "dexnet_sample/reference_outputs"
INTR = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


@pytest.fixture(scope="module")
def depth0(shared_data):
    return np.load(shared_data / SINGLE / "depth_0.npy")[..., 0]


@pytest.fixture(scope="module")
def seg0(shared_data):
    return np.array(Image.open(shared_data / SINGLE / "segmask_0.png")) > 0


def test_edge_pixels_match_reference(shared_data, depth0):
    ref = np.load(shared_data / REF / "sampler_edge_pixels_depth_0_ds2_thresh0.0025.npy")
    got = edge_pixels(depth0, sigma=1.0, downsample=2, grad_thresh=0.0025)
    assert len(ref) == 5910
    assert got.dtype == np.int16 and np.array_equal(got, ref)  # same set, same order


def test_edge_pixels_in_segmask_match_reference(shared_data, depth0, seg0):
    ref = np.load(shared_data / REF / "sampler_edge_pixels_in_segmask_depth_0.npy")
    got = edge_pixels(depth0, seg_mask=seg0)
    assert len(ref) == 282 and np.array_equal(got, ref)


def _synthetic_box(width_px=40, height_px=24):
    """Table at 0.70 m with a box 3 cm tall in the middle."""
    d = np.full((200, 240), 0.70, np.float32)
    r0, c0 = 100 - height_px // 2, 120 - width_px // 2
    d[r0:r0 + height_px, c0:c0 + width_px] = 0.67
    return DepthFrame(d, Intrinsics(500, 500, 119.5, 99.5, 240, 200))


def test_every_candidate_is_antipodal_and_fits(depth0, seg0):
    frame = DepthFrame(depth0, INTR)
    cfg = SamplerConfig()
    c = antipodal_candidates(frame, 1000, config=cfg, seg_mask=seg0, rng=3)
    assert 50 < len(c) <= 1000
    # friction cone (2-D force closure) at both contacts
    assert in_friction_cone(c.p1, c.p2, c.n1, c.n2, cfg.friction_coef).all()
    # the contacts' 3-D distance fits the gripper, and the pixel width is the gripper opening
    s = smooth_depth(depth0)
    x1 = deproject(INTR, c.p1[:, 0], c.p1[:, 1], s[c.p1[:, 0], c.p1[:, 1]])
    x2 = deproject(INTR, c.p2[:, 0], c.p2[:, 1], s[c.p2[:, 0], c.p2[:, 1]])
    assert (np.linalg.norm(x1 - x2, axis=1) <= cfg.max_width_m + 1e-9).all()
    np.testing.assert_allclose(c.width_px * c.depth_m / 525.0, cfg.max_width_m)
    # centre inside the boundary margin, between the contacts, on the object mask
    b = cfg.min_dist_from_boundary
    assert (c.center[:, 0] >= b).all() and (c.center[:, 0] <= 480 - b).all()
    assert (c.center[:, 1] >= b).all() and (c.center[:, 1] <= 640 - b).all()
    np.testing.assert_allclose(c.center, (c.p1 + c.p2) / 2)
    assert seg0[c.p1[:, 0], c.p1[:, 1]].all() and seg0[c.p2[:, 0], c.p2[:, 1]].all()
    # jaw axis along the contact line; angle folded to (-pi/2, pi/2]
    d = (c.p2 - c.p1).astype(float)
    axis = np.stack([np.cos(c.angle_rad), -np.sin(c.angle_rad)], 1)  # (dcol, drow)
    cosang = np.abs(axis[:, 0] * d[:, 1] + axis[:, 1] * d[:, 0]) / np.linalg.norm(d, axis=1)
    np.testing.assert_allclose(cosang, 1.0, atol=1e-9)
    assert (c.angle_rad > -np.pi / 2).all() and (c.angle_rad <= np.pi / 2).all()
    # depth between centre depth + offsets
    cr, cc = c.center[:, 0].astype(int), c.center[:, 1].astype(int)
    base = np.min([s[cr + i, cc + j] for i in (-1, 0) for j in (-1, 0)], axis=0)
    assert (c.depth_m >= base + cfg.min_depth_offset_m - 1e-6).all()
    assert (c.depth_m <= base + cfg.max_depth_offset_m + 1e-6).all()


def test_min_grasp_distance_respected(depth0, seg0):
    cfg = SamplerConfig()
    c = antipodal_candidates(DepthFrame(depth0, INTR), 1000, config=cfg, seg_mask=seg0, rng=1)
    dc = np.linalg.norm(c.center[:, None] - c.center[None], axis=2)
    da = np.arccos(np.clip(np.abs(np.cos(c.angle_rad[:, None] - c.angle_rad[None])), 0, 1))
    dist = dc + cfg.angle_dist_weight * da
    np.fill_diagonal(dist, np.inf)
    assert dist.min() >= cfg.min_grasp_dist


def test_deterministic_per_seed(depth0, seg0):
    frame = DepthFrame(depth0, INTR)
    a = sample_antipodal(frame, 200, seg_mask=seg0, rng=7)
    b = sample_antipodal(frame, 200, seg_mask=seg0, rng=7)
    c = sample_antipodal(frame, 200, seg_mask=seg0, rng=8)
    assert a == b and a != c and all(isinstance(g, Grasp) for g in a)


def test_box_grasps_span_the_box_across_its_short_side():
    frame = _synthetic_box()
    cfg = SamplerConfig(min_dist_from_boundary=20, max_width_m=0.03)  # 0.03 m ≈ 22 px < box length
    c = antipodal_candidates(frame, 100, config=cfg, seg_mask=np.ones((200, 240), bool), rng=0)
    assert len(c) > 0
    # the only antipodal pairs narrower than the gripper are across the 24-px side (vertical)
    assert np.all(np.abs(np.abs(c.angle_rad) - np.pi / 2) < np.radians(40))
    assert np.all(np.abs(c.center[:, 1] - 120) <= 22) and np.all(np.abs(c.center[:, 0] - 100) <= 4)


def test_auto_segmentation_and_empty_scene():
    frame = _synthetic_box()
    g = sample_antipodal(frame, 50, rng=0, config=SamplerConfig(min_dist_from_boundary=20))
    assert g and all(80 <= x.row <= 120 and 90 <= x.col <= 150 for x in g)
    flat = DepthFrame(np.full((200, 240), 0.7, np.float32), frame.intrinsics)
    assert sample_antipodal(flat, 50, rng=0) == []


def test_narrow_gripper_finds_nothing(depth0, seg0):
    c = antipodal_candidates(DepthFrame(depth0, INTR), 100, config=SamplerConfig(max_width_m=0.005),
                             seg_mask=seg0, rng=0)
    assert len(c) == 0


def _spread_out_reference(center, angle, n, min_dist, w):
    """The greedy distance rejection as first written (spatial hash, one candidate at a time)."""
    import math

    grid, kept = {}, []
    for i, ((r, c), a) in enumerate(zip(center.tolist(), angle.tolist(), strict=True)):
        kr, kc = int(r // min_dist), int(c // min_dist)
        near = (g for dr in (-1, 0, 1) for dc in (-1, 0, 1) for g in grid.get((kr + dr, kc + dc), ()))
        if any(math.hypot(r - r2, c - c2) + w * math.acos(min(1.0, abs(math.cos(a - a2)))) < min_dist
               for r2, c2, a2 in near):
            continue
        kept.append(i)
        grid.setdefault((kr, kc), []).append((r, c, a))
        if len(kept) >= n:
            break
    return np.asarray(kept, dtype=np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_spread_out_keeps_exactly_what_the_greedy_scan_keeps(seed):
    from benchbot.perception.sampler import _spread_out

    rng = np.random.default_rng(seed)
    m = 4000
    # half-pixel centres packed densely (many conflicts), angles of integer contact vectors, some repeats
    center = rng.integers(180, 260, (m, 2)) / 2.0
    d = rng.integers(-30, 31, (m, 2))
    angle = np.arctan2(-d[:, 0], d[:, 1] + 0.5)
    center[1::9], angle[1::9] = center[::9][: len(center[1::9])], angle[::9][: len(angle[1::9])]  # exact repeats
    for n in (1000, 50):
        got = _spread_out(center, angle, n, 2.5, 5.0)
        assert np.array_equal(got, _spread_out_reference(center, angle, n, 2.5, 5.0))
        assert len(got) == n or len(got) < m // 2  # rejections happened
    assert np.array_equal(_spread_out(center, angle, 10, 0.0, 5.0), np.arange(10))


def test_spread_out_on_the_shipped_recordings_is_unchanged(monkeypatch):
    import benchbot.perception.sampler as sampler
    from benchbot.core.paths import RECORDINGS_DIR
    from benchbot.devices.cameras.recording import read_recording
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.sampler import _spread_out
    from benchbot.perception.segment import object_mask

    calls = []

    def spy(center, angle, n, min_dist, w):
        calls.append((center.copy(), angle.copy(), n, min_dist, w))
        return _spread_out(center, angle, n, min_dist, w)

    monkeypatch.setattr(sampler, "_spread_out", spy)
    rec = read_recording(RECORDINGS_DIR / "default")
    for i in (0, 10):
        frame = inpaint_frame(rec.frame(i))
        antipodal_candidates(frame, 1000, seg_mask=object_mask(frame), rng=0)
    assert len(calls) == 2
    for center, angle, n, min_dist, w in calls:
        assert np.array_equal(_spread_out(center, angle, n, min_dist, w),
                              _spread_out_reference(center, angle, n, min_dist, w))

"""Table-plane removal on synthetic scenes and on the real PrimeSense frames."""
import numpy as np
import pytest
from PIL import Image

from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.perception.geometry import deproject
from benchbot.perception.segment import isolate_largest_object, object_mask
from benchbot.perception.table import fit_table

INTR = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)


def _tilted_table(tilt_deg=10.0, dist=0.7):
    """Depth of a plane at `dist` tilted about the camera x axis."""
    t = np.radians(tilt_deg)
    n = np.array([0.0, np.sin(t), -np.cos(t)])  # points toward the camera
    rows, cols = np.indices((480, 640))
    rays = deproject(INTR, rows, cols, np.ones((480, 640)))
    z = dist / -(rays @ n)  # n·(z·ray) + dist = 0
    return z.astype(np.float32), n


def test_plane_recovered_with_holes_and_object():
    d, n = _tilted_table()
    d[200:260, 300:380] -= 0.04  # an object 4 cm closer to the camera
    d[::7, ::5] = 0  # missing pixels
    p = fit_table(DepthFrame(d, INTR))
    assert abs(p.distance_m - 0.7) < 1e-3 and np.dot(p.normal, n) > 0.9999
    assert abs(p.tilt_deg - 10.0) < 0.1


def test_object_mask_synthetic():
    d, _ = _tilted_table()
    d[200:260, 300:380] -= 0.04
    d[470:, 100:200] -= 0.3  # a robot finger: too tall and touching the border
    d[100:103, 100:103] -= 0.04  # speck: too small
    frame = DepthFrame(d, INTR)
    m = object_mask(frame, dilate_px=0)
    assert m[205:255, 305:375].all()
    assert m.sum() <= 60 * 80 and not m[470:, 100:200].any() and not m[100:103, 100:103].any()
    h = fit_table(frame).heights(d, INTR)
    assert abs(np.nanmedian(h[210:250, 310:370]) - 0.04 * np.cos(np.radians(10))) < 0.003


# frame 3's object has a flat handle < 5 mm tall: the depth cannot tell it from the table.
@pytest.mark.parametrize("i, recall", [(0, 0.9), (3, 0.7), (5, 0.9)])
def test_real_frames_mask_covers_the_object(shared_data, i, recall):
    folder = shared_data / "depth_frames/gqcnn_primesense_single"
    d = np.load(folder / f"depth_{i}.npy")[..., 0]
    gt = np.array(Image.open(folder / f"segmask_{i}.png")) > 0
    p = fit_table(DepthFrame(d, INTR))
    assert abs(p.distance_m - 0.713) < 0.005 and abs(p.tilt_deg - 12.7) < 0.5  # PROVENANCE figures
    m = object_mask(DepthFrame(d, INTR), plane=p)
    assert (m & gt).sum() / gt.sum() > recall
    assert (m & gt).sum() / m.sum() > 0.5  # precision (mask is dilated; the fingers are dropped)


def test_too_few_pixels_raises():
    from benchbot.core.errors import BenchbotError

    with pytest.raises(BenchbotError):
        fit_table(DepthFrame(np.zeros((480, 640), np.float32), INTR))


def test_isolate_largest_object_hides_the_others():
    from benchbot.perception.geometry import project
    from benchbot.perception.table import TablePlane

    from .scenes import render, tilted_camera

    t = tilted_camera(15.0, 0.7, azimuth_deg=40.0)
    big, small = (0.03, -0.02, 0.4, 0.10, 0.06, 0.06), (-0.12, 0.09, 0.0, 0.04, 0.04, 0.03)
    d = render(t, [big, small])
    table = render(t, [])
    frame = DepthFrame(d, INTR, meta={"table_plane": TablePlane.from_camera_pose(t)})
    out, (r, c) = isolate_largest_object(frame)
    # the centre returned is the big box's footprint centre on the table, seen by this camera
    inv = np.linalg.inv(t)
    foot = inv[:3, :3] @ np.array([big[0], big[1], 0.0]) + inv[:3, 3]
    assert (r, c) == pytest.approx(tuple(project(INTR, foot)), abs=2.0)  # ~3 mm (image centroid: ~8 px)
    small_px = (np.abs(d - table) > 1e-6) & (np.abs(d - render(t, [big])) > 1e-6)
    assert small_px.sum() > 100 and np.allclose(out.depth_m[small_px], table[small_px], atol=1e-4)
    big_px = np.abs(d - render(t, [small])) > 1e-6
    assert np.array_equal(out.depth_m[big_px], d[big_px]) and frame.depth_m is d
    empty = DepthFrame(table, INTR, meta={"table_plane": TablePlane.from_camera_pose(t)})
    assert isolate_largest_object(empty) == (empty, None)

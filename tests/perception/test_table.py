"""The one table model: plane geometry, construction from a camera pose, the RANSAC fit."""
import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame
from benchbot.perception.geometry import deproject
from benchbot.perception.table import TablePlane, fit_table, table_plane

from .scenes import PRIME, render, tilted_camera

BOXES = [(0.02, -0.03, 0.4, 0.10, 0.04, 0.05), (-0.12, 0.10, -0.3, 0.06, 0.06, 0.12)]


def truth(t_table_camera: np.ndarray) -> TablePlane:
    return TablePlane.from_camera_pose(t_table_camera, 0.0)


@pytest.mark.parametrize("tilt", [0.0, 3.4, 12.7, 20.0])
def test_fit_recovers_the_rendered_table(tilt):
    t = tilted_camera(tilt, 0.7, azimuth_deg=30.0)
    depth = render(t, BOXES)
    depth[::7, ::5] = 0  # missing pixels
    plane = fit_table(DepthFrame(depth, PRIME))
    want = truth(t)
    assert plane.source == "fit" and plane.inlier_frac > 0.5 and plane.rms_m < 1e-4
    assert np.degrees(np.arccos(min(1.0, plane.normal @ want.normal))) < 0.05
    assert plane.distance_m == pytest.approx(want.distance_m, abs=2e-4)
    assert plane.tilt_deg == pytest.approx(tilt, abs=0.05)
    assert want.distance_m == pytest.approx(0.7 * np.cos(np.radians(tilt)), abs=1e-9)


def test_geometry_helpers_agree_with_the_rendering():
    t = tilted_camera(15.0, 0.7, azimuth_deg=-40.0)
    depth = render(t, BOXES)
    plane = truth(t)
    table_px = depth > 0
    rows, cols = np.nonzero(table_px)
    sel = slice(None, None, 997)
    # ray depth of the table = rendered depth wherever the table itself is seen
    h = plane.heights(depth, PRIME)
    flat = np.abs(h) < 1e-6
    assert flat.mean() > 0.8
    r, c = np.nonzero(flat)
    np.testing.assert_allclose(plane.ray_depth_m(PRIME, r[::97], c[::97]), depth[r[::97], c[::97]], atol=1e-5)
    np.testing.assert_allclose(plane.depth_map(PRIME)[flat], depth[flat], atol=1e-5)
    # box tops: 5 cm and 12 cm above the table
    assert np.isclose(h[table_px][sel], 0.05, atol=1e-4).any() and np.nanmax(h) == pytest.approx(0.12, abs=1e-4)
    # the plane's ray depth at a height reaches exactly that height
    z = plane.ray_depth_m(PRIME, 100.0, 200.0, height_m=0.03)
    assert plane.height_m(deproject(PRIME, 100.0, 200.0, z)) == pytest.approx(0.03, abs=1e-12)
    assert plane.axis_distance_m == pytest.approx(0.7, abs=1e-9)  # the camera looks at the table point 0.7 m away


def test_orientation_dict_round_trip_and_overhead():
    p = TablePlane(np.array([0.0, 0.0, 2.0]), -0.5)  # flipped and not unit: normalised, toward the camera
    assert np.allclose(p.normal, [0, 0, -1]) and p.distance_m == 0.5 and p.tilt_deg == pytest.approx(0.0)
    q = TablePlane.from_dict(p.to_dict())
    assert np.allclose(q.normal, p.normal) and q.distance_m == p.distance_m
    o = TablePlane.overhead(0.7)
    assert o.axis_distance_m == pytest.approx(0.7) and o.ray_depth_m(PRIME, 0.0, 0.0) == pytest.approx(0.7)
    with pytest.raises(BenchbotError):
        TablePlane(np.zeros(3), 0.7)
    with pytest.raises(BenchbotError, match="above the table"):
        TablePlane.from_camera_pose(np.eye(4), 0.5)


def test_fit_ignores_a_wall_and_refuses_a_frame_without_table():
    depth = render(tilted_camera(0.0, 0.7), BOXES)
    depth[:, :150] = 0.3 + np.linspace(0, 0.4, 480)[:, None].astype(np.float32)  # a steep plane (a wall)
    plane = fit_table(DepthFrame(depth, PRIME))
    assert plane.tilt_deg < 0.1 and plane.distance_m == pytest.approx(0.7, abs=1e-4)
    rows, cols = np.indices((480, 640))
    wall = (0.5 + 0.001 * cols).astype(np.float32)  # only a plane tilted ~60° in view
    with pytest.raises(BenchbotError, match="table"):
        fit_table(DepthFrame(wall, PRIME))
    with pytest.raises(BenchbotError, match="valid depth"):
        fit_table(DepthFrame(np.zeros((480, 640), np.float32), PRIME))


def test_table_plane_is_fitted_once_and_kept_in_meta():
    frame = DepthFrame(render(tilted_camera(5.0, 0.7), BOXES), PRIME)
    p = table_plane(frame)
    assert frame.meta["table_plane"] is p and table_plane(frame) is p
    given = DepthFrame(frame.depth_m, PRIME, meta={"table_plane": TablePlane.overhead(0.9).to_dict()})
    assert table_plane(given).distance_m == pytest.approx(0.9)  # stored planes (dicts too) win over a fit

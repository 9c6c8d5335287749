import numpy as np

from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.harness.jawline import measure

K = Intrinsics(500.0, 500.0, 100.0, 100.0, 200, 200)


def _box_frame(half_width_px: int, height_m: float = 0.04, table_m: float = 0.7) -> DepthFrame:
    d = np.full((200, 200), table_m, np.float32)
    d[80:120, 100 - half_width_px:100 + half_width_px] = table_m - height_m
    return DepthFrame(d, K)


def test_measures_box_width_across_jaw_line():
    frame = _box_frame(20)  # 40 px at 0.68 m, f=500 → ≈ 5.4 cm wide
    jaw = measure(frame, Grasp(100, 100, 0.0, 40, 0.69), opening_m=0.085)
    assert not jaw.collision
    assert abs(jaw.object_width_m - 39.5 * 0.69 / 500) < 0.002


def test_empty_grasp_and_collision():
    frame = _box_frame(20)
    assert measure(frame, Grasp(20, 20, 0.0, 40, 0.69), 0.085).object_width_m is None
    wide = _box_frame(45)  # 90 px ≈ 12 cm: wider than the 8.5 cm opening
    assert measure(wide, Grasp(100, 100, 0.0, 40, 0.69), 0.085).collision
    # along the short side (vertical, 40 px) the same box fits
    assert not measure(wide, Grasp(100, 100, np.pi / 2, 40, 0.69), 0.085).collision


def test_table_plane_gives_the_camera_pose_above_a_tilted_table():
    from scipy.spatial.transform import Rotation

    from benchbot.harness.cells.replay import camera_transform_from_table
    from benchbot.perception.geometry import deproject

    K = Intrinsics(400.0, 400.0, 160.0, 120.0, 320, 240)
    # a table 0.7 m away, tilted 10° about the camera x axis: depth along each pixel ray
    n = Rotation.from_euler("x", 10, degrees=True).apply([0.0, 0.0, -1.0])  # normal toward the camera
    rows, cols = np.mgrid[0:240, 0:320]
    rays = deproject(K, rows, cols, np.ones((240, 320)))
    depth = (0.7 / -(rays @ n)).astype(np.float32)
    t, plane = camera_transform_from_table(DepthFrame(depth, K))
    assert abs(plane.distance_m - 0.7) < 1e-3
    pts = deproject(K, rows[::20, ::20], cols[::20, ::20], depth[::20, ::20]).reshape(-1, 3)
    base = pts @ t[:3, :3].T + t[:3, 3]
    assert np.abs(base[:, 2]).max() < 1e-3  # every table point at z = 0 in the base frame

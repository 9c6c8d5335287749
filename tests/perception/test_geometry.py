import numpy as np

from benchbot.core.types import Grasp, Intrinsics
from benchbot.perception.geometry import camera_to_grasp, deproject, grasp_to_camera, project

K = Intrinsics(fx=364.4, fy=364.4, cx=263.4, cy=199.6, width=512, height=424)


def test_deproject_project_roundtrip():
    pts = deproject(K, np.array([10.0, 200.0]), np.array([30.0, 400.0]), np.array([0.6, 0.7]))
    rc = project(K, pts)
    assert np.allclose(rc, [[10, 30], [200, 400]])


def test_principal_point_is_on_axis():
    assert np.allclose(deproject(K, K.cy, K.cx, 0.7), [0, 0, 0.7])


def test_grasp_roundtrip_and_width():
    g = Grasp(row=150.0, col=300.0, angle_rad=0.6, width_px=36.44, depth_m=0.7)
    pose = grasp_to_camera(g, K)
    assert abs(pose.width_m - 0.07) < 1e-6  # 36.44 px at 0.7 m with f=364.4 → 7 cm
    # image +col with angle 0 is camera +x; a CCW angle in the image points to -y (rows go down)
    assert pose.jaw_axis[1] < 0
    back = camera_to_grasp(pose, K)
    assert np.allclose([back.row, back.col, back.angle_rad, back.width_px, back.depth_m],
                       [g.row, g.col, g.angle_rad, g.width_px, g.depth_m])

"""Rectified view: synthetic tilted scenes whose virtual view and grasps are known exactly."""
import math

import numpy as np
import pytest

from benchbot.core.types import DepthFrame, GraspPose, Intrinsics
from benchbot.perception.geometry import camera_to_grasp, grasp_to_camera
from benchbot.perception.rectify import View, rectify
from benchbot.perception.table import fit_table

from .scenes import PRIME, render, tilted_camera

VIEW = View(px_per_m=520.6, side=208, table_distance_m=0.7)  # the shipped models' training view
KINECT = Intrinsics(364.42, 364.42, 263.35, 199.57, 512, 424)
BOXES = [(0.03, -0.02, 0.5, 0.12, 0.035, 0.04), (-0.10, 0.08, -0.2, 0.05, 0.05, 0.09)]


def _scene(tilt: float, intr: Intrinsics = PRIME, azimuth: float = 20.0):
    t = tilted_camera(tilt, 0.66, azimuth_deg=azimuth, target=(0.02, 0.01))
    frame = DepthFrame(render(t, BOXES, intr), intr)
    return frame, t


@pytest.mark.parametrize("tilt,intr", [(0.0, PRIME), (3.4, PRIME), (12.7, PRIME), (20.0, PRIME), (17.0, KINECT)])
def test_virtual_view_is_the_overhead_rendering(tilt, intr):
    frame, t_table_real = _scene(tilt, intr)
    rect = rectify(frame, fit_table(frame), VIEW)
    # the same scene rendered exactly by the virtual camera
    want = render(t_table_real @ rect.t_real_virtual, BOXES, VIEW.intrinsics)
    got = rect.frame.depth_m
    err = np.abs(got - want)
    assert rect.frame.intrinsics == VIEW.intrinsics and got.shape == (208, 208)
    assert np.median(err) < 5e-4  # table and box tops: exact up to the fitted plane
    assert (err > 0.005).mean() < 0.008  # edges and surfaces the real camera did not see (filled)
    assert not rect.outside.any()  # the 0.4 m view lies inside the real camera's view
    # the table is at the training distance; box tops at 0.7 − height
    assert np.median(got[err < 1e-3]) == pytest.approx(0.7, abs=1e-3)
    assert got.min() == pytest.approx(0.7 - 0.09, abs=2e-3)


def _grasp_pose(t_table_cam: np.ndarray) -> GraspPose:
    """A top grasp on the first box (2 cm below its top, across its width), in the camera frame."""
    cx, cy, yaw, _, _, height = BOXES[0]
    centre = np.array([cx, cy, height - 0.02])
    jaw = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    inv = np.linalg.inv(t_table_cam)
    return GraspPose(inv[:3, :3] @ centre + inv[:3, 3], inv[:3, :3] @ np.array([0, 0, -1.0]), inv[:3, :3] @ jaw,
                     0.05, "camera")


def _angle_diff_deg(a: float, b: float) -> float:
    d = abs(a - b) % math.pi
    return math.degrees(min(d, math.pi - d))


@pytest.mark.parametrize("tilt", [0.0, 3.4, 10.0, 20.0])
def test_grasps_map_between_the_cameras_exactly(tilt):
    frame, t_table_real = _scene(tilt)
    rect = rectify(frame, fit_table(frame), VIEW)
    pose_real = _grasp_pose(t_table_real)
    real = camera_to_grasp(pose_real, PRIME, 0.8)
    virt_want = camera_to_grasp(_grasp_pose(t_table_real @ rect.t_real_virtual), VIEW.intrinsics, 0.8)
    virt = rect.to_virtual(real)
    assert math.hypot(virt.row - virt_want.row, virt.col - virt_want.col) < 0.05
    assert _angle_diff_deg(virt.angle_rad, virt_want.angle_rad) < 0.2
    assert virt.depth_m == pytest.approx(virt_want.depth_m, abs=2e-4)
    assert virt.width_px == pytest.approx(virt_want.width_px, rel=1e-3) and virt.score == 0.8
    back = rect.to_real(virt)  # round trip: < 1 px, < 1° (here: exact to rounding)
    assert math.hypot(back.row - real.row, back.col - real.col) < 1e-6
    assert _angle_diff_deg(back.angle_rad, real.angle_rad) < 1e-6
    assert (back.width_px, back.depth_m) == pytest.approx((real.width_px, real.depth_m), rel=1e-9)
    # the metric pose: same centre and opening, approach perpendicular to the table, jaws parallel to it
    pose = rect.pose_to_real(virt)
    assert np.allclose(pose.center_m, pose_real.center_m, atol=2e-4)
    assert pose.width_m == pytest.approx(0.05, rel=1e-3)
    assert np.degrees(np.arccos(min(1.0, pose.approach @ pose_real.approach))) < 0.05
    assert abs(pose.jaw_axis @ pose_real.jaw_axis) > math.cos(math.radians(0.2))


def test_view_pixels_beyond_the_real_camera_show_the_table():
    frame, _ = _scene(0.0)
    # centred on the left edge of the real frame: part of the view lies beyond it
    rect = rectify(frame, fit_table(frame), VIEW, center_px=(239.5, 20.0))
    assert 0.2 < rect.outside.mean() < 0.6
    assert np.allclose(rect.frame.depth_m[rect.outside], 0.7)
    assert rect.outside[:, 0].all() and not rect.outside[:, -1].any()


def test_grasp_to_camera_with_the_table_normal_round_trips():
    frame, t = _scene(15.0)
    plane = fit_table(frame)
    g = camera_to_grasp(_grasp_pose(t), PRIME)
    pose = grasp_to_camera(g, PRIME, plane.normal)
    assert abs(pose.jaw_axis @ plane.normal) < 1e-9 and np.allclose(pose.approach, -plane.normal)
    back = camera_to_grasp(pose, PRIME)
    assert (back.row, back.col, back.width_px, back.depth_m) == pytest.approx((g.row, g.col, g.width_px, g.depth_m))
    assert _angle_diff_deg(back.angle_rad, g.angle_rad) < 1e-9


def test_holes_take_their_background():
    from benchbot.perception.rectify import fill_from_background

    d = np.full((20, 20), 0.7)
    d[5:15, 5:10] = 0.65  # an object
    holes = np.zeros((20, 20), bool)
    holes[5:15, 10:13] = True  # the table behind it, unseen
    holes[8, 6:8] = True  # a crack on the object
    d[holes] = 0.0
    out = fill_from_background(d, holes)
    assert np.allclose(out[5:15, 10:13], 0.7) and np.allclose(out[8, 6:8], 0.65)
    assert fill_from_background(d, np.zeros_like(holes)) is d


def test_only_measured_points_are_moved_and_noise_is_not_pulled_forward():
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.rectify import zbuffer

    frame, t = _scene(12.0)
    plane = fit_table(frame)
    raw = frame.depth_m.copy()
    raw[200:260, 0:640:2] = 0.0  # a band of missing pixels: inpainted, then never re-projected
    filled = inpaint_frame(DepthFrame(raw, PRIME))
    assert filled.meta["inpainted_mask"].sum() == (raw == 0).sum()
    filled.depth_m[filled.meta["inpainted_mask"]] = 0.3  # garbage where nothing was measured
    rect = rectify(filled, plane, VIEW)
    assert rect.frame.depth_m.min() > 0.6  # the garbage never reaches the view
    # the z-buffer keeps the surface's mean, not its nearest noisy sample, and hides what is behind
    cells = np.array([0, 0, 0, 0, 1, 1])
    z = np.array([0.700, 0.702, 0.698, 0.760, 0.5, 0.7])
    out = zbuffer(cells, z, 3)
    assert out[0] == pytest.approx(0.700) and out[1] == pytest.approx(0.5) and np.isinf(out[2])

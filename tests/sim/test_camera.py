"""Simulated depth camera: intrinsics match the Kinect v2 file, projection of known points, noise."""
import numpy as np
import pytest
import yaml

from benchbot.devices.cameras.mujoco import MujocoCamera
from benchbot.perception.geometry import project
from benchbot.perception.inpaint import inpaint
from benchbot.sim.noise import DepthNoise
from benchbot.sim.scene import build_model, camera_fovy_deg, camera_pose_base, sim_intrinsics
from benchbot.sim.world import SimWorld


def test_intrinsics_follow_the_kinect2_file(shared_data):
    ref = yaml.safe_load((shared_data / "depth_frames/gqcnn_kinect2_overhead/intrinsics.yaml").read_text())
    intr = sim_intrinsics()
    assert (intr.width, intr.height) == (ref["width"], ref["height"])
    assert intr.fx == pytest.approx(ref["fx"]) and intr.fy == pytest.approx(ref["fy"])
    # principal point: image centre (MuJoCo has no offset), within 13 px of the Kinect's
    assert abs(intr.cx - ref["cx"]) < 13 and abs(intr.cy - ref["cy"]) < 13


@pytest.mark.parametrize("point", [(0.60, 0.10, 0.05), (0.35, -0.20, 0.10), (0.50, 0.0, 0.0)])
def test_a_known_point_lands_where_the_intrinsics_say(point):
    x, y, z = point
    box = f'<geom type="box" size="0.01 0.01 0.01" pos="{x} {y} {z + 0.01}" group="0" contype="0" conaffinity="0"/>'
    model, info = build_model(None, extra_xml=box)
    assert model.cam_fovy[0] == pytest.approx(camera_fovy_deg())
    world = SimWorld({})
    world.use(model, info)
    cam = MujocoCamera(world, noise=None)
    frame = cam.capture()
    assert frame.meta["table_distance_m"] == pytest.approx(0.70) and frame.captured_at > 0
    top_cam = np.linalg.inv(camera_pose_base(0.70)) @ np.array([x, y, z + 0.02, 1.0])
    row, col = project(frame.intrinsics, top_cam[:3])
    rows, cols = np.nonzero(np.abs(frame.depth_m - top_cam[2]) < 1e-3)
    assert len(rows) > 50
    assert rows.mean() == pytest.approx(row, abs=0.5) and cols.mean() == pytest.approx(col, abs=0.5)
    # the top face's width in pixels matches f · size / depth
    assert np.ptp(cols) + 1 == pytest.approx(0.02 * frame.intrinsics.fx / top_cam[2], abs=1.5)
    world.close()


def test_noise_model_drops_edges_and_inpainting_fills_them(paper):
    world = SimWorld(dict(paper.objects))
    world.load("soup-can")
    from benchbot.sim.placement import drop_object

    drop_object(world.current(), np.random.default_rng(0))
    clean = world.render_depth()
    noisy = DepthNoise().apply(clean, np.random.default_rng(1))
    missing = noisy == 0
    assert 0.0005 < missing.mean() < 0.05
    edge = np.abs(np.diff(clean, axis=1)) > 0.008
    assert missing[:, 1:][edge].mean() > 0.3  # edges lose many pixels
    table = (clean > 0.699) & ~missing
    sigma = (noisy[table] - clean[table]).std()
    assert 0.001 < sigma < 0.003  # ≈ 1.2 mm + 1.9 mm·(0.7−0.4)² at the table
    filled = inpaint(noisy)
    assert (filled > 0).all() and np.abs(filled - clean)[missing].mean() < 0.02
    world.close()

"""Physics backend: real grasps in MuJoCo through the harness primitive and the backends."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchbot.core.interfaces import Arm, Camera, Gripper, Stage
from benchbot.core.types import GraspPose, Placement, Pose
from benchbot.harness.cells.mujoco import make_physics_workcell
from benchbot.harness.primitive import execute_grasp
from benchbot.sim.scene import TOOL_DOWN


@pytest.fixture(scope="module")
def cell(paper):
    wc = make_physics_workcell(paper, seed=3, noise=False)
    wc.arm.connect()
    wc.gripper.activate()
    yield wc
    wc.close()


def _box_grasp(wc, depth_below_top_m: float = 0.02, offset_m=(0.0, 0.0)) -> GraspPose:
    """Ground-truth grasp across the object's narrowest horizontal extent, at its centre of mass."""
    sim = wc.world.current()
    pts = sim.object_points_world()
    com = sim.data.xipos[sim.object_body].copy()
    xy = pts[:, :2] - pts[:, :2].mean(0)
    _, vecs = np.linalg.eigh(np.cov(xy.T))
    jaw = np.array([vecs[0, 0], vecs[1, 0], 0.0])
    z = max(pts[:, 2].max() - depth_below_top_m, 0.012)
    centre = np.array([com[0] + offset_m[0], com[1] + offset_m[1], z])
    return GraspPose(centre, np.array([0.0, 0.0, -1.0]), jaw, 0.085, "base")


def test_backends_implement_the_interfaces(cell):
    assert isinstance(cell.camera, Camera) and isinstance(cell.arm, Arm)
    assert isinstance(cell.gripper, Gripper) and isinstance(cell.stage, Stage)
    assert cell.stage.outcome_source == "physics"


def test_closing_on_a_box_lifts_it(cell, paper):
    pl = Placement("test-brick", "foam-brick", 11)
    cell.stage.place(pl)
    sim = cell.world.current()
    z0 = sim.data.xipos[sim.object_body][2]
    ex = execute_grasp(cell.arm, cell.gripper, _box_grasp(cell), paper.protocol.motion, 0.085,
                       force=0.5, grip_speed=0.5, sleep=cell.sleep)
    assert ex.gripper.object_detected
    assert 0.02 < ex.gripper.position_m < 0.08  # stalled on the brick, not closed
    j = cell.stage.judge(pl, ex)
    assert j.kind == "success" and j.source == "physics", j
    assert ex.lifted_m >= paper.protocol.success.min_lift_m
    # the object really is up in the air, between the pads
    assert sim.data.xipos[sim.object_body][2] - z0 > 0.10
    c = sim.contacts()
    assert c.left and c.right and c.normal_force_n > 40


def test_empty_grasp_is_a_miss(cell, paper):
    pl = Placement("test-empty", "foam-brick", 11)
    cell.stage.place(pl)
    ex = execute_grasp(cell.arm, cell.gripper, _box_grasp(cell, offset_m=(0.0, 0.18)), paper.protocol.motion,
                       0.085, force=0.5, grip_speed=0.5, sleep=cell.sleep)
    assert not ex.gripper.object_detected
    assert ex.gripper.position_m < 0.002  # closed on nothing
    j = cell.stage.judge(pl, ex)
    assert (j.kind, j.cause) == ("failure", "missed")
    assert abs(ex.lifted_m) < 0.005


def test_jaw_along_the_long_side_fails(cell, paper):
    """The pudding box is longer than the 85 mm opening: a jaw along its long side cannot hold it."""
    pl = Placement("test-long", "pudding-box", 5)
    cell.stage.place(pl)
    sim = cell.world.current()
    g = _box_grasp(cell)
    pts = sim.object_points_world()
    xy = pts[:, :2] - pts[:, :2].mean(0)
    _, vecs = np.linalg.eigh(np.cov(xy.T))
    major = np.array([vecs[0, 1], vecs[1, 1], 0.0])
    if np.ptp(xy @ major[:2]) < 0.09:
        pytest.skip("this drop left the box on its narrow side")
    g = GraspPose(g.center_m, g.approach, major, 0.085, "base")
    ex = execute_grasp(cell.arm, cell.gripper, g, paper.protocol.motion, 0.085, sleep=cell.sleep)
    assert cell.stage.judge(pl, ex).kind == "failure"


def test_same_placement_same_pose_for_every_method(paper):
    a = make_physics_workcell(paper, seed=0, noise=True)
    b = make_physics_workcell(paper, seed=0, noise=True)
    try:
        pl = Placement("mug-trial-2", "mug", 2019)
        a.stage.place(pl)
        b.stage.place(pl)
        b.stage.place(Placement("other", "mug", 1))
        b.stage.place(pl)  # again, after another placement: same pose
        assert a.stage.pose_of(pl) == b.stage.pose_of(pl)
        qa, qb = a.world.current().data.qpos.copy(), b.world.current().data.qpos.copy()
        np.testing.assert_array_equal(qa, qb)
        fa, fb = a.camera.capture(), b.camera.capture()
        np.testing.assert_array_equal(fa.depth_m, fb.depth_m)  # noise seeded by the placement
        a.stage.place(Placement("mug-trial-3", "mug", 2019))
        assert a.stage.pose_of(Placement("mug-trial-3", "mug", 2019)) != b.stage.pose_of(pl)
    finally:
        a.close()
        b.close()


def test_move_linear_follows_the_commanded_speed(cell):
    cell.stage.place(Placement("test-speed", "soup-can", 1))
    sim = cell.world.current()
    cell.arm.home()
    start = cell.arm.current_pose()
    target = start.position_m + np.array([0.10, 0.0, 0.0])
    rot = TOOL_DOWN @ Rotation.from_euler("z", 0.5).as_matrix()
    t0 = sim.time
    cell.arm.move_linear(Pose(target, rot, "base"), 0.05, 0.5)
    dt = sim.time - t0
    assert 2.0 <= dt <= 2.3  # 0.1 m at 0.05 m/s + ramps + settle
    np.testing.assert_allclose(cell.arm.current_pose().position_m, target, atol=2e-3)
    ang = Rotation.from_matrix(cell.arm.current_pose().rotation.T @ rot).magnitude()
    assert ang < np.radians(1.0)


def test_keyframes_show_the_ur5e_on_the_gripper(paper, tmp_path):
    from PIL import Image

    from benchbot.sim.arm_view import pose_arm

    wc = make_physics_workcell(paper, seed=0, noise=False, record_video=True)
    try:
        wc.arm.connect()
        wc.gripper.activate()
        pl = Placement("test-video", "foam-brick", 11)
        wc.stage.place(pl)
        ex = execute_grasp(wc.arm, wc.gripper, _box_grasp(wc), paper.protocol.motion, 0.085, sleep=wc.sleep)
        assert wc.stage.judge(pl, ex).kind == "success"
        assert pose_arm(wc.world.current())  # the display arm's flange reaches the gripper
        path = wc.save_keyframes(tmp_path / "strip.png")
        img = np.asarray(Image.open(path))
        assert img.shape[1] == 7 * 480 and img.std() > 10
    finally:
        wc.close()

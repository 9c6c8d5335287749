"""Domain randomisation: drawn ranges, camera geometry, what the renderer shows, reproducibility and
the per-image record."""
import json
import math

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.perception.geometry import project
from benchbot.perception.table import TablePlane, fit_table
from benchbot.sim.dr_image import make_image, planned_scene
from benchbot.sim.randomize import (
    CameraPlan,
    FingerPlan,
    Randomization,
    ScenePlan,
    camera_pose_table,
    plan_scene,
)
from benchbot.sim.scene import TABLE_CENTER_XY, CameraSetup, build_model
from benchbot.sim.sensors import SENSORS
from benchbot.sim.world import SimWorld

IDS = ["soup-can", "foam-brick", "mug", "banana", "sponge"]


@pytest.fixture(scope="module")
def world(paper):
    w = SimWorld(dict(paper.objects))
    yield w
    w.close()


@pytest.mark.parametrize("h, tilt, az, roll, look", [(0.7, 0.0, 0.0, 0.0, (0, 0)),
                                                     (0.5, 20.0, 40.0, 200.0, (0.03, -0.04)),
                                                     (0.9, 12.0, 300.0, 10.0, (-0.05, 0.0))])
def test_camera_pose_has_the_asked_height_tilt_and_aim(h, tilt, az, roll, look):
    t = camera_pose_table(h, math.radians(tilt), math.radians(az), math.radians(roll), look)
    r = t[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert t[2, 3] == pytest.approx(h)
    assert math.degrees(math.acos(-r[2, 2])) == pytest.approx(tilt, abs=1e-9)  # optical axis vs straight down
    s = -t[2, 3] / r[2, 2]  # where the optical axis meets the table
    np.testing.assert_allclose(t[:2, 3] + s * r[:2, 2], look, atol=1e-12)
    plane = TablePlane.from_camera_pose(t, 0.0)  # table points have height 0
    pts_cam = (np.linalg.inv(t) @ np.array([[0.1, 0.2, 0, 1], [-0.3, 0.05, 0, 1]]).T)[:3].T
    np.testing.assert_allclose(plane.height_m(pts_cam), 0.0, atol=1e-12)
    assert plane.axis_distance_m == pytest.approx(h / math.cos(math.radians(tilt)))  # the one distance: s above
    assert plane.axis_distance_m == pytest.approx(s)


def test_plans_are_seeded_and_stay_in_their_ranges():
    rnd = Randomization()
    assert plan_scene(7, rnd, IDS).to_json() == plan_scene(7, rnd, IDS).to_json()
    assert plan_scene(7, rnd, IDS).to_json() != plan_scene(8, rnd, IDS).to_json()
    plans = [plan_scene(s, rnd, IDS) for s in range(300)]
    cams = [p.camera for p in plans]
    assert all(0 <= c.tilt_deg <= 20 and 0.5 <= c.height_m <= 0.9 and math.hypot(*c.look_at_xy_m) <= 0.05 for c in cams)
    assert max(c.tilt_deg for c in cams) > 18 and min(c.tilt_deg for c in cams) < 2
    assert {c.sensor for c in cams} == set(SENSORS)
    assert {len(p.object_ids) for p in plans} == {1, 2, 3, 4, 5}
    assert {len(p.distractors) for p in plans} == {0, 1, 2, 3}
    assert all(set(p.object_ids) <= set(IDS) and len(set(p.object_ids)) == len(p.object_ids) for p in plans)
    assert 0.4 < np.mean([p.fingers is not None for p in plans]) < 0.6
    reach = lambda d: np.hypot(d.size_m[0], d.size_m[0] if d.shape == "cylinder" else d.size_m[1])  # noqa: E731
    assert all(0.2 + reach(d) - 1e-9 <= np.hypot(*d.xy_m) <= 0.4 + reach(d) for p in plans for d in p.distractors)
    one = Randomization(sensors=("d435",), tilt_deg=(5.0, 5.0), objects=(2, 2), fingers_prob=0.0)
    assert all(p.camera.sensor == "d435" and p.camera.tilt_deg == 5.0 and len(p.object_ids) == 2 and p.fingers is None
               for p in (plan_scene(s, one, IDS) for s in range(20)))


@pytest.mark.parametrize("bad", [dict(sensors=("kinect3",)), dict(tilt_deg=(10.0, 5.0)), dict(objects=(0, 3)),
                                 dict(fingers_prob=1.5), dict(sensors=())])
def test_bad_ranges_are_refused(bad):
    with pytest.raises(BenchbotError):
        Randomization(**bad)


@pytest.mark.parametrize("name", sorted(SENSORS))
def test_a_known_point_lands_where_the_sensor_intrinsics_say(name):
    intr = SENSORS[name].intrinsics
    t = camera_pose_table(0.6, math.radians(15), math.radians(70), math.radians(30), (0.02, 0.01))
    point = np.array([0.06, -0.04, 0.05])  # top-face centre of a 2 cm cube, table frame
    x, y = TABLE_CENTER_XY[0] + point[0], TABLE_CENTER_XY[1] + point[1]
    box = (f'<geom type="box" size="0.01 0.01 0.01" pos="{x} {y} {point[2] - 0.01}" group="0" '
           'contype="0" conaffinity="0"/>')
    model, info = build_model(None, extra_xml=box, camera=CameraSetup(t, intr))
    assert info.intrinsics == intr
    world = SimWorld({})
    try:
        world.use(model, info)
        depth = world.render_depth()
    finally:
        world.close()
    assert depth.shape == (intr.height, intr.width)
    p_cam = np.linalg.inv(t) @ np.append(point, 1.0)
    row, col = project(intr, p_cam[:3])
    n, d = TablePlane.from_camera_pose(t, 0.0).normal, t[2, 3]
    rows, cols = np.indices(depth.shape)
    from benchbot.perception.geometry import deproject

    top = np.abs(deproject(intr, rows, cols, depth) @ n + d - point[2]) < 1e-3  # pixels of the cube's top face
    assert top.sum() > 30
    assert rows[top].mean() == pytest.approx(row, abs=0.5) and cols[top].mean() == pytest.approx(col, abs=0.5)


def _plan(sensor: str, tilt: float, height: float, objects=("soup-can",), fingers: FingerPlan | None = None,
          seed: int = 0) -> ScenePlan:
    return ScenePlan(seed, CameraPlan(sensor, height, tilt, 120.0, 45.0, (0.01, -0.02)), list(objects), 0.05, [],
                     fingers)


@pytest.mark.parametrize("sensor, tilt, height", [("kinect2", 17.0, 0.55), ("d415", 8.0, 0.85),
                                                  ("azure-nfov", 20.0, 0.7), ("primesense", 0.0, 0.62),
                                                  ("d435", 12.0, 0.75)])
def test_the_rendered_table_has_the_recorded_tilt_and_distance(world, paper, sensor, tilt, height):
    plan = _plan(sensor, tilt, height)
    with planned_scene(world, dict(paper.objects), plan, np.random.default_rng(0)) as sc:
        clean, intr = sc.clean, sc.sensor.intrinsics
        rec_t = plan.camera.t_table_camera()
    plane = fit_table(DepthFrame(np.where(clean < 3, clean, 0), intr))
    assert plane.tilt_deg == pytest.approx(tilt, abs=0.1)
    assert plane.axis_distance_m == pytest.approx(height / math.cos(math.radians(tilt)), abs=0.002)
    truth = TablePlane.from_camera_pose(rec_t, 0.0)
    n, d = truth.normal, truth.distance_m
    assert plane.distance_m == pytest.approx(d, abs=0.002) and np.degrees(np.arccos(plane.normal @ n)) < 0.1


def test_fingers_appear_in_the_frame_when_asked_and_only_then(world, paper):
    fingers = FingerPlan("bottom", 0.4, 0.1, 0.12, 20.0, 0.0, 0.05)
    objects = dict(paper.objects)
    with planned_scene(world, objects, _plan("primesense", 5.0, 0.66, fingers=fingers), np.random.default_rng(0)) as sc:
        with_f, rec = sc.clean.copy(), sc.finger
    with planned_scene(world, objects, _plan("primesense", 5.0, 0.66), np.random.default_rng(0)) as sc:
        without = sc.clean.copy()
    assert rec["pixels_in_view"] > 500 and rec["T_table_tcp"][2][3] == pytest.approx(0.12)
    nearer = with_f < without - 0.02  # the gripper sits between the camera and the table
    assert nearer.sum() == pytest.approx(rec["pixels_in_view"], rel=0.2)
    rows = np.nonzero(nearer)[0]
    assert rows.max() == with_f.shape[0] - 1 and rows.min() > with_f.shape[0] / 3  # enters from the bottom border


def test_same_seed_gives_the_same_image_labels_and_record(world, paper):
    rnd = Randomization(objects=(3, 3), fingers_prob=1.0, distractors=(2, 2))
    objects = dict(paper.objects)
    runs = [make_image(world, objects, plan_scene(11, rnd, IDS), 6, 1, np.random.default_rng([11, 7919]))
            for _ in range(2)]
    a, b = runs
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.metrics, b.metrics)
    np.testing.assert_array_equal(a.objects, b.objects)
    assert a.grasps == b.grasps and json.dumps(a.record, sort_keys=True) == json.dumps(b.record, sort_keys=True)
    other = make_image(world, objects, plan_scene(12, rnd, IDS), 6, 1, np.random.default_rng([12, 7919]))
    assert other.record != a.record


def test_every_drawn_parameter_is_recorded(world, paper):
    rnd = Randomization(objects=(4, 4), distractors=(3, 3), fingers_prob=1.0, sensors=("d415",))
    plan = plan_scene(5, rnd, IDS)
    img = make_image(world, dict(paper.objects), plan, 8, 0, np.random.default_rng([5, 7919]))
    rec = json.loads(json.dumps(img.record))  # JSON-clean
    sens = SENSORS["d415"]
    assert rec["sensor"] == "d415" and rec["seed"] == 5
    assert Intrinsics(**rec["intrinsics"]) == sens.intrinsics == img.intrinsics and rec["noise"] == sens.noise.to_json()
    np.testing.assert_allclose(rec["T_table_camera"], plan.camera.t_table_camera())
    cam = rec["camera"]
    assert (cam["height_m"], cam["tilt_deg"], cam["azimuth_deg"], cam["roll_deg"]) == (
        plan.camera.height_m, plan.camera.tilt_deg, plan.camera.azimuth_deg, plan.camera.roll_deg)
    assert cam["distance_along_axis_m"] == pytest.approx(img.table_distance_m)
    assert [o["id"] for o in rec["objects"]] == plan.object_ids and len(rec["distractors"]) == 3
    assert [tuple(d["size_m"]) for d in rec["distractors"]] == [d.size_m for d in plan.distractors]
    for o in rec["objects"]:  # settled on the table, within the drop area (+ the keep radius)
        t = np.asarray(o["T_table_mesh"])
        np.testing.assert_allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-6)
        assert -0.01 < o["com_m"][2] < 0.2 and np.hypot(*o["com_m"][:2]) < 0.16
    f = rec["fingers"]
    assert f["opening_m"] == plan.fingers.opening_m and np.asarray(f["T_table_tcp"]).shape == (4, 4)
    assert rec["n_grasps"] == len(img.grasps) == len(img.metrics) and 0 < rec["invalid_fraction"] < 0.5
    h, w = img.depth.shape
    assert (h, w) == (sens.intrinsics.height, sens.intrinsics.width)
    assert all(0 <= g.row < h and 0 <= g.col < w and 0 < g.depth_m < img.table_distance_m + 0.2 for g in img.grasps)


def test_clutter_drops_every_object_and_labels_grasps_by_the_object_under_them(world, paper):
    rnd = Randomization(objects=(5, 5), distractors=(0, 0), fingers_prob=0.0, tilt_deg=(0.0, 5.0), sensors=("kinect2",))
    plan = plan_scene(3, rnd, IDS)
    img = make_image(world, dict(paper.objects), plan, 30, 0, np.random.default_rng([3, 7919]))
    assert len(img.record["objects"]) == 5 and len(plan.object_ids) == 5
    assert sum(o["pixels_in_view"] > 100 for o in img.record["objects"]) >= 4
    assert len(set(img.objects.tolist())) >= 3 and img.objects.min() >= 0
    tops = [np.asarray(o["T_table_mesh"])[2, 3] for o in img.record["objects"]]
    assert min(tops) > -0.05  # nothing fell through the table


def test_no_grasp_is_labelled_on_an_object_the_sensor_did_not_measure(world, paper):
    # a Kinect v2 0.52 m above the table: a soup can's top is nearer than its 0.5 m minimum range
    def image(obj):
        plan = ScenePlan(2, CameraPlan("kinect2", 0.52, 2.0, 0.0, 0.0, (0.0, 0.0)), [obj], 0.03, [], None)
        return make_image(world, dict(paper.objects), plan, 10, 0, np.random.default_rng([2, 7919]))

    can, sponge = image("soup-can"), image("sponge")
    rec = can.record["objects"][0]
    assert rec["pixels_in_view"] > 500 and rec["pixels_measured"] < 0.1 * rec["pixels_in_view"]
    assert can.grasps == [] and can.record["n_grasps"] == 0
    rec = sponge.record["objects"][0]
    assert rec["pixels_measured"] > 0.8 * rec["pixels_in_view"] and len(sponge.grasps) == 10

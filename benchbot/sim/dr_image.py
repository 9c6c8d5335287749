"""One domain-randomised datagen image: build the scene a `ScenePlan` describes (sensor, posed camera,
1–5 objects, static distractors), drop the objects, render depth (with the 2F-85 fingers in view when
planned) and the per-pixel geom ids, apply the sensor's noise, inpaint, sample grasps on the visible
objects and label each in physics against the object under its centre. Returns the image, the
labels and the record of every drawn parameter (docs/dataset_format.md)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from benchbot.config.protocol import ObjectSpec
from benchbot.core.errors import BenchbotError
from benchbot.core.types import Grasp, Intrinsics, Pose
from benchbot.perception.table import TablePlane
from benchbot.sim.physics import Sim
from benchbot.sim.randomize import ScenePlan
from benchbot.sim.scene import TABLE_CENTER_XY, CameraSetup, build_model, mesh_in_body
from benchbot.sim.sensors import Sensor, sensor
from benchbot.sim.world import SimWorld

DR_TABLE_HALF = (0.8, 0.8, 0.02)  # a larger table top: tilted wide-angle cameras see far
FINGER_GROUPS = (0, 1, 2)  # scene + pads and finger links + the 2F-85 housing (visual)
SCENE_KEY = "randomized"


@dataclass
class DrImage:
    depth: np.ndarray  # inpainted, H×W metres, the sensor's own size
    grasps: list[Grasp]
    metrics: np.ndarray
    objects: np.ndarray  # per grasp: index into the plan's object list
    intrinsics: Intrinsics
    table_distance_m: float  # along the optical axis
    record: dict


def distractor_xml(plan: ScenePlan) -> str:
    """Static primitives on the table (base frame), part of the depth image and of the physics."""
    out = ""
    for i, d in enumerate(plan.distractors):
        half_h = d.size_m[1] if d.shape == "cylinder" else d.size_m[2]
        kind = "cylinder" if d.shape == "cylinder" else "box"
        x, y = TABLE_CENTER_XY[0] + d.xy_m[0], TABLE_CENTER_XY[1] + d.xy_m[1]
        out += (f'<geom name="distractor_{i}" type="{kind}" size="{" ".join(f"{s:.5f}" for s in d.size_m)}" '
                f'pos="{x:.5f} {y:.5f} {half_h:.5f}" euler="0 0 {d.yaw_rad:.5f}" contype="1" conaffinity="3" '
                f'group="0" rgba="0.4 0.5 0.6 1"/>')
    return out


def finger_pose(plan: ScenePlan, camera: CameraSetup) -> Pose:
    """TCP pose (base frame) that puts the gripper where the plan says: its TCP projects `inset` into
    the image from the planned border, `tcp_height_m` above the table; the fingers point into the
    image (the housing stays outside it), `pitch_deg` below horizontal, the jaw axis rolled by
    `roll_deg` from horizontal — a robot reaching in from the side, as in the shipped PrimeSense frames."""
    f, k = plan.fingers, camera.intrinsics
    if f is None:
        raise BenchbotError("this scene plan has no fingers to pose", "call finger_pose only when plan.fingers is set")
    along_r, along_c = f.along * (k.height - 1), f.along * (k.width - 1)
    r, c = {"top": (f.inset * k.height, along_c), "bottom": ((1 - f.inset) * (k.height - 1), along_c),
            "left": (along_r, f.inset * k.width), "right": (along_r, (1 - f.inset) * (k.width - 1))}[f.border]
    t = camera.t_base_camera()
    ray = t[:3, :3] @ np.array([(c - k.cx) / k.fx, (r - k.cy) / k.fy, 1.0])
    tcp = t[:3, 3] + (f.tcp_height_m - t[2, 3]) / ray[2] * ray
    inward = t[:3, :3] @ np.array([k.cx - c, k.cy - r, 0.0])  # towards the image centre
    inward[2] = 0.0
    inward /= max(np.linalg.norm(inward), 1e-9)
    pitch, roll = math.radians(f.pitch_deg), math.radians(f.roll_deg)
    approach = math.cos(pitch) * inward - math.sin(pitch) * np.array([0.0, 0.0, 1.0])
    side = np.cross(approach, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    jaw = math.cos(roll) * side + math.sin(roll) * np.cross(approach, side)
    return Pose(tcp, np.stack([jaw, np.cross(approach, jaw), approach], axis=1), "base")


def table_depth_map(t_table_camera: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Depth (z along the optical axis) of the table plane at every pixel; inf where the ray misses it."""
    z = TablePlane.from_camera_pose(t_table_camera, 0.0).depth_map(intr)
    return np.where(np.isfinite(z), z, np.inf).astype(np.float32)


def _pose_record(sim, k: int) -> dict:
    """The object's pose in the table frame: its YCB mesh file's frame (T_table_mesh) and its centre
    of mass."""
    b = sim.object_bodies[k]
    t_body = np.eye(4)
    t_body[:3, :3], t_body[:3, 3] = sim.data.xmat[b].reshape(3, 3), sim.data.xpos[b]
    t = t_body @ mesh_in_body(sim.model, f"_{k}" if k else "")
    t[:2, 3] -= TABLE_CENTER_XY
    com = sim.data.xipos[b] - np.array([*TABLE_CENTER_XY, 0.0])
    return {"T_table_mesh": t.tolist(), "com_m": [float(v) for v in com]}


def _owner(seg_obj: np.ndarray, row: float, col: float) -> int:
    """Object index under (row, col), else the nearest object pixel's (−1 if there is none)."""
    h, w = seg_obj.shape
    r, c = min(max(int(round(row)), 0), h - 1), min(max(int(round(col)), 0), w - 1)
    if seg_obj[r, c] >= 0:
        return int(seg_obj[r, c])
    px = np.argwhere(seg_obj >= 0)
    if not len(px):
        return -1
    j = int(np.argmin((px[:, 0] - r) ** 2 + (px[:, 1] - c) ** 2))
    return int(seg_obj[px[j, 0], px[j, 1]])


@dataclass
class Rendered:
    """A planned scene after the drop: its sim (settled), camera, sensor, clean and noisy depth, which
    object each pixel shows (−1: none), and the finger record (None: not in view)."""

    sim: Sim
    settled: tuple
    camera: CameraSetup
    sensor: Sensor
    clean: np.ndarray
    noisy: np.ndarray
    seg_obj: np.ndarray
    finger: dict | None


@contextmanager
def planned_scene(world: SimWorld, objects: dict[str, ObjectSpec], plan: ScenePlan,
                  rng: np.random.Generator) -> Iterator[Rendered]:
    """Build the scene of `plan`, drop its objects, render it through the planned sensor; the scene
    is dropped again on exit."""
    from benchbot.sim.placement import drop_clutter

    sens = sensor(plan.camera.sensor)
    camera = CameraSetup(plan.camera.t_table_camera(), sens.intrinsics)
    specs = [objects[i] for i in plan.object_ids]
    model, info = build_model(specs[0], extra_objects=specs[1:], camera=camera, table_half=DR_TABLE_HALF,
                              extra_xml=distractor_xml(plan))
    sim = world.use(model, info, SCENE_KEY)
    try:
        drop_clutter(sim, rng, plan.drop_radius_m)
        settled = sim.save_state()
        groups: tuple[int, ...] = (0,)
        finger = None
        if plan.fingers is not None:
            groups, pose = FINGER_GROUPS, finger_pose(plan, camera)
            sim.teleport(pose)
            sim.data.qpos[sim.finger_qadr] = (info.gripper.max_opening_m - plan.fingers.opening_m) / 2
            sim.mj.mj_forward(sim.model, sim.data)
            t_tcp = np.eye(4)
            t_tcp[:3, :3], t_tcp[:3, 3] = pose.rotation, pose.position_m - np.array([*TABLE_CENTER_XY, 0.0])
            finger = {**plan.fingers.__dict__, "T_table_tcp": t_tcp.tolist()}
        clean = world.render_depth(groups)
        geom = world.render_geom_ids(groups)
        sim.restore_state(settled)
        body = np.where(geom >= 0, model.geom_bodyid[np.maximum(geom, 0)], -1)
        seg_obj = np.full(geom.shape, -1, np.int32)
        for k, b in enumerate(sim.object_bodies):
            seg_obj[body == b] = k
        if finger is not None:
            finger["pixels_in_view"] = int(np.isin(geom, list(sim.gripper_geoms)).sum())
        noisy = sens.noise.apply(clean, sens.intrinsics, rng)
        yield Rendered(sim, settled, camera, sens, clean, noisy, seg_obj, finger)
    finally:
        world.forget(SCENE_KEY)


def make_image(world: SimWorld, objects: dict[str, ObjectSpec], plan: ScenePlan, grasps_per_image: int,
               perturbations: int, rng: np.random.Generator) -> DrImage:
    from benchbot.perception.geometry import grasp_to_camera
    from benchbot.perception.inpaint import inpaint
    from benchbot.sim.grasps import sample_grasps
    from benchbot.sim.trial import run_trial, sample_perturbations

    with planned_scene(world, objects, plan, rng) as sc:
        sim, intr, t_tc = sc.sim, sc.sensor.intrinsics, sc.camera.t_table_camera
        depth = inpaint(sc.noisy)
        seen = (sc.seg_obj >= 0) & (sc.noisy > 0)  # grasps only where the sensor measured an object
        grasps = sample_grasps(depth, intr, table_depth_map(t_tc, intr), grasps_per_image, rng, object_mask=seen)
        owners = np.array([_owner(sc.seg_obj, g.row, g.col) for g in grasps], np.int32)
        metrics = np.zeros(len(grasps), np.float32)
        t_bc = sc.camera.t_base_camera()
        for i, g in enumerate(grasps):
            sim.select_object(int(owners[i]))
            pose = grasp_to_camera(g, intr).transformed(t_bc, "base")
            trials = sample_perturbations(rng, perturbations)
            metrics[i] = np.mean([run_trial(sim, sc.settled, pose, perturbation=p)[0] for p in trials])
        sim.restore_state(sc.settled)
        plane = TablePlane.from_camera_pose(t_tc, 0.0)
        dist, n, d = plane.axis_distance_m, plane.normal, plane.distance_m
        record = {
            "seed": plan.seed, "sensor": sc.sensor.name, "intrinsics": intr.to_dict(),
            "T_table_camera": t_tc.tolist(), "camera": plan.camera.__dict__ | {"distance_along_axis_m": dist},
            "table_plane_camera": {"normal": [float(v) for v in n], "offset_m": d},
            "noise": sc.sensor.noise.to_json(), "drop_radius_m": plan.drop_radius_m,
            "objects": [{"id": oid, **_pose_record(sim, k), "pixels_in_view": int((sc.seg_obj == k).sum()),
                         "pixels_measured": int((seen & (sc.seg_obj == k)).sum())}
                        for k, oid in enumerate(plan.object_ids)],
            "distractors": [d_.__dict__ for d_ in plan.distractors], "fingers": sc.finger,
            "invalid_fraction": float((sc.noisy == 0).mean()), "n_grasps": len(grasps)}
        return DrImage(depth, grasps, metrics, owners, intr, dist, record)

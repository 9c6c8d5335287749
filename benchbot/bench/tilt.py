"""Tilt sweep (`benchbot bench tilt`): how a detector's grasps hold up when the camera is tilted.

Each scene is one held-out object (benchbot/data/heldout_objects.yaml, never seen in training)
dropped on the MuJoCo table. It is rendered by the overhead camera (0.7 m above the table centre,
the training camera) and by cameras 0.7 m from the table centre whose axis is tilted by each angle
(azimuth drawn per scene), with the simulated sensor noise and inpainting of `datagen`. A detector
sees the tilted frame only (table plane fitted, workspace mask, as in a trial); its grasp is moved
exactly, through its 3-D pose, into the overhead camera and judged there by the robustness
evaluator. So every tilt is judged on the same overhead view of the same scene, and only what the
detector saw changes. Seeds are fixed: the same scenes every run.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from benchbot.core.paths import DATA_DIR
from benchbot.core.types import DepthFrame, Grasp

HELDOUT_OBJECTS = DATA_DIR / "heldout_objects.yaml"  # never seen in training
DISTANCE_M = 0.70


def look_at(eye: np.ndarray, target: np.ndarray, col_hint: np.ndarray) -> np.ndarray:
    """T_base_camera (OpenCV axes) of a camera at `eye` looking at `target`, image +col along
    `col_hint` projected onto the image plane."""
    z = (target - eye) / np.linalg.norm(target - eye)
    x = col_hint - (col_hint @ z) * z
    x /= np.linalg.norm(x)
    t = np.eye(4)
    t[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    t[:3, 3] = eye
    return t


def tilted_pose(tilt_deg: float, azimuth_rad: float, target: np.ndarray) -> np.ndarray:
    """A camera DISTANCE_M from the table point `target`, its axis `tilt_deg` from the vertical; at 0°
    it is the scene's overhead camera (image +col along base −y)."""
    t = math.radians(tilt_deg)
    eye = target + DISTANCE_M * np.array([math.sin(t) * math.cos(azimuth_rad), math.sin(t) * math.sin(azimuth_rad),
                                          math.cos(t)])
    return look_at(eye, target, np.array([0.0, -1.0, 0.0]))


def _place_camera(sim, t_base_camera: np.ndarray) -> None:
    """Move the scene's depth camera to an OpenCV pose (MuJoCo cameras look along −z, y up)."""
    import mujoco

    cam = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_CAMERA, "depth")
    r = t_base_camera[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, r.reshape(-1))
    sim.model.cam_pos[cam] = t_base_camera[:3, 3]
    sim.model.cam_quat[cam] = quat
    mujoco.mj_forward(sim.model, sim.data)


def _capture(world, rng: np.random.Generator, intr) -> DepthFrame:
    """A noisy render, inpainted as the runner inpaints camera frames."""
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.sim.noise import DepthNoise

    return inpaint_frame(DepthFrame(DepthNoise().apply(world.render_depth(), rng), intr))


def to_overhead(grasp: Grasp, frame: DepthFrame, t_base_tilted: np.ndarray, t_base_overhead: np.ndarray) -> Grasp:
    """A grasp on the tilted frame → the same physical grasp (approach ⟂ table) in the overhead camera."""
    from benchbot.perception.geometry import camera_to_grasp, grasp_to_camera
    from benchbot.perception.table import table_plane

    pose = grasp_to_camera(grasp, frame.intrinsics, table_plane(frame).normal)
    pose = pose.transformed(np.linalg.inv(t_base_overhead) @ t_base_tilted, "camera")
    return camera_to_grasp(pose, frame.intrinsics, grasp.score)


@dataclass
class TiltRow:
    method: str
    tilt_deg: float
    n: int
    robust_pct: float
    mean_q: float
    failed: int
    median_detect_ms: float


def run_sweep(methods: Sequence[str] = ("gqstn", "gqstn-refine", "centroid"),
              tilts: Sequence[float] = (0.0, 5.0, 10.0, 15.0, 20.0), scenes: int = 30, seed: int = 91000,
              echo: Callable[[str], None] = print) -> list[TiltRow]:
    """Run the sweep (see the module doc), print a table and return its rows."""
    from benchbot.config.protocol import load_objects
    from benchbot.core.errors import BenchbotError
    from benchbot.detectors import load_detector
    from benchbot.models.robustness import load_evaluator, robustness_of
    from benchbot.perception.table import META_KEY, TablePlane
    from benchbot.perception.workspace import prepare_frame
    from benchbot.sim.placement import drop_object
    from benchbot.sim.scene import TABLE_CENTER_XY, camera_pose_base, sim_intrinsics
    from benchbot.sim.world import SimWorld

    objects = load_objects(HELDOUT_OBJECTS)
    ids = sorted(objects)
    world = SimWorld(objects, DISTANCE_M)
    evaluator = load_evaluator()
    dets = {m: load_detector(m) for m in methods}
    intr = sim_intrinsics()
    target = np.array([TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], 0.0])
    t_overhead = camera_pose_base(DISTANCE_M)
    res: dict[tuple[str, float], list[tuple[float | None, float]]] = {(m, t): [] for m in methods for t in tilts}
    try:
        for s in range(scenes):
            rng = np.random.default_rng([seed, s])
            sim = world.load(ids[s % len(ids)])
            drop_object(sim, rng)
            azimuth = float(rng.uniform(0, 2 * math.pi))
            _place_camera(sim, t_overhead)
            judge = _capture(world, rng, intr)
            judge.meta[META_KEY] = TablePlane.overhead(DISTANCE_M, "pose")
            for tilt in tilts:
                t_cam = tilted_pose(tilt, azimuth, target)
                _place_camera(sim, t_cam)
                seen = prepare_frame(_capture(world, rng, intr))
                for m, det in dets.items():
                    t0 = time.perf_counter()
                    try:
                        g = det.detect(seen)
                    except BenchbotError:
                        res[(m, tilt)].append((None, float("nan")))
                        continue
                    ms = 1e3 * (time.perf_counter() - t0)
                    q, _ = robustness_of(evaluator, judge, to_overhead(g, seen, t_cam, t_overhead))
                    res[(m, tilt)].append((q if q is not None else 0.0, ms))
            _place_camera(sim, t_overhead)
    finally:
        world.close()
    rows = []
    for (m, t), outs in res.items():
        qs = np.array([q for q, _ in outs if q is not None])
        detect_ms = [d for q, d in outs if q is not None]
        rows.append(TiltRow(m, t, len(outs),
                            100.0 * float((qs >= evaluator.threshold).mean()) if qs.size else float("nan"),
                            float(qs.mean()) if qs.size else float("nan"), sum(q is None for q, _ in outs),
                            float(np.median(detect_ms)) if detect_ms else float("nan")))
    echo(f"Tilt sweep: {scenes} MuJoCo scenes of the held-out objects, camera {DISTANCE_M} m from the table centre; "
         f"robust = {evaluator.name} q ≥ {evaluator.threshold:g} on the overhead view of the same scene")
    echo("| method | " + " | ".join(f"{t:g}°" for t in tilts) + " | max drop from 0° |")
    echo("|---|" + "---:|" * (len(tilts) + 1))
    for m in methods:
        r = [x for x in rows if x.method == m]
        base = r[0].robust_pct
        drop = max(base - x.robust_pct for x in r)
        echo(f"| {m} robust % | " + " | ".join(f"{x.robust_pct:.1f}" for x in r) + f" | {drop:.1f} |")
    return rows

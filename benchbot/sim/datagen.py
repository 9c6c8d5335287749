"""Synthetic GQ-CNN training data labelled by physics, written in docs/dataset_format.md's layout.

Per image (seed = seed_start + index): a random object dropped on the table, a noisy Kinect-like
depth render, inpainted; grasp candidates from depth edges; each grasp executed in MuJoCo from the
settled state, nominally and under `perturbations` random perturbations (object pose, pad
friction); metric = fraction of those trials that lifted the object. Work is split into units of
`UNIT_IMAGES` images written atomically to `.parts/`, so a killed run resumes where it stopped and
any number of worker processes gives the same arrays; the parts are then packed into `tensors/`
(1000 rows per file) and `images/` (100 images per file).

With `randomize` (randomize.py, `benchbot datagen --randomize`) each image has its own sensor,
camera pose, 1–5 objects, distractors and fingers (dr_image.py); grasps and crops are in that
camera's pixels, images are padded to the largest sensor's size, and `images/scenes_NNNNN.json`
records every drawn parameter per image.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchbot.config.protocol import ObjectSpec, default_protocol_path, load_protocol
from benchbot.core.errors import BenchbotError
from benchbot.core.types import Intrinsics
from benchbot.sim.dataset_io import (
    IMAGES_PER_FILE,
    ROWS_PER_FILE,
    TENSOR_FIELDS,
    ImageWriter,
    Rechunker,
    merge_shards,  # noqa: F401 - re-exported: callers import it from datagen
    save_npz_atomic,
    write_json_atomic,
)
from benchbot.sim.randomize import Randomization
from benchbot.sim.scene import KINECT2_SIZE
from benchbot.sim.sensors import sensor

UNIT_IMAGES = 10
ROBUST_THRESHOLD = 0.5
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GenConfig:
    n_images: int
    seed_start: int
    grasps_per_image: int
    perturbations: int
    object_ids: tuple[str, ...]
    camera_height_m: float | None = 0.70  # the fixed overhead camera (None with randomize)
    unit_images: int = UNIT_IMAGES  # images per resumable unit of work
    randomize: Randomization | None = None  # domain randomisation (randomize.py); None: the fixed scene

    def to_json(self) -> dict:
        out = {"n_images": self.n_images, "seed_start": self.seed_start,
               "grasps_per_image": self.grasps_per_image, "perturbations": self.perturbations,
               "object_ids": list(self.object_ids), "camera_height_m": self.camera_height_m,
               "unit_images": self.unit_images}
        return out | ({"randomize": self.randomize.to_json()} if self.randomize else {})

    def canvas_hw(self) -> tuple[int, int]:
        """Size every stored image is padded to (bottom / right, with 0): the largest chosen sensor's."""
        if self.randomize is None:
            return KINECT2_SIZE
        sizes = [(sensor(s).intrinsics.height, sensor(s).intrinsics.width) for s in self.randomize.sensors]
        return max(h for h, _ in sizes), max(w for _, w in sizes)


@dataclass
class ImageResult:
    """One generated image: depth (its camera's size), grasps, their metrics and object labels."""

    depth: np.ndarray
    grasps: list
    metrics: np.ndarray
    labels: np.ndarray  # per grasp, index into GenConfig.object_ids
    intrinsics: Intrinsics
    table_distance_m: float  # along the optical axis (crop scale)
    record: dict | None = None  # every randomised parameter (randomized datasets only)


# ---------------------------------------------------------------- one unit of work

class _Worker:
    """Per-process state: the compiled scenes (one per object) and their renderers."""

    def __init__(self, objects: dict[str, ObjectSpec], camera_height_m: float | None) -> None:
        from benchbot.sim.world import SimWorld

        self.objects = objects
        self.world = SimWorld(objects, camera_height_m or 0.70)

    def image(self, seed: int, cfg: GenConfig) -> ImageResult:
        if cfg.randomize is None:
            return self._fixed_image(seed, cfg)
        from benchbot.sim.dr_image import make_image
        from benchbot.sim.randomize import plan_scene

        plan = plan_scene(seed, cfg.randomize, cfg.object_ids)
        img = make_image(self.world, self.objects, plan, cfg.grasps_per_image, cfg.perturbations,
                         np.random.default_rng([seed, 7919]))
        labels = np.array([cfg.object_ids.index(plan.object_ids[k]) for k in img.objects], np.int32)
        return ImageResult(img.depth, img.grasps, img.metrics, labels, img.intrinsics, img.table_distance_m,
                           img.record)

    def _fixed_image(self, seed: int, cfg: GenConfig) -> ImageResult:
        """One image of the fixed overhead scene: one random object."""
        from benchbot.perception.geometry import grasp_to_camera
        from benchbot.perception.inpaint import inpaint
        from benchbot.perception.table import TablePlane
        from benchbot.sim.grasps import sample_grasps
        from benchbot.sim.noise import DepthNoise
        from benchbot.sim.placement import drop_object
        from benchbot.sim.scene import camera_pose_base
        from benchbot.sim.trial import run_trial, sample_perturbations

        rng = np.random.default_rng([seed, 7919])
        label = int(rng.integers(len(cfg.object_ids)))
        sim = self.world.load(cfg.object_ids[label])
        drop_object(sim, rng)
        settled = sim.save_state()
        depth = inpaint(DepthNoise().apply(self.world.render_depth(), rng))
        intr = sim.info.intrinsics
        height_m = cfg.camera_height_m
        if height_m is None:
            raise BenchbotError("a fixed-camera dataset needs camera_height_m",
                                "give the overhead camera's height (e.g. 0.70), or randomize the scenes")
        t_bc = camera_pose_base(height_m)
        dist = TablePlane.from_camera_pose(t_bc, 0.0).axis_distance_m  # straight down: the camera height
        grasps = sample_grasps(depth, intr, dist, cfg.grasps_per_image, rng)
        metrics = np.zeros(len(grasps), np.float32)
        for i, g in enumerate(grasps):
            pose = grasp_to_camera(g, intr).transformed(t_bc, "base")
            trials = sample_perturbations(rng, cfg.perturbations)
            metrics[i] = np.mean([run_trial(sim, settled, pose, perturbation=p)[0] for p in trials])
        return ImageResult(depth, grasps, metrics, np.full(len(grasps), label, np.int32), intr, dist)


def _unit_path(out: Path, unit: int) -> Path:
    return out / ".parts" / f"unit_{unit:06d}.npz"


def _run_unit(out: Path, unit: int, cfg: GenConfig, worker: _Worker) -> int:
    """Generate one unit of images and save it atomically; returns the number of grasps."""
    from benchbot.perception.crops import (
        DEXNET2,
        DEXNET2_PX_PER_M,
        DEXNET4,
        DEXNET4_PJ_PX_PER_M,
        extract_crops,
        scale_factor,
    )

    first = unit * cfg.unit_images
    idx = range(first, min(first + cfg.unit_images, cfg.n_images))
    depths, scenes = [], []
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("c32", "c96", "hand", "metric", "img", "obj", "grasps")}
    canvas = np.zeros(cfg.canvas_hw(), np.float32)
    for i in idx:
        res = worker.image(cfg.seed_start + i, cfg)
        intr, depth, grasps = res.intrinsics, res.depth, res.grasps
        padded = canvas.copy()
        padded[:depth.shape[0], :depth.shape[1]] = depth
        depths.append(padded)
        if res.record is not None:
            scenes.append(json.dumps({"image": i, **res.record}, sort_keys=True))
        if grasps:
            r = np.array([g.row for g in grasps])
            c = np.array([g.col for g in grasps])
            a = np.array([g.angle_rad for g in grasps])
            s2 = scale_factor(intr, res.table_distance_m, DEXNET2_PX_PER_M)
            s4 = scale_factor(intr, res.table_distance_m, DEXNET4_PJ_PX_PER_M)
            rows["c32"].append(extract_crops(depth, r, c, a, DEXNET2, s2).numpy().transpose(0, 2, 3, 1))
            rows["c96"].append(extract_crops(depth, r, c, a, DEXNET4, s4).numpy().transpose(0, 2, 3, 1))
            rows["hand"].append(np.array([[g.row, g.col, g.depth_m, g.angle_rad, g.row - intr.cy, g.col - intr.cx,
                                           g.width_px] for g in grasps], np.float32))
            rows["metric"].append(res.metrics)
            rows["img"].append(np.full(len(grasps), i, np.int32))
            rows["obj"].append(res.labels)
            rows["grasps"].append(np.array([[i, g.row, g.col, g.angle_rad, g.width_px, g.depth_m, m,
                                             float(m >= ROBUST_THRESHOLD), lab]
                                            for g, m, lab in zip(grasps, res.metrics, res.labels, strict=True)],
                                           np.float32))
    shapes = {"c32": (0, 32, 32, 1), "c96": (0, 96, 96, 1), "hand": (0, 7), "metric": (0,), "img": (0,),
              "obj": (0,), "grasps": (0, 9)}
    dtypes = {"img": np.int32, "obj": np.int32}
    arrays = {k: (np.concatenate(v) if v else np.zeros(shapes[k], dtypes.get(k, np.float32))) for k, v in rows.items()}
    arrays["depth"] = np.stack(depths)[..., None].astype(np.float32)
    if cfg.randomize is not None:
        arrays["scenes"] = np.array(scenes)
    save_npz_atomic(_unit_path(out, unit), **arrays)
    return len(arrays["metric"])


_WORKER: _Worker | None = None


def _pool_init(objects: dict[str, ObjectSpec], camera_height_m: float) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    _WORKER = _Worker(objects, camera_height_m)


def _pool_unit(args: tuple[str, int, GenConfig]) -> tuple[int, int]:
    out, unit, cfg = args
    assert _WORKER is not None
    return unit, _run_unit(Path(out), unit, cfg, _WORKER)


def _clear_layout(out: Path) -> None:
    for sub in ("tensors", "images"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)


def _pack(out: Path, n_units: int) -> tuple[int, int]:
    """Pack `.parts/unit_*.npz` into tensors/ and images/; returns (images, grasps)."""
    _clear_layout(out)
    tens = Rechunker(out / "tensors", TENSOR_FIELDS, ROWS_PER_FILE)
    imgs = ImageWriter(out / "images")
    for u in range(n_units):
        with np.load(_unit_path(out, u)) as z:
            tens.add({"depth_ims_tf_table": z["c32"], "depth_ims_tf_table_96": z["c96"], "hand_poses": z["hand"],
                      "robust_ferrari_canny": z["metric"], "image_labels": z["img"], "object_labels": z["obj"]})
            imgs.add(z["depth"], z["grasps"], [json.loads(str(r)) for r in z["scenes"]] if "scenes" in z else ())
    tens.finish()
    imgs.finish()
    return imgs.n_images, tens.rows


def _meta(cfg: GenConfig, n_images: int, n_grasps: int, objects: dict[str, ObjectSpec], wall_s: float) -> dict:
    from benchbot.perception.crops import DEXNET2, DEXNET4
    from benchbot.sim.scene import GripperGeometry, sim_intrinsics
    from benchbot.sim.trial import TrialSettings

    g = GripperGeometry()
    rnd = cfg.randomize
    dr = {} if rnd is None else {
        "randomization": rnd.to_json(), "sensors": {n: sensor(n).to_json() for n in rnd.sensors},
        "canvas_hw": list(cfg.canvas_hw()),
        "scene_records": "images/scenes_NNNNN.json: one record per image (camera pose T_table_camera, "
                         "intrinsics, sensor, noise, objects and their poses, distractors, fingers); each "
                         "image is padded with 0 to canvas_hw at the bottom and right"}
    return dr | {
        "generator": "benchbot.sim.datagen", "format_version": FORMAT_VERSION if rnd is None else 2, "complete": True,
        "config": cfg.to_json(), "seed_range": [cfg.seed_start, cfg.seed_start + cfg.n_images],
        "camera_intrinsics": sim_intrinsics().to_dict() if rnd is None else None,
        "table_distance_m": cfg.camera_height_m,
        "gripper_max_width_m": g.max_opening_m,
        "crop_sizes": {"depth_ims_tf_table": [DEXNET2.crop_px, DEXNET2.out_px],
                       "depth_ims_tf_table_96": [DEXNET4.crop_px, DEXNET4.out_px]},
        "counts": {"images": n_images, "grasps": n_grasps,
                   "tensor_files": -(-n_grasps // ROWS_PER_FILE), "image_files": -(-n_images // IMAGES_PER_FILE)},
        "rows_per_file": ROWS_PER_FILE, "images_per_file": IMAGES_PER_FILE, "fields": list(TENSOR_FIELDS),
        "metric": {"name": "physics_lift_fraction", "threshold": ROBUST_THRESHOLD,
                   "description": "fraction of physics trials (nominal + perturbed object pose and pad friction) in "
                                  "which the MuJoCo parallel jaw lifted the object by >= 5 cm and held it; "
                                  "robust if metric >= threshold"
                                  + ("; in clutter, the object under the grasp centre (its label) must be the "
                                     "one lifted, and only it is perturbed" if rnd else "")},
        "objects": [{"label": i, "id": oid, "sim_mesh": objects[oid].sim_mesh} for i, oid in enumerate(cfg.object_ids)],
        "trial_settings": TrialSettings().__dict__, "wall_s": round(wall_s, 2),
    }


def _progress(enabled: bool, total: int, done: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(TextColumn("datagen"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                 TimeRemainingColumn(), disable=not enabled)
    task = p.add_task("images", total=total, completed=done)
    return p, task


def generate(out_dir: str | Path, *, n_images: int, seed_start: int = 0, workers: int = 1,
             grasps_per_image: int = 50, perturbations: int = 4, resume: bool = True, progress: bool = True,
             object_ids: Iterable[str] | None = None, objects_file: str | Path | None = None,
             keep_parts: bool = False, randomize: Randomization | None = None) -> dict:
    """Generate a dataset in `out_dir`; returns its meta.json content. See the module docstring;
    `randomize`: domain randomisation (randomize.py), None: the fixed overhead scene."""
    if n_images < 1 or grasps_per_image < 1 or perturbations < 0 or workers < 1:
        raise BenchbotError("n_images, grasps_per_image and workers must be >= 1, perturbations >= 0",
                            "pass positive counts")
    proto = load_protocol(default_protocol_path(), objects_file)
    from benchbot.config.protocol import load_objects

    all_objects = load_objects(objects_file) if objects_file else dict(proto.objects)
    ids = tuple(object_ids) if object_ids else tuple(proto.protocol.objects)
    missing = [i for i in ids if i not in all_objects or not all_objects[i].sim_mesh]
    if missing:
        raise BenchbotError(f"object '{missing[0]}' has no sim_mesh", "add sim_mesh to objects.yaml or drop the object")
    objects = {i: all_objects[i] for i in ids}
    cfg = GenConfig(n_images, seed_start, grasps_per_image, perturbations, ids, unit_images=UNIT_IMAGES,
                    camera_height_m=None if randomize else 0.70, randomize=randomize)
    size = lambda u: min(cfg.unit_images, n_images - u * cfg.unit_images)  # noqa: E731
    out = Path(out_dir)
    meta_path = out / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if resume and old.get("complete") and old.get("config") == cfg.to_json():
            if not keep_parts and (out / ".parts").exists():  # killed just before the clean-up
                shutil.rmtree(out / ".parts")
            return old  # already done
        if not resume:
            raise BenchbotError(f"{out} already holds a dataset", "pick a new folder or pass resume=True")
        raise BenchbotError(f"{out} holds a dataset made with other settings", "pick a new folder")
    parts = out / ".parts"
    parts.mkdir(parents=True, exist_ok=True)
    cfg_path = parts / "config.json"
    if cfg_path.exists() and json.loads(cfg_path.read_text()) != cfg.to_json():
        raise BenchbotError(f"{out} holds an unfinished run with other settings",
                            "resume it with the same settings or pick a new folder")
    write_json_atomic(cfg_path, cfg.to_json())
    n_units = -(-n_images // cfg.unit_images)
    todo = [u for u in range(n_units) if not (resume and _unit_path(out, u).exists())]
    done_images = sum(size(u) for u in range(n_units) if u not in set(todo))
    t0 = time.perf_counter()
    bar, task = _progress(progress, n_images, done_images)
    with bar:
        if workers == 1:
            worker = _Worker(objects, cfg.camera_height_m)
            for u in todo:
                _run_unit(out, u, cfg, worker)
                bar.advance(task, size(u))
            worker.world.close()
        elif todo:
            ctx = mp.get_context("spawn")  # fresh processes: each makes its own GL context
            with ctx.Pool(workers, initializer=_pool_init, initargs=(objects, cfg.camera_height_m)) as pool:
                for u, _ in pool.imap_unordered(_pool_unit, [(str(out), u, cfg) for u in todo]):
                    bar.advance(task, size(u))
    n_img, n_grasps = _pack(out, n_units)
    meta = _meta(cfg, n_img, n_grasps, objects, time.perf_counter() - t0)
    write_json_atomic(meta_path, meta)
    if not keep_parts:
        shutil.rmtree(parts)
    return meta

"""Training data in the rectified view: what a learned detector sees at inference, made from
domain-randomised datagen images (`benchbot datagen --randomize`).

Per source image (its own sensor, camera pose, clutter, fingers): the same steps as a frame of
`benchbot run` / `eval --frames` — table plane (here the recorded one, from the image's camera pose
T_table_camera), automatic workspace mask (`prepare_frame`), then `model_view` with the model's
training view and focus on the largest object — and its ground-truth grasps mapped into the virtual
view with `Rectified.to_virtual`. The view focuses on the object with the most robust grasps (at
inference: the largest blob) and only its grasps survive (centre inside the view, on a pixel standing
above the table): the other objects are replaced by the table. The result is an ordinary image
dataset (docs/dataset_format.md, `images/` only) whose frames are the views: overhead camera at the
view's table distance and intrinsics, so `benchbot train gqstn --view-m <side/px_per_m>` reads it
unchanged.

Sources: finished datasets (images/scenes_NNNNN.json) or unfinished ones (their `.parts/` units),
read in place and never modified.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError, shown
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.perception.rectify import Rectified, View, model_view
from benchbot.perception.table import META_KEY, TablePlane
from benchbot.train.data import (
    G_ANGLE,
    G_COL,
    G_DEPTH,
    G_IMAGE,
    G_OBJECT,
    G_ROBUST,
    G_ROW,
    G_WIDTH,
    load_array,
    numbered_files,
    read_meta,
)

MIN_HEIGHT_M = 0.003  # a kept grasp's centre must stand this far above the table in the view
FORMAT = "benchbot-rectified-view"
ONLY_RANDOMIZED = "rectify only datasets made with `datagen --randomize`"


@dataclass
class SourceImage:
    source: str
    image: int
    depth_m: np.ndarray  # H×W, the sensor's own size (the canvas padding cut off)
    intrinsics: Intrinsics
    record: dict[str, Any]
    grasps: np.ndarray  # rows in the images/grasps layout


def _intrinsics(rec: dict[str, Any]) -> Intrinsics:
    i = rec["intrinsics"]
    return Intrinsics(float(i["fx"]), float(i["fy"]), float(i["cx"]), float(i["cy"]), int(i["width"]), int(i["height"]))


def _image(source: str, depth: np.ndarray, rec: dict[str, Any], grasps: np.ndarray) -> SourceImage:
    intr = _intrinsics(rec)
    d = np.asarray(depth[..., 0] if depth.ndim == 3 else depth, np.float32)[:intr.height, :intr.width]
    return SourceImage(source, int(rec["image"]), d, intr, rec, grasps[grasps[:, G_IMAGE] == rec["image"]])


def iter_source(folder: str | Path) -> Iterator[SourceImage]:
    """The images of a randomised dataset, finished (images/) or not (.parts/ units, in order)."""
    folder = Path(folder)
    images = folder / "images"
    if (folder / "meta.json").is_file() and images.is_dir():
        for path in numbered_files(images, "depth_ims"):
            k = path.name[len("depth_ims_"):-len(".npz")]
            scenes = images / f"scenes_{k}.json"
            if not scenes.is_file():
                raise BenchbotError(f"{shown(str(scenes), 200)} is missing", ONLY_RANDOMIZED)
            depth = load_array(path)
            grasps = load_array(images / f"grasps_{k}.npz").reshape(-1, 9)
            recs = json.loads(scenes.read_text())["scenes"]
            first = int(recs[0]["image"]) if recs else 0
            for rec in recs:
                yield _image(str(folder), depth[int(rec["image"]) - first], rec, grasps)
        return
    parts = sorted((folder / ".parts").glob("unit_*.npz"))
    if not parts:
        raise BenchbotError(f"{shown(str(folder), 200)} holds neither a finished dataset nor .parts/ units",
                            "point at a `benchbot datagen --randomize` output folder")
    for part in parts:
        with np.load(part) as z:
            if "scenes" not in z.files:
                raise BenchbotError(f"{shown(str(part), 200)} has no scene records", ONLY_RANDOMIZED)
            depth, grasps = z["depth"], z["grasps"].reshape(-1, 9)
            for i, r in enumerate(z["scenes"]):
                yield _image(str(folder), depth[i], json.loads(str(r)), grasps)


def source_meta(folder: str | Path) -> dict[str, Any]:
    """meta.json of a finished source, else the unfinished run's .parts/config.json as {"config": …}."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta:
        return meta
    cfg = folder / ".parts" / "config.json"
    return {"config": json.loads(cfg.read_text())} if cfg.is_file() else {}


def table_of(rec: dict[str, Any]) -> TablePlane:
    """The image's table plane from its recorded camera pose (table frame: z up, table at z = 0)."""
    return TablePlane.from_camera_pose(np.asarray(rec["T_table_camera"], float), 0.0)


def focus_label(rows: np.ndarray) -> int | None:
    """The object label a training view focuses on: the one with most robust ground-truth grasps
    (most grasps when none is robust); None without grasps."""
    if not len(rows):
        return None
    robust = rows[rows[:, G_ROBUST] > 0]
    labels, counts = np.unique((robust if len(robust) else rows)[:, G_OBJECT], return_counts=True)
    return int(labels[int(np.argmax(counts))])


def rectify_grasps(rect: Rectified, rows: np.ndarray) -> np.ndarray:
    """Ground-truth rows (images/grasps layout) of a real frame → the same rows in the virtual view
    (centre, angle, width, depth replaced; other columns kept), only those whose centre lies inside
    the view on a pixel standing above the table (the objects hidden by the focus show table)."""
    side = rect.view.side
    depth = rect.frame.depth_m
    out = []
    for r in rows:
        g = rect.to_virtual(Grasp(float(r[G_ROW]), float(r[G_COL]), float(r[G_ANGLE]), float(r[G_WIDTH]),
                                  float(r[G_DEPTH]), None))
        ri, ci = int(round(g.row)), int(round(g.col))
        if not (g.is_finite() and 0 <= ri < side and 0 <= ci < side):
            continue
        if depth[ri, ci] > rect.view.table_distance_m - MIN_HEIGHT_M:  # on the table: a hidden object
            continue
        v = r.copy()
        v[[G_ROW, G_COL, G_ANGLE, G_WIDTH, G_DEPTH]] = g.row, g.col, g.angle_rad, g.width_px, g.depth_m
        out.append(v)
    return np.array(out) if out else np.zeros((0, rows.shape[1]), rows.dtype)


def rectify_image(img: SourceImage, view: View, focus: str = "largest") -> tuple[Rectified, np.ndarray]:
    """What a detector sees of a source image (see the module doc; the focus is the object with the
    most robust grasps, not the largest blob) and its grasps on that object in that view."""
    from benchbot.perception.workspace import prepare_frame

    plane = table_of(img.record)
    frame = DepthFrame(img.depth_m, img.intrinsics, 0.0, {META_KEY: plane})
    seen = prepare_frame(frame)
    label = focus_label(img.grasps)
    rows = img.grasps[img.grasps[:, G_OBJECT] == label] if label is not None else img.grasps[:0]
    rect = model_view(seen, view, focus, plane, pick_px=rows[:, [G_ROW, G_COL]] if len(rows) else None)
    return rect, rectify_grasps(rect, rows)


def _record(img: SourceImage, rect: Rectified, kept: int) -> dict[str, Any]:
    cam = img.record.get("camera", {})
    return {"source": img.source, "source_image": img.image, "sensor": img.record.get("sensor"),
            "tilt_deg": cam.get("tilt_deg"), "height_m": cam.get("height_m"),
            "objects": [o.get("id") for o in img.record.get("objects", [])],
            "fingers": img.record.get("fingers") is not None, "grasps_in": int(len(img.grasps)),
            "grasps_kept": kept, "holes_frac": round(float(rect.holes.mean()), 4)}


def _write_views(sources: Sequence[str | Path], tmp: Path, view: View, focus: str, limit: int | None,
                 on_image: Any) -> tuple[Any, list[dict[str, Any]], dict[str, int], int]:
    """The views and grasps of `sources` into tmp/images; (writer, per-view records, skipped counts,
    source images read)."""
    from benchbot.sim.dataset_io import ImageWriter

    writer = ImageWriter(tmp / "images")
    records, skipped = [], {"no_object": 0, "no_grasp_on_object": 0, "error": 0}
    n = 0
    for src in sources:
        for img in iter_source(src):
            if limit is not None and n >= limit:
                break
            n += 1
            try:
                rect, rows = rectify_image(img, view, focus)
            except BenchbotError:
                skipped["error"] += 1
                continue
            if not len(rows):
                skipped["no_grasp_on_object" if len(img.grasps) else "no_object"] += 1
                continue
            k = writer.n_images
            rows = rows.astype(np.float32)
            rows[:, G_IMAGE] = k
            writer.add(rect.frame.depth_m[None, ..., None].astype(np.float32), rows)
            records.append({"image": k, **_record(img, rect, len(rows))})
            if on_image:
                on_image(n)
    writer.finish()
    if writer.n_images == 0:
        raise BenchbotError("no source image kept a grasp on its focused object", "check the sources")
    return writer, records, skipped, n


def make_view_dataset(sources: Sequence[str | Path], out: str | Path, view: View | dict[str, Any],
                      focus: str = "largest", limit: int | None = None,
                      on_image: Any = None) -> dict[str, Any]:
    """Write the rectified-view dataset of `sources` to `out` (a new folder, written whole or not at
    all); returns its meta.json content."""
    from benchbot.sim.dataset_io import write_json_atomic

    view = View.from_meta(view)
    out = Path(out)
    if out.exists():
        raise BenchbotError(f"{shown(str(out), 200)} already exists", "pick a new output folder")
    metas = [source_meta(s) for s in sources]
    objects = [m["config"].get("object_ids") for m in metas if m.get("config")]
    if any(o != objects[0] for o in objects):
        raise BenchbotError("the sources were made with different object lists", "rectify them into separate datasets")
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        writer, records, skipped, n = _write_views(sources, tmp, view, focus, limit, on_image)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written is left behind
        raise
    write_json_atomic(tmp / "images" / "views.json", {"views": records})
    first = metas[0]
    meta = {"generator": "benchbot.train.rectified", "format": FORMAT, "complete": True,
            "camera_intrinsics": view.intrinsics.to_dict(), "table_distance_m": view.table_distance_m,
            "view": {"px_per_m": view.px_per_m, "side": view.side, "table_distance_m": view.table_distance_m},
            "focus": focus, "sources": [str(s) for s in sources], "source_images": n, "skipped": skipped,
            "metric": first.get("metric", {"name": "physics_lift_fraction", "threshold": 0.5}),
            "objects": first.get("objects") or [{"label": i, "id": o}
                                                for i, o in enumerate((objects or [None])[0] or [])],
            "counts": {"images": writer.n_images, "grasps": int(sum(r["grasps_kept"] for r in records)),
                       "image_files": writer.depth.files},
            "per_image": "images/views.json: source image, sensor, tilt, objects, grasps kept"}
    write_json_atomic(tmp / "meta.json", meta)
    tmp.rename(out)
    return meta

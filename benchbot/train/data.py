"""Datasets in the Dex-Net 2.0 layout (docs/dataset_format.md), streamed file by file.

Two forms:
* `TensorStream` — rows of `tensors/<field>_NNNNN.npz` (grasp-aligned crops, hand poses, metric),
  the form GQ-CNNs train on. Robust label: metric > threshold (0.002 for Dex-Net's Ferrari–Canny
  metric, meta.json's threshold for benchbot physics data).
* `ImageStream` — full depth images (`images/depth_ims_NNNNN.npz`) with their ground-truth grasps
  (`images/grasps_NNNNN.npz`), the form the one-shot detectors (GQ-STN, MultiGrasp) train on.

Both stream one file at a time (never the whole dataset in memory) and split 80/20 by *object*
(or by image when an image shows several objects), never by row: every grasp of one object lands
on the same side, so nothing leaks from training into evaluation. The two streams share the split
and file-walking code, which is why they stay in one module (~410 lines).
"""
from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.models.gqstn import grasp_to_params, letterbox, normalised_view, square_symmetry, wrap_half_turn
from benchbot.models.multigrasp import MultiGraspConfig, encode_targets
from benchbot.perception.table import TablePlane

DEXNET_THRESHOLD = 0.002
TRAIN_FRACTION = 0.8
# columns of images/grasps_NNNNN.npz
G_IMAGE, G_ROW, G_COL, G_ANGLE, G_WIDTH, G_DEPTH, G_METRIC, G_ROBUST, G_OBJECT = range(9)
# (frame as its camera saw it, grasp rows in its pixels) → (depth, grasp rows) in the models' view
ViewTransform = Callable[[DepthFrame, np.ndarray], tuple[np.ndarray, np.ndarray]]


# ---------- dataset folder ----------

def read_meta(data_dir: str | Path) -> dict[str, Any]:
    """meta.json (empty dict for original Dex-Net folders, which have none)."""
    p = Path(data_dir) / "meta.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchbotError(f"cannot read {p}: {exc}", "regenerate the dataset with `benchbot datagen`") from exc


def robust_threshold(meta: dict[str, Any]) -> float:
    """Metric threshold for 'robust': meta.json's (benchbot data) or Dex-Net's 0.002."""
    for key in ("robust_threshold", "metric_threshold", "threshold"):
        if isinstance(meta.get(key), (int, float)):
            return float(meta[key])
    metric = meta.get("metric")
    if isinstance(metric, dict) and isinstance(metric.get("threshold"), (int, float)):
        return float(metric["threshold"])
    return DEXNET_THRESHOLD


def numbered_files(folder: Path, field: str) -> list[Path]:
    """<field>_NNNNN.npz files in numeric order (exact field name: 'depth_ims_tf_table' ≠ '..._96')."""
    pat = re.compile(rf"^{re.escape(field)}_(\d+)\.npz$")
    found = sorted((int(m.group(1)), p) for p in folder.glob(f"{field}_*.npz") if (m := pat.match(p.name)))
    return [p for _, p in found]


def load_array(path: Path) -> np.ndarray:
    try:
        with np.load(path) as z:
            return z["arr_0"]
    except (OSError, KeyError, ValueError) as exc:
        raise BenchbotError(f"cannot read {path} ({exc})", "the dataset file is damaged; regenerate it") from exc


def npz_shape(path: Path) -> tuple[int, ...]:
    """Shape of arr_0 in an .npz, from the .npy header only (nothing decompressed beyond it)."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open("arr_0.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return tuple(int(v) for v in read(f)[0])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BenchbotError(f"cannot read {path} ({exc})", "the dataset file is damaged; regenerate it") from exc


def split_of(units: np.ndarray, seed: int = 0, train_fraction: float = TRAIN_FRACTION) -> dict[int, str]:
    """Assign each unit (object or image id) to 'train' or 'val': a seeded permutation, first 80 % train."""
    uniq = np.unique(units)
    order = np.random.default_rng(seed).permutation(len(uniq))
    n_train = int(round(train_fraction * len(uniq)))
    if len(uniq) > 1:
        n_train = min(max(n_train, 1), len(uniq) - 1)  # both sides non-empty
    return {int(uniq[k]): ("train" if rank < n_train else "val") for rank, k in enumerate(order)}


def load_scene_records(images_dir: Path, depth_files: list[Path]) -> dict[int, dict] | None:
    """image index → scene record from images/scenes_NNNNN.json (None when the dataset has none)."""
    out: dict[int, dict] = {}
    for path in depth_files:
        p = images_dir / path.name.replace("depth_ims_", "scenes_").replace(".npz", ".json")
        if not p.is_file():
            continue
        try:
            recs = json.loads(p.read_text())["scenes"]
        except (OSError, ValueError, KeyError) as exc:
            raise BenchbotError(f"cannot read {p}: {exc}", "the dataset file is damaged; regenerate it") from exc
        out.update({int(r["image"]): r for r in recs})
    return out or None


def table_plane_of(record: dict) -> TablePlane:
    """The exact table plane in the camera frame of a scene record (from T_table_camera: the table's
    normal seen from the camera, distance = the camera's height above the table)."""
    return TablePlane.from_camera_pose(np.asarray(record["T_table_camera"], dtype=np.float64), 0.0)


# ---------- tensors/ (Dex-Net 2.0 rows) ----------

class TensorStream(IterableDataset):
    """Yields dicts {"crop": 1×H×W metres, "depth_m": z, "metric", "robust": 0/1, "image_label",
    "object_label"} for the rows of one split, one file at a time, shuffled per epoch when asked."""

    def __init__(self, data_dir: str | Path, split: str = "train", image_field: str = "depth_ims_tf_table",
                 seed: int = 0, shuffle: bool = False, split_by: str = "object") -> None:
        self.dir = Path(data_dir) / "tensors"
        self.files = numbered_files(self.dir, image_field)
        if not self.files:
            raise BenchbotError(f"no {image_field}_NNNNN.npz files in {self.dir}",
                                "point --data at a Dex-Net 2.0 layout folder (see docs/dataset_format.md)")
        self.image_field, self.split, self.seed, self.shuffle = image_field, split, seed, shuffle
        self.threshold = robust_threshold(read_meta(data_dir))
        self.split_by = split_by
        self.epoch = 0
        label_field = "object_labels" if split_by == "object" else "image_labels"
        if not numbered_files(self.dir, label_field):
            label_field = "image_labels"  # original Dex-Net 2.0 shards may lack object labels
        labels = np.concatenate([load_array(self._field_file(i, label_field)) for i in range(len(self.files))])
        self.label_field = label_field
        self.assign = split_of(labels, seed)

    def _field_file(self, i: int, field: str) -> Path:
        suffix = self.files[i].name[len(self.image_field):]
        return self.dir / f"{field}{suffix}"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.files)) if self.shuffle else range(len(self.files))
        for i in order:
            ims = load_array(self.files[i])
            poses = load_array(self._field_file(i, "hand_poses"))
            metric = load_array(self._field_file(i, "robust_ferrari_canny"))
            labels = load_array(self._field_file(i, self.label_field))
            img_labels = load_array(self._field_file(i, "image_labels"))
            rows = [r for r in range(len(ims)) if self.assign[int(labels[r])] == self.split]
            if self.shuffle:
                rows = list(rng.permutation(rows))
            for r in rows:
                yield {"crop": torch.from_numpy(np.ascontiguousarray(ims[r].transpose(2, 0, 1), np.float32)),
                       "depth_m": torch.tensor(float(poses[r, 2])), "metric": float(metric[r]),
                       "robust": int(metric[r] > self.threshold), "image_label": int(img_labels[r]),
                       "object_label": int(labels[r])}


# ---------- images/ (full images + ground-truth grasps) ----------

@dataclass(frozen=True)
class ImageRef:
    file: int  # index into ImageIndex.depth_files
    local: int  # row inside that file
    image: int  # global image index


class ImageIndex:
    """The images of a dataset and their ground-truth grasps (grasp files are small: read eagerly;
    depth files are read one at a time)."""

    def __init__(self, data_dir: str | Path, seed: int = 0) -> None:
        self.dir = Path(data_dir) / "images"
        self.depth_files = numbered_files(self.dir, "depth_ims")
        if not self.depth_files:
            raise BenchbotError(f"no depth_ims_NNNNN.npz files in {self.dir}",
                                "generate full images with `benchbot datagen` (see docs/dataset_format.md)")
        self.meta = read_meta(data_dir)
        self.refs: list[ImageRef] = []
        self.grasps: dict[int, np.ndarray] = {}
        first = 0  # global image index = position in the images/ files, in order
        shapes = set()
        for f, path in enumerate(self.depth_files):
            gpath = self.dir / path.name.replace("depth_ims_", "grasps_")
            if not gpath.is_file():
                raise BenchbotError(f"{gpath} is missing", "each depth_ims file needs its grasps file")
            g = load_array(gpath).astype(np.float64).reshape(-1, 9)
            shape = npz_shape(path)
            shapes.add(tuple(shape[1:3]))
            for k in range(shape[0]):
                self.refs.append(ImageRef(f, k, first + k))
                self.grasps[first + k] = g[g[:, G_IMAGE] == first + k]
            first += shape[0]
        if len(shapes) != 1:
            raise BenchbotError(f"images of different sizes in {self.dir}: {sorted(shapes)}",
                                "use one camera resolution per dataset")
        self.height, self.width = shapes.pop()
        objects = {im: np.unique(g[:, G_OBJECT]).astype(int) for im, g in self.grasps.items()}
        single = all(len(o) <= 1 for o in objects.values())
        unit = {r.image: (int(objects[r.image][0]) if single and len(objects[r.image]) else r.image) for r in self.refs}
        self.split_by = "object" if single else "image"
        assign = split_of(np.array(sorted(set(unit.values()))), seed)
        self.split = {im: assign[u] for im, u in unit.items()}
        self.scores: dict[int, np.ndarray] | None = None  # per-grasp classifier P(robust) (targets.py)
        self.targets: dict[int, np.ndarray] | None = None  # per-image searched target row (targets.py)
        self.crop_px: float | None = None  # classifier crop footprint in source pixels (targets.py)
        self.view_side: int | None = None  # central square region of interest (pixels), None: whole frame
        # randomized datasets (datagen --randomize): every image's camera, sensor and scene record
        self.scenes: dict[int, dict] | None = load_scene_records(self.dir, self.depth_files)
        # Hook for the rectified view: (frame, grasp rows in its pixels) → (depth, rows) as the models
        # see them, applied per image by `view_sample` (ImageStream). `frame` is `self.frame(...)`: the
        # camera's own pixels, intrinsics and exact table plane (meta["table_plane"]). None: as stored.
        self.view_transform: ViewTransform | None = None

    def images(self, split: str | None = None, robust_only: bool = True) -> list[ImageRef]:
        """Images of a split; robust_only keeps those with at least one robust ground-truth grasp."""
        return [r for r in self.refs if (split is None or self.split[r.image] == split)
                and (not robust_only or (self.grasps[r.image][:, G_ROBUST] > 0).any())]

    def robust_grasps(self, image: int) -> np.ndarray:
        g = self.grasps[image]
        return g[g[:, G_ROBUST] > 0]

    def target_stats(self, split: str = "train") -> dict[str, float]:
        """γ (mean scale s = 3·width/side of the target grasps) and mean gripper depth, from grasp files."""
        s, z = [], []
        for r in self.images(split):
            best = self.best_grasp(r.image)
            s.append(self.target_scale(best[G_WIDTH]))
            z.append(best[G_DEPTH])
        if not s:
            raise BenchbotError(f"no {split} image has a robust ground-truth grasp", "check the dataset labels")
        return {"scale_mean": float(np.mean(s)), "depth_mean_m": float(np.mean(z)), "n_images": len(s)}

    @property
    def side(self) -> int:
        """Side of the square images the models see: the region-of-interest view when set, else the
        letterboxed frame."""
        return self.view_side or max(self.height, self.width)

    def to_square(self, row: float, col: float) -> tuple[float, float]:
        """Frame pixel → square pixel (centres aligned, as `letterbox` / `normalised_view`)."""
        if not self.view_side:
            return row + (self.side - self.height) // 2, col + (self.side - self.width) // 2
        return row + (self.side - self.height) / 2, col + (self.side - self.width) / 2

    def in_view(self, row: float, col: float) -> bool:
        r, c = self.to_square(row, col)
        return 0 <= r <= self.side - 1 and 0 <= c <= self.side - 1

    def best_grasp(self, image: int) -> np.ndarray:
        """The target of an image: its searched target when `targets` are set; else, among its robust
        ground-truth grasps, the one the frozen classifier scores highest when `scores` are set
        (ties → higher metric), else the highest-metric one."""
        if self.targets is not None:
            return self.targets[image]
        g = self.robust_grasps(image)
        if self.scores is None:
            return g[int(np.argmax(g[:, G_METRIC]))]
        q = self.scores[image][self.grasps[image][:, G_ROBUST] > 0]
        return g[int(np.lexsort((-g[:, G_METRIC], -np.nan_to_num(q, nan=-1.0)))[0])]

    def target_scale(self, width_px: float) -> float:
        """GQ-STN scale target s (fraction of the square side): 3·width (the paper's w = s/3)."""
        return 3.0 * width_px / self.side

    def frame(self, image: int, depth: np.ndarray, meta: dict[str, Any] | None = None) -> DepthFrame:
        """An image as its camera saw it. Randomized datasets: cropped to the camera's own size (images
        are stored padded), its intrinsics, and meta "table_plane" (the exact table plane from the
        recorded T_table_camera) and "table_distance_m" (along the optical axis); other datasets: the
        camera of meta.json (see `evaluate.frame_intrinsics`) and its table distance."""
        from benchbot.train.evaluate import frame_intrinsics, table_distance

        rec = (self.scenes or {}).get(image)
        if rec is None:
            intr, _ = frame_intrinsics(self.meta, self.height, self.width)
            dist = table_distance(self.meta)  # fixed-camera datasets: straight down at the table
            known = {"table_plane": TablePlane.overhead(dist, "dataset"), "table_distance_m": dist} if dist else {}
            return DepthFrame(depth, intr, 0.0, known | (meta or {}))
        k = rec["intrinsics"]
        intr = Intrinsics(float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]), int(k["width"]),
                          int(k["height"]))
        plane = table_plane_of(rec)
        return DepthFrame(np.ascontiguousarray(depth[:intr.height, :intr.width]), intr, 0.0,
                          {"table_plane": plane, "table_distance_m": plane.axis_distance_m,
                           "sensor": rec["sensor"]} | (meta or {}))

    def view_sample(self, image: int, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(depth, ground-truth grasp rows, target row) of an image in the models' view: as stored, or
        through `view_transform` (which maps the target with the other rows)."""
        grasps, best = self.grasps[image], self.best_grasp(image)
        if self.view_transform is None:
            return depth, grasps, best
        view, rows = self.view_transform(self.frame(image, depth), np.concatenate([best[None], grasps]))
        return view, rows[1:], rows[0]

    def iter_depth(self, refs: list[ImageRef]) -> Iterator[tuple[ImageRef, np.ndarray]]:
        """(ref, H×W depth) for `refs`, reading each depth file once, in the order files appear in refs."""
        by_file: dict[int, list[ImageRef]] = {}
        for r in refs:
            by_file.setdefault(r.file, []).append(r)
        for f, rs in by_file.items():
            arr = load_array(self.depth_files[f])
            for r in rs:
                yield r, np.asarray(arr[r.local][..., 0] if arr.ndim == 4 else arr[r.local], np.float32)


def dihedral(t: torch.Tensor, rows: np.ndarray, k: int, side: int) -> tuple[torch.Tensor, np.ndarray]:
    """One of the 8 symmetries of the square (k: bit 0 mirror columns, bit 1 mirror rows, bit 2
    transpose, applied in that order) on a …×S×S image and its grasp rows [row, col, angle, ...] in
    square pixels. A straight-down camera centred on the image sees a mirrored scene; grasp angles
    (CCW from +col, modulo π) follow: mirror → −θ, transpose → π/2 − θ."""
    r = rows.copy()
    if k & 1:
        r[:, 1], r[:, 2] = side - 1 - r[:, 1], -r[:, 2]
    if k & 2:
        r[:, 0], r[:, 2] = side - 1 - r[:, 0], -r[:, 2]
    if k & 4:
        r[:, [0, 1]], r[:, 2] = r[:, [1, 0]], np.pi / 2 - r[:, 2]
    r[:, 2] = wrap_half_turn(r[:, 2])
    return square_symmetry(t, k), r


def prepare_image(depth: np.ndarray, grasps: np.ndarray, source_size: int | None,
                  grid_cfg: MultiGraspConfig | None = None, best: np.ndarray | None = None,
                  symmetry: int = 0, view_side: int | None = None) -> dict[str, Any]:
    """One training sample: letterboxed (or `view_side` central square, resized) depth 1×S×S, the
    GQ-STN target [x, y, θ, s, z] of `best` (default: the highest-metric robust grasp; s = 3·width)
    and the MultiGrasp grid of the robust grasps inside the square;
    `symmetry` (0–7, see `dihedral`) augments both."""
    sq, box = normalised_view(depth, 1.0, view_side) if view_side else letterbox(depth)
    side = box.side
    size = source_size or side
    robust = grasps[grasps[:, G_ROBUST] > 0]
    if best is None:
        best = robust[int(np.argmax(robust[:, G_METRIC]))]
    # [row, col, angle, width, depth, metric] in square pixels; row 0 is the GQ-STN target
    cols = [G_ROW, G_COL, G_ANGLE, G_WIDTH, G_DEPTH, G_METRIC]
    rows = np.concatenate([best[None], robust])[:, cols].astype(np.float64)
    rows[:, 0] += box.pad_top
    rows[:, 1] += box.pad_left
    t, rows = dihedral(torch.from_numpy(sq)[None, None], rows, symmetry, side)
    if size != side:
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    k = size / side
    row, col, angle, width, z = rows[0, :5]
    target = grasp_to_params(row, col, angle, width, z, side)
    sample = {"depth": t[0].contiguous(), "target": torch.from_numpy(target)}
    if grid_cfg is not None:
        g6 = rows[1:][((rows[1:, :2] >= 0) & (rows[1:, :2] <= side - 1)).all(axis=1)]
        g6[:, 0], g6[:, 1] = (g6[:, 0] + 0.5) * k - 0.5, (g6[:, 1] + 0.5) * k - 0.5
        g6[:, 3] *= k
        sample["grid"] = torch.from_numpy(encode_targets(g6, size, float(t.mean()), grid_cfg))
    return sample


class ImageStream(IterableDataset):
    """Training samples (see `prepare_image`) of one split, one depth file at a time; shuffled per
    epoch (file order and rows within a file) from (seed, epoch); `rank`/`world` stride the samples;
    `augment` draws one of the 8 square symmetries per image from (seed, epoch, image)."""

    def __init__(self, index: ImageIndex, split: str, source_size: int | None = None,
                 grid_cfg: MultiGraspConfig | None = None, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world: int = 1, limit: int | None = None, augment: bool = False) -> None:
        self.index, self.split, self.source_size, self.grid_cfg = index, split, source_size, grid_cfg
        self.seed, self.shuffle, self.rank, self.world, self.epoch = seed, shuffle, rank, world, 0
        self.augment = augment
        refs = index.images(split)
        if index.view_side:  # the target must lie inside the region of interest
            refs = [r for r in refs if index.in_view(*index.best_grasp(r.image)[[G_ROW, G_COL]])]
        self.refs = refs[:limit] if limit else refs

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def ordered_refs(self) -> list[ImageRef]:
        refs = list(self.refs)
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            files = sorted({r.file for r in refs})
            rank_of = {f: i for i, f in enumerate(rng.permutation(files))}
            refs = [refs[i] for i in rng.permutation(len(refs))]
            refs.sort(key=lambda r: rank_of[r.file])  # stable: shuffled within each file
        return refs[self.rank::self.world]

    def __len__(self) -> int:
        return len(self.ordered_refs())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for ref, depth in self.index.iter_depth(self.ordered_refs()):
            sym = int(np.random.default_rng((self.seed, self.epoch, ref.image)).integers(8)) if self.augment else 0
            depth, grasps, best = self.index.view_sample(ref.image, depth)
            s = prepare_image(depth, grasps, self.source_size, self.grid_cfg, best, sym, self.index.view_side)
            s["image"] = ref.image
            yield s

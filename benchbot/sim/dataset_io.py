"""The files of a dataset (docs/dataset_format.md): atomic writes, re-chunking rows into numbered
files, the images/ writer and merging shards made with different seed ranges."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchbot.core.errors import BenchbotError

ROWS_PER_FILE = 1000
IMAGES_PER_FILE = 100
TENSOR_FIELDS = ("depth_ims_tf_table", "depth_ims_tf_table_96", "hand_poses", "robust_ferrari_canny",
                 "image_labels", "object_labels")


# ---------------------------------------------------------------- atomic files

def save_npz_atomic(path: Path, compress: bool = False, /, **arrays: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against numpy's allow_pickle
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


class Rechunker:
    """Appends rows and writes `<dir>/<field>_NNNNN.npz` files of exactly `per_file` rows."""

    def __init__(self, folder: Path, fields: Sequence[str], per_file: int, compress: bool = True) -> None:
        self.folder, self.fields, self.per_file, self.compress = folder, list(fields), per_file, compress
        self.buf: dict[str, list[np.ndarray]] = {f: [] for f in self.fields}
        self.n_buf = 0
        self.files = 0
        self.rows = 0
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays[self.fields[0]])
        for f in self.fields:
            self.buf[f].append(arrays[f])
        self.n_buf += n
        while self.n_buf >= self.per_file:
            self._flush(self.per_file)

    def _flush(self, n: int) -> None:
        for f in self.fields:
            whole = np.concatenate(self.buf[f])
            save_npz_atomic(self.folder / f"{f}_{self.files:05d}.npz", self.compress, arr_0=whole[:n])
            self.buf[f] = [whole[n:]]
        self.n_buf -= n
        self.files += 1
        self.rows += n

    def finish(self) -> None:
        if self.n_buf:
            self._flush(self.n_buf)


class ImageWriter:
    """Writes images/depth_ims_NNNNN.npz (100 images each), the matching grasps_NNNNN.npz and, for
    randomized datasets, scenes_NNNNN.json (one record per image)."""

    def __init__(self, folder: Path) -> None:
        self.depth = Rechunker(folder, ["depth_ims"], IMAGES_PER_FILE)
        self.folder = folder
        self.grasps: list[np.ndarray] = []
        self.scenes: list[dict] = []
        self.n_images = 0

    def add(self, depth: np.ndarray, grasps: np.ndarray, scenes: Sequence[dict] = ()) -> None:
        self.grasps.append(grasps)
        self.scenes.extend(scenes)
        self.n_images += len(depth)
        before = self.depth.files
        self.depth.add({"depth_ims": depth})
        for k in range(before, self.depth.files):
            self._write_grasps(k)

    def _write_grasps(self, k: int) -> None:
        g = np.concatenate(self.grasps) if self.grasps else np.zeros((0, 9), np.float32)
        lo, hi = k * IMAGES_PER_FILE, (k + 1) * IMAGES_PER_FILE
        sel = (g[:, 0] >= lo) & (g[:, 0] < hi)
        save_npz_atomic(self.folder / f"grasps_{k:05d}.npz", True, arr_0=g[sel])
        self.grasps = [g[g[:, 0] >= hi]]
        if self.scenes:
            write_json_atomic(self.folder / f"scenes_{k:05d}.json",
                              {"scenes": [r for r in self.scenes if lo <= r["image"] < hi]})
            self.scenes = [r for r in self.scenes if r["image"] >= hi]

    def finish(self) -> None:
        before = self.depth.files
        self.depth.finish()
        for k in range(before, self.depth.files):
            self._write_grasps(k)


# ---------------------------------------------------------------- shards

def merge_shards(dirs: Sequence[str | Path], out: str | Path) -> dict:
    """Concatenate datasets made with different seed ranges into `out` (files renumbered, image
    indices offset by the images before each shard; a shard's object list may extend another's, e.g.
    after objects were added). Returns the merged meta.json."""
    out = Path(out)
    metas = []
    for d in map(Path, dirs):
        mp_ = d / "meta.json"
        if not mp_.exists() or not json.loads(mp_.read_text()).get("complete"):
            raise BenchbotError(f"{d} is not a finished benchbot dataset (no complete meta.json)",
                                "finish or resume that shard first")
        metas.append(json.loads(mp_.read_text()))
    if (out / "meta.json").exists():
        raise BenchbotError(f"{out} already holds a dataset", "merge into a new folder")
    objs = [m["objects"] for m in metas]
    longest = max(objs, key=len)  # labels index the object list: shorter lists must be its prefix
    if any(o != longest[:len(o)] for o in objs):
        raise BenchbotError("shards were made with different object lists",
                            "merge only shards whose object lists agree (one may extend another)")
    if len({json.dumps(m["config"].get("randomize"), sort_keys=True) for m in metas}) > 1:
        raise BenchbotError("shards were made with different randomisation settings",
                            "merge only shards made with the same --randomize settings")
    tens = Rechunker(out / "tensors", TENSOR_FIELDS, ROWS_PER_FILE)
    imgs = ImageWriter(out / "images")
    offset = 0
    for d, m in zip(map(Path, dirs), metas, strict=True):
        for k in range(m["counts"]["tensor_files"]):
            arrays = {f: np.load(d / "tensors" / f"{f}_{k:05d}.npz")["arr_0"] for f in TENSOR_FIELDS}
            arrays["image_labels"] = arrays["image_labels"] + offset
            tens.add(arrays)
        for k in range(m["counts"]["image_files"]):
            depth = np.load(d / "images" / f"depth_ims_{k:05d}.npz")["arr_0"]
            g = np.load(d / "images" / f"grasps_{k:05d}.npz")["arr_0"].copy()
            g[:, 0] += offset
            scenes = d / "images" / f"scenes_{k:05d}.json"
            recs = json.loads(scenes.read_text())["scenes"] if scenes.is_file() else []
            imgs.add(depth, g, [r | {"image": r["image"] + offset} for r in recs])
        offset += m["counts"]["images"]
    tens.finish()
    imgs.finish()
    meta = dict(metas[0])
    meta["objects"] = longest
    meta["config"] = dict(meta["config"], object_ids=[o["id"] for o in longest])
    meta["shards"] = [{"dir": str(d), "seed_range": m["seed_range"]} for d, m in zip(dirs, metas, strict=True)]
    meta["seed_range"] = None
    meta["counts"] = {"images": imgs.n_images, "grasps": tens.rows, "tensor_files": tens.files,
                      "image_files": imgs.depth.files}
    meta["config"] = dict(meta["config"], n_images=imgs.n_images)
    write_json_atomic(out / "meta.json", meta)
    return meta

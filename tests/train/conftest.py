"""Small datasets in the docs/dataset_format.md layout, built per test."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest


def make_dataset(root: Path, n_images: int = 12, h: int = 48, w: int = 64, per_file: int = 5,
                 n_objects: int = 6, seed: int = 0, rows_per_tensor_file: int = 7) -> Path:
    """Boxes on a table at 0.75 m; per image one robust grasp across the box's short side plus two
    random non-robust grasps. Object label = image % n_objects. Also writes tensors/ rows."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "tensors").mkdir()
    depths, grasps = [], []
    for i in range(n_images):
        d = np.full((h, w), 0.75, np.float32)
        r0, c0 = rng.uniform(0.3 * h, 0.7 * h), rng.uniform(0.3 * w, 0.7 * w)
        ang = rng.uniform(-math.pi / 2, math.pi / 2)
        rr, cc = np.mgrid[0:h, 0:w]
        u = (cc - c0) * math.cos(ang) - (rr - r0) * math.sin(ang)  # along the jaw axis (CCW from +col)
        v = (cc - c0) * math.sin(ang) + (rr - r0) * math.cos(ang)
        d[(np.abs(u) < 4) & (np.abs(v) < 10)] = 0.71
        depths.append(d[..., None])
        obj = i % n_objects
        grasps.append([i, r0, c0, ang, 12.0, 0.72, 0.9, 1, obj])
        for _ in range(2):
            grasps.append([i, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(-1.5, 1.5), 12.0, 0.74, 0.1, 0, obj])
    depths = np.stack(depths).astype(np.float32)
    grasps = np.array(grasps, np.float32)
    for f, start in enumerate(range(0, n_images, per_file)):
        np.savez_compressed(root / "images" / f"depth_ims_{f:05d}.npz", depths[start:start + per_file])
        sel = (grasps[:, 0] >= start) & (grasps[:, 0] < start + per_file)
        np.savez_compressed(root / "images" / f"grasps_{f:05d}.npz", grasps[sel])
    # tensors/: one row per grasp (crop content is irrelevant here: a constant patch + noise)
    n = len(grasps)
    crops = (0.72 + 0.001 * rng.standard_normal((n, 32, 32, 1))).astype(np.float32)
    poses = np.stack([grasps[:, 1], grasps[:, 2], grasps[:, 5], grasps[:, 3], grasps[:, 1] - h / 2,
                      grasps[:, 2] - w / 2, grasps[:, 4]], axis=1).astype(np.float32)
    fields = {"depth_ims_tf_table": crops, "hand_poses": poses, "robust_ferrari_canny": grasps[:, 6],
              "image_labels": grasps[:, 0].astype(np.int32), "object_labels": grasps[:, 8].astype(np.int32)}
    for f, start in enumerate(range(0, n, rows_per_tensor_file)):
        for name, arr in fields.items():
            np.savez_compressed(root / "tensors" / f"{name}_{f:05d}.npz", arr[start:start + rows_per_tensor_file])
    meta = {"generator": "test", "robust_threshold": 0.5, "counts": {"images": n_images, "grasps": n}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "ds")

"""Grasp candidates for data generation: Dex-Net 2.0 antipodal samples from the depth image
(`perception.sampler`) plus a share of random grasps on the object, so that the physics labels
contain both outcomes. Depths are clipped so the fingertips stay above the table."""
from __future__ import annotations

import numpy as np

from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.perception.sampler import sample_antipodal

TIP_CLEARANCE_M = 0.010  # TCP at least this far above the table (fingertips 8 mm below the TCP)


def sample_grasps(depth_m: np.ndarray, intr: Intrinsics, table_depth_m: float | np.ndarray, n: int,
                  rng: np.random.Generator, max_width_m: float = 0.085, random_share: float = 0.2,
                  object_mask: np.ndarray | None = None) -> list[Grasp]:
    """Up to `n` grasps on an inpainted depth image (metres) of objects on a table. `table_depth_m`:
    the table's depth, one number (overhead camera) or per pixel (tilted camera); `object_mask`:
    the pixels grasps may be centred on (default: more than 4 mm above the table)."""
    d = np.asarray(depth_m, np.float32)
    table = np.broadcast_to(np.asarray(table_depth_m, np.float32), d.shape)
    obj = (d < table - 0.004) if object_mask is None else np.asarray(object_mask, bool)
    if obj.sum() < 20:
        return []
    n_anti = int(round(n * (1 - random_share)))
    frame = DepthFrame(d, intr)
    grasps = sample_antipodal(frame, n_anti, max_width_m=max_width_m, seg_mask=obj, rng=rng) if n_anti else []
    f = 0.5 * (intr.fx + intr.fy)
    obj_px = np.argwhere(obj)
    while len(grasps) < n:  # random centre on the object, random angle, depth below the local top
        r, c = obj_px[rng.integers(len(obj_px))]
        top = float(d[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3].min())
        depth = top + rng.uniform(0.005, 0.04)
        grasps.append(Grasp(float(r), float(c), float(rng.uniform(-np.pi / 2, np.pi / 2)),
                            max_width_m * f / depth, depth))
    out = []
    h, w = d.shape
    for g in grasps:
        under = float(table[min(max(int(round(g.row)), 0), h - 1), min(max(int(round(g.col)), 0), w - 1)])
        depth = min(g.depth_m, under - TIP_CLEARANCE_M)
        out.append(Grasp(g.row, g.col, g.angle_rad, max_width_m * f / depth, depth))
    return out

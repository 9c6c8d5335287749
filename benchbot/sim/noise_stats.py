"""Statistics of raw depth frames, computed the same way on real recordings and on synthetic frames, to
choose and check the sensor noise models (`sensors.py`, docs/simulation/datagen.md):

* invalid fraction, and the border bands (columns / rows more than half invalid, from each side);
* edge dropouts: invalid fraction by distance to a depth edge (> 1 cm jump, found on the inpainted
  frame), away from the image border; flying pixels: valid edge pixels between their neighbours;
* quantisation: the effective depth step (depth span / (distinct values − 1)) by depth;
* table noise: residual std around a 9×9 local mean on table pixels, and around the fitted plane.
"""
from __future__ import annotations

import numpy as np

from benchbot.core.types import DepthFrame, Intrinsics

EDGE_BINS_PX = (0.0, 1.5, 3.0, 6.0, 12.0, np.inf)
BORDER_PX = 45  # edge statistics ignore this margin (bands)


def border_bands(depth_m: np.ndarray) -> tuple[int, int, int, int]:
    """(left, right, top, bottom): how many outer columns / rows are more than half invalid."""
    inv = ~(np.asarray(depth_m) > 0)

    def run(p: np.ndarray) -> int:
        n = 0
        while n < len(p) and p[n] > 0.5:
            n += 1
        return n

    c, r = inv.mean(axis=0), inv.mean(axis=1)
    return run(c), run(c[::-1]), run(r), run(r[::-1])


def edge_dropout_profile(depth_m: np.ndarray, jump_m: float = 0.01) -> list[float]:
    """Invalid fraction in each EDGE_BINS_PX band of distance to a depth edge (NaN: no pixels), away
    from the border and from invalid regions that reach it (bands, lost field of view, things nearer
    than the minimum range at the border)."""
    import cv2

    from benchbot.perception.inpaint import inpaint
    from benchbot.sim.noise import edge_distance_px

    d = np.asarray(depth_m, np.float32)
    dist = edge_distance_px(inpaint(d), jump_m)
    inner = np.zeros(d.shape, bool)
    inner[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX] = True
    _, labels = cv2.connectedComponents((d <= 0).astype(np.uint8), connectivity=4)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    inner &= ~np.isin(labels, edge_labels[edge_labels > 0])
    out = []
    for lo, hi in zip(EDGE_BINS_PX[:-1], EDGE_BINS_PX[1:], strict=False):
        sel = inner & (dist >= lo) & (dist < hi)
        out.append(float((d[sel] <= 0).mean()) if sel.sum() >= 50 else float("nan"))
    return out


def flying_fraction(depth_m: np.ndarray, jump_m: float = 0.03, off_m: float = 0.01) -> float:
    """Share of valid pixels at a depth edge (their valid 3×3 neighbourhood spans more than `jump_m`)
    whose depth lies more than `off_m` from both its extremes: mixed ("flying") pixels."""
    import cv2

    d = np.asarray(depth_m, np.float32)
    valid = d > 0
    k = np.ones((3, 3), np.uint8)
    lo = cv2.erode(np.where(valid, d, np.float32(1e3)), k)
    hi = cv2.dilate(np.where(valid, d, np.float32(0.0)), k)
    edge = cv2.erode(valid.astype(np.uint8), k).astype(bool) & (hi - lo > jump_m)
    mixed = edge & (d - lo > off_m) & (hi - d > off_m)
    return float(mixed.sum() / max(int(edge.sum()), 1))


def quantisation_steps(depth_m: np.ndarray, bin_m: float = 0.05, min_pixels: int = 2000) -> list[tuple[float, float]]:
    """(bin centre, effective step) for depth bins with enough valid pixels: the mean gap between
    consecutive distinct depths, gaps over 3× the median left out (depths no surface covers);
    step 0: continuous output. 1 mm units over a 1.3 mm disparity grid give gaps of 1 and 2 mm."""
    d = np.asarray(depth_m)
    v = d[d > 0].astype(np.float64)
    out = []
    for lo in np.arange(np.floor(v.min() / bin_m) * bin_m, v.max(), bin_m):
        s = v[(v >= lo) & (v < lo + bin_m)]
        if len(s) < min_pixels:
            continue
        gaps = np.diff(np.unique(s))
        step = float(gaps[gaps <= 3 * np.median(gaps)].mean()) if len(gaps) else 0.0
        out.append((float(lo + bin_m / 2), step if step > 2e-5 else 0.0))
    return out


def table_noise(depth_m: np.ndarray, intr: Intrinsics, inlier_m: float = 0.004) -> tuple[float, float]:
    """(local std, plane std) in metres of the table pixels (within `inlier_m` of the fitted plane)."""
    import cv2

    from benchbot.perception.table import fit_table

    h = fit_table(DepthFrame(depth_m, intr)).heights(depth_m, intr)
    table = np.abs(np.nan_to_num(h, nan=1.0)) < inlier_m
    w = table.astype(np.float32)
    s = cv2.boxFilter(np.where(table, h, 0).astype(np.float32), -1, (9, 9), normalize=False)
    n = cv2.boxFilter(w, -1, (9, 9), normalize=False)
    full = table & (n == 81)
    local = (h - s / np.maximum(n, 1))[full]
    return float(local.std()), float(h[table].std())


def frame_stats(depth_m: np.ndarray, intr: Intrinsics) -> dict:
    """All of the above for one raw frame (0 = invalid)."""
    d = np.asarray(depth_m, np.float32)
    if d.ndim == 3:
        d = d[..., 0]
    local, plane = table_noise(d, intr)
    return {"invalid_fraction": float((d <= 0).mean()), "bands_px": border_bands(d),
            "edge_dropout": edge_dropout_profile(d), "flying_fraction": flying_fraction(d),
            "quant_steps": quantisation_steps(d),
            "table_local_std_m": local, "table_plane_std_m": plane}


# the real recordings' geometry (intrinsics.yaml plane fits): camera height above the table, tilt
REAL_SETUPS = {"primesense": (0.663, 3.4), "kinect2": (0.690, 2.1)}


def synthetic_frame(world, objects: dict, sensor_name: str, object_ids: list[str], seed: int,
                    height_m: float | None = None, tilt_deg: float | None = None, fingers: bool = True):
    """A raw (noisy, not inpainted) synthetic frame of `object_ids` seen by `sensor_name` at a given
    height and tilt (default: the real recording's for that sensor, else 0.66 m, 3°), with the
    fingers reaching in from the bottom when asked. Returns (depth, intrinsics, Rendered-less record)."""
    from benchbot.sim.dr_image import planned_scene
    from benchbot.sim.randomize import CameraPlan, FingerPlan, ScenePlan

    h, t = REAL_SETUPS.get(sensor_name, (0.66, 3.0))
    rng = np.random.default_rng([seed, 7919])
    cam = CameraPlan(sensor_name, height_m or h, t if tilt_deg is None else tilt_deg, 90.0, 90.0, (0.0, 0.0))
    finger = FingerPlan("bottom", 0.35, 0.12, 0.12, 20.0, 0.0, 0.06) if fingers else None
    plan = ScenePlan(seed, cam, list(object_ids), 0.05 + 0.025 * (len(object_ids) - 1), [], finger)
    with planned_scene(world, objects, plan, rng) as sc:
        return sc.noisy, sc.sensor.intrinsics, sc.clean

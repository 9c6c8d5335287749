"""Make the object masks shipped with a recording (masks/NNNNN.png) and a picture to check them by eye.

    python scripts/make_object_masks.py benchbot/data/recordings/default --scenes 0-9 10-19 --check default.png
    python scripts/make_object_masks.py benchbot/data/recordings/kinect2_overhead --check kinect.png

How (see the recording's PROVENANCE.md): frames of one static scene are merged by their per-pixel
median (holes: pixels missing in every capture, inpainted); the table plane is fitted (RANSAC,
`fit_table`), and the table's own unevenness (sensor warp, a few mm) removed with a quadratic surface
fitted to the table pixels; pixels more than --min-height-mm above that surface, after a 5 px
opening, form blobs. Blobs touching the --robot-edge of the frame are the robot (fingers and wrist:
label 255). Objects (labels 1, 2, … by size) are the other blobs with at least --min-area-px pixels,
a median height of at least --object-height-mm (sensor noise and a flat cable stay table) and their
centroid inside the recording's workspace polygon (metadata.json; the table top); the rest is table
or background (0). Objects are dilated by 1 px to include their depth edges.
Every scene's mask is written for each of its frames. Check the picture before shipping the masks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchbot.core.types import DepthFrame  # noqa: E402
from benchbot.devices.cameras.recording import read_recording  # noqa: E402
from benchbot.perception.inpaint import inpaint  # noqa: E402
from benchbot.perception.table import fit_table  # noqa: E402
from benchbot.perception.workspace import polygon_mask, recording_workspace  # noqa: E402
from benchbot.train.eval_frames import ROBOT_LABEL  # noqa: E402


def scene_depth(depths: list[np.ndarray]) -> np.ndarray:
    st = np.stack(depths).astype(np.float64)
    st[~(np.isfinite(st) & (st > 0))] = np.nan
    missing = np.isnan(st).all(axis=0)
    st[:, missing] = 0.0  # missing in every capture: inpainted below
    med = np.median(st, axis=0) if len(depths) == 1 else np.nanmedian(st, axis=0)
    return inpaint(np.nan_to_num(med, nan=0.0).astype(np.float32))


def residual_heights(frame: DepthFrame) -> np.ndarray:
    """Height above the table, the table's own quadratic unevenness removed."""
    plane = fit_table(frame)
    h = plane.heights(frame.depth_m, frame.intrinsics)
    rows, cols = np.indices(h.shape)
    table = np.abs(h) < 0.006
    r, c = rows[table][::7] / h.shape[0], cols[table][::7] / h.shape[1]
    design = np.column_stack([np.ones_like(r), r, c, r * r, r * c, c * c])
    coef, *_ = np.linalg.lstsq(design, h[table][::7], rcond=None)
    rr, cc = rows / h.shape[0], cols / h.shape[1]
    surface = coef[0] + coef[1] * rr + coef[2] * cc + coef[3] * rr * rr + coef[4] * rr * cc + coef[5] * cc * cc
    return h - surface


def labels_for(heights: np.ndarray, min_height_m: float, min_area_px: int, object_height_m: float,
               robot_edge: str, table_top: np.ndarray) -> np.ndarray:
    raw = (np.nan_to_num(heights) > min_height_m).astype(np.uint8)
    raw = cv2.morphologyEx(raw, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    n, comp, stats, centroids = cv2.connectedComponentsWithStats(raw, connectivity=8)
    h, w = raw.shape
    out = np.zeros((h, w), np.uint8)
    objects = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        edge = {"bottom": y + bh >= h, "top": y == 0, "left": x == 0, "right": x + bw >= w}[robot_edge]
        if edge:
            out[comp == i] = ROBOT_LABEL
        elif (area >= min_area_px and np.median(heights[comp == i]) >= object_height_m
              and table_top[int(round(centroids[i][1])), int(round(centroids[i][0]))]):
            objects.append((area, i))
    for label, (_, i) in enumerate(sorted(objects, reverse=True), start=1):
        grown = cv2.dilate((comp == i).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        out[grown & (out == 0)] = label
    return out


def check_picture(depth: np.ndarray, labels: np.ndarray) -> Image.Image:
    lo, hi = np.percentile(depth, [1, 99])
    g = (255 * np.clip((hi - depth) / max(hi - lo, 1e-6), 0, 1)).astype(np.uint8)
    rgb = np.stack([g, g, g], axis=-1).astype(np.float64)
    colours = {ROBOT_LABEL: (255, 60, 60)}
    palette = [(60, 200, 60), (60, 120, 255), (255, 200, 0), (200, 60, 255), (0, 220, 220), (255, 120, 0)]
    for label in np.unique(labels):
        if label == 0:
            continue
        colour = colours.get(int(label), palette[(int(label) - 1) % len(palette)])
        m = labels == label
        rgb[m] = 0.5 * rgb[m] + 0.5 * np.array(colour)
        edge = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        rgb[edge] = colour
    return Image.fromarray(rgb.astype(np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", type=Path)
    ap.add_argument("--scenes", nargs="*", default=None, help="frame ranges of static scenes, e.g. 0-9 10-19")
    ap.add_argument("--min-height-mm", type=float, default=4.0)
    ap.add_argument("--min-area-px", type=int, default=100)
    ap.add_argument("--object-height-mm", type=float, default=10.0)
    ap.add_argument("--robot-edge", choices=("bottom", "top", "left", "right"), default="bottom")
    ap.add_argument("--check", type=Path, help="PNG to write: every scene's depth with its mask")
    args = ap.parse_args()
    rec = read_recording(args.recording)
    spec = recording_workspace(rec)
    table_top = polygon_mask(rec.depths[0].shape, spec.polygon_px) if spec.polygon_px else np.ones(rec.depths[0].shape, bool)
    scenes = [range(int(a), int(b) + 1) for a, b in (s.split("-") for s in args.scenes)] if args.scenes \
        else [range(len(rec))]
    (args.recording / "masks").mkdir(exist_ok=True)
    pictures = []
    for scene in scenes:
        depth = scene_depth([rec.depths[i] for i in scene])
        labels = labels_for(residual_heights(DepthFrame(depth, rec.intrinsics)), args.min_height_mm / 1000,
                            args.min_area_px, args.object_height_mm / 1000, args.robot_edge, table_top)
        for i in scene:
            Image.fromarray(labels).save(args.recording / "masks" / f"{rec.frame_files[i].stem}.png", optimize=True)
        counts = {int(v): int((labels == v).sum()) for v in np.unique(labels) if v}
        print(f"frames {scene.start}-{scene.stop - 1}: labels (pixels) {counts}")
        pictures.append(check_picture(depth, labels))
    if args.check:
        w, h = pictures[0].size
        sheet = Image.new("RGB", (w * len(pictures), h))
        for k, p in enumerate(pictures):
            sheet.paste(p, (k * w, 0))
        sheet.save(args.check)


if __name__ == "__main__":
    main()

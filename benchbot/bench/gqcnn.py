"""Speed figures for crops and GQ-CNN inference, and the camera-scale effect on real frames.

`run_benchmark()` prints and returns (label, seconds) pairs; `scale_effect(...)` prints max q over a
dense candidate grid with and without the camera-scale factor. Nothing here asserts on time.
Run: `python -m benchbot.bench.gqcnn [--frames ../shared/data/depth_frames]`.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchbot.bench.models import _median_s
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.models.gqcnn import GQCNN, predict_quality
from benchbot.models.robustness import GQCNNEvaluator
from benchbot.models.weights import load_gqcnn
from benchbot.perception.crops import DEXNET2, DEXNET4, extract_crops


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, min) wall time of `repeats` calls after one warm-up call."""
    return _median_s(fn, repeats, warmup=1)


def _dexnet2_model() -> GQCNN:
    # architecture only (weights are not distributed here): speed does not depend on the values
    from benchbot.models.gqcnn import ConvSpec, GQCNNConfig, Normalisation
    convs = (ConvSpec("conv1_1", 7, 64), ConvSpec("conv1_2", 5, 64, 2, 2, "SAME", True),
             ConvSpec("conv2_1", 3, 64), ConvSpec("conv2_2", 3, 64, 1, 1, "SAME", True))
    cfg = GQCNNConfig("gqcnn-2.0-arch", 32, convs, fc3=1024, pc1=16, fc4=1024,
                      norm=Normalisation(0.695196, 0.044147, 0.677359, 0.035972), crop="96to32")
    torch.manual_seed(0)
    return GQCNN(cfg).freeze()


def run_benchmark(n: int = 1000, repeats: int = 3, onnx: bool = True, quiet: bool = False) -> list[tuple[str, float]]:
    """Crop extraction and GQ-CNN forward timings on this machine: (label, median seconds).
    Prints each figure (median and min) as it comes unless `quiet`."""
    rng = np.random.default_rng(0)
    depth = (0.7 + 0.05 * rng.random((480, 640))).astype(np.float32)
    rows, cols = rng.uniform(60, 420, n), rng.uniform(60, 580, n)
    angles = rng.uniform(-np.pi, np.pi, n)
    out: list[tuple[str, float]] = []

    def rec(label: str, seconds: tuple[float, float]) -> None:
        out.append((label, seconds[0]))
        if not quiet:
            print(f"{label:<64s} {seconds[0] * 1e3:9.1f} ms (min {seconds[1] * 1e3:.1f})", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if not quiet:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
              f"load average {load:.1f}")
    rec(f"crops {n}× 96to32 (nearest, Berkeley-exact)",
        _time(lambda: extract_crops(depth, rows, cols, angles, DEXNET2), repeats))
    rec(f"crops {n}× 96to96 (nearest, Berkeley-exact)",
        _time(lambda: extract_crops(depth, rows, cols, angles, DEXNET4), repeats))
    rec(f"crops {n}× 96to96 (bilinear grid_sample)",
        _time(lambda: extract_crops(depth, rows, cols, angles, DEXNET4, interp="bilinear"), repeats))
    z = torch.full((n,), 0.72)
    for model in (_dexnet2_model(), load_gqcnn("gqcnn-4.0-pj")):
        s, name = model.cfg.im_size, model.cfg.name
        x = torch.rand(n, 1, s, s) * 0.05 + 0.7
        with torch.no_grad():
            rec(f"{name} batch 1 (torch)", _time(lambda: model.quality(x[:1], z[:1]), 10 * repeats))
            rec(f"{name} batch {n} in one call (torch)", _time(lambda: model.quality(x, z), repeats))
            rec(f"{name} batch {n} as chunks of 100 (torch)",
                _time(lambda: predict_quality(model, x, z, 100, channels_last=False), repeats))
            cl = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to overloads lack memory_format
            rec(f"{name} batch {n} as chunks of 100 + channels_last (torch)",
                _time(lambda: predict_quality(cl, x, z, 100, channels_last=True), repeats))
            model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # Module.to overloads lack memory_format
        if onnx:
            try:
                from benchbot.models.gqcnn_onnx import OnnxGQCNN
                ort_model = OnnxGQCNN.from_model(model)
            except Exception as exc:  # onnxruntime missing: report, don't fail
                print(f"ONNX Runtime skipped: {exc}")
                continue
            xn, zn = x.numpy(), z.numpy()
            rec(f"{name} batch 1 (ONNX Runtime)", _time(lambda: ort_model.quality(xn[:1], zn[:1]), 10 * repeats))
            rec(f"{name} batch {n} as chunks of 100 (ONNX Runtime)",
                _time(lambda: ort_model.predict(xn, zn, 100), repeats))
    return out


def _load_frame(folder: Path, index: int = 0) -> DepthFrame:
    import yaml

    meta = yaml.safe_load((folder / "intrinsics.yaml").read_text())
    intr = Intrinsics(meta["fx"], meta["fy"], meta["cx"], meta["cy"], meta["width"], meta["height"])
    depth = np.load(folder / f"depth_{index}.npy")[..., 0].astype(np.float32)
    return DepthFrame(depth, intr)


def dense_grasps(frame: DepthFrame, step_px: int = 6, n_angles: int = 8, margin_px: int = 60,
                 depth_offset_m: float = 0.015, mask: np.ndarray | None = None) -> list[Grasp]:
    """A dense grid of candidate grasps (every `step_px`, `n_angles` angles), gripper depth =
    surface depth + `depth_offset_m`; only on pixels closer than the table (or inside `mask`)."""
    h, w = frame.shape
    d = frame.depth_m
    table = float(np.median(d[frame.valid_mask]))
    out = []
    for r in range(margin_px, h - margin_px, step_px):
        for c in range(margin_px, w - margin_px, step_px):
            on_object = mask[r, c] if mask is not None else (0 < d[r, c] < table - 0.01)
            if on_object:
                for a in np.arange(n_angles) * np.pi / n_angles:
                    out.append(Grasp(float(r), float(c), float(a), 0.0, float(d[r, c]) + depth_offset_m))
    return out


def scale_effect(frames_dir: str | Path,
                 table_distances: dict[str, float] | None = None) -> list[tuple[str, float, float, float, int]]:
    """Max q (4.0-PJ) over dense candidates per frame, without (scale 1) and with the camera-scale
    factor. Returns (frame, scale, max q@1, max q@factor, n candidates) rows and prints them."""
    frames_dir = Path(frames_dir)
    dist = table_distances or {"gqcnn_primesense_single": 0.713, "gqcnn_primesense_clutter": 0.713,
                               "gqcnn_kinect2_overhead": 0.690}
    model = load_gqcnn("gqcnn-4.0-pj")
    rows = []
    for sub, frames in (("gqcnn_primesense_single", range(7)), ("gqcnn_primesense_clutter", (0, 2)),
                        ("gqcnn_kinect2_overhead", (0,))):
        for i in frames:
            if not (frames_dir / sub / f"depth_{i}.npy").is_file():
                continue
            frame = _load_frame(frames_dir / sub, i)
            mask = None
            seg = frames_dir / sub / f"segmask_{i}.png"
            if seg.is_file():
                from PIL import Image
                mask = np.asarray(Image.open(seg)) > 0
                mask = mask if mask.ndim == 2 else mask[..., 0]
            grasps = dense_grasps(frame, mask=mask)
            plain = GQCNNEvaluator(model, scale=1.0).qualities(frame, grasps)
            ev = GQCNNEvaluator(model, table_distance_m=dist[sub])  # one factor per camera, as tabled
            scaled = ev.qualities(frame, grasps)
            row = (f"{sub}/depth_{i}", float(ev.last_scale or 1.0), float(np.nanmax(plain)), float(np.nanmax(scaled)),
                   len(grasps))
            rows.append(row)
            print(f"{row[0]:<36s} factor {row[1]:.3f}  max q: {row[2]:.3f} (scale 1) → {row[3]:.3f} (factor)"
                  f"  [{row[4]} candidates; ≥0.5: {int((plain >= 0.5).sum())} → {int((scaled >= 0.5).sum())}]",
                  flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=Path, default=None, help="shared depth_frames folder for the scale demo")
    args = ap.parse_args()
    run_benchmark(args.n, args.repeats)
    if args.frames:
        scale_effect(args.frames)


if __name__ == "__main__":
    main()

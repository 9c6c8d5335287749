"""Speed figures of the perception stack and of the `prop-gqcnn` detector (prints, returns a dict).

Stages timed (median of `repeats` runs, `time.perf_counter`):
  inpaint   — `inpaint` of a raw 640×480 PrimeSense frame with 14 % holes (rescale 0.5);
  prepare   — table-plane fit + workspace mask (`prepare_frame`, what every detector sees);
  segment   — object mask on the table plane;
  sampler   — `antipodal_candidates` for up to 1000 candidates (heap of 5 objects);
  gqcnn     — the evaluator's batched `qualities` on 1000 candidates: ONNX Runtime (when installed),
              torch fp32, torch bf16 autocast;
  detect    — whole `PropGQCNN.detect` (ranking, 1000 candidates, each runtime; and the CEM policy);
  shipped   — `prepare_frame` + `PropGQCNN.detect` (default options) on every frame of the shipped
              recordings (benchbot/data/recordings: PrimeSense and Kinect v2), as in a trial: the
              median is the figure of the speed target (≤ 1.0 s on 2 CPU cores), with wall and CPU time.
Uses the shared real frames beside a source checkout (../shared/data), else (an installed wheel too) a
synthetic table scene.
The paper's Prop+GQ-CNN: 1.5 s per detection on a Titan X GPU.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbot.core.paths import SOURCE_CHECKOUT
from benchbot.core.types import DepthFrame, Intrinsics

PRIMESENSE = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)
DEFAULT_DATA = SOURCE_CHECKOUT.parent / "shared" / "data" if SOURCE_CHECKOUT else None  # a developer's frames


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out, times = None, []
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def synthetic_scene(seed: int = 0, holes: float = 0.14) -> tuple[np.ndarray, np.ndarray]:
    """(raw depth with holes, clean depth): a tilted table at ~0.7 m with five boxes on it."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((480, 640))
    d = 0.70 + 0.0003 * (rows - 240)
    for _ in range(5):
        r, c = rng.integers(150, 330), rng.integers(200, 440)
        h, w, a = rng.integers(20, 45), rng.integers(40, 90), rng.uniform(0, np.pi)
        u = (cols - c) * np.cos(a) - (rows - r) * np.sin(a)
        v = (cols - c) * np.sin(a) + (rows - r) * np.cos(a)
        d = np.where((np.abs(u) < w / 2) & (np.abs(v) < h / 2), d - rng.uniform(0.02, 0.05), d)
    clean = d.astype(np.float32)
    raw = clean.copy()
    raw[rng.random(raw.shape) < holes] = 0
    return raw, clean


def _frames(data: Path | None) -> tuple[np.ndarray, DepthFrame, str]:
    """(raw frame with holes, a clean multi-object frame, description)."""
    if data is not None and (data / "depth_frames").is_dir():
        from PIL import Image

        df = data / "depth_frames"
        raw = np.array(Image.open(df / "gqcnn_primesense_raw_2017/bar_clamp_depth_0_mm.png")) / 1000.0
        heap = np.load(df / "gqcnn_primesense_clutter/depth_0.npy")[..., 0]
        return raw.astype(np.float32), DepthFrame(heap, PRIMESENSE), "shared PrimeSense frames"
    raw, clean = synthetic_scene()
    return raw, DepthFrame(clean, PRIMESENSE), "synthetic table scene"


def run_benchmark(data: Path | None = DEFAULT_DATA, repeats: int = 3, candidates: int = 1000,
                  seed: int = 0, with_gqcnn: bool = True) -> dict[str, Any]:
    """Time every stage, print a table and return the figures (seconds)."""
    from benchbot.perception.inpaint import inpaint
    from benchbot.perception.sampler import SamplerConfig, antipodal_candidates
    from benchbot.perception.segment import object_mask
    from benchbot.perception.table import fit_table
    from benchbot.perception.workspace import prepare_frame

    raw, frame, source = _frames(data)
    res: dict[str, Any] = {"source": source, "torch_threads": torch.get_num_threads(),
                           "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
    res["inpaint_s"], _ = _median_time(lambda: inpaint(raw, 0.5), repeats)
    res["prepare_s"], _ = _median_time(lambda: prepare_frame(DepthFrame(frame.depth_m, frame.intrinsics)), repeats)
    res["segment_s"], mask = _median_time(lambda: object_mask(frame, plane=fit_table(frame)), repeats)
    res["sampler_s"], cands = _median_time(
        lambda: antipodal_candidates(frame, candidates, config=SamplerConfig(), seg_mask=mask, rng=seed), repeats)
    res["sampler_candidates"] = len(cands)
    if with_gqcnn:
        from benchbot.detectors.prop_gqcnn import PropGQCNN

        grasps = cands.grasps()
        prepared = DepthFrame(frame.depth_m, frame.intrinsics)
        variants = {"onnx": PropGQCNN(num_candidates=candidates, seed=seed, runtime="onnx")} \
            if _has_onnxruntime() else {}
        variants["torch"] = PropGQCNN(num_candidates=candidates, seed=seed, runtime="torch")
        variants["torch_bf16"] = PropGQCNN(num_candidates=candidates, seed=seed, runtime="torch", bf16=True)
        for name, det in variants.items():
            evaluator = det.evaluator
            assert evaluator is not None  # built without a custom scorer: it loaded one
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if det.bf16 else contextlib.nullcontext()
            with ctx:
                res[f"gqcnn_{name}_s"], _ = _median_time(lambda: evaluator.qualities(prepared, grasps), 1)
        for name, det in variants.items():
            res[f"detect_ranking_{name}_s"], g = _median_time(lambda: det.detect(frame), 1)
            assert det.last_info is not None  # set by detect
            res[f"detect_ranking_{name}_breakdown_s"] = dict(det.last_info.timings_s)
            res[f"detect_ranking_{name}_q"] = g.score
        cem = PropGQCNN(policy="cem", seed=seed)
        res["detect_cem_s"], g = _median_time(lambda: cem.detect(frame), 1)
        res["detect_cem_runtime"] = cem.runtime
        assert cem.last_info is not None  # set by detect
        res["detect_cem_scored"] = cem.last_info.num_scored
        res["detect_cem_q"] = g.score
        res.update(shipped_recordings(repeats))
    _print(res)
    return res


def shipped_recordings(repeats: int = 1, **options: Any) -> dict[str, Any]:
    """`prepare_frame` + `PropGQCNN.detect` on every frame of the shipped recordings, as in a trial
    (inpainting excluded, like the runner's detection time), `repeats` passes over all frames:
    median wall and CPU seconds per detection over all passes, and each pass's medians. CPU seconds
    (all threads of this process) do not depend on what else the machine runs; wall seconds do."""
    from benchbot.core.paths import RECORDINGS_DIR
    from benchbot.detectors.prop_gqcnn import PropGQCNN
    from benchbot.devices.cameras.recording import read_recording
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.workspace import prepare_frame, recording_workspace

    det = PropGQCNN(**options)
    frames = []
    for name in ("default", "kinect2_overhead"):
        rec = read_recording(RECORDINGS_DIR / name)
        spec = recording_workspace(rec)
        frames += [(inpaint_frame(rec.frame(i)), spec) for i in range(len(rec))]
    wall: list[float] = []
    cpu: list[float] = []
    passes: list[tuple[float, float]] = []
    n = 0
    load = os.getloadavg()[0]
    for _ in range(max(repeats, 1)):
        w0, c0 = len(wall), len(cpu)
        for clean, spec in frames:
            t, c = time.perf_counter(), time.process_time()
            det.detect(prepare_frame(clean, spec))
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            n = max(n, det.last_info.num_scored if det.last_info else 0)
        passes.append((statistics.median(wall[w0:]), statistics.median(cpu[c0:])))
    return {"shipped_detect_s": statistics.median(wall), "shipped_detect_cpu_s": statistics.median(cpu),
            "shipped_frames": len(frames), "shipped_runtime": det.runtime, "shipped_max_scored": n,
            "shipped_passes": passes, "shipped_load_avg": (load, os.getloadavg()[0])}


def _print(res: dict[str, Any]) -> None:
    print(f"perception benchmark on {res['source']}: {res['cpu_count']} CPUs, torch threads "
          f"{res['torch_threads']}, load average {res['load_avg_1min']:.1f}")
    for k, v in res.items():
        if k.endswith("_breakdown_s"):
            print(f"  {'  of which':<24} " + ", ".join(f"{a} {b * 1000:.0f} ms" for a, b in v.items()))
        elif k.endswith("_s"):
            print(f"  {k[:-2]:<24} {v * 1000:9.1f} ms")
    print(f"  sampler candidates       {res['sampler_candidates']}")
    if "detect_cem_scored" in res:
        print(f"  cem evaluations          {res['detect_cem_scored']} ({res['detect_cem_runtime']})")
    if "shipped_frames" in res:
        print("  " + shipped_line(res))


def shipped_line(res: dict[str, Any]) -> str:
    """One line with the shipped-recordings figures of `shipped_recordings`."""
    passes = "; ".join(f"{w:.3f} s / {c:.3f} s" for w, c in res["shipped_passes"])
    return (f"prop-gqcnn ({res['shipped_runtime']}) on {res['shipped_frames']} shipped frames × "
            f"{len(res['shipped_passes'])}: median {res['shipped_detect_s']:.3f} s wall, "
            f"{res['shipped_detect_cpu_s']:.3f} s CPU (target ≤ 1.0 s wall on 2 cores; per pass wall / CPU: "
            f"{passes}); load average "
            f"{res['shipped_load_avg'][0]:.1f} → {res['shipped_load_avg'][1]:.1f}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    run_benchmark()

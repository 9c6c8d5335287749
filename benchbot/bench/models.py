"""Detection latency of GQ-STN and MultiGrasp at batch 1 on CPU, with a per-stage breakdown.

Only times: the networks have RANDOM weights (speed does not depend on the values; the frozen
GQ-CNN is the shipped 4.0-PJ when present). Nothing here asserts on time.
Variants: PyTorch fp32, PyTorch bf16 autocast, ONNX Runtime fp32 (opset 20: AffineGrid/GridSample),
ONNX Runtime int8 (dynamic quantisation). Median of `repeats` runs after warm-up.

Run: `python -m benchbot.bench.models [--threads 2] [--repeats 20] [--presets paper small shipped]`
("shipped": the architecture of the shipped checkpoints, e.g. with coordinate channels and refinement).
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from benchbot.detectors.gqstn import InferenceGraph, dihedral_batch, onnx_session
from benchbot.models.gqstn import (
    GQSTN,
    GQSTNConfig,
    affine,
    dexnet_centred,
    letterbox,
    params_to_grasp,
    sample,
)
from benchbot.models.multigrasp import MultiGrasp, MultiGraspConfig, decode, decoded_to_grasp

NOTE = "random weights (timing only)"


Timing = tuple[float, float]  # (median s, fastest s)


def _median_s(fn: Callable[[], object], repeats: int, warmup: int = 2) -> Timing:
    """(median, fastest) seconds over `repeats` calls after warm-up. On a shared, busy machine the
    fastest call is the better estimate of the idle latency."""
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t)), float(np.min(t))


def _classifier(crop_size: int) -> nn.Module:
    """Shipped GQ-CNN 4.0-PJ for 96-px crops; otherwise a same-shaped stand-in (timing only)."""
    if crop_size == 96:
        try:
            from benchbot.models.weights import load_gqcnn

            return load_gqcnn("gqcnn-4.0-pj")
        except Exception:  # noqa: BLE001 — timing still meaningful with a stand-in
            pass
    return nn.Sequential()  # never reached for the presets below


def shipped_config(kind: str) -> dict[str, Any]:
    """Architecture of the shipped checkpoint (coordinate channels, refinement passes, input size)."""
    from benchbot.models.checkpoint import load_file, resolve_weights

    return dict(load_file(resolve_weights(kind, None), (f"benchbot-{kind}",))["config"])


def build_gqstn(preset: str) -> GQSTN:
    torch.manual_seed(0)
    presets = {"paper": GQSTNConfig.paper, "small": GQSTNConfig.small,
               "shipped": lambda: GQSTNConfig(**shipped_config("gqstn"))}
    cfg = presets[preset]()
    return GQSTN(cfg, _classifier(cfg.crop_size)).eval()


def build_multigrasp(preset: str) -> MultiGrasp:
    torch.manual_seed(0)
    presets = {"paper": MultiGraspConfig.paper, "small": MultiGraspConfig.small,
               "shipped": lambda: MultiGraspConfig(**shipped_config("multigrasp"))}
    return MultiGrasp(presets[preset]()).eval()


def gqstn_stages(model: GQSTN, depth_np: np.ndarray, repeats: int) -> list[tuple[str, Timing]]:
    """Per-stage medians of one PyTorch fp32 detection (stage inputs precomputed, so each is timed alone)."""
    cfg = model.cfg
    sq, box = letterbox(depth_np)
    src = torch.from_numpy(sq)[None, None]
    out: list[tuple[str, Timing]] = []
    with torch.inference_mode():
        out.append(("letterbox + tensor", _median_s(lambda: torch.from_numpy(letterbox(depth_np)[0])[None, None],
                                                    repeats)))
        x0 = model._loc_input(model._resize(src))
        out.append((f"trans STN: resize {sq.shape[0]}→{cfg.input_size} + loc net",
                    _median_s(lambda: model.loc_trans(model._loc_input(model._resize(src))), repeats)))
        w = model.loc_trans(x0)
        x, y = torch.sigmoid(w[:, 0]) - 0.5, torch.sigmoid(w[:, 1]) - 0.5
        if cfg.trans_refine:
            out.append((f"{cfg.trans_refine} translation refinement pass(es)",
                        _median_s(lambda: [model.loc_trans(model._loc_input(sample(src, affine(x, y, None, None),
                                                                                   cfg.input_size)))
                                           for _ in range(cfg.trans_refine)], repeats)))
        t_img = sample(src, affine(x, y, None, None), cfg.input_size)
        out.append(("rot STN: sample translated image + loc net",
                    _median_s(lambda: model.loc_rot(model._loc_input(sample(src, affine(x, y, None, None),
                                                                            cfg.input_size))), repeats)))
        wr = model.loc_rot(model._loc_input(t_img))
        th = torch.atan2(torch.sigmoid(wr[:, 0]) - 0.5, torch.sigmoid(wr[:, 1]) - 0.5) / 2
        out.append(("scale STN: sample rotated image + loc net",
                    _median_s(lambda: model.loc_scale(model._loc_input(sample(src, affine(x, y, th, None),
                                                                              cfg.input_size))), repeats)))
        s = torch.full_like(x, cfg.scale_mean)
        z = torch.full((1, 1), 0.7)

        classifier = model.classifier
        assert classifier is not None  # build_gqstn attaches one

        def crop_and_classify() -> torch.Tensor:
            crop = sample(src, dexnet_centred(affine(x, y, th, s), cfg.crop_size), cfg.crop_size)
            return classifier(crop, z)

        out.append((f"crop {cfg.crop_size}×{cfg.crop_size} + frozen GQ-CNN", _median_s(crop_and_classify, repeats)))

        def detect() -> object:
            sq2, box2 = letterbox(depth_np)
            o = model(torch.from_numpy(sq2)[None, None])
            return params_to_grasp(o.params()[0].numpy(), box2)

        out.append(("TOTAL detect (PyTorch fp32)", _median_s(detect, repeats)))
    return out


def gqstn_variants(model: GQSTN, depth_np: np.ndarray, repeats: int, threads: int, onnx: bool = True
                   ) -> list[tuple[str, Timing | str]]:
    """End-to-end detect latency for bf16 autocast, ORT fp32 and ORT int8 (letterbox included)."""
    res: list[tuple[str, Timing | str]] = []

    def pre() -> torch.Tensor:
        return torch.from_numpy(letterbox(depth_np)[0])[None, None]

    try:
        with torch.inference_mode():
            def bf16() -> object:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return model(pre()).params()

            res.append(("TOTAL detect (PyTorch bf16 autocast)", _median_s(bf16, repeats)))
    except Exception as exc:  # noqa: BLE001 — report, do not fail the benchmark
        res.append(("TOTAL detect (PyTorch bf16 autocast)", f"failed: {type(exc).__name__}: {str(exc)[:80]}"))
    with torch.inference_mode():  # gqstn-sym8: the 8 square symmetries in one batch
        res.append(("TOTAL detect, 8 views (PyTorch fp32)",
                    _median_s(lambda: model(dihedral_batch(pre())).params(), repeats)))
    if onnx:
        try:
            sess8 = onnx_session(InferenceGraph(model).eval(), dihedral_batch(pre()), threads)
            res.append(("TOTAL detect, 8 views (ONNX Runtime fp32)",
                        _median_s(lambda: sess8.run(None, {"depth": dihedral_batch(pre()).numpy()}), repeats)))
        except Exception as exc:  # noqa: BLE001
            res.append(("TOTAL detect, 8 views (ONNX Runtime fp32)", f"failed: {type(exc).__name__}: {str(exc)[:80]}"))
    if onnx:
        for label, int8 in (("ONNX Runtime fp32", False), ("ONNX Runtime int8 dynamic", True)):
            try:
                sess = onnx_session(InferenceGraph(model).eval(), pre(), threads, int8)
                res.append((f"TOTAL detect ({label})",
                            _median_s(lambda: sess.run(None, {"depth": pre().numpy()}), repeats)))
            except Exception as exc:  # noqa: BLE001
                res.append((f"TOTAL detect ({label})", f"failed: {type(exc).__name__}: {str(exc)[:80]}"))
    return res


def multigrasp_stages(model: MultiGrasp, depth_np: np.ndarray, repeats: int) -> list[tuple[str, Timing]]:
    cfg = model.cfg
    with torch.inference_mode():
        src = torch.from_numpy(letterbox(depth_np)[0])[None, None]
        pred = model(src)

        def detect() -> object:
            sq, box = letterbox(depth_np)
            t = torch.from_numpy(sq)[None, None]
            return decoded_to_grasp(decode(model(t), t, cfg)[0], box)

        return [("network (resize + ResNet + grid head)", _median_s(lambda: model(src), repeats)),
                ("decode best cell", _median_s(lambda: decode(pred, src, cfg), repeats)),
                ("TOTAL detect (PyTorch fp32)", _median_s(detect, repeats))]


def run_benchmark(presets: tuple[str, ...] = ("paper", "small"), repeats: int = 10, threads: int = 2,
                  frame_shape: tuple[int, int] = (480, 640), onnx: bool = True) -> list[dict[str, Any]]:
    """Print and return rows {model, preset, stage, median_ms, min_ms}."""
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    depth = (0.75 - 0.05 * rng.random(frame_shape)).astype(np.float32)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# bench_models: torch {torch.__version__}, {threads} threads, frame {frame_shape[0]}×{frame_shape[1]}, "
          f"batch 1, {NOTE}; 1-min load average {load:.1f}")
    rows: list[dict[str, Any]] = []

    print(f"{'model':<10s} {'preset':<6s} {'stage':<52s} {'median':>9s}    {'fastest':>9s}")

    def rec(model: str, preset: str, stage: str, v: Timing | str) -> None:
        if isinstance(v, str):
            rows.append({"model": model, "preset": preset, "stage": stage, "median_ms": None, "min_ms": None,
                         "note": v})
            print(f"{model:<10s} {preset:<6s} {stage:<52s} {v}", flush=True)
            return
        med, best = v[0] * 1e3, v[1] * 1e3
        rows.append({"model": model, "preset": preset, "stage": stage, "median_ms": med, "min_ms": best})
        print(f"{model:<10s} {preset:<6s} {stage:<52s} {med:9.1f} ms {best:9.1f} ms", flush=True)

    for preset in presets:
        g = build_gqstn(preset)
        c = g.cfg
        extras = "".join([", coords" if c.coord_channels else "",
                          f", refine {c.trans_refine}" if c.trans_refine else ""])
        label = f"{preset}: ResNet-{c.backbone_depth} w{c.backbone_width}, {c.input_size}px{extras}"
        print(f"## GQ-STN {label}")
        for stage, s in gqstn_stages(g, depth, repeats):
            rec("gqstn", preset, stage, s)
        for stage, v in gqstn_variants(g, depth, repeats, threads, onnx):
            rec("gqstn", preset, stage, v)
        m = build_multigrasp(preset)
        label = f"{preset}: ResNet-{m.cfg.backbone_depth} w{m.cfg.backbone_width}, {m.cfg.input_size}px"
        print(f"## MultiGrasp {label}")
        for stage, s in multigrasp_stages(m, depth, repeats):
            rec("multigrasp", preset, stage, s)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchbot.bench.models")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--presets", nargs="+", default=["paper", "small"], choices=["paper", "small", "shipped"])
    ap.add_argument("--no-onnx", action="store_true")
    a = ap.parse_args(argv)
    run_benchmark(tuple(a.presets), a.repeats, a.threads, onnx=not a.no_onnx)


if __name__ == "__main__":
    main()

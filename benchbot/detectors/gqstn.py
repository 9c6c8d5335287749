"""`gqstn`: the GQ-STN one-shot detector (Gariépy et al. 2019) behind the Detector interface.

The frame is resampled to the view the model was trained on (same pixels per metre at the table,
same square side, depths shifted to the same table distance; edge-replicated beyond the frame;
models without a recorded view: padded to a square), resized to the size the model was trained on
and run once; the predicted (x, y, θ, s, z) are mapped back to the frame's pixels. `score` is the
frozen GQ-CNN's P(robust) of the GQ-STN's own crop. Needs a trained checkpoint: `weights=` (the CLI's
--weights) or the shipped benchbot/data/weights/gqstn/gqstn.pt; without one it refuses to run.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp
from benchbot.models.checkpoint import load_model, resolve_weights
from benchbot.models.device import pick_device
from benchbot.models.gqstn import (
    GQSTN,
    GQSTNOutput,
    Letterbox,
    letterbox,
    normalised_view,
    params_to_grasp,
    square_symmetry,
)
from benchbot.perception.geometry import pixels_per_metre


def view_transform(frame: DepthFrame, view: dict) -> tuple[float, float]:
    """(resize factor, depth offset m) from this frame to a model's training view {"px_per_m", "side",
    "table_distance_m"}: the ratio of pixels per metre at the table, and the shift that puts the table
    at the training distance (table distance: frame meta, else the median valid depth)."""
    from benchbot.models.robustness import estimate_table_distance

    dist = float(frame.meta.get("table_distance_m") or estimate_table_distance(frame))
    offset = float(view["table_distance_m"]) - dist if view.get("table_distance_m") else 0.0
    return float(view["px_per_m"]) / pixels_per_metre(frame.intrinsics, dist), offset


def frame_tensor(frame: DepthFrame, source_size: int, device: torch.device,
                 view: dict | None = None) -> tuple[torch.Tensor, Letterbox]:
    """Square, resized depth tensor 1×1×S×S (metres) and the frame ↔ square mapping. With the
    model's training `view`, the frame is first resampled to that view's pixels per metre and side,
    and its depths shifted to the view's table distance (the mapping undoes both)."""
    if view:
        scale, offset = view_transform(frame, view)
        sq, box = normalised_view(frame.depth_m, scale, int(view["side"]))
        sq, box = sq + np.float32(offset), replace(box, depth_offset_m=offset)
    else:
        sq, box = letterbox(frame.depth_m)
    t = torch.from_numpy(sq)[None, None].to(device)
    if source_size and source_size != box.side:
        t = F.interpolate(t, size=(source_size, source_size), mode="bilinear", align_corners=False)
    return t, box


class InferenceGraph(nn.Module):
    """GQ-STN inference for export: depth 1×1×S×S → (params 1×5 [x, y, θ, s, z], P(robust) 1)."""

    def __init__(self, model: GQSTN) -> None:
        super().__init__()
        self.model = model

    def forward(self, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(depth)
        if out.robust_logits is None:
            return out.params(), torch.full_like(out.x, float("nan"))
        return out.params(), torch.softmax(out.robust_logits, dim=-1)[:, 1]


_CWD_LOCK = threading.Lock()


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    """Run a block in `path`: ONNX Runtime's symbolic shape inference saves
    `sym_shape_infer_temp.onnx` + `<uuid>.data` into the working directory when it fails."""
    with _CWD_LOCK:
        before = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(before)


def onnx_session(model: nn.Module, example: torch.Tensor, threads: int | None = None, int8: bool = False):
    """Export `model` (one tensor in) to ONNX opset 20 (AffineGrid, GridSample) and open it in
    ONNX Runtime on CPU; int8=True applies dynamic int8 quantisation first."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BenchbotError("onnxruntime is not installed", "pip install 'benchbot[onnx]'") from exc
    import io
    import tempfile
    import warnings

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer/deprecation chatter of the TorchScript exporter
        torch.onnx.export(model.eval(), (example,), buf, opset_version=20, input_names=["depth"], dynamo=False)
    data = buf.getvalue()
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as d, _working_directory(d):
            src, pre, dst = (os.path.join(d, n) for n in ("m.onnx", "p.onnx", "q.onnx"))
            with open(src, "wb") as f:
                f.write(data)
            quant_pre_process(src, pre)  # folds the exporter's Identity-shared weights into initializers
            quantize_dynamic(pre, dst, weight_type=QuantType.QInt8)
            with open(dst, "rb") as f:
                data = f.read()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


class OneShotDetector:
    """What the one-shot detectors share: their trained checkpoint (never random weights) on a device,
    and the frame handling its model was trained with (view, source size)."""

    def __init__(self, kind: str, weights: str | Path | None, device: str, source_size: int | None,
                 normalise_view: bool, **load: nn.Module | None) -> None:
        self.device = pick_device(device)
        self.weights = resolve_weights(kind, weights)
        model, self.meta = load_model(self.weights, kind, **load)
        self.model = model.to(self.device).eval()
        self.source_size = int(source_size or self.meta.get("source_size") or 0)
        self.view = self.meta.get("view") if normalise_view else None

    def tensor(self, frame: DepthFrame) -> tuple[torch.Tensor, Letterbox]:
        return frame_tensor(frame, self.source_size, self.device, self.view)


def dihedral_batch(t: torch.Tensor) -> torch.Tensor:
    """The 8 symmetries of a 1×1×S×S square (`square_symmetry` k = 0…7) as one 8×1×S×S batch."""
    return torch.cat([square_symmetry(t, k) for k in range(8)])


def undo_dihedral(params: np.ndarray, k: int) -> np.ndarray:
    """[x, y, θ, s, z] predicted on symmetry k of the square → the same grasp on the square itself
    (x, y are centred, so a mirror negates one; each step is its own inverse, undone in reverse)."""
    x, y, th, s, z = (float(v) for v in params[:5])
    if k & 4:
        x, y, th = y, x, math.pi / 2 - th
    if k & 2:
        y, th = -y, -th
    if k & 1:
        x, th = -x, -th
    return np.array([x, y, th, s, z])


class GQSTNDetector(OneShotDetector):
    """runtime: 'torch' or 'onnx' (ONNX Runtime on CPU, exported once per input size; faster on CPU).
    symmetries=8: run the 8 mirrored / transposed views of the input as one batch and keep the grasp
    whose own crop the frozen GQ-CNN rates most robust (a test-time ensemble; 1: the paper's one pass)."""

    name = "gqstn"
    model: GQSTN

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", classifier: nn.Module | None = None,
                 source_size: int | None = None, runtime: str = "torch", threads: int | None = None,
                 normalise_view: bool = True, symmetries: int = 1) -> None:
        if runtime not in ("torch", "onnx"):
            raise BenchbotError(f"unknown runtime {runtime!r}", "use torch or onnx")
        if str(symmetries) not in ("1", "8"):  # options from the command line arrive as text
            raise BenchbotError(f"symmetries={symmetries}", "use 1 (one pass) or 8 (all square symmetries)")
        self.symmetries = int(symmetries)
        super().__init__("gqstn", weights, device, source_size, normalise_view, classifier=classifier)
        self.runtime, self.threads = runtime, threads
        self._sessions: dict[tuple[int, ...], object] = {}
        self.last_output: GQSTNOutput | None = None

    @torch.inference_mode()
    def detect(self, frame: DepthFrame) -> Grasp:
        t, box = self.tensor(frame)
        if self.symmetries == 8:
            t = dihedral_batch(t)
        if self.runtime == "onnx":
            key = tuple(t.shape)
            if key not in self._sessions:
                self._sessions[key] = onnx_session(InferenceGraph(self.model).cpu(), t.cpu(), self.threads)
            params, prob = self._sessions[key].run(None, {"depth": t.cpu().numpy()})
        else:
            out = self.model(t)
            self.last_output = out
            p = out.robust_prob()
            params = out.params().cpu().numpy()
            prob = p.cpu().numpy() if p is not None else np.full(len(params), np.nan)
        k = int(np.nanargmax(prob)) if np.isfinite(prob).any() else 0
        score = float(prob[k]) if np.isfinite(prob[k]) else None
        return params_to_grasp(undo_dihedral(params[k].astype(np.float64), k), box, score)


class GQSTNSymmetries(GQSTNDetector):
    """`gqstn-sym8`: the GQ-STN run on the 8 square symmetries of the input at once; the grasp whose
    crop its frozen GQ-CNN rates most robust wins (same weights as `gqstn`, about 3× its CPU time)."""

    name = "gqstn-sym8"
    forwards_options_to = "gqstn"

    def __init__(self, **options: object) -> None:
        super().__init__(**{"symmetries": 8, **options})  # type: ignore[arg-type]

"""`gqstn`: the GQ-STN one-shot detector (Gariépy et al. 2019) behind the Detector interface.

Models that record their training view (pixels per metre at the table, square side, table distance)
see the frame's rectified view (`perception.rectify`): the frame re-rendered by a virtual camera
looking straight down at the frame's table plane from the training height with the training focal
length. The predicted (x, y, θ, s, z) is a grasp in that view, mapped back to the frame exactly
through its 3-D pose. Models without a recorded view see the frame padded to a square.
The shipped models were trained on one object per scene: by default (`focus="largest"`) the view is
centred on the largest object on the table and the other objects are replaced by the table
(`segment.isolate_largest_object`); `focus="none"`: the view is centred on the frame's centre ray.
`score` is the robustness evaluator's q of the returned grasp on the frame itself (the same code
path as `detect` and the runner; `score_with="classifier"`: the model's own P(robust) of its crop).
Needs a trained checkpoint: `weights=` (the CLI's --weights) or the shipped
benchbot/data/weights/gqstn/gqstn.pt; without one it refuses to run.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp
from benchbot.models.checkpoint import load_model, resolve_weights
from benchbot.models.device import pick_device
from benchbot.models.gqstn import GQSTN, GQSTNOutput, Letterbox, letterbox, params_to_grasp, square_symmetry
from benchbot.perception.rectify import Rectified, View, check_focus, model_view


@dataclass
class OneShotInfo:
    """What the last `detect` did: the candidate grasps on the frame (one per input view), their
    scores, and the rectified view they were found in (None: letterboxed frame)."""

    candidates: list[Grasp] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    rectified: Rectified | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
        torch.onnx.export(model.eval(), (example,),
                          buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to a file object; torch annotates paths only
                          opset_version=20, input_names=["depth"], dynamo=False)
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
    the view their model was trained on (rectified input, exact mapping back) and the evaluator that
    scores their grasps on the frame."""

    def __init__(self, kind: str, weights: str | Path | None, device: str, source_size: int | None,
                 normalise_view: bool, evaluator: RobustnessEvaluator | None = None, focus: str = "largest",
                 classifier: nn.Module | None = None) -> None:
        self.focus = check_focus(focus)
        self.device = pick_device(device)
        self.weights = resolve_weights(kind, weights)
        model, self.meta = load_model(self.weights, kind, classifier=classifier)
        self.model = model.to(self.device).eval()
        self.source_size = int(source_size or self.meta.get("source_size") or 0)
        view = self.meta.get("view") if normalise_view else None
        self.view = View.from_meta(view) if view else None
        self._evaluator = evaluator
        self.last_info = OneShotInfo()

    @property
    def evaluator(self) -> RobustnessEvaluator:
        """The robustness evaluator (default: the runner's default, GQ-CNN 4.0-PJ), built on first use."""
        if self._evaluator is None:
            from benchbot.models.robustness import load_evaluator

            self._evaluator = load_evaluator()
        return self._evaluator

    def square(self, frame: DepthFrame) -> tuple[torch.Tensor, Letterbox, Rectified | None]:
        """The model's input 1×1×S×S: the rectified training view (models recording one), else the
        letterboxed frame; with the square ↔ view mapping and the rectified view."""
        rect = None
        if self.view is not None:
            rect = model_view(frame, self.view, self.focus)
            sq, box = rect.frame.depth_m, Letterbox(self.view.side, 0.0, 0.0)
        else:
            sq, box = letterbox(frame.depth_m)
        t = torch.from_numpy(np.ascontiguousarray(sq, dtype=np.float32))[None, None].to(self.device)
        if self.source_size and self.source_size != box.side:
            t = F.interpolate(t, size=(self.source_size, self.source_size), mode="bilinear", align_corners=False)
        return t, box, rect

    @staticmethod
    def on_frame(grasp: Grasp, rect: Rectified | None) -> Grasp:
        """A grasp in the model's square → the same grasp on the frame."""
        return rect.to_real(grasp) if rect is not None else grasp


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
    the evaluator rates most robust on the frame (a test-time ensemble; 1: the paper's one pass).
    score_with: 'evaluator' (q on the frame, default) or 'classifier' (the model's own P(robust))."""

    name = "gqstn"
    model: GQSTN

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", classifier: nn.Module | None = None,
                 source_size: int | None = None, runtime: str = "torch", threads: int | None = None,
                 normalise_view: bool = True, symmetries: int = 1, score_with: str = "evaluator",
                 evaluator: RobustnessEvaluator | None = None, focus: str = "largest") -> None:
        if runtime not in ("torch", "onnx"):
            raise BenchbotError(f"unknown runtime {runtime!r}", "use torch or onnx")
        if str(symmetries) not in ("1", "8"):  # options from the command line arrive as text
            raise BenchbotError(f"symmetries={symmetries}", "use 1 (one pass) or 8 (all square symmetries)")
        if score_with not in ("evaluator", "classifier"):
            raise BenchbotError(f"score_with={score_with!r}", "use 'evaluator' or 'classifier'")
        self.symmetries = int(symmetries)
        self.score_with = score_with
        super().__init__("gqstn", weights, device, source_size, normalise_view, evaluator, focus,
                         classifier=classifier)
        self.runtime, self.threads = runtime, threads
        self._sessions: dict[tuple[int, ...], object] = {}
        self.last_output: GQSTNOutput | None = None
        if score_with == "evaluator":
            _ = self.evaluator  # loaded now, not inside the first (timed) detection

    def _forward(self, t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """[x, y, θ, s, z] per input (N×5) and the model's own P(robust) (NaN without a classifier)."""
        if self.runtime == "onnx":
            key = tuple(t.shape)
            if key not in self._sessions:
                self._sessions[key] = onnx_session(InferenceGraph(self.model).cpu(), t.cpu(), self.threads)
            params, prob = self._sessions[key].run(None, {"depth": t.cpu().numpy()})  # type: ignore[attr-defined]
            return np.asarray(params, np.float64), np.asarray(prob, np.float64)
        out = self.model(t)
        self.last_output = out
        p = out.robust_prob()
        params = out.params().cpu().double().numpy()
        return params, (p.cpu().double().numpy() if p is not None else np.full(len(params), np.nan))

    @torch.inference_mode()
    def detect(self, frame: DepthFrame) -> Grasp:
        t, box, rect = self.square(frame)
        if self.symmetries == 8:
            t = dihedral_batch(t)
        params, prob = self._forward(t)
        grasps = [self.on_frame(params_to_grasp(undo_dihedral(params[k], k), box, None), rect)
                  for k in range(len(params))]
        q = self.evaluator.qualities(frame, grasps) if self.score_with == "evaluator" else prob
        k = int(np.nanargmax(q)) if np.isfinite(q).any() else 0
        self.last_info = OneShotInfo(grasps, [float(v) for v in q], rect)
        return replace(grasps[k], score=float(q[k]) if np.isfinite(q[k]) else None)


class GQSTNSymmetries(GQSTNDetector):
    """`gqstn-sym8`: the GQ-STN run on the 8 square symmetries of the input at once; the grasp whose
    crop its frozen GQ-CNN rates most robust wins (same weights as `gqstn`, about 3× its CPU time)."""

    name = "gqstn-sym8"
    forwards_options_to = "gqstn"

    def __init__(self, **options: object) -> None:
        super().__init__(**{"symmetries": 8, **options})  # type: ignore[arg-type]

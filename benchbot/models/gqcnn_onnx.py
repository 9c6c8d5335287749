"""Optional ONNX Runtime backend for GQ-CNN inference (extra: `pip install 'benchbot[onnx]'`).

`export_onnx` writes the model (normalisation and softmax included) with a dynamic batch axis;
`OnnxGQCNN` runs it with the same `probabilities` / `quality` / `predict` API as the torch module.

Threads: one single-threaded session run by `workers` Python threads, one batch each (ONNX Runtime
and cv2 release the GIL). On 2 cores this kept both busy where ONNX Runtime's own intra-op threads
lost ~7 % to synchronisation, and lets `predict_batches` cut crops in parallel too. No spin-waiting:
a spinning thread burns a core that a loaded machine needs. Each batch's q does not depend on the
thread that ran it.
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchbot.core.errors import BenchbotError, missing_extra
from benchbot.models.gqcnn import GQCNN, GQCNNConfig


class _Probabilities(nn.Module):
    def __init__(self, model: GQCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, crops_m: torch.Tensor, depth_z_m: torch.Tensor) -> torch.Tensor:
        im = (crops_m - self.model.im_mean) / self.model.im_std
        pose = (depth_z_m - self.model.pose_mean) / self.model.pose_std
        return torch.softmax(self.model.forward_normalised(im, pose), dim=1)


def export_onnx(model: GQCNN, path: str | Path | None = None, opset: int = 17) -> bytes:
    """ONNX graph: inputs `crops` (N, 1, S, S) metres and `depth_z` (N, 1) metres → `prob` (N, 2)."""
    s = model.cfg.im_size
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        example = (torch.full((2, 1, s, s), 0.7), torch.full((2, 1), 0.7))
        torch.onnx.export(_Probabilities(model).eval(), example,
                          buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to a file object; torch annotates paths only
                          input_names=["crops", "depth_z"], output_names=["prob"], opset_version=opset,
                          dynamic_axes={"crops": {0: "n"}, "depth_z": {0: "n"}, "prob": {0: "n"}}, dynamo=False)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


class OnnxGQCNN:
    """A GQ-CNN run by ONNX Runtime on CPU; `cfg` is the torch model's config."""

    def __init__(self, onnx_model: bytes | str | Path, cfg: GQCNNConfig, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_extra("onnxruntime", "onnx") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # parallel over batches instead (see module docstring)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        src = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        try:
            self.session = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BenchbotError(f"ONNX Runtime cannot load the GQ-CNN graph ({str(exc).splitlines()[0][:100]})",
                                "re-export it with benchbot.models.gqcnn_onnx.export_onnx") from exc
        self.cfg = cfg
        self.workers = max(1, int(threads) if threads else torch.get_num_threads())
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    @classmethod
    def from_model(cls, model: GQCNN, threads: int | None = None) -> OnnxGQCNN:
        return cls(export_onnx(model), model.cfg, threads)

    def freeze(self) -> OnnxGQCNN:
        return self  # nothing to train

    def probabilities(self, crops_m: torch.Tensor | np.ndarray, depth_z_m: torch.Tensor | np.ndarray) -> np.ndarray:
        c = np.ascontiguousarray(np.asarray(crops_m, dtype=np.float32))
        if c.ndim == 3:
            c = c[:, None]
        z = np.asarray(depth_z_m, dtype=np.float32).reshape(-1, 1)
        if c.shape[1:] != (1, self.cfg.im_size, self.cfg.im_size) or z.shape[0] != c.shape[0]:
            raise BenchbotError(f"{self.cfg.name} wants crops (N, 1, {self.cfg.im_size}, {self.cfg.im_size}) "
                                f"and N depths, got {c.shape} and {z.shape[0]}",
                                f"cut crops with crop spec {self.cfg.crop!r}")
        return self.session.run(None, {"crops": c, "depth_z": z})[0]

    def quality(self, crops_m: torch.Tensor | np.ndarray, depth_z_m: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.probabilities(crops_m, depth_z_m)[:, -1]

    def predict(self, crops_m: torch.Tensor | np.ndarray, depth_z_m: torch.Tensor | np.ndarray,
                batch_size: int = 100) -> np.ndarray:
        """P(robust) for many crops, in batches."""
        c, z = np.asarray(crops_m, dtype=np.float32), np.asarray(depth_z_m, dtype=np.float32).reshape(-1, 1)
        return self.predict_batches(lambda sl: c[sl], z, batch_size)

    def predict_batches(self, crops_for: Callable[[slice], np.ndarray], depth_z_m: np.ndarray,
                        batch_size: int = 100) -> np.ndarray:
        """P(robust) of N grasps, batch by batch: `crops_for(slice)` gives that batch's crops (cut in
        the worker thread, so cutting runs in parallel with inference), `depth_z_m` their N depths."""
        z = np.asarray(depth_z_m, dtype=np.float32).reshape(-1, 1)
        spans = [slice(i, min(i + batch_size, len(z))) for i in range(0, len(z), max(int(batch_size), 1))]
        if not spans:
            return np.zeros(0, np.float32)
        if self.workers == 1 or len(spans) == 1:
            parts = [self.quality(crops_for(sl), z[sl]) for sl in spans]
        else:
            if self._pool is None or self._pool_pid != os.getpid():  # a forked child has no pool threads
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="gqcnn-onnx")
                self._pool_pid = os.getpid()
            parts = list(self._pool.map(lambda sl: self.quality(crops_for(sl), z[sl]), spans))
        return np.concatenate(parts)

"""Optional ONNX Runtime backend for GQ-CNN inference (extra: `pip install 'benchbot[onnx]'`).

`export_onnx` writes the model (normalisation and softmax included) with a dynamic batch axis;
`OnnxGQCNN` runs it with the same `probabilities` / `quality` / `predict` API as the torch module.
"""
from __future__ import annotations

import io
import warnings
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
        if threads:
            opts.intra_op_num_threads = threads
        src = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        try:
            self.session = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BenchbotError(f"ONNX Runtime cannot load the GQ-CNN graph ({str(exc).splitlines()[0][:100]})",
                                "re-export it with benchbot.models.gqcnn_onnx.export_onnx") from exc
        self.cfg = cfg

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
        """P(robust) for many crops, in chunks."""
        c, z = np.asarray(crops_m, dtype=np.float32), np.asarray(depth_z_m, dtype=np.float32).reshape(-1, 1)
        parts = [self.quality(c[i:i + batch_size], z[i:i + batch_size]) for i in range(0, len(c), batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

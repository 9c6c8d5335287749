"""GQ-CNN (Mahler et al.) in PyTorch, built from Berkeley's architecture JSON.

One module class covers Dex-Net 2.0's "GQ" network (32×32 input, SAME padding, LRN) and
GQCNN-4.0-PJ (96×96 input, VALID padding, no LRN). Layer order per conv block, as in Berkeley's
TF code: conv + bias → (leaky) ReLU → LRN (if `norm`) → max-pool (SAME padding).
Image stream → fc3; pose stream (gripper depth z) → pc1 [→ pc2]; merge
`fc4 = relu(fc3 @ W_im + pc @ W_pose + b)`; `fc5` → 2 logits [fail, success].

Inputs are raw: crops in metres (N, 1, H, W) and gripper depth z in metres (N,) or (N, 1);
the module normalises them with the release's mean/std (stored in its config).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchbot.core.errors import BenchbotError, check_number


@dataclass(frozen=True)
class ConvSpec:
    name: str
    filt_dim: int
    num_filt: int
    pool_size: int = 1
    pool_stride: int = 1
    pad: str = "SAME"  # SAME | VALID (TensorFlow semantics)
    norm: bool = False  # local response normalisation after the ReLU


@dataclass(frozen=True)
class Normalisation:
    im_mean: float
    im_std: float
    pose_mean: float  # gripper depth z
    pose_std: float


@dataclass(frozen=True)
class GQCNNConfig:
    """Everything needed to rebuild a GQ-CNN and feed it (serialised into our .pt files)."""

    name: str
    im_size: int
    convs: tuple[ConvSpec, ...]
    fc3: int
    pc1: int
    fc4: int
    fc5: int = 2
    pc2: int = 0
    im_channels: int = 1
    relu_coeff: float = 0.0
    lrn_radius: int = 2
    lrn_alpha: float = 2e-5
    lrn_beta: float = 0.75
    lrn_bias: float = 1.0
    norm: Normalisation = field(default_factory=lambda: Normalisation(0.0, 1.0, 0.0, 1.0))
    crop: str = "96to96"  # crops.SPECS key: how crops are cut for this network
    px_per_m: float = 0.0  # camera image scale at training (pixels per metre on the table)

    def __post_init__(self) -> None:  # configs come from files: refuse what cannot be built
        if not isinstance(self.name, str) or not isinstance(self.crop, str) \
                or not isinstance(self.norm, Normalisation) or not isinstance(self.convs, tuple) \
                or not all(isinstance(c, ConvSpec) for c in self.convs):
            raise BenchbotError("GQ-CNN config: name/crop are not text, or convs/norm are malformed",
                                "regenerate the weights file with benchbot's convert_release")
        check_number("im_size", self.im_size, 4, 512, integer=True)
        check_number("number of conv layers", len(self.convs), 1, 32, integer=True)
        for c in self.convs:
            check_number(f"{c.name}.filt_dim", c.filt_dim, 1, self.im_size, integer=True)
            check_number(f"{c.name}.num_filt", c.num_filt, 1, 4096, integer=True)
            check_number(f"{c.name}.pool_size", c.pool_size, 1, 16, integer=True)
            check_number(f"{c.name}.pool_stride", c.pool_stride, 1, 16, integer=True)
        for name, lo in (("fc3", 1), ("pc1", 1), ("fc4", 1), ("fc5", 2), ("pc2", 0), ("im_channels", 1)):
            check_number(name, getattr(self, name), lo, 65536, integer=True)
        check_number("lrn_radius", self.lrn_radius, 0, 64, integer=True)
        for name in ("relu_coeff", "lrn_alpha", "lrn_beta", "lrn_bias", "px_per_m"):
            check_number(name, getattr(self, name))
        for name in ("im_mean", "pose_mean"):
            check_number(f"norm.{name}", getattr(self.norm, name))
        for name in ("im_std", "pose_std"):
            check_number(f"norm.{name}", getattr(self.norm, name), 1e-9)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["convs"] = [asdict(c) for c in self.convs]
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> GQCNNConfig:
        try:
            d = dict(d)
            d["convs"] = tuple(ConvSpec(**c) for c in d["convs"])
            d["norm"] = Normalisation(**d["norm"])
            return GQCNNConfig(**d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BenchbotError(f"invalid GQ-CNN architecture record: {exc}",
                                "regenerate the weights file with benchbot's convert_release") from exc


def config_from_berkeley(architecture: Mapping[str, Any], gqcnn_cfg: Mapping[str, Any], norm: Normalisation,
                         name: str, crop: str, px_per_m: float) -> GQCNNConfig:
    """Parse Berkeley's architecture dict: the legacy flat form (GQCNN-2.0: conv*/pc*/fc* at top
    level, SAME padding unless 'padding' says otherwise) or the stream form (im/pose/merge_stream)."""
    try:
        if "im_stream" in architecture:
            im, pose, merge = architecture["im_stream"], architecture["pose_stream"], architecture["merge_stream"]
            conv_items = [(k, v) for k, v in im.items() if v.get("type") == "conv"]
            pad_key, default_pad = "pad", "VALID"
            fc3 = im["fc3"]["out_size"]
            pc1, pc2 = pose["pc1"]["out_size"], pose.get("pc2", {}).get("out_size", 0)
            fc4, fc5 = merge["fc4"]["out_size"], merge["fc5"]["out_size"]
        else:
            conv_items = [(k, v) for k, v in architecture.items() if k.startswith("conv")]
            pad_key, default_pad = "padding", "SAME"
            fc3, pc1 = architecture["fc3"]["out_size"], architecture["pc1"]["out_size"]
            pc2 = architecture.get("pc2", {}).get("out_size", 0)
            fc4, fc5 = architecture["fc4"]["out_size"], architecture["fc5"]["out_size"]
        convs = tuple(ConvSpec(k, int(v["filt_dim"]), int(v["num_filt"]), int(v.get("pool_size", 1)),
                               int(v.get("pool_stride", 1)), str(v.get(pad_key, default_pad)).upper(),
                               bool(v.get("norm", 0))) for k, v in conv_items)
        if gqcnn_cfg.get("angular_bins", 0) or gqcnn_cfg.get("num_angular_bins", 0):
            raise BenchbotError("angular-bin GQ-CNNs are not supported",
                                "use a parallel-jaw GQ-CNN without angular bins")
        if gqcnn_cfg.get("input_depth_mode", "pose_stream") != "pose_stream":
            raise BenchbotError(f"input_depth_mode {gqcnn_cfg['input_depth_mode']!r} is not supported",
                                "use a GQ-CNN with input_depth_mode 'pose_stream'")
        if int(gqcnn_cfg.get("im_channels", 1)) != 1:
            raise BenchbotError("only single-channel (depth) GQ-CNNs are supported", "use a depth-only GQ-CNN")
        return GQCNNConfig(name=name, im_size=int(gqcnn_cfg["im_height"]), convs=convs, fc3=int(fc3), pc1=int(pc1),
                           pc2=int(pc2), fc4=int(fc4), fc5=int(fc5), relu_coeff=float(gqcnn_cfg.get("relu_coeff", 0.0)),
                           lrn_radius=int(gqcnn_cfg.get("radius", 2)), lrn_alpha=float(gqcnn_cfg.get("alpha", 2e-5)),
                           lrn_beta=float(gqcnn_cfg.get("beta", 0.75)), lrn_bias=float(gqcnn_cfg.get("bias", 1.0)),
                           norm=norm, crop=crop, px_per_m=px_per_m)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise BenchbotError(f"unrecognised GQ-CNN architecture JSON ({exc!r:.100})",
                            "point at a Berkeley GQ-CNN release folder (config.json + architecture.json)") from exc


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class GQCNN(nn.Module):
    """A GQ-CNN. `forward(crops_m, depth_z_m)` → logits (N, 2); `quality(...)` → P(robust) (N,)."""

    im_mean: torch.Tensor  # normalisation buffers (register_buffer in __init__)
    im_std: torch.Tensor
    pose_mean: torch.Tensor
    pose_std: torch.Tensor

    def __init__(self, cfg: GQCNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.convs = nn.ModuleDict()
        size, ch = cfg.im_size, cfg.im_channels
        self._pads: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {}
        for c in cfg.convs:
            self.convs[c.name] = nn.Conv2d(ch, c.num_filt, c.filt_dim)
            if c.pad == "SAME":
                cp = _same_pad(size, c.filt_dim, 1)
            elif c.pad == "VALID":
                cp = (0, 0)
                size = size - c.filt_dim + 1
            else:
                raise BenchbotError(f"unknown padding {c.pad!r} in layer {c.name}", "use SAME or VALID")
            pp = _same_pad(size, c.pool_size, c.pool_stride)
            self._pads[c.name] = ((cp[0], cp[1], cp[0], cp[1]), (pp[0], pp[1], pp[0], pp[1]))
            size, ch = math.ceil(size / c.pool_stride), c.num_filt
            if size <= 0:
                raise BenchbotError(f"layer {c.name} shrinks a {cfg.im_size}px input to nothing",
                                    "check the architecture's im_height and filter sizes")
        self.flat_features = size * size * ch  # fc3 fan-in (flattened NCHW here; TF flattens NHWC)
        self.feature_shape = (ch, size, size)
        self.fc3 = nn.Linear(self.flat_features, cfg.fc3)
        self.pc1 = nn.Linear(1, cfg.pc1)
        self.pc2 = nn.Linear(cfg.pc1, cfg.pc2) if cfg.pc2 > 0 else None
        pose_out = cfg.pc2 if cfg.pc2 > 0 else cfg.pc1
        self.fc4_im = nn.Linear(cfg.fc3, cfg.fc4)
        self.fc4_pose = nn.Linear(pose_out, cfg.fc4, bias=False)
        self.fc5 = nn.Linear(cfg.fc4, cfg.fc5)
        n = cfg.norm
        self.register_buffer("im_mean", torch.tensor(n.im_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("im_std", torch.tensor(n.im_std, dtype=torch.float32), persistent=False)
        self.register_buffer("pose_mean", torch.tensor(n.pose_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pose_std", torch.tensor(n.pose_std, dtype=torch.float32), persistent=False)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg.relu_coeff
        return F.relu(x) if c == 0 else torch.maximum(x, c * x)

    def _lrn(self, x: torch.Tensor) -> torch.Tensor:
        # TF: x / (bias + alpha * sum_{|c'-c|<=r} x_c'^2) ** beta; torch averages over the window
        # (contiguous: torch's LRN is slow on channels_last tensors)
        size = 2 * self.cfg.lrn_radius + 1
        return F.local_response_norm(x.contiguous(), size, alpha=self.cfg.lrn_alpha * size, beta=self.cfg.lrn_beta,
                                     k=self.cfg.lrn_bias)

    def features(self, im_norm: torch.Tensor) -> torch.Tensor:
        """Image stream up to (and including) the flattened conv output."""
        x = im_norm
        for c in self.cfg.convs:
            conv_pad, pool_pad = self._pads[c.name]
            if any(conv_pad):
                x = F.pad(x, conv_pad)
            x = self._act(self.convs[c.name](x))
            if c.norm:
                x = self._lrn(x)
            if c.pool_size > 1 or c.pool_stride > 1:
                if any(pool_pad):
                    x = F.pad(x, pool_pad, value=float("-inf"))
                x = F.max_pool2d(x, c.pool_size, c.pool_stride)
        return x.flatten(1)

    def forward_normalised(self, im_norm: torch.Tensor, pose_norm: torch.Tensor) -> torch.Tensor:
        """Logits from already-normalised inputs: im (N, 1, H, W), pose (N, 1)."""
        h = self._act(self.fc3(self.features(im_norm)))
        p = self._act(self.pc1(pose_norm))
        if self.pc2 is not None:
            p = self._act(self.pc2(p))
        m = self._act(self.fc4_im(h) + self.fc4_pose(p))
        return self.fc5(m)

    def normalise(self, crops_m: torch.Tensor, depth_z_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if crops_m.ndim == 3:
            crops_m = crops_m.unsqueeze(1)
        if crops_m.ndim != 4 or crops_m.shape[1] != 1 or crops_m.shape[-1] != self.cfg.im_size \
                or crops_m.shape[-2] != self.cfg.im_size:
            raise BenchbotError(f"{self.cfg.name} wants crops of shape (N, 1, {self.cfg.im_size}, {self.cfg.im_size}),"
                                f" got {tuple(crops_m.shape)}", f"cut crops with crop spec {self.cfg.crop!r}")
        z = depth_z_m.reshape(-1, 1).to(crops_m.dtype)
        if z.shape[0] != crops_m.shape[0]:
            raise BenchbotError(f"{crops_m.shape[0]} crops but {z.shape[0]} gripper depths",
                                "pass one depth per crop")
        return (crops_m - self.im_mean) / self.im_std, (z - self.pose_mean) / self.pose_std

    def forward(self, crops_m: torch.Tensor, depth_z_m: torch.Tensor) -> torch.Tensor:
        """Raw depth crops (metres) + gripper depth z (metres) → logits (N, 2) [fail, success]."""
        return self.forward_normalised(*self.normalise(crops_m, depth_z_m))

    def probabilities(self, crops_m: torch.Tensor, depth_z_m: torch.Tensor) -> torch.Tensor:
        """Softmax output (N, 2), as Berkeley's `predict`."""
        return torch.softmax(self.forward(crops_m, depth_z_m), dim=1)

    def quality(self, crops_m: torch.Tensor, depth_z_m: torch.Tensor) -> torch.Tensor:
        """P(robust) per crop (N,)."""
        return self.probabilities(crops_m, depth_z_m)[:, -1]

    def freeze(self) -> GQCNN:
        """Eval mode, no gradients for the weights (inputs can still carry gradients)."""
        self.eval()
        self.requires_grad_(False)
        return self


@torch.no_grad()
def predict_quality(model: GQCNN, crops_m: torch.Tensor, depth_z_m: torch.Tensor, batch_size: int = 100,
                    channels_last: bool = True) -> torch.Tensor:
    """P(robust) for many crops, in chunks (faster than one huge batch on CPU); runs on the model's
    device, returns on the CPU."""
    dev = next(model.parameters()).device
    out = []
    for i in range(0, crops_m.shape[0], batch_size):
        c = crops_m[i:i + batch_size].to(dev)
        if channels_last:
            c = c.contiguous(memory_format=torch.channels_last)
        out.append(model.quality(c, depth_z_m[i:i + batch_size].to(dev)).cpu())
    return torch.cat(out) if out else torch.zeros(0)

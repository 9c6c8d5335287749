"""GQ-STN (Gariépy et al., IROS 2019): three cascaded spatial transformers on a depth image,
ending in the crop a frozen GQ-CNN classifies.

Stages (each localization net is a ResNet on the current full-size depth image):
  trans: x = σ(w_x) − 0.5, y = σ(w_y) − 0.5          grasp centre, fraction of the image side from its centre
  rot:   α = σ(w_α) − 0.5, β = σ(w_β) − 0.5, θ = atan2(α, β) / 2
  scale: s = γ·exp(w_s) (fraction of the image side; γ = training-set mean), z = w_z (gripper depth, m)

The paper writes α = σ(w_α), β = σ(w_β); with both positive atan2/2 only spans (0, π/4), so we
centre the sigmoids (like the translation) to span the whole half-turn (−π/2, π/2]; atan2 is
scale-invariant, so nothing else changes.

Sampling conventions (`F.affine_grid` / `F.grid_sample`, align_corners=False, border padding):
normalised coordinates −1 and +1 are the outer *edges* of the image, so pixel centre c of an S-pixel
side sits at (2c + 1)/S − 1 = 2·((c + 0.5)/S − 0.5). The grasp centre (x, y) above is therefore at
normalised (2x, 2y). Each stage's output is sampled from the *source* image with the composed
affine map (no interpolation of interpolations):

    trans: [[1, 0, 2x], [0, 1, 2y]]                                   (input_size × input_size)
    rot:   [[cos θ, sin θ, 2x], [−sin θ, cos θ, 2y]]                  (input_size × input_size)
    crop:  [[s cos θ, s sin θ, 2x], [−s sin θ, s cos θ, 2y]]          (crop_size × crop_size)

(the crop map is then shifted by half a crop pixel, `dexnet_centred`, so crop pixel crop_size//2
sits on the grasp centre like Dex-Net's crops), so the crop's +col axis is the image direction
(cos θ, −sin θ) in (col, row): the jaw axis of an image angle θ CCW from +col, as in Dex-Net crops
(perception/crops.py). The crop covers s·S source pixels; the rectangle metric uses gripper width w = s·S/3.

`crop_scale` > 0 (set in training when the classifier's image scale is known, e.g. GQ-CNN 4.0-PJ on a
camera with recorded intrinsics): the crop is cut at that fixed scale, the classifier's own footprint,
and s only gives the gripper width. A learned crop scale lets L_rob zoom the crop until the frozen
classifier says "robust" (measured: s drifted 12–75 % above the footprint, and P(robust) of the
GQ-STN's own crop no longer matched the evaluator's crop of the same grasp).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchbot.core.errors import BenchbotError, check_number, shown
from benchbot.core.types import Grasp, GraspPose, Intrinsics
from benchbot.models.resnet import ResNet, check_backbone
from benchbot.perception.geometry import grasp_to_camera


@dataclass(frozen=True)
class GQSTNConfig:
    """Architecture of one GQ-STN. `paper()` and `small()` are the two shipped presets."""

    backbone_depth: int = 34
    backbone_width: int = 64
    input_size: int = 224  # side of the images the localization nets see
    crop_size: int = 96  # classifier input: 96 (GQ-CNN 4.0-PJ) or 32 (GQ-CNN 2.0)
    classifier: str = "gqcnn-4.0-pj"
    scale_mean: float = 0.15  # γ: mean crop side / image side over the training set
    crop_scale: float = 0.0  # > 0: the classifier's crop is cut at this fixed scale (its footprint), not at s
    depth_mean_m: float = 0.75  # initial z (bias of w_z); set from the training set
    depth_norm_m: float = 0.05  # depth std used to normalise the localization nets' input
    coord_channels: bool = False  # add x/y coordinate maps to the localization nets' input (CoordConv)
    position_sigma: float = 0.0  # > 0: L_loc measures the centre error in units of this fraction of the side
    trans_refine: int = 0  # extra passes of the translation net on the image re-centred at its last estimate

    def __post_init__(self) -> None:  # configs come from files and flags: refuse what cannot be built
        check_backbone(self.backbone_depth, self.backbone_width, self.input_size)
        check_number("crop_size", self.crop_size, 8, 256, integer=True)
        check_number("trans_refine", self.trans_refine, 0, 8, integer=True)
        for name, lo, hi in (("scale_mean", 1e-3, 1.0), ("crop_scale", 0.0, 1.0), ("depth_mean_m", 1e-3, 10.0),
                             ("depth_norm_m", 1e-4, 10.0), ("position_sigma", 0.0, 1.0)):
            check_number(name, getattr(self, name), lo, hi)
        if not isinstance(self.classifier, str) or not isinstance(self.coord_channels, bool):
            raise BenchbotError(f"classifier = {shown(self.classifier)}, coord_channels = {shown(self.coord_channels)}",
                                "classifier is a GQ-CNN name or path, coord_channels true or false")

    @staticmethod
    def paper(**kw: Any) -> GQSTNConfig:
        return GQSTNConfig(**{**dict(backbone_depth=34, backbone_width=64, input_size=224), **kw})

    @staticmethod
    def small(**kw: Any) -> GQSTNConfig:
        return GQSTNConfig(**{**dict(backbone_depth=18, backbone_width=16, input_size=112), **kw})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------- square letterbox: frame pixels ↔ model (square) pixels ----------

@dataclass(frozen=True)
class Letterbox:
    """Frame pixels → square model pixels: (row, col) ↦ (row·scale + pad_top, col·scale + pad_left).
    A plain letterbox pads (edge-replicated) to `side` with scale 1; a normalised view also resamples."""

    side: int
    pad_top: float
    pad_left: float
    scale: float = 1.0  # square pixels per frame pixel
    depth_offset_m: float = 0.0  # added to the frame's depths (model table distance − frame's)

    def to_square(self, row: float, col: float) -> tuple[float, float]:
        return row * self.scale + self.pad_top, col * self.scale + self.pad_left

    def to_frame(self, row: float, col: float) -> tuple[float, float]:
        return (row - self.pad_top) / self.scale, (col - self.pad_left) / self.scale


def _filled(depth_m: np.ndarray) -> np.ndarray:
    """H×W float32 depth with invalid pixels (0, NaN) replaced by the median valid depth."""
    d = np.asarray(depth_m, dtype=np.float32)
    d = d[..., 0] if d.ndim == 3 else d
    valid = np.isfinite(d) & (d > 0)
    fill = float(np.median(d[valid])) if valid.any() else 1.0
    return np.where(valid, d, fill).astype(np.float32)


def letterbox(depth_m: np.ndarray) -> tuple[np.ndarray, Letterbox]:
    """Pad an H×W depth image to a square by edge replication; invalid pixels → median valid depth."""
    d = _filled(depth_m)
    h, w = d.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    sq = np.pad(d, ((top, side - h - top), (left, side - w - left)), mode="edge")
    return sq, Letterbox(side, top, left)


def normalised_view(depth_m: np.ndarray, scale: float, side: int) -> tuple[np.ndarray, Letterbox]:
    """The frame resampled by `scale` (bilinear, edge-replicated beyond the frame) into a side×side
    square, centres aligned: a camera at another distance or focal length shows objects at the pixel
    size the model was trained on; a side smaller than the frame keeps only the central region of
    interest. With scale 1 and side = max(H, W) of even margins: `letterbox`."""
    d = _filled(depth_m)
    h, w = d.shape
    top, left = (side - 1) / 2 - scale * (h - 1) / 2, (side - 1) / 2 - scale * (w - 1) / 2
    box = Letterbox(side, top, left, scale)
    if scale == 1.0 and float(top).is_integer() and float(left).is_integer():  # pure pad / crop
        t, l_ = int(top), int(left)
        d = np.pad(d, ((max(t, 0), max(side - h - t, 0)), (max(l_, 0), max(side - w - l_, 0))), mode="edge")
        return np.ascontiguousarray(d[max(-t, 0):max(-t, 0) + side, max(-l_, 0):max(-l_, 0) + side]), box
    r = (np.arange(side) - top) / scale  # source pixel centres of the output rows / cols
    c = (np.arange(side) - left) / scale
    gy = torch.from_numpy((2 * r + 1) / h - 1).float()
    gx = torch.from_numpy((2 * c + 1) / w - 1).float()
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    out = F.grid_sample(torch.from_numpy(d)[None, None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out[0, 0].numpy(), box


def square_symmetry(t: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry k (0–7) of the square on a …×S×S image: bit 0 mirrors columns, bit 1 rows, bit 2
    transposes, applied in that order (grasps follow with train.data.dihedral / undo_dihedral)."""
    t = t.flip(-1) if k & 1 else t
    t = t.flip(-2) if k & 2 else t
    return t.transpose(-1, -2) if k & 4 else t


# ---------- grasp ↔ STN parameters ----------

def wrap_half_turn(angle: float | np.ndarray | torch.Tensor):
    """Angle modulo π into [−π/2, π/2) (a parallel-jaw grasp is symmetric under a half-turn)."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def grasp_to_params(row: float, col: float, angle_rad: float, width_px: float, depth_m: float,
                    side: int) -> np.ndarray:
    """A grasp in square-image pixels → [x, y, θ, s, z] (the STN's parameterisation; s = 3·width/side)."""
    x = (col + 0.5) / side - 0.5
    y = (row + 0.5) / side - 0.5
    return np.array([x, y, wrap_half_turn(angle_rad), 3.0 * width_px / side, depth_m], dtype=np.float32)


def params_to_grasp(params: np.ndarray | torch.Tensor, box: Letterbox, score: float | None = None) -> Grasp:
    """[x, y, θ, s, z] → a `Grasp` in the original frame's pixels (inverse of `grasp_to_params`)."""
    x, y, theta, s, z = (float(v) for v in params[:5])
    row, col = box.to_frame((y + 0.5) * box.side - 0.5, (x + 0.5) * box.side - 0.5)
    return Grasp(row, col, float(wrap_half_turn(theta)), s * box.side / 3.0 / box.scale, z - box.depth_offset_m, score)


def params_to_grasp_pose(params: np.ndarray | torch.Tensor, box: Letterbox, intrinsics: Intrinsics) -> GraspPose:
    """[x, y, θ, s, z] → metric grasp in the camera frame (centre at depth z, approach +z, jaw opening s/3)."""
    return grasp_to_camera(params_to_grasp(params, box), intrinsics)


def affine(x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor | None, s: torch.Tensor | None) -> torch.Tensor:
    """The B×2×3 sampling map (output normalised coords → source normalised coords) of the module doc."""
    one = torch.ones_like(x)
    c = torch.cos(theta) if theta is not None else one
    sn = torch.sin(theta) if theta is not None else torch.zeros_like(x)
    k = s if s is not None else one
    row0 = torch.stack([k * c, k * sn, 2 * x], dim=-1)
    row1 = torch.stack([-k * sn, k * c, 2 * y], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def dexnet_centred(theta: torch.Tensor, size: int) -> torch.Tensor:
    """Shift a crop map by half an output pixel so that crop pixel `size // 2` (not the corner
    between the two middle pixels) lands on the grasp centre, as in Dex-Net's centre crops."""
    shift = torch.full((2, 1), -1.0 / size, dtype=theta.dtype, device=theta.device)
    return torch.cat([theta[:, :, :2], theta[:, :, 2:] + theta[:, :, :2] @ shift], dim=2)


def sample(src: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear sample a size×size image from `src` (B×1×S×S) through the affine map `theta`."""
    grid = F.affine_grid(theta, [src.shape[0], src.shape[1], size, size], align_corners=False)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ---------- the network ----------

class LocNet(nn.Module):
    """ResNet trunk + linear regression of `n_out` raw STN parameters."""

    coord_maps: torch.Tensor  # buffer (register_buffer in __init__, with coord_channels)

    def __init__(self, cfg: GQSTNConfig, n_out: int, bias: tuple[float, ...]) -> None:
        super().__init__()
        self.coords = cfg.coord_channels
        self.trunk = ResNet(cfg.backbone_depth, cfg.backbone_width, in_channels=3 if self.coords else 1)
        if self.coords:  # x, y maps from −1 to +1 (a constant: exports as one to ONNX)
            c = torch.linspace(-1.0, 1.0, cfg.input_size)
            grid = torch.stack([c.view(1, -1).expand(cfg.input_size, -1), c.view(-1, 1).expand(-1, cfg.input_size)])
            self.register_buffer("coord_maps", grid[None].contiguous(), persistent=False)
        self.head = nn.Linear(self.trunk.feature_dim, n_out)
        nn.init.normal_(self.head.weight, std=1e-3)  # start near the identity transform
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.coords:  # CoordConv: pooled ResNet features then know where things are
            x = torch.cat([x, self.coord_maps.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.head(self.trunk(x))


@dataclass
class GQSTNOutput:
    """Predicted parameters (B each) and the images each stage produced."""

    x: torch.Tensor
    y: torch.Tensor
    theta: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor
    w_s: torch.Tensor
    s: torch.Tensor
    z: torch.Tensor
    trans_image: torch.Tensor
    rot_image: torch.Tensor
    crop: torch.Tensor
    robust_logits: torch.Tensor | None = None  # B×2 [not robust, robust] from the frozen classifier
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def params(self) -> torch.Tensor:
        """B×5 [x, y, θ, s, z]."""
        return torch.stack([self.x, self.y, self.theta, self.s, self.z], dim=-1)

    def robust_prob(self) -> torch.Tensor | None:
        return None if self.robust_logits is None else torch.softmax(self.robust_logits, dim=-1)[:, 1]


class GQSTN(nn.Module):
    """forward(depth B×1×S×S metres, square) → GQSTNOutput. The classifier (frozen GQ-CNN) is
    optional: without it the crop is produced but not classified (localization-only training)."""

    def __init__(self, cfg: GQSTNConfig, classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.loc_trans = LocNet(cfg, 2, (0.0, 0.0))
        self.loc_rot = LocNet(cfg, 2, (0.0, 1.0))  # β > 0, α = 0 → θ = 0 at start (and atan2 away from 0/0)
        self.loc_scale = LocNet(cfg, 2, (0.0, cfg.depth_mean_m))
        self.classifier: nn.Module | None = None
        if classifier is not None:
            self.set_classifier(classifier)

    def set_classifier(self, classifier: nn.Module) -> None:
        """Attach the frozen GQ-CNN: no gradients into it, always in eval mode."""
        classifier.requires_grad_(False)
        classifier.eval()
        self.classifier = classifier

    def train(self, mode: bool = True) -> GQSTN:
        super().train(mode)
        if self.classifier is not None:
            self.classifier.eval()  # frozen: batch-norm/dropout never switch to training
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """state_dict without the frozen classifier (checkpoints store only what GQ-STN learns)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("classifier.")}

    def _loc_input(self, img: torch.Tensor) -> torch.Tensor:
        """Per-image centred depth, in units of depth_norm_m."""
        return (img - img.mean(dim=(1, 2, 3), keepdim=True)) / self.cfg.depth_norm_m

    def _resize(self, depth: torch.Tensor) -> torch.Tensor:
        n = self.cfg.input_size
        if depth.shape[-1] == n and depth.shape[-2] == n:
            return depth
        return F.interpolate(depth, size=(n, n), mode="bilinear", align_corners=False)

    def forward(self, depth: torch.Tensor, teacher: torch.Tensor | None = None) -> GQSTNOutput:
        """`teacher` (B×3 [x, y, θ], optional): teacher forcing — the ground-truth translation and
        rotation replace the predicted ones downstream (next stages' images and the crop)."""
        cfg = self.cfg
        w_t = self.loc_trans(self._loc_input(self._resize(depth)))
        x, y = torch.sigmoid(w_t[:, 0]) - 0.5, torch.sigmoid(w_t[:, 1]) - 0.5
        for _ in range(cfg.trans_refine):  # the same net reads the residual off the re-centred image
            w_t = self.loc_trans(self._loc_input(sample(depth, affine(x, y, None, None), cfg.input_size)))
            x, y = x + torch.sigmoid(w_t[:, 0]) - 0.5, y + torch.sigmoid(w_t[:, 1]) - 0.5
        xd, yd = (x, y) if teacher is None else (teacher[:, 0], teacher[:, 1])
        trans_img = sample(depth, affine(xd, yd, None, None), cfg.input_size)

        w_r = self.loc_rot(self._loc_input(trans_img))
        alpha, beta = torch.sigmoid(w_r[:, 0]) - 0.5, torch.sigmoid(w_r[:, 1]) - 0.5
        theta = torch.atan2(alpha, beta) / 2
        td = theta if teacher is None else teacher[:, 2]
        rot_img = sample(depth, affine(xd, yd, td, None), cfg.input_size)

        w_sz = self.loc_scale(self._loc_input(rot_img))
        w_s, z = w_sz[:, 0], w_sz[:, 1]
        s = cfg.scale_mean * torch.exp(w_s)
        sc = torch.full_like(s, cfg.crop_scale) if cfg.crop_scale > 0 else s
        crop = sample(depth, dexnet_centred(affine(xd, yd, td, sc), cfg.crop_size), cfg.crop_size)

        logits = None
        if self.classifier is not None:
            logits = self.classifier(crop, z.unsqueeze(-1))
        return GQSTNOutput(x, y, theta, alpha, beta, w_s, s, z, trans_img, rot_img, crop, logits)


# ---------- loss ----------

def localization_loss(out: GQSTNOutput, target: torch.Tensor, cfg: GQSTNConfig) -> torch.Tensor:
    """L_loc: mean over the batch of the squared error on the transform parameters, target B×5
    [x, y, θ, s, z]. θ enters as (cos 2θ, sin 2θ) (periodic), s as w_s = log(s/γ), z in depth_norm units,
    the centre (x, y) as is (the paper's plain L2) or, with `position_sigma` > 0, in units of
    position_sigma: plain, a 5-pixel miss on a 208-pixel image costs 0.1 % of what a 20° turn costs,
    so once L_rob joins in (ξ < 1) nothing holds the translation stage to its target."""
    tx, ty, tth, ts, tz = target.unbind(-1)
    pos = 1.0 / cfg.position_sigma ** 2 if cfg.position_sigma > 0 else 1.0
    err = (pos * ((out.x - tx) ** 2 + (out.y - ty) ** 2)
           + (torch.cos(2 * out.theta) - torch.cos(2 * tth)) ** 2
           + (torch.sin(2 * out.theta) - torch.sin(2 * tth)) ** 2
           + (out.w_s - torch.log(ts.clamp_min(1e-6) / cfg.scale_mean)) ** 2
           + ((out.z - tz) / cfg.depth_norm_m) ** 2)
    return err.mean()


def robustness_loss(out: GQSTNOutput) -> torch.Tensor:
    """L_rob: cross-entropy of the frozen classifier's output toward the 'robust' class."""
    if out.robust_logits is None:
        raise ValueError("robustness loss needs a classifier attached to the GQ-STN")
    return -torch.log_softmax(out.robust_logits, dim=-1)[:, 1].mean()


def gqstn_loss(out: GQSTNOutput, target: torch.Tensor, cfg: GQSTNConfig, xi: float
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """ξ·L_loc + (1 − ξ)·L_rob → (loss, {"loss", "l_loc", "l_rob"})."""
    l_loc = localization_loss(out, target, cfg)
    parts = {"l_loc": float(l_loc.detach())}
    loss = xi * l_loc
    if xi < 1.0:
        l_rob = robustness_loss(out)
        loss = loss + (1.0 - xi) * l_rob
        parts["l_rob"] = float(l_rob.detach())
    elif out.robust_logits is not None:
        parts["l_rob"] = float(robustness_loss(out).detach())
    parts["loss"] = float(loss.detach())
    return loss, parts

"""Grasp-aligned depth crops for GQ-CNNs, batched in torch.

Geometry follows Berkeley's `GQCnnQualityFunction.grasps_to_tensors`: the depth image is resized
(bilinear, no anti-aliasing) by `zoom = out_px / crop_px * scale`, translated so the grasp centre
lands on the image centre, rotated so the jaw axis lies along +col (nearest neighbour, zeros
outside the image) and centre-cropped to `out_px` × `out_px`.

Angles: our `Grasp.angle_rad` is CCW from +col as seen in the image (rows grow downward).
Berkeley's `Grasp2D.angle` is the opposite sense (axis = (cos, sin) in (x, y) with y down), so
`berkeley_angle = -angle_rad`. Functions here take *our* convention.

Camera scale: a GQ-CNN was trained at one image scale (pixels per metre on the table). With a
different camera or distance, pass `scale = scale_factor(intrinsics, table_distance_m, model_px_per_m)`
so the crop covers the same metric footprint as the training crops.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from benchbot.core.errors import BenchbotError
from benchbot.core.types import Grasp, Intrinsics
from benchbot.perception.geometry import pixels_per_metre


@dataclass(frozen=True)
class CropSpec:
    """How a GQ-CNN sees a grasp: a `crop_px` window of the camera image, resized to `out_px`."""

    name: str
    crop_px: int  # window side in camera pixels (at scale 1)
    out_px: int  # network input side

    @property
    def zoom(self) -> float:
        return self.out_px / self.crop_px


DEXNET2 = CropSpec("96to32", 96, 32)  # Dex-Net 2.0 GQ-CNN
DEXNET4 = CropSpec("96to96", 96, 96)  # Dex-Net 4.0 / GQCNN-4.0-PJ
SPECS = {s.name: s for s in (DEXNET2, DEXNET4)}

# Image scale each GQ-CNN was trained at (camera pixels per metre on the table, before the zoom).
DEXNET2_PX_PER_M = 525.0 / 0.70  # PrimeSense Carmine (f = 525 px) ~0.7 m above the table
DEXNET4_PJ_PX_PER_M = 552.5 / 0.825  # PhoXi S at 516×386 (f = 552.5 px), table ~0.80–0.85 m


def scale_factor(intrinsics: Intrinsics, table_distance_m: float, model_px_per_m: float) -> float:
    """Resize factor that maps this camera's image scale onto the model's training scale."""
    if not (np.isfinite(table_distance_m) and table_distance_m > 0):
        raise BenchbotError(f"table distance must be a positive number of metres, got {table_distance_m}",
                            "set table_distance_m (camera-to-table distance along the optical axis)")
    return float(model_px_per_m / pixels_per_metre(intrinsics, table_distance_m))


def _as_image(depth: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W) or (H, W, 1) depth in metres → float32 tensor (H, W); NaN → 0 (invalid)."""
    t = torch.as_tensor(depth)
    if t.ndim == 3 and t.shape[-1] == 1:
        t = t[..., 0]
    if t.ndim != 2:
        raise BenchbotError(f"depth image must be H×W (or H×W×1), got shape {tuple(t.shape)}",
                            "pass a single depth frame in metres")
    return torch.nan_to_num(t.to(torch.float32), nan=0.0)


def resized_shape(height: int, width: int, zoom: float) -> tuple[int, int]:
    """Output size of Berkeley's `DepthImage.resize(zoom)` (float32 product, truncated)."""
    h, w = (np.array([height, width], np.float32) * np.float32(zoom)).astype(int)
    return int(h), int(w)


def resize_depth(depth: torch.Tensor, zoom: float) -> torch.Tensor:
    """Bilinear resize without anti-aliasing (pixel-centre aligned, like skimage order=1)."""
    h, w = resized_shape(depth.shape[-2], depth.shape[-1], zoom)
    if (h, w) == tuple(depth.shape[-2:]):
        return depth
    x = depth.reshape(1, 1, *depth.shape[-2:]).to(torch.float64)  # float64 like skimage, then back
    out = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)[0, 0]
    return out.to(depth.dtype)


def _inverse_maps(rows: np.ndarray, cols: np.ndarray, angles_rad: np.ndarray, zoom: float,
                  src_shape: tuple[int, int], scaled_shape: tuple[int, int]) -> np.ndarray:
    """Per grasp, the 2×3 map from transformed-image (x, y) back to the resized image, as
    cv2.warpAffine computes it (float32 translation, rotation about the resized image centre)."""
    h0, w0 = src_shape
    hs, ws = scaled_shape
    cx, cy = ws / 2.0, hs / 2.0
    tx = (zoom * (w0 / 2.0 - cols)).astype(np.float32).astype(np.float64)
    ty = (zoom * (h0 / 2.0 - rows)).astype(np.float32).astype(np.float64)
    theta = -angles_rad  # Berkeley's angle sense (see module docstring)
    deg = np.rad2deg(theta)
    a = np.cos(np.deg2rad(deg))  # cv2.getRotationMatrix2D works in degrees
    b = np.sin(np.deg2rad(deg))
    # forward map M = R(about centre) · T(translation)
    m = np.zeros((len(rows), 2, 3))
    m[:, 0, 0], m[:, 0, 1] = a, b
    m[:, 1, 0], m[:, 1, 1] = -b, a
    m[:, 0, 2] = a * tx + b * ty + (1 - a) * cx - b * cy
    m[:, 1, 2] = -b * tx + a * ty + b * cx + (1 - a) * cy
    # cv2.invertAffineTransform
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    d = np.where(det != 0, 1.0 / np.where(det != 0, det, 1.0), 0.0)
    inv = np.empty_like(m)
    inv[:, 0, 0], inv[:, 1, 1] = m[:, 1, 1] * d, m[:, 0, 0] * d
    inv[:, 0, 1], inv[:, 1, 0] = -m[:, 0, 1] * d, -m[:, 1, 0] * d
    inv[:, 0, 2] = -inv[:, 0, 0] * m[:, 0, 2] - inv[:, 0, 1] * m[:, 1, 2]
    inv[:, 1, 2] = -inv[:, 1, 0] * m[:, 0, 2] - inv[:, 1, 1] * m[:, 1, 2]
    return inv


def _crop_origin(scaled_shape: tuple[int, int], out_px: int) -> tuple[int, int]:
    """Top-left (row, col) of the centre crop, as autolab_core's `Image.crop`."""
    hs, ws = scaled_shape
    return int(np.floor(hs / 2.0 - out_px / 2.0)), int(np.floor(ws / 2.0 - out_px / 2.0))


def _grasp_arrays(rows, cols, angles_rad) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, c, a = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (rows, cols, angles_rad))
    if not (r.shape == c.shape == a.shape) or r.ndim != 1:
        raise BenchbotError("grasp rows, cols and angles must be 1-D arrays of equal length",
                            "pass one value per grasp")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(c)) and np.all(np.isfinite(a))):
        raise BenchbotError("grasp centre or angle is not finite", "drop grasps with NaN/inf values")
    return r, c, a


def _check_scale(scale: float) -> None:
    if not (np.isfinite(scale) and scale > 0):
        raise BenchbotError(f"crop scale factor must be positive, got {scale}", "use scale_factor(...) or 1.0")


def _crop_window(img: torch.Tensor, r: np.ndarray, c: np.ndarray, a: np.ndarray, spec: CropSpec,
                 scale: float) -> tuple[torch.Tensor, np.ndarray, tuple[int, int]]:
    """The image resized for `scale`, each grasp's inverse map into it, and the crop window's origin."""
    zoom = spec.zoom * scale
    scaled = resize_depth(img, zoom)
    hs, ws = scaled.shape
    inv = _inverse_maps(r, c, a, zoom, (img.shape[0], img.shape[1]), (hs, ws))
    return scaled, inv, _crop_origin((hs, ws), spec.out_px)


def _nearest_maps(img: torch.Tensor, r: np.ndarray, c: np.ndarray, a: np.ndarray, spec: CropSpec,
                  scale: float) -> tuple[np.ndarray, np.ndarray]:
    scaled, m, (r0, c0) = _crop_window(img, r, c, a, spec, scale)
    m[:, :, 2] += m[:, :, 0] * c0 + m[:, :, 1] * r0  # straight into the crop window
    return np.ascontiguousarray(scaled.numpy()), m


def nearest_crop_maps(depth: np.ndarray | torch.Tensor, rows: Sequence[float] | np.ndarray,
                      cols: Sequence[float] | np.ndarray, angles_rad: Sequence[float] | np.ndarray,
                      spec: CropSpec = DEXNET4, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(resized image, per-grasp 2×3 inverse maps straight into the crop window) for `warp_crops`:
    the resize is done once, the crops can then be cut in any chunks (see `extract_crops`)."""
    _check_scale(scale)
    return _nearest_maps(_as_image(depth), *_grasp_arrays(rows, cols, angles_rad), spec, scale)


def warp_crops(src: np.ndarray, maps: np.ndarray, out_px: int, out: np.ndarray | None = None) -> np.ndarray:
    """cv2.warpAffine (nearest, zeros outside the image) of `src` per map → float32 (N, out_px, out_px),
    written into `out` when given (no temporary per crop)."""
    n = len(maps)
    crops = np.empty((n, out_px, out_px), np.float32) if out is None else out
    flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    for k in range(n):
        cv2.warpAffine(src, maps[k], (out_px, out_px), dst=crops[k], flags=flags,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crops


def extract_crops(depth: np.ndarray | torch.Tensor, rows: Sequence[float] | np.ndarray,
                  cols: Sequence[float] | np.ndarray, angles_rad: Sequence[float] | np.ndarray,
                  spec: CropSpec = DEXNET4, scale: float = 1.0, interp: str = "nearest") -> torch.Tensor:
    """Grasp-aligned crops, all grasps in one call → float32 tensor (N, 1, out_px, out_px), metres.

    interp="nearest" reproduces Berkeley's crops (cv2.warpAffine nearest neighbour, crop window only);
    interp="bilinear" samples the resized image bilinearly with `grid_sample` (smooth, differentiable
    with respect to the image).
    """
    _check_scale(scale)
    img = _as_image(depth)
    r, c, a = _grasp_arrays(rows, cols, angles_rad)
    n, out = len(r), spec.out_px
    if n == 0:
        return torch.zeros((0, 1, out, out), dtype=torch.float32)
    if interp == "nearest":
        # cv2.warpAffine per grasp, straight into the crop window: the inverse map shifted to the crop
        # origin (OpenCV's own nearest rounding, as Berkeley's full-image warp then centre crop, but
        # only out_px² pixels computed; outside the image reads 0)
        src, maps = _nearest_maps(img, r, c, a, spec, scale)
        return torch.from_numpy(warp_crops(src, maps, out)).unsqueeze(1)
    if interp == "bilinear":
        scaled, inv, (r0, c0) = _crop_window(img, r, c, a, spec, scale)
        hs, ws = scaled.shape
        xs = np.arange(c0, c0 + out, dtype=np.float64)  # transformed-image columns of the crop
        ys = np.arange(r0, r0 + out, dtype=np.float64)
        gx = (inv[:, 0, 0, None, None] * xs[None, None, :] + inv[:, 0, 1, None, None] * ys[None, :, None]
              + inv[:, 0, 2, None, None])
        gy = (inv[:, 1, 0, None, None] * xs[None, None, :] + inv[:, 1, 1, None, None] * ys[None, :, None]
              + inv[:, 1, 2, None, None])
        # pixel → normalised coordinates (align_corners=False); all grids stacked as one tall image
        grid = np.stack([(2 * gx + 1) / ws - 1, (2 * gy + 1) / hs - 1], axis=-1).astype(np.float32)
        grid_t = torch.from_numpy(grid).reshape(1, n * out, out, 2)
        out_t = F.grid_sample(scaled.reshape(1, 1, hs, ws), grid_t, mode="bilinear",
                              padding_mode="zeros", align_corners=False)
        return out_t.reshape(n, 1, out, out)
    raise BenchbotError(f"unknown crop interpolation {interp!r}", "use 'nearest' or 'bilinear'")


def extract_grasp_crops(depth: np.ndarray | torch.Tensor, grasps: Sequence[Grasp], spec: CropSpec = DEXNET4,
                        scale: float = 1.0, interp: str = "nearest") -> torch.Tensor:
    """`extract_crops` for a list of `Grasp` objects."""
    rows = np.array([g.row for g in grasps], dtype=np.float64)
    cols = np.array([g.col for g in grasps], dtype=np.float64)
    angles = np.array([g.angle_rad for g in grasps], dtype=np.float64)
    return extract_crops(depth, rows, cols, angles, spec, scale, interp)


def extract_crops_reference(depth: np.ndarray, rows: Sequence[float], cols: Sequence[float],
                            angles_rad: Sequence[float], spec: CropSpec = DEXNET4,
                            scale: float = 1.0) -> np.ndarray:
    """Slow, literal re-enactment of Berkeley's per-grasp steps (skimage resize, full-image
    cv2.warpAffine, centre crop) → float32 (N, out_px, out_px). Used to check `extract_crops`."""
    import cv2
    from skimage.transform import resize

    img = np.asarray(depth, dtype=np.float32)
    img = img[..., 0] if img.ndim == 3 else img
    zoom = spec.zoom * scale
    h0, w0 = img.shape
    hs, ws = resized_shape(h0, w0, zoom)
    scaled = resize(img.astype(np.float64), (hs, ws), order=1, anti_aliasing=False,
                    mode="constant").astype(np.float32)
    r0, c0 = _crop_origin((hs, ws), spec.out_px)
    out = []
    for row, col, ang in zip(*_grasp_arrays(rows, cols, angles_rad), strict=True):
        t = zoom * np.array([h0 / 2.0 - row, w0 / 2.0 - col])
        trans = np.r_[np.array([[1, 0, t[1]], [0, 1, t[0]]], dtype=np.float32), [[0, 0, 1]]]
        rot = np.r_[cv2.getRotationMatrix2D((ws / 2.0, hs / 2.0), float(np.rad2deg(-ang)), 1), [[0, 0, 1]]]
        warped = cv2.warpAffine(scaled, (rot @ trans)[:2], (ws, hs), flags=cv2.INTER_NEAREST)
        out.append(warped[r0:r0 + spec.out_px, c0:c0 + spec.out_px])
    return np.stack(out).astype(np.float32) if out else np.zeros((0, spec.out_px, spec.out_px), np.float32)

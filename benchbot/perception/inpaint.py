"""Depth inpainting: fill invalid (0 / NaN / negative) pixels from their valid neighbours.

Reproduces Berkeley autolab_core's `DepthImage.inpaint(rescale_factor)` (used by gqcnn before every
policy call), step for step:
  1. nearest-neighbour downscale by `rescale_factor` (skimage order 0, no anti-aliasing);
  2. repeat until no hole is left: every hole pixel with at least one non-zero 8-neighbour becomes
     the mean of its non-zero neighbours (symmetric border); originally valid pixels stay fixed;
  3. bilinear upscale back (skimage order 1, zero outside the image);
  4. only the originally invalid pixels take the upscaled value.
OpenCV does the filtering and resizing, so a 640×480 frame takes a few milliseconds.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame

# 8-neighbourhood without the centre, as in autolab_core.
_KERNEL = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)


def invalid_mask(depth_m: np.ndarray) -> np.ndarray:
    """True where the depth carries no measurement (0, NaN, inf or negative)."""
    return ~(np.isfinite(depth_m) & (depth_m > 0))


def _scaled_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    # autolab_core's imresize multiplies a float32 shape and truncates.
    s = np.asarray(shape, dtype=np.float32) * np.float32(factor)
    return int(s[0]), int(s[1])


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    # skimage order-0 resize samples input coordinate (o + 0.5) * n_in / n_out - 0.5, rounded half up.
    idx = np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64)
    return np.clip(idx, 0, n_in - 1)


def _downscale_nearest(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = _nearest_indices(img.shape[0], shape[0])
    cols = _nearest_indices(img.shape[1], shape[1])
    return img[np.ix_(rows, cols)]


def _upscale_bilinear_zero_border(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (half-pixel centres) that reads zeros outside the image, then clips to the
    input's value range, like skimage's `resize(order=1, mode="constant")` (clip=True).
    Integer up-scales use a zero-padded cv2.resize (exact)."""
    h, w = img.shape
    fy, fx = shape[0] / h, shape[1] / w
    if fy == fx and float(fy).is_integer() and fy >= 1:
        f = int(fy)
        padded = cv2.copyMakeBorder(img, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0.0)
        big = cv2.resize(padded, ((w + 2) * f, (h + 2) * f), interpolation=cv2.INTER_LINEAR)
        return np.clip(big[f:f + shape[0], f:f + shape[1]], img.min(), img.max())
    import skimage.transform as skt  # general factors: slower but exact

    return skt.resize(img, shape, order=1, anti_aliasing=False, mode="constant")


def _fill_holes(small: np.ndarray) -> np.ndarray:
    """Grow valid values into the zero pixels, one ring of neighbours per pass."""
    fixed = small > 0
    cur = small.astype(np.float64)
    while True:
        holes = cur == 0
        if not holes.any():
            return cur
        count = cv2.filter2D((~holes).astype(np.float64), -1, _KERNEL, borderType=cv2.BORDER_REFLECT)
        total = cv2.filter2D(cur, -1, _KERNEL, borderType=cv2.BORDER_REFLECT)
        nxt = np.zeros_like(cur)
        has = count > 0.5
        nxt[has] = total[has] / count[has]
        nxt[fixed] = cur[fixed]
        cur = nxt


def inpaint(depth_m: np.ndarray, rescale_factor: float = 0.5) -> np.ndarray:
    """Return a float32 copy of `depth_m` (H×W or H×W×1, metres) with every invalid pixel filled.

    Valid pixels are returned unchanged. Raises BenchbotError when no pixel is valid."""
    depth = np.asarray(depth_m)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise BenchbotError(f"depth image must be H×W, got shape {np.shape(depth_m)}",
                            "pass a single-channel depth image")
    if not 0 < rescale_factor <= 1:
        raise BenchbotError(f"inpaint rescale_factor must be in (0, 1], got {rescale_factor}",
                            "use e.g. 0.5 (Dex-Net's setting)")
    data = depth.astype(np.float32, copy=True)
    bad = invalid_mask(data)
    if not bad.any():
        return data
    if bad.all():
        raise BenchbotError("depth frame has no valid pixel to inpaint from",
                            "check the camera: it returned an empty (all-zero/NaN) depth image")
    data[bad] = 0.0
    small_shape = _scaled_shape(data.shape, rescale_factor)
    small = _downscale_nearest(data, small_shape) if min(small_shape) >= 1 else None
    if small is None or not (small > 0).any():  # too small / too sparse to downscale: full size
        return inpaint(data, 1.0)
    filled = _fill_holes(small).astype(np.float32)
    big = _upscale_bilinear_zero_border(filled.astype(np.float64), data.shape).astype(np.float32)
    data[bad] = big[bad]
    return data


def inpaint_frame(frame: DepthFrame, rescale_factor: float = 0.5) -> DepthFrame:
    """A copy of `frame` with its invalid pixels filled; meta gets `inpainted=True` and
    `inpainted_mask` (H×W bool: the pixels that were filled, i.e. not measured)."""
    filled = inpaint(frame.depth_m, rescale_factor)
    meta = dict(frame.meta)
    meta["inpainted"] = True
    meta["inpainted_mask"] = invalid_mask(np.asarray(frame.depth_m).reshape(filled.shape))
    meta["inpaint_rescale_factor"] = rescale_factor
    return dataclasses.replace(frame, depth_m=filled, meta=meta)

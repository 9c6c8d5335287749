"""Overlay pictures: a depth image in grey with a grasp drawn on top (for logs, reports, README).

Depth is rendered with a robust range (1st–99th percentile of the valid pixels), near = bright,
invalid pixels dark blue. A grasp is drawn as its jaw axis, the two jaw lines and the centre,
coloured by the robustness q (red at 0 → green at 1, grey when q is unknown). Never raises on
NaN depth, an empty image, a non-finite grasp or a grasp far outside the image.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchbot.core.types import Grasp

INVALID_RGB = (20, 20, 70)
UNKNOWN_RGB = (170, 170, 170)


def depth_to_gray(depth_m: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> np.ndarray:
    """H×W×3 uint8 picture of a depth image: near = bright, invalid = dark blue."""
    d = np.asarray(depth_m, dtype=np.float64)
    if d.ndim == 3:
        d = d[:, :, 0]
    if d.ndim != 2 or d.size == 0:
        return np.zeros((1, 1, 3), np.uint8)
    valid = np.isfinite(d) & (d > 0)
    rgb = np.empty(d.shape + (3,), np.uint8)
    rgb[:] = INVALID_RGB
    if valid.any():
        lo, hi = np.percentile(d[valid], [lo_pct, hi_pct])
        span = max(hi - lo, 1e-6)
        g = np.clip((hi - d[valid]) / span, 0.0, 1.0)
        rgb[valid] = (30 + 225 * g).astype(np.uint8)[:, None]
    return rgb


def q_color(q: float | None) -> tuple[int, int, int]:
    """Red (q=0) → yellow → green (q=1); grey when q is None or not finite."""
    if q is None or not np.isfinite(q):
        return UNKNOWN_RGB
    q = float(np.clip(q, 0.0, 1.0))
    return (int(round(255 * min(1.0, 2 * (1 - q)))), int(round(255 * min(1.0, 2 * q))), 0)


def _clamp(v: float, size: int) -> float:
    # PIL draws off-image lines fine but overflows on absurd coordinates.
    return float(np.clip(v, -4 * size, 5 * size))


def _draw_one(draw: ImageDraw.ImageDraw, grasp: Grasp, color: tuple[int, int, int], scale: float,
              line: int, size: tuple[int, int]) -> bool:
    if not grasp.is_finite():
        return False
    ax = np.array([np.cos(grasp.angle_rad), -np.sin(grasp.angle_rad)])  # (dcol, drow)
    jaw = np.array([-ax[1], ax[0]])
    c = np.array([grasp.col, grasp.row]) * scale
    half = 0.5 * abs(grasp.width_px) * scale
    jaw_half = max(4.0, 0.3 * half)
    p1, p2 = c - half * ax, c + half * ax
    w, h = size

    def pt(p: np.ndarray) -> tuple[float, float]:
        return _clamp(p[0], w), _clamp(p[1], h)

    draw.line([pt(p1), pt(p2)], fill=color, width=max(1, line // 2))
    for p in (p1, p2):
        draw.line([pt(p - jaw_half * jaw), pt(p + jaw_half * jaw)], fill=color, width=line)
    r = max(2.0, line * 1.2)
    cx, cy = pt(c)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=max(1, line // 2))
    return True


def draw_grasp(depth_m: np.ndarray, grasp: Grasp | None, q: float | None = None, label: str = "",
               *, others: Iterable[tuple[Grasp, float | None]] = (), scale: float = 1.0) -> Image.Image:
    """RGB picture of `depth_m` with `grasp` drawn on it (None: depth only).

    q colours the grasp and is printed with `label` (e.g. the method name). `others` are extra
    (grasp, q) pairs drawn thin underneath (e.g. the top candidates). `scale` enlarges the picture."""
    img = Image.fromarray(depth_to_gray(depth_m))
    if scale != 1.0 and np.isfinite(scale) and scale > 0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.NEAREST)
    else:
        scale = 1.0
    draw = ImageDraw.Draw(img)
    size = (img.width, img.height)
    line = max(1, round(2 * scale))
    for g, gq in others:
        _draw_one(draw, g, q_color(gq), scale, 1, size)
    text = label
    if grasp is not None:
        drawn = _draw_one(draw, grasp, q_color(q), scale, line + 1, size)
        if not drawn:
            text = f"{text} (non-finite grasp)".strip()
    else:
        text = f"{text} no grasp".strip()
    if q is not None and np.isfinite(q):
        text = f"{text}  q={q:.3f}".strip()
    if text:
        box = draw.textbbox((4, 4), text)
        draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=(0, 0, 0))
        draw.text((4, 4), text, fill=(255, 255, 255))
    return img


def save_overlay(path: str | Path, depth_m: np.ndarray, grasp: Grasp | None, q: float | None = None,
                 label: str = "", **kwargs) -> Path:
    """Draw with `draw_grasp` and save as PNG (parent folders are created). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_grasp(depth_m, grasp, q, label, **kwargs).save(path)
    return path

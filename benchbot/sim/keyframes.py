"""Keyframe strips: a row of labelled RGB frames of one grasp, saved as PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def save_strip(frames: list[tuple[str, np.ndarray]], path: str | Path, max_frames: int = 7) -> Path:
    """Save up to `max_frames` evenly chosen frames side by side with their labels."""
    from PIL import Image, ImageDraw

    if len(frames) > max_frames:
        idx = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in idx]
    h, w = frames[0][1].shape[:2]
    strip = Image.new("RGB", (w * len(frames), h), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for i, (label, img) in enumerate(frames):
        strip.paste(Image.fromarray(img), (i * w, 0))
        draw.rectangle([i * w, 0, i * w + 8 + 7 * len(label), 18], fill=(0, 0, 0))
        draw.text((i * w + 4, 3), label, fill=(255, 255, 255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)
    return path

"""Depth frames for the page: grey JPEG (near = bright, as in the overlay PNGs). The page draws the
grasp on it itself, so it shows before q is computed and the artifacts are saved."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchbot.perception.overlay import depth_to_gray


def frame_jpeg(depth_m: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(depth_to_gray(depth_m)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()

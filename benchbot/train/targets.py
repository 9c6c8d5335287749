"""GQ-STN training targets tied to the frozen classifier.

* `classifier_scores`: P(robust) of every ground-truth grasp from the same evaluator `benchbot eval`
  uses. With scores set on an `ImageIndex`, an image's localization target is the robust ground-truth
  grasp the classifier rates highest, so L_loc and L_rob pull the same way. (Physics labels and
  GQ-CNN 4.0-PJ often disagree: on benchbot's MuJoCo data the classifier calls only a minority of the
  physics-robust grasps robust.) Cached per dataset and classifier in the run folder.
* `crop_footprint_px`: side, in source pixels, of the region the classifier's crop covers on this
  dataset's camera. The GQ-STN cuts its crop at that fixed scale (`GQSTNConfig.crop_scale`), so its
  own crop shows what the evaluator's crop shows.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import BenchbotError
from ..interfaces import RobustnessEvaluator
from ..perception.crops import scale_factor
from ..perception.geometry import pixels_per_metre
from ..types import DepthFrame, Grasp
from .data import G_ANGLE, G_COL, G_DEPTH, G_ROBUST, G_ROW, G_WIDTH, ImageIndex
from .evaluate import frame_intrinsics, table_distance

CACHE_FORMAT = 1


def dataset_view(index: ImageIndex) -> dict[str, float] | None:
    """The camera view the images show: pixels per metre at the table, the square side and the table
    distance (stored in trained models so detectors resample other cameras' frames to it and shift
    their depths to it); None without camera meta."""
    dist = table_distance(index.meta)
    if not dist:
        return None
    intr, note = frame_intrinsics(index.meta, index.height, index.width)
    if note != "meta.json":
        return None
    return {"px_per_m": pixels_per_metre(intr, dist), "side": index.side, "table_distance_m": dist}


def crop_footprint_px(index: ImageIndex, crop_px: int, px_per_m: float) -> float | None:
    """Classifier crop side in this dataset's source pixels (None when the dataset or the model does
    not record the camera scale)."""
    dist = table_distance(index.meta)
    intr, note = frame_intrinsics(index.meta, index.height, index.width)
    if not (dist and px_per_m) or note != "meta.json":
        return None
    return crop_px / scale_factor(intr, dist, px_per_m)


def classifier_scores(index: ImageIndex, evaluator: RobustnessEvaluator,
                      on_image: Callable[[int, int], None] | None = None) -> dict[int, np.ndarray]:
    """P(robust) per ground-truth grasp of every image (NaN where the grasp is not robust in the
    labels: those are never targets)."""
    intr, _ = frame_intrinsics(index.meta, index.height, index.width)
    dist = table_distance(index.meta)
    meta = {"table_distance_m": dist} if dist else {}
    out: dict[int, np.ndarray] = {}
    refs = index.images(None)
    for k, (ref, depth) in enumerate(index.iter_depth(refs)):
        g = index.grasps[ref.image]
        q = np.full(len(g), np.nan)
        sel = np.flatnonzero(g[:, G_ROBUST] > 0)
        if sel.size:
            frame = DepthFrame(depth, intr, 0.0, dict(meta))
            grasps = [Grasp(float(r[G_ROW]), float(r[G_COL]), float(r[G_ANGLE]), float(r[G_WIDTH]),
                            float(r[G_DEPTH]), None) for r in g[sel]]
            q[sel] = evaluator.qualities(frame, grasps)
        out[ref.image] = q
        if on_image:
            on_image(k + 1, len(refs))
    return out


def cached_scores(index: ImageIndex, evaluator: RobustnessEvaluator, cache: Path) -> dict[int, np.ndarray]:
    """`classifier_scores`, read from / written to `cache` (an .npz keyed by classifier and grasp count)."""
    intr, _ = frame_intrinsics(index.meta, index.height, index.width)
    key = (f"{getattr(evaluator, 'name', '')}|{sum(len(g) for g in index.grasps.values())}|{intr}|"
           f"{table_distance(index.meta)}|{CACHE_FORMAT}")
    if cache.is_file():
        try:
            with np.load(cache) as z:
                if str(z["key"]) == key:
                    return {int(k): z[k] for k in z.files if k != "key"}
        except (OSError, ValueError, KeyError) as exc:
            raise BenchbotError(f"cannot read {cache} ({exc})", f"delete {cache}; it is recomputed") from exc
    scores = classifier_scores(index, evaluator)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")  # torchrun ranks write side by side
    np.savez(tmp, key=np.array(key), **{str(k): v for k, v in scores.items()})
    tmp.replace(cache)
    return scores

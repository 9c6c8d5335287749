"""GQ-STN training targets tied to the frozen classifier.

* `classifier_scores`: P(robust) of every ground-truth grasp from the same evaluator `benchbot eval`
  uses. With scores set on an `ImageIndex`, an image's localization target is the robust ground-truth
  grasp the classifier rates highest, so L_loc and L_rob pull the same way. (Physics labels and
  GQ-CNN 4.0-PJ often disagree: on benchbot's MuJoCo data the classifier calls only a minority of the
  physics-robust grasps robust.) Cached per dataset and classifier in the run folder.
* `searched_targets` (`--target search`): the same idea one step further. Around the robust
  ground-truth grasps the classifier rates best (seeds), try small moves (±offset px in row and col)
  and turns (`n_angles` over the half-turn), keep each seed's width and gripper depth, and take the
  candidate the classifier rates highest. The moved grasps were not re-checked in physics: the
  target is "what the frozen GQ-CNN deems most robust near physics-robust grasps", which is what
  L_rob asks for, found by search instead of by gradient steps through the crop sampler.
* `crop_footprint_px`: side, in source pixels, of the region the classifier's crop covers on this
  dataset's camera. The GQ-STN cuts its crop at that fixed scale (`GQSTNConfig.crop_scale`), so its
  own crop shows what the evaluator's crop shows.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import RobustnessEvaluator
from benchbot.core.types import Grasp
from benchbot.perception.crops import scale_factor
from benchbot.perception.geometry import pixels_per_metre
from benchbot.train.data import G_ANGLE, G_COL, G_DEPTH, G_METRIC, G_ROBUST, G_ROW, G_WIDTH, ImageIndex
from benchbot.train.evaluate import frame_intrinsics, table_distance

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


def row_grasps(rows: np.ndarray) -> list[Grasp]:
    """Grasps of rows in the images/grasps layout."""
    return [Grasp(float(r[G_ROW]), float(r[G_COL]), float(r[G_ANGLE]), float(r[G_WIDTH]), float(r[G_DEPTH]), None)
            for r in rows]


def classifier_scores(index: ImageIndex, evaluator: RobustnessEvaluator,
                      on_image: Callable[[int, int], None] | None = None) -> dict[int, np.ndarray]:
    """P(robust) per ground-truth grasp of every image (NaN where the grasp is not robust in the
    labels: those are never targets)."""
    out: dict[int, np.ndarray] = {}
    refs = index.images(None)
    for k, (ref, depth) in enumerate(index.iter_depth(refs)):
        g = index.grasps[ref.image]
        q = np.full(len(g), np.nan)
        sel = np.flatnonzero(g[:, G_ROBUST] > 0)
        if sel.size:
            q[sel] = evaluator.qualities(index.frame(ref.image, depth), row_grasps(g[sel]))
        out[ref.image] = q
        if on_image:
            on_image(k + 1, len(refs))
    return out


def _cache_key(index: ImageIndex, evaluator: RobustnessEvaluator, extra: str = "") -> str:
    intr, _ = frame_intrinsics(index.meta, index.height, index.width)
    scenes = "|scenes" if index.scenes else ""  # randomized: per-image cameras
    return (f"{getattr(evaluator, 'name', '')}|{sum(len(g) for g in index.grasps.values())}|{intr}|"
            f"{table_distance(index.meta)}|{CACHE_FORMAT}{extra}{scenes}")


def load_cache(cache: Path, key: str) -> dict[int, np.ndarray] | None:
    """Per-image arrays saved by `save_cache` under the same key (None: missing or another key)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return {int(k): z[k] for k in z.files if k != "key"}
    except (OSError, ValueError, KeyError) as exc:
        raise BenchbotError(f"cannot read {cache} ({exc})", f"delete {cache}; it is recomputed") from exc
    return None


def save_cache(cache: Path, key: str, data: dict[int, np.ndarray]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")  # torchrun ranks write side by side
    np.savez(tmp, key=np.array(key), **{str(k): v for k, v in data.items()})  # type: ignore[arg-type]  # mypy matches **arrays against numpy's allow_pickle
    tmp.replace(cache)


def cached_scores(index: ImageIndex, evaluator: RobustnessEvaluator, cache: Path) -> dict[int, np.ndarray]:
    """`classifier_scores`, read from / written to `cache` (an .npz keyed by classifier and grasp count)."""
    key = _cache_key(index, evaluator)
    scores = load_cache(cache, key)
    if scores is None:
        scores = classifier_scores(index, evaluator)
        save_cache(cache, key, scores)
    return scores


@dataclass(frozen=True)
class SearchConfig:
    """Candidates of `searched_targets`: per seed, (2·steps + 1)² positions `offset_px` apart
    (dataset pixels) × `n_angles` angles spread over the half-turn, starting at the seed's angle."""

    seeds: int = 12
    offset_px: float = 4.0
    steps: int = 1
    n_angles: int = 8

    def tag(self) -> str:
        return f"|search:{self.seeds},{self.offset_px:g},{self.steps},{self.n_angles}"


def search_candidates(seeds: np.ndarray, cfg: SearchConfig) -> np.ndarray:
    """Rows (images/grasps layout) of the candidates around `seeds` (rows of that layout), each seed's
    own grasp first; width, depth and the other columns are the seed's."""
    k = np.arange(-cfg.steps, cfg.steps + 1) * cfg.offset_px
    dr, dc = (a.ravel() for a in np.meshgrid(k, k, indexing="ij"))
    order = np.argsort(np.hypot(dr, dc), kind="stable")  # (0, 0) first
    dr, dc = dr[order], dc[order]
    da = np.arange(cfg.n_angles) * (np.pi / cfg.n_angles)
    out = np.repeat(seeds, len(dr) * len(da), axis=0).reshape(len(seeds), len(dr), len(da), -1).copy()
    out[..., G_ROW] += dr[None, :, None]
    out[..., G_COL] += dc[None, :, None]
    out[..., G_ANGLE] = (out[..., G_ANGLE] + da[None, None, :] + np.pi / 2) % np.pi - np.pi / 2
    return out.reshape(-1, seeds.shape[1])


def searched_targets(index: ImageIndex, evaluator: RobustnessEvaluator, scores: dict[int, np.ndarray],
                     cfg: SearchConfig = SearchConfig()) -> dict[int, np.ndarray]:
    """Per image with a robust ground-truth grasp: the best-rated candidate as a
    grasps-layout row whose G_METRIC column holds the classifier's P(robust). Seeds: the `cfg.seeds`
    robust ground-truth grasps with the highest `scores` (see `classifier_scores`)."""
    out: dict[int, np.ndarray] = {}
    for ref, depth in index.iter_depth(index.images(None)):
        g = index.grasps[ref.image]
        robust = g[:, G_ROBUST] > 0
        q = np.nan_to_num(scores[ref.image][robust], nan=-1.0)
        seeds = g[robust][np.lexsort((-g[robust][:, G_METRIC], -q))[:cfg.seeds]]
        cands = search_candidates(seeds, cfg)
        qc = np.asarray(evaluator.qualities(index.frame(ref.image, depth), row_grasps(cands)))
        best = cands[int(np.argmax(np.nan_to_num(qc, nan=-1.0)))].copy()
        best[G_METRIC] = float(np.nanmax(qc)) if np.isfinite(qc).any() else float("nan")
        out[ref.image] = best
    return out


def cached_search(index: ImageIndex, evaluator: RobustnessEvaluator, scores: dict[int, np.ndarray], cache: Path,
                  cfg: SearchConfig = SearchConfig()) -> dict[int, np.ndarray]:
    """`searched_targets`, read from / written to `cache` (keyed like `cached_scores`, plus the search)."""
    key = _cache_key(index, evaluator, cfg.tag())
    found = load_cache(cache, key)
    if found is None:
        found = searched_targets(index, evaluator, scores, cfg)
        save_cache(cache, key, found)
    return found

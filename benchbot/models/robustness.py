"""Robustness evaluation: a frozen GQ-CNN labels a grasp robust (q >= threshold) or not.

`GQCNNEvaluator` implements `benchbot.core.interfaces.RobustnessEvaluator`. The crop's image scale is
matched to the network's training scale: `scale` if given, else from `table_distance_m` if given,
else per grasp from the frame's table plane (`perception.table.table_plane`: the depth of the table
under the grasp centre), in bins of 1 %. A grasp whose crop would leave the frame is not scored
(q = NaN, with the reason from `assess`): zero padding is not a scene the GQ-CNN can judge.
`calibrate_threshold` picks a threshold from labelled outcomes; figures always say which threshold.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp
from benchbot.models.gqcnn import GQCNN, predict_quality
from benchbot.models.gqcnn_onnx import OnnxGQCNN
from benchbot.models.weights import DEFAULT_MODEL, load_gqcnn
from benchbot.perception.crops import SPECS, CropSpec, extract_crops, nearest_crop_maps, scale_factor, warp_crops
from benchbot.perception.table import table_plane

if TYPE_CHECKING:
    from benchbot.core.interfaces import RobustnessEvaluator

NOMINAL_THRESHOLD = 0.5
SCALE_BIN = 0.01  # crops share one resize when their scales agree to 1 % (±0.5 %: ±0.25 px at the crop edge)
EDGE_TOL_PX = 1.0  # a crop may reach this far beyond the frame's outer pixel centres
OFF_FRAME = "GQ-CNN crop leaves the frame (not scored)"


@dataclass
class GQCNNEvaluator:
    """P(robust) of grasps on depth frames from a frozen GQ-CNN.

    crop: how crops are cut (default: the model's own spec, '96to32' for 2.0, '96to96' for 4.0-PJ);
    scale: fixed camera-scale factor; table_distance_m: fixed camera-to-table distance for the scale
    (both None → per grasp from the table plane); depth_offset_m: added to the crop and to the gripper
    depth z (e.g. training table distance − actual table distance), 0 by default.
    """

    model: GQCNN | OnnxGQCNN
    crop: CropSpec | str | None = None
    threshold: float = NOMINAL_THRESHOLD
    scale: float | None = None
    table_distance_m: float | None = None
    depth_offset_m: float = 0.0
    batch_size: int = 100
    name: str = ""
    last_scale: float | None = field(default=None, init=False)
    last_table_distance_m: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        spec = self.crop if self.crop is not None else self.model.cfg.crop
        if isinstance(spec, str):
            if spec not in SPECS:
                raise BenchbotError(f"unknown crop spec {spec!r}", f"use one of {sorted(SPECS)}")
            spec = SPECS[spec]
        if spec.out_px != self.model.cfg.im_size:
            raise BenchbotError(f"crop spec {spec.name} gives {spec.out_px}px crops, {self.model.cfg.name} wants "
                                f"{self.model.cfg.im_size}px", "use the model's own crop spec")
        if not 0.0 <= self.threshold <= 1.0:
            raise BenchbotError(f"robustness threshold {self.threshold} outside [0, 1]", "use e.g. 0.5")
        self.crop = spec
        self.name = self.name or self.model.cfg.name
        self.model.freeze()
        if isinstance(self.model, GQCNN):  # chunks of channels_last crops run fastest on CPU
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to overloads lack memory_format

    def scales_for(self, frame: DepthFrame, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Camera-scale factor per grasp centre (see module docstring)."""
        n = len(rows)
        if self.scale is not None:
            self.last_scale, self.last_table_distance_m = self.scale, None
            return np.full(n, float(self.scale))
        if not self.model.cfg.px_per_m:
            raise BenchbotError(f"{self.model.cfg.name} does not record its training image scale",
                                "pass scale=... to the evaluator")
        intr = frame.intrinsics
        if self.table_distance_m is not None:
            dist = np.full(n, float(self.table_distance_m))
            self.last_table_distance_m = float(self.table_distance_m)
        else:
            plane = table_plane(frame)
            dist = plane.ray_depth_m(intr, rows, cols)
            dist = np.where(np.isfinite(dist), dist, plane.axis_distance_m)
            self.last_table_distance_m = plane.axis_distance_m
        if n and not np.all(np.isfinite(dist) & (dist > 0)):
            scale_factor(intr, float(dist[~(np.isfinite(dist) & (dist > 0))][0]), self.model.cfg.px_per_m)  # raises
        s = self.model.cfg.px_per_m * dist / (0.5 * (intr.fx + intr.fy))  # = scale_factor, per grasp
        self.last_scale = float(np.median(s)) if n else None
        return s

    def assess(self, frame: DepthFrame, grasps: Sequence[Grasp]) -> tuple[np.ndarray, list[str | None]]:
        """P(robust) per grasp (float64, NaN when not scored) and why a grasp was not scored."""
        q = np.full(len(grasps), np.nan)
        reasons: list[str | None] = [None if g.is_finite() else "grasp has NaN/inf values" for g in grasps]
        ok = [i for i, g in enumerate(grasps) if g.is_finite()]
        if not ok:
            return q, reasons
        rows = np.array([grasps[i].row for i in ok])
        cols = np.array([grasps[i].col for i in ok])
        angles = np.array([grasps[i].angle_rad for i in ok])
        s = self.scales_for(frame, rows, cols)
        ext = 0.5 * self.crop.crop_px / s * (np.abs(np.cos(angles)) + np.abs(np.sin(angles)))  # type: ignore[union-attr]
        h, w = frame.shape
        inside = ((rows - ext >= -EDGE_TOL_PX) & (rows + ext <= h - 1 + EDGE_TOL_PX)
                  & (cols - ext >= -EDGE_TOL_PX) & (cols + ext <= w - 1 + EDGE_TOL_PX))
        for i, good in zip(ok, inside, strict=True):
            if not good:
                reasons[i] = OFF_FRAME
        if not inside.any():
            return q, reasons
        depth = np.where(frame.valid_mask, frame.depth_m, 0.0).astype(np.float32)
        keys = np.round(np.log(s) / SCALE_BIN).astype(np.int64)
        groups = [np.nonzero(inside & (keys == key))[0] for key in np.unique(keys[inside])]
        scales = [float(np.exp(keys[sel[0]] * SCALE_BIN)) for sel in groups]  # one resize per scale bin
        order = np.concatenate(groups)
        z = np.array([grasps[ok[i]].depth_m for i in order], dtype=np.float32) + np.float32(self.depth_offset_m)
        if isinstance(self.model, GQCNN):
            parts = [extract_crops(depth, rows[sel], cols[sel], angles[sel], self.crop, scale=sc)  # type: ignore[arg-type]
                     for sel, sc in zip(groups, scales, strict=True)]
            vals = predict_quality(self.model, self._offset(torch.cat(parts)), torch.from_numpy(z),
                                   self.batch_size).double().numpy()
        else:  # crops cut batch by batch in the runtime's worker threads
            vals = self._onnx_qualities(self.model, depth, rows, cols, angles, groups, scales, z)
        q[[ok[i] for i in order]] = vals
        return q, reasons

    def _offset(self, crops: torch.Tensor) -> torch.Tensor:
        if not self.depth_offset_m:
            return crops
        return torch.where(crops > 0, crops + self.depth_offset_m, crops)

    def _onnx_qualities(self, model: OnnxGQCNN, depth: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                        angles: np.ndarray, groups: list[np.ndarray], scales: list[float], z: np.ndarray) -> np.ndarray:
        """ONNX Runtime q of the grasps `groups` (one array of indices per scale bin, in that order)."""
        spec = self.crop
        maps = [nearest_crop_maps(depth, rows[sel], cols[sel], angles[sel], spec, sc)  # type: ignore[arg-type]
                for sel, sc in zip(groups, scales, strict=True)]
        srcs = np.concatenate([np.full(len(sel), j) for j, sel in enumerate(groups)])
        m_all = np.concatenate([m for _, m in maps])
        out_px = spec.out_px  # type: ignore[union-attr]

        def crops_for(sl: slice) -> np.ndarray:
            c = np.empty((sl.stop - sl.start, out_px, out_px), np.float32)
            for j in np.unique(srcs[sl]):  # a batch may span scale bins (contiguous runs: groups are in order)
                k = np.nonzero(srcs[sl] == j)[0]
                warp_crops(maps[j][0], m_all[sl][k], out_px, out=c[k[0]:k[-1] + 1])
            return self._offset(torch.from_numpy(c)).numpy()[:, None]

        return model.predict_batches(crops_for, z, self.batch_size)

    def qualities(self, frame: DepthFrame, grasps: Sequence[Grasp]) -> np.ndarray:
        """P(robust) per grasp (float64 array); NaN for grasps not scored (see `assess`)."""
        return self.assess(frame, grasps)[0]

    def quality(self, frame: DepthFrame, grasp: Grasp) -> float:
        """P(robust) of one grasp (NaN when not scored)."""
        return float(self.qualities(frame, [grasp])[0])

    def describe(self) -> dict[str, object]:
        """What produced the q values (for the run record): model, crop, threshold, scale policy."""
        policy = ("fixed scale" if self.scale is not None else "fixed table distance"
                  if self.table_distance_m is not None else "per grasp from the table plane")
        return {"evaluator": self.name, "threshold": self.threshold, "crop": self.crop.name,  # type: ignore[union-attr]
                "model_px_per_m": self.model.cfg.px_per_m, "scale": self.scale, "scale_policy": policy,
                "table_distance_m": self.table_distance_m, "depth_offset_m": self.depth_offset_m,
                "runtime": "torch" if isinstance(self.model, GQCNN) else "onnx",
                "last_scale": self.last_scale, "last_table_distance_m": self.last_table_distance_m}

    def is_robust(self, q: float) -> bool:
        return bool(np.isfinite(q) and q >= self.threshold)


def robustness_of(evaluator: RobustnessEvaluator, frame: DepthFrame, grasp: Grasp) -> tuple[float | None, str | None]:
    """(q, None), or (None, why) when the evaluator could not score the grasp (crop off the frame)."""
    if hasattr(evaluator, "assess"):
        qs, why = evaluator.assess(frame, [grasp])
        q, reason = float(qs[0]), why[0]
    else:
        q, reason = float(evaluator.quality(frame, grasp)), None
    if not np.isfinite(q):
        return None, reason or "the evaluator returned no finite q"
    return q, None


def load_evaluator(name: str = DEFAULT_MODEL, threshold: float = NOMINAL_THRESHOLD,
                   table_distance_m: float | None = None, scale: float | None = None,
                   runtime: str = "torch") -> GQCNNEvaluator:
    """Evaluator around a shipped model name, a .pt file or a Berkeley release folder.
    runtime: 'torch' or 'onnx' (ONNX Runtime, same numbers to 1e-5, faster on CPU)."""
    model = load_gqcnn(name)
    if runtime == "onnx":
        return GQCNNEvaluator(OnnxGQCNN.from_model(model), threshold=threshold, scale=scale,
                              table_distance_m=table_distance_m, name=model.cfg.name)
    if runtime != "torch":
        raise BenchbotError(f"unknown GQ-CNN runtime {runtime!r}", "use 'torch' or 'onnx'")
    return GQCNNEvaluator(model, threshold=threshold, scale=scale, table_distance_m=table_distance_m)


# --- threshold calibration ---------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdStats:
    threshold: float
    robust_rate: float  # fraction of grasps labelled robust (q >= threshold)
    tpr: float  # successes labelled robust
    tnr: float  # failures labelled not robust
    balanced_accuracy: float

    @property
    def youden_j(self) -> float:
        return self.tpr + self.tnr - 1.0


@dataclass(frozen=True)
class ThresholdCalibration:
    """Threshold maximising balanced accuracy (≡ Youden's J) over labelled trials, and the nominal
    0.5 figures for comparison."""

    n: int
    n_success: int
    best: ThresholdStats
    nominal: ThresholdStats

    @property
    def threshold(self) -> float:
        return self.best.threshold

    def to_dict(self) -> dict[str, object]:
        def d(s: ThresholdStats) -> dict[str, float]:
            return {"threshold": s.threshold, "robust_rate": s.robust_rate, "tpr": s.tpr, "tnr": s.tnr,
                    "balanced_accuracy": s.balanced_accuracy, "youden_j": s.youden_j}
        return {"n": self.n, "n_success": self.n_success, "best": d(self.best), "nominal": d(self.nominal)}


def threshold_stats(q: np.ndarray, success: np.ndarray, threshold: float) -> ThresholdStats:
    robust = q >= threshold
    pos, neg = success.sum(), (~success).sum()
    tpr = float((robust & success).sum() / pos) if pos else float("nan")
    tnr = float((~robust & ~success).sum() / neg) if neg else float("nan")
    return ThresholdStats(float(threshold), float(robust.mean()), tpr, tnr, 0.5 * (tpr + tnr))


def calibrate_threshold(q: Sequence[float] | np.ndarray, success: Sequence[bool] | np.ndarray) -> ThresholdCalibration:
    """Pick the threshold on q that best separates successes from failures (balanced accuracy;
    ties → the threshold closest to 0.5). Candidates: midpoints between sorted distinct q values."""
    qa = np.asarray(q, dtype=np.float64).ravel()
    sa = np.asarray(success).astype(bool).ravel()
    if qa.shape != sa.shape:
        raise BenchbotError(f"{qa.size} qualities but {sa.size} outcomes", "pass one outcome per grasp")
    keep = np.isfinite(qa)
    qa, sa = qa[keep], sa[keep]
    if sa.all() or not sa.any():
        raise BenchbotError("threshold calibration needs both successes and failures",
                            "collect labelled trials with both outcomes")
    u = np.unique(qa)
    cands = np.concatenate([[0.0], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)], [NOMINAL_THRESHOLD]])
    stats = [threshold_stats(qa, sa, t) for t in cands]
    best = max(stats, key=lambda s: (round(s.balanced_accuracy, 12), -abs(s.threshold - NOMINAL_THRESHOLD)))
    return ThresholdCalibration(int(qa.size), int(sa.sum()), best, threshold_stats(qa, sa, NOMINAL_THRESHOLD))


def quality_summary(q: Sequence[float] | np.ndarray, threshold: float = NOMINAL_THRESHOLD) -> dict[str, float]:
    """Robust-prediction rate at `threshold` and the q distribution (for reports)."""
    qa = np.asarray(q, dtype=np.float64).ravel()
    qa = qa[np.isfinite(qa)]
    if qa.size == 0:
        return {"n": 0, "threshold": threshold, "robust_rate": float("nan")}
    pct = np.percentile(qa, [0, 10, 25, 50, 75, 90, 100])
    return {"n": int(qa.size), "threshold": float(threshold), "robust_rate": float((qa >= threshold).mean()),
            "mean": float(qa.mean()),
            **{f"p{p}": float(v) for p, v in zip((0, 10, 25, 50, 75, 90, 100), pct, strict=True)}}

"""Table I of the paper: rectangle and robust precision of one-shot detectors on held-out images.

Pipeline (small stages): images of the split → each detector's one grasp per image → checks:
* rectangle metric: against the *closest* ground-truth grasp (centre distance, robust ground truths
  only); correct when the angle difference (mod π) is < 30° and the Jaccard index (IoU) of the two
  rotated rectangles is > 0.25. Rectangles: width w along the jaw axis, height h = w/5; a GQ-STN
  grasp's width is s/3 (params_to_grasp), a ground truth's its width_px.
* robust metric: the frozen GQ-CNN evaluator says P(robust) ≥ its threshold — the same evaluator
  (crops, camera scale) for every method.
* §V-B cross-tab: share of rectangle-correct grasps that are not robust, and of robust grasps that
  are not rectangle-correct.
Output as markdown, CSV or JSON. Images without any robust ground-truth grasp are left out (no
rectangle target); the table states how many images were used.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Detector, RobustnessEvaluator
from benchbot.core.types import DepthFrame, Grasp, Intrinsics
from benchbot.perception.workspace import prepare_frame
from benchbot.train.data import G_ANGLE, G_COL, G_ROW, G_WIDTH, ImageIndex

ANGLE_TOL_RAD = math.radians(30.0)
JACCARD_MIN = 0.25
HEIGHT_RATIO = 0.2  # h = w / 5


# ---------- rotated-rectangle geometry (convex polygon clipping, no shapely) ----------

def rectangle(row: float, col: float, angle_rad: float, width: float, height: float | None = None) -> np.ndarray:
    """Corners (4×2, as (x=col, y=row)) of a grasp rectangle: `width` along the jaw axis
    (cos a, −sin a) in (col, row), `height` (default width/5) across it."""
    h = width * HEIGHT_RATIO if height is None else height
    ax = np.array([math.cos(angle_rad), -math.sin(angle_rad)])  # jaw axis in (col, row)
    perp = np.array([math.sin(angle_rad), math.cos(angle_rad)])
    c = np.array([col, row])
    hw, hh = width / 2.0, h / 2.0
    return np.array([c - hw * ax - hh * perp, c + hw * ax - hh * perp,
                     c + hw * ax + hh * perp, c - hw * ax + hh * perp])


def area(poly: np.ndarray) -> float:
    """Unsigned polygon area (shoelace)."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _signed_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _inside(p: np.ndarray, a: np.ndarray, edge: np.ndarray) -> bool:
    """Whether p lies left of (or on) the clip edge from a along edge."""
    return edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]) >= -1e-12


def _cross_point(p: np.ndarray, q: np.ndarray, a: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Where segment p→q crosses the line through a along edge."""
    d = q - p
    denom = edge[0] * d[1] - edge[1] * d[0]
    t = (edge[1] * (p[0] - a[0]) - edge[0] * (p[1] - a[1])) / denom
    return p + t * d


def clip(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman: the part of convex-or-not `subject` inside convex `clipper`."""
    if _signed_area(clipper) < 0:
        clipper = clipper[::-1]
    out = [p for p in subject]
    n = len(clipper)
    for i in range(n):
        a, b = clipper[i], clipper[(i + 1) % n]
        edge = b - a
        src, out = out, []
        if not src:
            break
        for j, cur in enumerate(src):
            prev = src[j - 1]
            if _inside(cur, a, edge):
                if not _inside(prev, a, edge):
                    out.append(_cross_point(prev, cur, a, edge))
                out.append(cur)
            elif _inside(prev, a, edge):
                out.append(_cross_point(prev, cur, a, edge))
    return np.array(out) if out else np.zeros((0, 2))


def jaccard(p: np.ndarray, q: np.ndarray) -> float:
    """Intersection over union of two convex polygons."""
    inter = area(clip(p, q))
    union = area(p) + area(q) - inter
    return inter / union if union > 0 else 0.0


def angle_difference(a: float, b: float) -> float:
    """|a − b| modulo π, in [0, π/2] (a parallel-jaw grasp is symmetric under a half-turn)."""
    d = abs(a - b) % math.pi
    return min(d, math.pi - d)


def closest_ground_truth(grasp: Grasp, gts: np.ndarray) -> np.ndarray:
    """The ground-truth row (images/grasps layout) whose centre is nearest the grasp's."""
    d = (gts[:, G_ROW] - grasp.row) ** 2 + (gts[:, G_COL] - grasp.col) ** 2
    return gts[int(np.argmin(d))]


def rectangle_correct(grasp: Grasp, gts: np.ndarray) -> tuple[bool, float, float]:
    """Rectangle metric against the closest ground truth → (correct, angle diff rad, Jaccard)."""
    if not grasp.is_finite() or len(gts) == 0:
        return False, float("nan"), 0.0
    gt = closest_ground_truth(grasp, gts)
    da = angle_difference(grasp.angle_rad, float(gt[G_ANGLE]))
    j = jaccard(rectangle(grasp.row, grasp.col, grasp.angle_rad, grasp.width_px),
                rectangle(float(gt[G_ROW]), float(gt[G_COL]), float(gt[G_ANGLE]), float(gt[G_WIDTH])))
    return bool(da < ANGLE_TOL_RAD and j > JACCARD_MIN), da, j


# ---------- scoring ----------

@dataclass
class MethodResult:
    method: str
    n_images: int
    n_failed: int  # detector raised (counted as neither rectangle-correct nor robust)
    rectangle_pct: float
    robust_pct: float
    rect_not_robust_pct: float  # of rectangle-correct grasps, share not robust (§V-B)
    robust_not_rect_pct: float  # of robust grasps, share not rectangle-correct (§V-B)
    mean_q: float
    median_detect_ms: float


@dataclass
class Outcome:
    rect: bool
    robust: bool
    q: float
    detect_ms: float
    failed: bool = False


def summarise(method: str, outcomes: Sequence[Outcome]) -> MethodResult:
    n = len(outcomes)
    rect = np.array([o.rect for o in outcomes], bool)
    rob = np.array([o.robust for o in outcomes], bool)
    q = np.array([o.q for o in outcomes], float)
    ms = np.array([o.detect_ms for o in outcomes if not o.failed], float)

    def pct(num: int, den: int) -> float:
        return 100.0 * num / den if den else float("nan")

    return MethodResult(method, n, sum(o.failed for o in outcomes), pct(int(rect.sum()), n), pct(int(rob.sum()), n),
                        pct(int((rect & ~rob).sum()), int(rect.sum())), pct(int((rob & ~rect).sum()), int(rob.sum())),
                        float(np.nanmean(q)) if np.isfinite(q).any() else float("nan"),
                        float(np.median(ms)) if ms.size else float("nan"))


def frame_intrinsics(meta: dict[str, Any], height: int, width: int) -> tuple[Intrinsics, str]:
    """Camera intrinsics from meta.json; for folders without them (original Dex-Net), a PrimeSense
    (f = 525 px) centred on the image — the returned note says which."""
    cand = (meta.get("camera_intrinsics") or meta.get("intrinsics") or (meta.get("camera") or {}).get("intrinsics")
            or meta.get("camera"))
    if isinstance(cand, dict) and all(k in cand for k in ("fx", "fy", "cx", "cy")):
        return Intrinsics(float(cand["fx"]), float(cand["fy"]), float(cand["cx"]), float(cand["cy"]),
                          int(cand.get("width", width)), int(cand.get("height", height))), "meta.json"
    return Intrinsics(525.0, 525.0, width / 2.0, height / 2.0, width, height), "assumed PrimeSense f=525 px"


def table_distance(meta: dict[str, Any]) -> float | None:
    """Camera-to-table distance recorded in meta.json (benchbot datagen: config.camera_height_m)."""
    d = meta.get("table_distance_m") or (meta.get("config") or {}).get("camera_height_m")
    return float(d) if isinstance(d, (int, float)) and d > 0 else None


def evaluate_detectors(detectors: dict[str, Detector], data_dir: str | Path, evaluator: RobustnessEvaluator,
                       split: str = "val", limit: int | None = None, seed: int = 0,
                       on_image: Callable[[int, int], None] | None = None) -> EvalTable:
    """Run every detector on the held-out images and score them (see module doc)."""
    if split not in ("val", "train", "all"):
        raise BenchbotError(f"unknown split {split!r}", "use val, train or all")
    index = ImageIndex(data_dir, seed=seed)
    refs = index.images(None if split == "all" else split)
    refs = refs[:limit] if limit else refs
    if not refs:
        raise BenchbotError(f"no {split} image with a robust ground-truth grasp in {data_dir}",
                            "check the dataset (benchbot datagen) or use --split all")
    intr_note = ("per-image scene records" if index.scenes
                 else frame_intrinsics(index.meta, index.height, index.width)[1])
    outcomes: dict[str, list[Outcome]] = {name: [] for name in detectors}
    for k, (ref, depth) in enumerate(index.iter_depth(refs)):
        seen = prepare_frame(index.frame(ref.image, depth, {"image": ref.image}))  # as in a trial
        gts = index.robust_grasps(ref.image)
        for name, det in detectors.items():
            frame = DepthFrame(seen.depth_m.copy(), seen.intrinsics, time.perf_counter(), dict(seen.meta))
            t0 = time.perf_counter()
            try:
                g = det.detect(frame)
            except BenchbotError:
                outcomes[name].append(Outcome(False, False, float("nan"), float("nan"), failed=True))
                continue
            ms = 1e3 * (time.perf_counter() - t0)
            rect, _, _ = rectangle_correct(g, gts)
            q = float(evaluator.quality(frame, g)) if g.is_finite() else float("nan")
            outcomes[name].append(Outcome(rect, bool(np.isfinite(q) and q >= evaluator.threshold), q, ms))
        if on_image:
            on_image(k + 1, len(refs))
    rows = [summarise(name, outs) for name, outs in outcomes.items()]
    info = {"data": str(data_dir), "split": split, "split_by": index.split_by, "images": len(refs),
            "evaluator": getattr(evaluator, "name", type(evaluator).__name__), "threshold": evaluator.threshold,
            "intrinsics": intr_note}
    return EvalTable(rows, info)


@dataclass
class EvalTable:
    rows: list[MethodResult]
    info: dict[str, Any]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows]

    def to_json(self) -> str:
        return json.dumps({"info": self.info, "results": self.to_dicts()}, indent=2, allow_nan=True)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(asdict(self.rows[0]).keys()) if self.rows else ["method"])
        w.writeheader()
        w.writerows(self.to_dicts())
        return buf.getvalue()

    def to_markdown(self) -> str:
        def f(v: float) -> str:
            return "–" if v != v else f"{v:.1f}"

        lines = [f"Precision (%) on {self.info['images']} {self.info['split']} images "
                 f"(split by {self.info['split_by']}; "
                 f"robust = {self.info['evaluator']} P ≥ {self.info['threshold']:g})",
                 "", "| method | rectangle | robust | rect ∧ ¬robust (% of rect) | robust ∧ ¬rect (% of robust) "
                 "| mean q | median detect ms | failed |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            lines.append(f"| {r.method} | {f(r.rectangle_pct)} | {f(r.robust_pct)} | {f(r.rect_not_robust_pct)} | "
                         f"{f(r.robust_not_rect_pct)} | {r.mean_q:.3f} | {f(r.median_detect_ms)} | {r.n_failed} |")
        lines += ["", "Paper (Table I, Dex-Net 2.0 test split): GQ-STN 46.7 / 92.4 (rectangle / robust), "
                  "MultiGrasp 48.4 rectangle."]
        return "\n".join(lines)

    def render(self, fmt: str = "md") -> str:
        if fmt == "md":
            return self.to_markdown()
        if fmt == "csv":
            return self.to_csv()
        if fmt == "json":
            return self.to_json()
        raise BenchbotError(f"unknown format {fmt!r}", "use md, csv or json")


def evaluate(models: Sequence[str], data_dir: str | Path, weights: Mapping[str, str | Path] | None = None,
             baselines: Sequence[str] = ("centroid",), split: str = "val", limit: int | None = None,
             evaluator: RobustnessEvaluator | None = None, device: str = "cpu") -> EvalTable:
    """Table I for named detectors (gqstn, multigrasp, ...) plus simple baselines, loaded through
    the detector registry (a learned model without weights raises BenchbotError)."""
    from benchbot.detectors import load_detector

    weights = weights or {}
    dets: dict[str, Detector] = {}
    for name in [*models, *baselines]:
        opts: dict[str, Any] = {}
        if name in weights:
            opts["weights"] = weights[name]
        if name in ("gqstn", "gqstn-sym8", "multigrasp", "gqstn-fallback"):
            opts["device"] = device
        dets[name] = load_detector(name, **opts)
    if evaluator is None:
        from benchbot.models.robustness import load_evaluator

        evaluator = load_evaluator()
    return evaluate_detectors(dets, data_dir, evaluator, split, limit)

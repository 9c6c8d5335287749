"""Real-frame evaluation (`benchbot eval --frames RECORDING`): per method, where its grasps land on
real recorded frames with object masks, and how the robustness evaluator rates them.

Each frame goes through the same steps as a trial of `benchbot run`: inpaint → table plane and
workspace mask (`prepare_frame`, timed with the detection) → detector → the evaluator's q on the
frame the detector saw. A grasp is *on the object* when its centre pixel lies inside the convex hull
of an object of the recording's mask (masks/NNNNN.png: 0 table/background, 1–254 objects, 255 robot;
the hull counts the inside of a U-shaped clamp, where a grasp across both arms is centred), *on the
robot* when it lies on label 255; robust when q ≥ the evaluator's threshold (q = NULL, e.g. a crop
leaving the frame, is not robust and is counted apart).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError

ROBOT_LABEL = 255


def read_masks(rec: Any) -> list[np.ndarray]:
    """The object mask of every frame of a recording (masks/<frame stem>.png, uint8)."""
    from PIL import Image

    out = []
    for path in rec.frame_files:
        mpath = rec.folder / "masks" / f"{path.stem}.png"
        if not mpath.is_file():
            raise BenchbotError(f"{mpath}: object mask not found",
                                "make masks with scripts/make_object_masks.py (see the recording's PROVENANCE.md)")
        try:
            with Image.open(mpath) as im:
                m = np.array(im)
        except (OSError, ValueError, SyntaxError):
            raise BenchbotError(f"{mpath}: cannot read the mask (not a PNG, or truncated)", "remake the mask") from None
        if m.shape != (rec.intrinsics.height, rec.intrinsics.width) or m.dtype != np.uint8:
            raise BenchbotError(f"{mpath}: mask is {m.dtype} {m.shape}, expected uint8 "
                                f"{rec.intrinsics.height}×{rec.intrinsics.width}", "remake the mask")
        out.append(m)
    return out


def object_hulls(mask: np.ndarray) -> np.ndarray:
    """The mask with every object (labels 1–254) replaced by its filled convex hull; robot kept."""
    import cv2

    out = np.where(mask == ROBOT_LABEL, ROBOT_LABEL, 0).astype(np.uint8)
    for label in np.unique(mask):
        if 0 < label < ROBOT_LABEL:
            pts = np.argwhere(mask == label)[:, ::-1].astype(np.int32)  # (x=col, y=row)
            hull = np.zeros_like(mask)
            cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
            out[(hull > 0) & (out == 0)] = label
    return out


@dataclass
class FrameOutcome:
    recording: str
    frame: int
    on_object: bool
    on_robot: bool
    q: float | None
    q_null_reason: str | None
    detect_ms: float
    error: str | None = None


@dataclass
class FramesResult:
    method: str
    n_frames: int
    n_failed: int
    on_object_pct: float
    on_robot_pct: float
    robust_pct: float
    mean_q: float
    n_unscored: int
    median_detect_ms: float


def summarise(method: str, outs: Sequence[FrameOutcome], threshold: float) -> FramesResult:
    n = len(outs)
    ok = [o for o in outs if o.error is None]
    q = np.array([o.q for o in ok if o.q is not None], float)

    def pct(k: int) -> float:
        return 100.0 * k / n if n else float("nan")

    return FramesResult(method, n, n - len(ok), pct(sum(o.on_object for o in ok)), pct(sum(o.on_robot for o in ok)),
                        pct(int((q >= threshold).sum())), float(q.mean()) if q.size else float("nan"),
                        sum(o.q is None for o in ok),
                        float(np.median([o.detect_ms for o in ok])) if ok else float("nan"))


@dataclass
class FramesTable:
    rows: list[FramesResult]
    per_recording: dict[str, list[FramesResult]]
    outcomes: dict[str, list[FrameOutcome]]
    info: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        def f(v: float) -> str:
            return "–" if v != v else f"{v:.1f}"

        def table(rows: list[FramesResult]) -> list[str]:
            out = ["| method | frames | on object % | on robot % | robust % | mean q | q NULL | median detect ms "
                   "| failed |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for r in rows:
                out.append(f"| {r.method} | {r.n_frames} | {f(r.on_object_pct)} | {f(r.on_robot_pct)} | "
                           f"{f(r.robust_pct)} | {'–' if r.mean_q != r.mean_q else f'{r.mean_q:.3f}'} | "
                           f"{r.n_unscored} | {f(r.median_detect_ms)} | {r.n_failed} |")
            return out

        lines = [f"Real frames (robust = {self.info['evaluator']} q ≥ {self.info['threshold']:g}; "
                 f"{self.info['cpu']})", ""]
        if len(self.per_recording) > 1:
            lines += ["All recordings:", "", *table(self.rows), ""]
        for name, rows in self.per_recording.items():
            lines += [f"{name}:", "", *table(rows), ""]
        return "\n".join(lines).rstrip()

    def to_json(self) -> str:
        import json

        return json.dumps({"info": self.info, "results": [asdict(r) for r in self.rows],
                           "per_recording": {k: [asdict(r) for r in v] for k, v in self.per_recording.items()},
                           "frames": {k: [asdict(o) for o in v] for k, v in self.outcomes.items()}},
                          indent=2, allow_nan=True)

    def render(self, fmt: str = "md") -> str:
        if fmt == "md":
            return self.to_markdown()
        if fmt == "json":
            return self.to_json()
        raise BenchbotError(f"unknown format {fmt!r} for --frames", "use md or json")


def _one(det: Any, seen: Any, prep_s: float, evaluator: Any, mask: np.ndarray, where: tuple[str, int]) -> FrameOutcome:
    from benchbot.models.robustness import robustness_of

    t0 = time.perf_counter()
    try:
        g = det.detect(seen)
    except BenchbotError as e:
        return FrameOutcome(*where, False, False, None, None, float("nan"), e.one_line())
    ms = 1e3 * (time.perf_counter() - t0 + prep_s)
    r, c = (int(round(g.row)), int(round(g.col))) if g.is_finite() else (-1, -1)
    inside = 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1]
    label = int(mask[r, c]) if inside else 0
    q, why = robustness_of(evaluator, seen, g) if g.is_finite() else (None, "grasp has NaN/inf values")
    return FrameOutcome(*where, 0 < label < ROBOT_LABEL, label == ROBOT_LABEL, q, why, ms)


def evaluate_frames(recordings: Sequence[str | Path], methods: Sequence[str], *, evaluator: Any = None,
                    limit: int | None = None, options: dict[str, dict[str, Any]] | None = None) -> FramesTable:
    """Run every method on every frame of the recordings (see the module doc)."""
    import os

    from benchbot.detectors import load_detector
    from benchbot.devices.cameras.recording import read_recording
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.workspace import prepare_frame, recording_workspace

    if evaluator is None:
        from benchbot.models.robustness import load_evaluator

        evaluator = load_evaluator()
    dets = {m: load_detector(m, **(options or {}).get(m, {})) for m in methods}
    outcomes: dict[str, list[FrameOutcome]] = {m: [] for m in methods}
    per_rec: dict[str, list[FramesResult]] = {}
    for path in recordings:
        rec = read_recording(path)
        masks, spec = [object_hulls(m) for m in read_masks(rec)], recording_workspace(rec)
        name = Path(path).name
        here: dict[str, list[FrameOutcome]] = {m: [] for m in methods}
        for i in range(len(rec) if limit is None else min(limit, len(rec))):
            clean = inpaint_frame(rec.frame(i))
            t0 = time.perf_counter()
            seen = prepare_frame(clean, spec)
            prep_s = time.perf_counter() - t0
            for m, det in dets.items():
                here[m].append(_one(det, seen, prep_s, evaluator, masks[i], (name, i)))
        per_rec[name] = [summarise(m, here[m], evaluator.threshold) for m in methods]
        for m in methods:
            outcomes[m] += here[m]
    rows = [summarise(m, outcomes[m], evaluator.threshold) for m in methods]
    info = {"recordings": [str(p) for p in recordings], "evaluator": getattr(evaluator, "name", "evaluator"),
            "threshold": evaluator.threshold,
            "cpu": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (detect times are wall-clock)"}
    return FramesTable(rows, per_rec, outcomes, info)


def frames_acceptance(table: FramesTable) -> dict[str, bool]:
    """The issue's targets on real frames, per recording: gqstn on the object ≥ 90 %, robust ≥ 50 %;
    gqstn-refine robust ≥ 80 %; multigrasp never on the robot."""
    checks: dict[str, bool] = {}
    for name, rows in table.per_recording.items():
        by = {r.method: r for r in rows}
        if "gqstn" in by:
            checks[f"{name}: gqstn on object ≥ 90 %"] = by["gqstn"].on_object_pct >= 90 - 1e-9
            checks[f"{name}: gqstn robust ≥ 50 %"] = by["gqstn"].robust_pct >= 50 - 1e-9
        if "gqstn-refine" in by:
            checks[f"{name}: gqstn-refine robust ≥ 80 %"] = by["gqstn-refine"].robust_pct >= 80 - 1e-9
        if "multigrasp" in by:
            checks[f"{name}: multigrasp never on the robot"] = math.isclose(by["multigrasp"].on_robot_pct, 0.0)
    return checks

"""One frame → one grasp (+ robustness q and an overlay PNG): the library behind `benchbot detect`.

Same steps as a trial of `benchbot run`: inpaint → table plane + workspace mask (`prepare_frame`) →
detector → the evaluator's q on the frame the detector saw."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .errors import BenchbotError
from .types import DepthFrame


def load_frame(path: Path, *, index: int = 0, intrinsics: Path | None = None) -> DepthFrame:
    """A recording folder (frame `index`) or a single .npy/.png file with an intrinsics.yaml
    (given, or next to the file)."""
    from .cameras.recording import load_depth_file, read_intrinsics_file, read_recording

    path = Path(path)
    if path.is_dir():
        rec = read_recording(path)
        if not 0 <= index < len(rec):
            raise BenchbotError(f"{path}: no frame {index} (it has {len(rec)})", f"use --index 0..{len(rec) - 1}")
        from .perception.workspace import recording_workspace

        frame = rec.frame(index)
        frame.meta["workspace_spec"] = recording_workspace(rec)
        return frame
    if not path.is_file():
        raise BenchbotError(f"{path}: frame not found", "give a .npy (metres), .png (mm) or a recording folder")
    ipath = intrinsics or path.parent / "intrinsics.yaml"
    if not ipath.is_file():
        raise BenchbotError(f"{path}: no intrinsics found (looked for {ipath})", "pass --intrinsics FILE")
    ifile = read_intrinsics_file(ipath)
    intr = ifile.intrinsics()
    return DepthFrame(load_depth_file(path, intr), intr, 0.0, {"source": str(path)})


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings → detector keyword options (numbers and booleans parsed)."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BenchbotError(f"option '{pair}' is not key=value", "e.g. --option num_candidates=500")
        options[key.strip()] = yaml.safe_load(value)
    return options


def detect_one(path: Path, method: str, *, index: int = 0, intrinsics: Path | None = None,
               overlay: Path | None = None, robustness: bool = True, threshold: float = 0.5,
               options: dict[str, Any] | None = None) -> dict[str, Any]:
    from .detectors import load_detector
    from .robustness import robustness_of
    from .perception.inpaint import inpaint_frame
    from .perception.overlay import save_overlay
    from .perception.workspace import perception_record, prepare_frame

    frame = load_frame(path, index=index, intrinsics=intrinsics)
    spec = frame.meta.pop("workspace_spec", None)
    detector = load_detector(method, **(options or {}))
    t0 = time.perf_counter()
    clean = inpaint_frame(frame)
    t_inpaint = time.perf_counter() - t0
    seen = prepare_frame(clean, spec)
    grasp = detector.detect(seen)
    detect_s = time.perf_counter() - t0 - t_inpaint
    q, perception = None, perception_record(seen, spec)
    if robustness:
        from .robustness import load_evaluator

        q, why = robustness_of(load_evaluator("gqcnn-4.0-pj", threshold=threshold), seen, grasp)
        if why:
            perception["q_null_reason"] = why
    if overlay is not None:
        info = getattr(detector, "last_info", None)
        others = [(g, g.score) for g in getattr(info, "top", [])[1:6]]
        save_overlay(overlay, clean.depth_m, grasp, q, f"{method}", others=others)
    return {"method": method, "grasp": grasp.to_dict(), "q_robust": q,
            "robust": None if q is None else q >= threshold, "detect_s": detect_s, "inpaint_s": t_inpaint,
            "perception": perception, "overlay": str(overlay) if overlay else None}

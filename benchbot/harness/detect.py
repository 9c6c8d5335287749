"""One frame → one grasp (+ robustness q and an overlay PNG): the library behind `benchbot detect`.

Same steps as a trial of `benchbot run`: inpaint → table plane + workspace mask (`prepare_frame`) →
detector → the evaluator's q on the frame the detector saw."""
from __future__ import annotations

import inspect
import math
import re
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame


def load_frame(path: Path, *, index: int = 0, intrinsics: Path | None = None) -> DepthFrame:
    """A recording folder (frame `index`) or a single .npy/.png file with an intrinsics.yaml
    (given, or next to the file)."""
    from benchbot.devices.cameras.recording import load_depth_file, read_intrinsics_file, read_recording

    path = Path(path)
    if path.is_dir():
        rec = read_recording(path)
        if not 0 <= index < len(rec):
            raise BenchbotError(f"{path}: no frame {index} (it has {len(rec)})", f"use --index 0..{len(rec) - 1}")
        from benchbot.perception.workspace import recording_workspace

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


def parse_options(pairs: list[str], flag: str = "--option") -> dict[str, str]:
    """`key=value` strings → {key: value text}; `detector_options` types them for one detector."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BenchbotError(f"{flag} '{pair}' is not key=value", f"e.g. {flag} {_EXAMPLES[flag]}")
        options[key.strip()] = value
    return options


_EXAMPLES = {"--option": "num_candidates=500", "--weights": "gqstn=runs/gqstn/gqstn.pt"}
_SCALARS = (bool, int, float, str)  # what a command line can carry (a Path parameter takes text)


def _scalar_types(hint: Any) -> tuple[list[type], bool] | None:
    """(scalar types, None allowed) of a parameter annotation; None when the command line cannot
    give it (an object such as a scorer or a network)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    kinds = [str if a is Path else a for a in args if a is not type(None)]
    if not kinds or any(k not in _SCALARS for k in kinds):
        return None
    return sorted(set(kinds), key=_SCALARS.index), type(None) in args


def _convert(name: str, text: str, kinds: list[type], optional: bool) -> Any:
    """Option text → the parameter's type (bool, int, float, then text), or BenchbotError."""
    word = text.strip().lower()
    if optional and word in ("none", "null"):
        return None
    for kind in kinds:
        if kind is bool and word in _BOOLS:
            return _BOOLS[word]
        if kind is int and re.fullmatch(r"[+-]?\d{1,18}", word):
            return int(word)
        if kind is float:
            try:
                value = float(word)
            except ValueError:
                continue
            if math.isfinite(value):
                return value
        if kind is str and text.strip():
            return text.strip()
    wanted = " or ".join(_WANTED[k] for k in kinds)
    raise BenchbotError(f"option {name}={text!r} is not {wanted}", f"pass {name}=<{wanted}>")


_WANTED = {bool: "true/false", int: "an integer (≤ 18 digits)", float: "a finite number", str: "text"}
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _parameters(factory: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """(named keyword parameters, their evaluated annotations, takes **kwargs) of a detector factory."""
    init = factory.__init__ if inspect.isclass(factory) else factory
    params = [p for p in inspect.signature(init).parameters.values() if p.name != "self"]
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    module = sys.modules.get(getattr(init, "__module__", ""), None)
    hints: dict[str, Any] = {}
    for name, p in named.items():
        try:
            hints[name] = eval(p.annotation, vars(module)) if isinstance(p.annotation, str) else p.annotation
        except Exception:  # noqa: BLE001 — an annotation we cannot resolve: not settable from text
            hints[name] = object
    return named, hints, any(p.kind == p.VAR_KEYWORD for p in params)


def detector_options(method: str, raw: dict[str, str]) -> dict[str, Any]:
    """Typed keyword options for detector `method` from command-line text. Refuses, in one line,
    names the detector does not take, values of the wrong type, non-finite numbers and options only
    code can pass (objects). A plugin taking **options gets unknown names YAML-parsed."""
    from benchbot.detectors import plugin_targets

    targets = plugin_targets()
    if method not in targets or not raw:
        return dict(raw)  # load_detector names the unknown detector
    factory = targets[method]()
    named, hints, extra = _parameters(factory)
    forward = getattr(factory, "forwards_options_to", None)  # a detector that hands **options to another
    out: dict[str, Any] = {}
    rest: dict[str, str] = {}
    for name, text in raw.items():
        if name not in named:
            rest[name] = text
            continue
        if _untyped(hints[name]):  # a plugin option without a type: YAML decides
            out[name] = _yaml_value(name, text)
            continue
        typed = _scalar_types(hints[name])
        if typed is None:
            raise BenchbotError(f"option '{name}' of {method} cannot be set from the command line",
                                f"drop --option {name}=…")
        out[name] = _convert(name, text, *typed)
    if rest and forward:
        return {**out, **detector_options(forward, rest)}
    if rest and not extra:
        takes = ", ".join(n for n in named if _untyped(hints[n]) or _scalar_types(hints[n])) or "none"
        raise BenchbotError(f"{method} has no option '{next(iter(rest))}'", f"options it takes: {takes}")
    return {**out, **{name: _yaml_value(name, text) for name, text in rest.items()}}


def _untyped(hint: Any) -> bool:
    return hint is inspect.Parameter.empty or hint is Any


def _yaml_value(name: str, text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        raise BenchbotError(f"option {name}={text!r} is not a valid value", "quote text or give a number") from None


def check_output_file(path: Path, suffix: str, example: str) -> None:
    """Refuse, before any work, an output path that cannot become a `suffix` file: another
    extension, an existing folder, or a folder on the way that is a regular file."""
    path = Path(path)
    if path.is_dir():
        raise BenchbotError(f"{path}: is a folder", f"give a file path inside it, e.g. {path / ('out' + suffix)}")
    if path.suffix.lower() != suffix:
        raise BenchbotError(f"{path}: output must be a {suffix} file",
                            f"give a path ending in {suffix}, e.g. {example}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BenchbotError(f"{path}: {parent} is a file, not a folder", "pick another output path")
            break


def detect_one(path: Path, method: str, *, index: int = 0, intrinsics: Path | None = None,
               overlay: Path | None = None, robustness: bool = True, threshold: float = 0.5,
               options: dict[str, Any] | None = None) -> dict[str, Any]:
    from benchbot.detectors import load_detector
    from benchbot.models.robustness import robustness_of
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.overlay import save_overlay
    from benchbot.perception.workspace import perception_record, prepare_frame

    if overlay is not None:
        check_output_file(overlay, ".png", "-o grasp.png")
    frame = load_frame(path, index=index, intrinsics=intrinsics)
    spec = frame.meta.pop("workspace_spec", None)
    detector = load_detector(method, **detector_options(method, options or {}))
    t0 = time.perf_counter()
    clean = inpaint_frame(frame)
    t_inpaint = time.perf_counter() - t0
    seen = prepare_frame(clean, spec)
    grasp = detector.detect(seen)
    detect_s = time.perf_counter() - t0 - t_inpaint
    q, perception = None, perception_record(seen, spec)
    if robustness:
        from benchbot.models.robustness import load_evaluator

        q, why = robustness_of(load_evaluator("gqcnn-4.0-pj", threshold=threshold), seen, grasp)
        if why:
            perception["q_null_reason"] = why
    if overlay is not None:
        info = getattr(detector, "last_info", None)
        others = [(g, g.score) for g in getattr(info, "top", [])[1:6]]
        try:
            save_overlay(overlay, clean.depth_m, grasp, q, f"{method}", others=others)
        except OSError as e:
            raise BenchbotError(f"{overlay}: cannot write the overlay ({e.strerror or e})",
                                "pick a writable path") from None
    return {"method": method, "grasp": grasp.to_dict(), "q_robust": q,
            "robust": None if q is None else q >= threshold, "detect_s": detect_s, "inpaint_s": t_inpaint,
            "perception": perception, "overlay": str(overlay) if overlay else None}

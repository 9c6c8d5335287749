"""Detector plugins: built-ins plus third-party ones from the `benchbot.detectors` entry-point group.

A plugin is a class (or factory) called with keyword options that returns an object with
`name: str` and `detect(frame: DepthFrame) -> Grasp`. Constructing it may raise BenchbotError
(e.g. no trained weights): the harness then reports the method as unavailable — never silently
substitutes another detector.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from importlib.metadata import entry_points
from typing import Any

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import Detector

ENTRY_POINT_GROUP = "benchbot.detectors"

BUILTINS: dict[str, str] = {
    "centroid": "benchbot.detectors.centroid:CentroidDetector",
    "prop-gqcnn": "benchbot.detectors.prop_gqcnn:PropGQCNN",
    "gqstn": "benchbot.detectors.gqstn:GQSTNDetector",
    "gqstn-sym8": "benchbot.detectors.gqstn:GQSTNSymmetries",
    "gqstn-refine": "benchbot.detectors.refine:GQSTNRefine",
    "multigrasp": "benchbot.detectors.multigrasp:MultiGraspDetector",
    "multigrasp-refine": "benchbot.detectors.refine:MultiGraspRefine",
    "gqstn-fallback": "benchbot.detectors.fallback:GQSTNFallback",
}


def _resolve(target: str) -> Callable[..., Any]:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise BenchbotError(f"detector '{target}' cannot be imported ({e})",
                            "reinstall benchbot, or check the plugin package") from None


def plugin_targets() -> dict[str, Callable[[], Callable[..., Any]]]:
    """Every known detector name → a loader of its factory. Entry points may override built-ins."""
    found: dict[str, Callable[[], Callable[..., Any]]] = {n: partial(_resolve, t) for n, t in BUILTINS.items()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.load
    return found


def available_detectors() -> list[str]:
    return sorted(plugin_targets())


def load_detector(name: str, **options: Any) -> Detector:
    """Build detector `name`; BenchbotError if unknown or unavailable (the message says why)."""
    targets = plugin_targets()
    if name not in targets:
        raise BenchbotError(f"unknown detector '{name}'", f"use one of: {', '.join(sorted(targets))}")
    factory = targets[name]()
    detector = factory(**options)
    if not hasattr(detector, "detect"):
        raise BenchbotError(f"detector plugin '{name}' has no detect(frame) method", "fix the plugin")
    return detector


def check_methods(methods: list[str], source: str) -> None:
    """Refuse method names no built-in or installed plugin provides (typos), before any run starts."""
    known = plugin_targets()
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise BenchbotError(f"{source}: key 'methods': '{unknown[0]}' is not a known detector",
                            f"use one of: {', '.join(sorted(known))} (plugins register under the entry-point "
                            f"group {ENTRY_POINT_GROUP})")

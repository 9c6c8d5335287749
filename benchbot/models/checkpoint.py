"""Checkpoints of the one-shot detectors (GQ-STN, MultiGrasp): atomic writes, safe loads.

A model file is a plain dict readable with `torch.load(path, weights_only=True)`:
`{"format": "benchbot-gqstn" | "benchbot-multigrasp", "version": 1, "config": {...},
  "state_dict": {...}, "meta": {...}}`. GQ-STN files do not hold the frozen GQ-CNN: its name is in
the config and it is loaded from the shipped GQ-CNN weights. Training checkpoints add the optimizer
state, the epoch reached and the RNG state (see train/loop.py).
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BenchbotError
from .gqstn import GQSTN, GQSTNConfig
from .multigrasp import MultiGrasp, MultiGraspConfig

KINDS = ("gqstn", "multigrasp")
VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "data" / "weights"


def shipped_path(kind: str) -> Path:
    """Where a trained model of `kind` ships: benchbot/data/weights/<kind>/<kind>.pt."""
    return WEIGHTS_DIR / kind / f"{kind}.pt"


def resolve_weights(kind: str, weights: str | Path | None = None) -> Path:
    """The checkpoint to load: `weights` if given, else the shipped file. Never random weights."""
    if kind not in KINDS:
        raise BenchbotError(f"unknown model kind {kind!r}", f"use one of {', '.join(KINDS)}")
    path = Path(weights) if weights else shipped_path(kind)
    if not path.is_file():
        where = f"weights file {path} does not exist" if weights else f"no trained {kind} model is shipped ({path})"
        raise BenchbotError(f"{where}; refusing to run {kind} with untrained (random) weights",
                            f"train one with `benchbot train {kind} --data DIR --out RUN` and pass "
                            f"`--weights RUN/{kind}.pt`")
    return path


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    """torch.save to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_file(path: str | Path, expect: tuple[str, ...] = tuple(f"benchbot-{k}" for k in KINDS)) -> dict[str, Any]:
    """torch.load(weights_only=True) with every failure turned into a one-line BenchbotError."""
    path = Path(path)
    if not path.is_file():
        raise BenchbotError(f"checkpoint {path} does not exist", "check the path given to --weights/--resume")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchbotError(f"{path} is not a readable benchbot checkpoint ({msg[:120]})",
                            "pass a .pt file written by `benchbot train`") from exc
    if not isinstance(obj, dict) or obj.get("format") not in expect:
        raise BenchbotError(f"{path} is not a {' / '.join(expect)} checkpoint",
                            "pass a .pt file written by `benchbot train`")
    if obj.get("version") != VERSION:
        raise BenchbotError(f"{path} has checkpoint version {obj.get('version')}, this benchbot reads {VERSION}",
                            "retrain with this benchbot version")
    return obj


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    try:
        if kind == "gqstn":
            return GQSTN(GQSTNConfig(**config))
        if kind == "multigrasp":
            return MultiGrasp(MultiGraspConfig(**config))
    except TypeError as exc:
        raise BenchbotError(f"invalid {kind} config in checkpoint ({exc})", "retrain with this benchbot version") from exc
    raise BenchbotError(f"unknown model kind {kind!r}", f"use one of {', '.join(KINDS)}")


def kind_of(model: nn.Module) -> str:
    if isinstance(model, GQSTN):
        return "gqstn"
    if isinstance(model, MultiGrasp):
        return "multigrasp"
    raise TypeError(f"not a benchbot one-shot model: {type(model).__name__}")


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Learned state only (a GQ-STN's frozen classifier is left out)."""
    if isinstance(model, GQSTN):
        return model.trainable_state_dict()
    return model.state_dict()


def model_record(model: nn.Module, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = kind_of(model)
    return {"format": f"benchbot-{kind}", "version": VERSION, "kind": kind, "config": model.cfg.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model_state(model).items()}, "meta": dict(meta or {})}


def save_model(model: nn.Module, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    return save_atomic(model_record(model, meta), path)


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    own = model_state(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        detail = (missing or unexpected or bad)[0]
        raise BenchbotError(f"{path} does not match the {kind_of(model)} architecture (first mismatch: {detail})",
                            "pass a checkpoint trained with the same config")
    model.load_state_dict(state, strict=False)


def load_model(path: str | Path, kind: str | None = None, classifier: nn.Module | None = None,
               attach_classifier: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from its file → (model in eval mode, meta). A GQ-STN gets its frozen
    GQ-CNN (`classifier`, or the shipped one named in its config) unless attach_classifier=False."""
    expect = (f"benchbot-{kind}",) if kind else tuple(f"benchbot-{k}" for k in KINDS)
    rec = load_file(path, expect)
    model = build_model(rec["kind"], rec["config"])
    load_state(model, rec["state_dict"], path)
    if isinstance(model, GQSTN) and attach_classifier:
        if classifier is None:
            from .weights import load_gqcnn

            classifier = load_gqcnn(model.cfg.classifier)
        model.set_classifier(classifier)
    return model.eval(), dict(rec.get("meta", {}))

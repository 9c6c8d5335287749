"""Checkpoints of the one-shot detectors (GQ-STN, MultiGrasp): atomic writes, safe loads.

A model file is a plain dict readable with `torch.load(path, weights_only=True)`:
`{"format": "benchbot-gqstn" | "benchbot-multigrasp", "version": 1, "config": {...},
  "state_dict": {...}, "meta": {...}}`. GQ-STN files do not hold the frozen GQ-CNN: its name is in
the config and it is loaded from the shipped GQ-CNN weights. Training checkpoints add the optimizer
state, the epoch reached and the RNG state (see train/loop.py).
"""
from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchbot.core.errors import BenchbotError, check_number, shown
from benchbot.core.paths import WEIGHTS_DIR
from benchbot.models.gqstn import GQSTN, GQSTNConfig
from benchbot.models.multigrasp import MultiGrasp, MultiGraspConfig

KINDS = ("gqstn", "multigrasp")
VERSION = 1


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


def torch_file(path: Path, fix: str) -> Any:
    """torch.load(weights_only=True): tensors and plain data only, never code. Any failure to parse
    the file (corrupt, truncated, another format, pickled objects) → one-line BenchbotError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise BenchbotError(f"{path} is not a readable weights file (it claims more memory than there is)",
                            fix) from None
    except Exception as exc:  # noqa: BLE001 — torch's unpickler and zip reader raise many types on garbage
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError) and "weights only load failed" in msg.lower():
            raise BenchbotError(f"{path} is not a readable weights file: it holds pickled code or objects, "
                                "refused for safety", fix) from None
        raise BenchbotError(f"{path} is not a readable weights file (corrupt or truncated: {msg[:100]})", fix) from None


_ALL_FORMATS = tuple(f"benchbot-{k}" for k in KINDS)


def load_file(path: str | Path, expect: tuple[str, ...] = _ALL_FORMATS) -> dict[str, Any]:
    """A checkpoint's record, its structure checked; every problem is a one-line BenchbotError."""
    path = Path(path)
    if not path.is_file():
        raise BenchbotError(f"checkpoint {path} does not exist", "check the path given to --weights/--resume")
    fix = "pass a .pt file written by `benchbot train`"
    obj = torch_file(path, fix)
    if not isinstance(obj, dict) or not isinstance(obj.get("format"), str) or obj["format"] not in expect:
        raise BenchbotError(f"{path} is not a {' / '.join(expect)} checkpoint", fix)
    if type(obj.get("version")) is not int or obj["version"] != VERSION:
        raise BenchbotError(f"{path} has checkpoint version {shown(obj.get('version'))}, this benchbot reads {VERSION}",
                            "retrain with this benchbot version")
    return _checked_model(path, obj, fix) if obj["format"] in MODEL_FORMATS else obj


MODEL_FORMATS = tuple(f"benchbot-{k}" for k in KINDS)


def _checked_model(path: Path, obj: dict[str, Any], fix: str) -> dict[str, Any]:
    if not isinstance(obj.get("kind"), str) or obj["format"] != f"benchbot-{obj['kind']}":
        raise BenchbotError(f"{path}: kind {shown(obj.get('kind'))} does not match format {obj['format']}", fix)
    state = obj.get("state_dict")
    if not isinstance(obj.get("config"), dict) or not isinstance(state, dict) \
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise BenchbotError(f"{path} lacks a config or a state_dict of named tensors", fix)
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad:
        raise BenchbotError(f"{path}: tensor {bad} holds NaN/inf values", "the file is corrupt: retrain or re-copy it")
    obj["meta"] = _checked_meta(path, obj.get("meta", {}))
    return obj


def _checked_meta(path: Path, meta: object) -> dict[str, Any]:
    """The meta fields detection uses (source_size, the training view), type- and range-checked."""
    if not isinstance(meta, dict):
        raise BenchbotError(f"{path}: meta is not a mapping", "retrain with this benchbot version")
    try:
        if meta.get("source_size") is not None:
            check_number("meta.source_size", meta["source_size"], 0, 4096, integer=True)
        view = meta.get("view")
        if view is not None and view != {}:
            if not isinstance(view, dict):
                raise BenchbotError("meta.view is not a mapping", "")
            check_number("meta.view.px_per_m", view.get("px_per_m"), 1.0, 1e5)
            check_number("meta.view.side", view.get("side"), 16, 4096, integer=True)
            if view.get("table_distance_m") is not None:
                check_number("meta.view.table_distance_m", view["table_distance_m"], 0.05, 10.0)
    except BenchbotError as e:
        raise BenchbotError(f"{path}: {e.message}", "retrain with this benchbot version") from None
    return dict(meta)


def build_model(kind: str, config: dict[str, Any], device: str | torch.device | None = None) -> nn.Module:
    """A model of `kind` from its config (`device="meta"`: shapes only, nothing allocated)."""
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            if kind == "gqstn":
                return GQSTN(GQSTNConfig(**config))
            if kind == "multigrasp":
                return MultiGrasp(MultiGraspConfig(**config))
    except TypeError as exc:
        raise BenchbotError(f"invalid {kind} config in checkpoint ({exc})",
                            "retrain with this benchbot version") from exc
    except BenchbotError as exc:
        raise BenchbotError(f"invalid {kind} config in checkpoint: {exc.message}",
                            "retrain with this benchbot version") from None
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
    assert isinstance(model, GQSTN | MultiGrasp)  # kind_of raised otherwise
    return {"format": f"benchbot-{kind}", "version": VERSION, "kind": kind, "config": model.cfg.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model_state(model).items()}, "meta": dict(meta or {})}


def save_model(model: nn.Module, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    return save_atomic(model_record(model, meta), path)


def check_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Every learned tensor of `model` present in `state` with its shape, nothing else."""
    own = model_state(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        detail = (missing or unexpected or bad)[0]
        raise BenchbotError(f"{path} does not match the {kind_of(model)} architecture (first mismatch: {detail})",
                            "pass a checkpoint trained with the same config")


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    check_state(model, state, path)
    model.load_state_dict(state, strict=False)


def load_model(path: str | Path, kind: str | None = None, classifier: nn.Module | None = None,
               attach_classifier: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from its file → (model in eval mode, meta). A GQ-STN gets its frozen
    GQ-CNN (`classifier`, or the shipped one named in its config) unless attach_classifier=False."""
    expect = (f"benchbot-{kind}",) if kind else tuple(f"benchbot-{k}" for k in KINDS)
    rec = load_file(path, expect)
    # shapes first, on the meta device: a config claiming a huge network allocates nothing
    check_state(build_model(rec["kind"], rec["config"], "meta"), rec["state_dict"], path)
    model = build_model(rec["kind"], rec["config"])
    load_state(model, rec["state_dict"], path)
    if isinstance(model, GQSTN) and attach_classifier:
        if classifier is None:
            from benchbot.models.weights import load_gqcnn

            classifier = load_gqcnn(model.cfg.classifier)
        model.set_classifier(classifier)
    return model.eval(), dict(rec.get("meta", {}))

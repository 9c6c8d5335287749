"""GQ-CNN weight loaders: Berkeley release folders (TF checkpoint or weights_npy/), and our .pt.

Our .pt is a plain dict loadable with `torch.load(path, weights_only=True)`:
`{"format": "benchbot-gqcnn", "version": 1, "config": GQCNNConfig.to_dict(), "state_dict": {...}}`.
Every problem a user can fix (missing file, wrong shapes, corrupt file, pickled code) raises
`BenchbotError` with a one-line message.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbot.core.errors import BenchbotError, shown
from benchbot.core.npyfile import load_npy
from benchbot.core.paths import WEIGHTS_DIR
from benchbot.models.checkpoint import torch_file
from benchbot.models.gqcnn import GQCNN, GQCNNConfig, Normalisation, config_from_berkeley
from benchbot.models.tf_checkpoint import read_checkpoint
from benchbot.perception.crops import DEXNET2_PX_PER_M, DEXNET4_PJ_PX_PER_M

FORMAT = "benchbot-gqcnn"
FORMAT_VERSION = 1
SHIPPED = {"gqcnn-4.0-pj": WEIGHTS_DIR / "gqcnn_4.0_pj" / "gqcnn_4.0_pj.pt"}
DEFAULT_MODEL = "gqcnn-4.0-pj"


# --- TF tensors → our state_dict -------------------------------------------------------------

def _short_names(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Key tensors by the last path component, as Berkeley's loader does (optimizer slots and
    bookkeeping variables such as global_step or */Momentum are skipped)."""
    out: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        parts = name.replace("__", "/").split("/")
        if any(p in ("Momentum", "Adam", "Adam_1", "RMSProp", "RMSProp_1") for p in parts):
            continue
        out[parts[-1]] = np.asarray(arr)
    return out


def _pick(short: Mapping[str, np.ndarray], *names: str) -> np.ndarray:
    for n in names:
        if n in short:
            return short[n]
    raise BenchbotError(f"weights file lacks tensor {names[0]!r} (or legacy {names[-1]!r})",
                        "check that the folder holds the weights of this architecture")


def tf_to_state_dict(tensors: Mapping[str, np.ndarray], model: GQCNN) -> dict[str, torch.Tensor]:
    """Map TF-layout tensors (HWIO conv kernels, (in, out) dense, NHWC-flattened fc3) onto
    `model`'s parameters. Accepts current (`conv1_1_weights`) and legacy 2.0 (`conv1_1W`) names."""
    try:
        return _tf_to_state_dict(tensors, model)
    except (ValueError, TypeError, IndexError) as exc:  # a tensor of the wrong rank, size or dtype
        raise BenchbotError(f"the weights do not fit the {model.cfg.name} architecture ({exc!s:.100})",
                            "check that the folder holds the weights of this architecture") from None


def _tf_to_state_dict(tensors: Mapping[str, np.ndarray], model: GQCNN) -> dict[str, torch.Tensor]:
    s = _short_names(tensors)
    sd: dict[str, np.ndarray] = {}
    for c in model.cfg.convs:
        sd[f"convs.{c.name}.weight"] = _pick(s, f"{c.name}_weights", f"{c.name}W").transpose(3, 2, 0, 1)
        sd[f"convs.{c.name}.bias"] = _pick(s, f"{c.name}_bias", f"{c.name}b")
    ch, h, w = model.feature_shape
    fc3 = _pick(s, "fc3_weights", "fc3W")
    if fc3.ndim != 2 or fc3.shape[0] != ch * h * w:
        raise BenchbotError(f"fc3 weights have shape {fc3.shape}, architecture needs ({ch * h * w}, {model.cfg.fc3})",
                            "the weights do not belong to this architecture (check architecture.json)")
    # TF flattened the conv output as (h, w, c); we flatten (c, h, w)
    sd["fc3.weight"] = fc3.reshape(h, w, ch, -1).transpose(3, 2, 0, 1).reshape(fc3.shape[1], -1)
    sd["fc3.bias"] = _pick(s, "fc3_bias", "fc3b")
    for layer in ("pc1", "pc2") if model.pc2 is not None else ("pc1",):
        sd[f"{layer}.weight"] = _pick(s, f"{layer}_weights", f"{layer}W").T
        sd[f"{layer}.bias"] = _pick(s, f"{layer}_bias", f"{layer}b")
    sd["fc4_im.weight"] = _pick(s, "fc4_input_1_weights", "fc4W_im").T
    sd["fc4_pose.weight"] = _pick(s, "fc4_input_2_weights", "fc4W_pose").T
    sd["fc4_im.bias"] = _pick(s, "fc4_bias", "fc4b")
    sd["fc5.weight"] = _pick(s, "fc5_weights", "fc5W").T
    sd["fc5.bias"] = _pick(s, "fc5_bias", "fc5b")
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()}


def state_dict_to_tf(model: GQCNN, legacy: bool = False) -> dict[str, np.ndarray]:
    """Inverse of `tf_to_state_dict`: TF layouts and names (legacy 2.0 names: `conv1_1W`, `fc4W_im`...)."""
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    ch, h, w = model.feature_shape

    def nm(layer: str, kind: str) -> str:
        if legacy:
            return f"{layer}{'W' if kind == 'weights' else 'b'}"
        return f"{layer}_{kind}"

    out: dict[str, np.ndarray] = {}
    for c in model.cfg.convs:
        out[f"im_stream/{c.name}/{nm(c.name, 'weights')}"] = sd[f"convs.{c.name}.weight"].transpose(2, 3, 1, 0)
        out[f"im_stream/{c.name}/{nm(c.name, 'bias')}"] = sd[f"convs.{c.name}.bias"]
    fc3 = sd["fc3.weight"]  # (out, c*h*w) → (h*w*c, out)
    out[f"im_stream/{nm('fc3', 'weights')}"] = fc3.reshape(-1, ch, h, w).transpose(2, 3, 1, 0).reshape(-1, fc3.shape[0])
    out[f"im_stream/{nm('fc3', 'bias')}"] = sd["fc3.bias"]
    for layer in ("pc1", "pc2") if model.pc2 is not None else ("pc1",):
        out[f"pose_stream/{nm(layer, 'weights')}"] = sd[f"{layer}.weight"].T
        out[f"pose_stream/{nm(layer, 'bias')}"] = sd[f"{layer}.bias"]
    out["merge_stream/" + ("fc4W_im" if legacy else "fc4_input_1_weights")] = sd["fc4_im.weight"].T
    out["merge_stream/" + ("fc4W_pose" if legacy else "fc4_input_2_weights")] = sd["fc4_pose.weight"].T
    out[f"merge_stream/{nm('fc4', 'bias')}"] = sd["fc4_im.bias"]
    out[f"merge_stream/{nm('fc5', 'weights')}"] = sd["fc5.weight"].T
    out[f"merge_stream/{nm('fc5', 'bias')}"] = sd["fc5.bias"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def check_state(model: GQCNN, state_dict: Mapping[str, torch.Tensor]) -> None:
    """BenchbotError for any missing, extra, mis-shaped or non-finite tensor."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    extra = sorted(set(state_dict) - set(own))
    if missing or extra:
        raise BenchbotError(f"weights do not match the {model.cfg.name} architecture"
                            f" (missing: {missing[:3]}, unexpected: {extra[:3]})",
                            "use weights saved for this architecture")
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(own[k].shape):
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise BenchbotError(f"tensor {k} has shape {shape}, architecture needs {tuple(own[k].shape)}",
                                "use weights saved for this architecture")
        if not torch.isfinite(v).all():
            raise BenchbotError(f"tensor {k} holds NaN/inf values", "the weights file is corrupt; re-download it")


def load_state(model: GQCNN, state_dict: Mapping[str, torch.Tensor]) -> GQCNN:
    """Copy tensors into `model`, turning any missing/extra/mis-shaped tensor into a BenchbotError."""
    check_state(model, state_dict)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()})
    return model


# --- Berkeley release folders ------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BenchbotError(f"{path.name} not found in {path.parent}", "point at a GQ-CNN release folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, OSError) as exc:
        reason = " ".join(str(exc).split())[:100] or type(exc).__name__
        raise BenchbotError(f"{path} is not valid JSON ({reason})", "re-download the model release") from None
    if not isinstance(data, dict):
        raise BenchbotError(f"{path} does not hold a JSON object", "re-download the model release")
    return data


def _scalar(folder: Path, names: tuple[str, ...], index: int | None = None) -> float:
    for n in names:
        p = folder / n
        if p.is_file():
            raw = load_npy(p, "re-download the model release")
            if raw.dtype.kind not in "iuf":
                raise BenchbotError(f"{p} holds {raw.dtype} values, not numbers", "re-download the model release")
            a = np.atleast_1d(raw).astype(np.float64).ravel()
            if a.size == 1:
                return float(a[0])
            if index is not None and a.size > index:
                return float(a[index])
            raise BenchbotError(f"{p} holds {a.size} values, expected 1", "re-download the model release")
    raise BenchbotError(f"{' / '.join(names)} not found in {folder}", "point at a complete GQ-CNN release folder")


def release_config(folder: str | Path, name: str | None = None) -> GQCNNConfig:
    """Architecture + normalisation of a Berkeley release folder (config.json, architecture.json,
    im_mean/im_std (or legacy mean/std), pose_mean/pose_std; legacy 4-vector pose files → index 2 = z)."""
    folder = Path(folder)
    train_cfg = _read_json(folder / "config.json")
    gq = train_cfg.get("gqcnn") or train_cfg.get("gqcnn_config")
    if not isinstance(gq, dict):
        raise BenchbotError(f"{folder / 'config.json'} has no 'gqcnn' section", "point at a GQ-CNN release folder")
    arch = gq.get("architecture")
    if arch is None or (folder / "architecture.json").is_file():
        arch = _read_json(folder / "architecture.json")
    if not isinstance(arch, dict):
        raise BenchbotError(f"{folder / 'config.json'}: 'architecture' is not a mapping",
                            "re-download the model release")
    legacy = "im_stream" not in arch
    norm = Normalisation(im_mean=_scalar(folder, ("im_mean.npy", "mean.npy")),
                         im_std=_scalar(folder, ("im_std.npy", "std.npy")),
                         pose_mean=_scalar(folder, ("pose_mean.npy",), index=2),
                         pose_std=_scalar(folder, ("pose_std.npy",), index=2))
    im_size = gq.get("im_height", 0)
    crop = "96to32" if im_size == 32 else "96to96"
    px_per_m = DEXNET2_PX_PER_M if legacy else DEXNET4_PJ_PX_PER_M
    return config_from_berkeley(arch, gq, norm, name or folder.name, crop, px_per_m)


def release_tensors(folder: str | Path) -> dict[str, np.ndarray]:
    """TF-named tensors of a release: the checkpoint (`model.ckpt.index`) or `weights_npy/`."""
    folder = Path(folder)
    if (folder / "model.ckpt.index").is_file():
        return read_checkpoint(folder / "model.ckpt")
    if (folder / "weights_npy").is_dir():
        return load_weights_npy(folder / "weights_npy")
    if (folder / "model.ckpt").is_file():  # TF V1 checkpoint (GQCNN-2.0, 2017)
        return read_checkpoint(folder / "model.ckpt")
    raise BenchbotError(f"no weights in {folder} (model.ckpt.index or weights_npy/)",
                        "point at a GQ-CNN release folder")


def load_weights_npy(folder: str | Path) -> dict[str, np.ndarray]:
    """One .npy per TF variable, file name = variable name with '/' → '__'."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.glob("*.npy")):
        out[p.stem.replace("__", "/")] = load_npy(p, "re-create weights_npy/")
    if not out:
        raise BenchbotError(f"no .npy files in {folder}", "point at a weights_npy/ folder")
    return out


def load_release(folder: str | Path, name: str | None = None) -> GQCNN:
    """A Berkeley GQ-CNN release folder → frozen GQCNN."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchbotError(f"model folder not found: {folder}", "pass a GQ-CNN release folder or a .pt file")
    cfg = release_config(folder, name)
    with torch.device("meta"):
        shapes = GQCNN(cfg)  # tf_to_state_dict needs only the architecture
    return load_checked(cfg, tf_to_state_dict(release_tensors(folder), shapes))


# --- our .pt format ----------------------------------------------------------------------------

def save_gqcnn(model: GQCNN, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": FORMAT_VERSION, "config": model.cfg.to_dict(), "state_dict": sd}, path)
    return path


def load_pt(path: str | Path) -> GQCNN:
    path = Path(path)
    if not path.is_file():
        raise BenchbotError(f"weights file not found: {path}", "pass an existing .pt file or a model name")
    blob = torch_file(path, "re-create or re-download the weights file (benchbot gqcnn-convert)")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise BenchbotError(f"{path.name} is not a benchbot GQ-CNN weights file",
                            "convert a release with benchbot.models.weights.convert_release")
    if type(blob.get("version")) is not int or blob["version"] != FORMAT_VERSION:
        raise BenchbotError(f"{path.name} has format version {shown(blob.get('version'))}, expected {FORMAT_VERSION}",
                            "regenerate it with this benchbot version")
    config = blob.get("config")
    if not isinstance(config, dict):
        raise BenchbotError(f"{path.name} has no architecture config", "regenerate the weights file")
    cfg = GQCNNConfig.from_dict(config)
    sd = blob.get("state_dict")
    if not isinstance(sd, dict):
        raise BenchbotError(f"{path.name} has no state_dict", "regenerate the weights file")
    return load_checked(cfg, sd)


def load_checked(cfg: GQCNNConfig, state_dict: Mapping[str, torch.Tensor]) -> GQCNN:
    """A frozen GQCNN of `cfg` holding `state_dict`; the shapes are checked on the meta device
    first, so a config claiming a huge network allocates nothing."""
    with torch.device("meta"):
        check_state(GQCNN(cfg), state_dict)
    return load_state(GQCNN(cfg), state_dict).freeze()


def load_gqcnn(path_or_name: str | Path = DEFAULT_MODEL) -> GQCNN:
    """A frozen GQ-CNN from a shipped name ('gqcnn-4.0-pj'), our .pt file, or a Berkeley release
    folder (e.g. GQCNN-2.0 or GQCNN-4.0-PJ as downloaded from Berkeley)."""
    key = str(path_or_name)
    if key in SHIPPED:
        return load_pt(SHIPPED[key])
    p = Path(path_or_name)
    if p.is_dir():
        return load_release(p)
    if p.suffix == ".pt" or p.is_file():
        return load_pt(p)
    if key.lower() in ("gqcnn-2.0", "gqcnn_2.0", "gqcnn-2.0-gq"):
        raise BenchbotError("GQCNN-2.0 weights are not distributed with benchbot",
                            "download Berkeley's GQCNN-2.0 release and pass its folder "
                            "(or a .pt made by convert_release)")
    raise BenchbotError(f"unknown GQ-CNN {key!r}", f"use one of {sorted(SHIPPED)}, a .pt file or a release folder")


def convert_release(src: str | Path, dst: str | Path, name: str | None = None) -> Path:
    """Berkeley release folder → our .pt (fp32). Regenerates the shipped weights:
    `convert_release('../shared/data/dexnet_sample/gqcnn_4.0_pj', SHIPPED['gqcnn-4.0-pj'], 'gqcnn-4.0-pj')`."""
    return save_gqcnn(load_release(src, name), dst)

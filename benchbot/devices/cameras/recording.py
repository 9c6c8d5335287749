"""Depth recordings on disk: the folder format, reading, writing and recording from a camera.
The camera that plays them back is `benchbot.devices.cameras.replay.ReplayCamera`.

A recording is a folder:

    intrinsics.yaml   fx, fy, cx, cy, width, height [, depth_units, T_camera_world, table_distance_m, ...]
    metadata.json     camera_kind, serial, created_at, source, notes [, frame_notes]   (optional)
    frames/NNNNN.npy  float32 metres, H×W (a trailing channel of 1 is accepted); 0, negative, NaN, inf = invalid
    frames/NNNNN.png  uint16 millimetres, H×W; 0 = invalid

Frames play in file-name order. Every problem found on reading raises a one-line `BenchbotError`
naming the file and the fix.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchbot.config.protocol import _read_yaml, duplicates, validate_mapping
from benchbot.core.errors import BenchbotError
from benchbot.core.npyfile import load_npy
from benchbot.core.paths import RECORDINGS_DIR
from benchbot.core.types import DepthFrame, Intrinsics

MAX_PLAUSIBLE_DEPTH_M = 10.0  # median valid depth above this means the units are wrong
MIN_PLAUSIBLE_DEPTH_M = 0.05


def default_recording_path() -> Path:
    """The small recording shipped with benchbot (raw PrimeSense frames, Apache-2.0)."""
    return RECORDINGS_DIR / "default"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- intrinsics.yaml / metadata.json

Finite = Annotated[float, Field(allow_inf_nan=False)]
FocalPx = Annotated[float, Field(ge=1.0, le=1e5, allow_inf_nan=False)]  # 1 px … 10× the widest image


class _Transform(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    from_frame: str = "camera"
    to_frame: str = "world"
    translation: tuple[Finite, Finite, Finite]
    rotation: tuple[tuple[Finite, Finite, Finite], tuple[Finite, Finite, Finite], tuple[Finite, Finite, Finite]]

    @field_validator("rotation")
    @classmethod
    def _orthonormal(cls, r: Any) -> Any:
        m = np.asarray(r, float)
        if not np.allclose(m @ m.T, np.eye(3), atol=1e-3) or np.linalg.det(m) < 0:
            raise ValueError("rotation is not a proper rotation matrix (R @ R.T != I or det < 0)")
        return r

    def matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = np.asarray(self.rotation, float)
        m[:3, 3] = self.translation
        return m


class IntrinsicsFile(BaseModel):
    """intrinsics.yaml. Pinhole, no distortion. T_camera_world maps camera points to world:
    p_world = R @ p_camera + t."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fx: FocalPx
    fy: FocalPx
    cx: Finite  # principal point: inside the image (checked below)
    cy: Finite
    width: int = Field(gt=0, le=10000)
    height: int = Field(gt=0, le=10000)
    depth_units: Literal["meters", "millimeters"] | None = None  # informational: .npy m, .png mm
    skew: Finite = 0.0
    sensor: str = ""
    frame: str = "camera"
    T_camera_world: _Transform | None = None
    table_distance_m: float | None = Field(None, gt=0.0, lt=10.0)

    @field_validator("skew")
    @classmethod
    def _no_skew(cls, v: float) -> float:
        if abs(v) > 1e-9:
            raise ValueError("skewed pixels are not supported (skew must be 0)")
        return v

    @model_validator(mode="after")
    def _principal_point_in_image(self) -> IntrinsicsFile:
        if not (0.0 <= self.cx <= self.width and 0.0 <= self.cy <= self.height):
            raise ValueError(f"principal point ({self.cx:g}, {self.cy:g}) lies outside the "
                             f"{self.width}×{self.height} image")
        return self

    def intrinsics(self) -> Intrinsics:
        return Intrinsics(self.fx, self.fy, self.cx, self.cy, self.width, self.height)


class RecordingMetadata(BaseModel):
    """metadata.json. Unknown keys are kept (tools may add their own)."""

    model_config = ConfigDict(extra="allow")
    camera_kind: str = "unknown"
    serial: str | None = None
    created_at: str = ""
    source: str = ""
    notes: str = ""
    frame_notes: dict[str, str] = {}  # frame file stem → note (e.g. the scene it shows)


RECORDING_EXAMPLE = "benchbot/data/recordings/default"


def read_intrinsics_file(path: Path) -> IntrinsicsFile:
    if not path.is_file():
        raise BenchbotError(f"{path}: intrinsics file not found",
                            "add intrinsics.yaml (fx, fy, cx, cy, width, height) to the recording folder")
    return validate_mapping(IntrinsicsFile, path, _read_yaml(path), RECORDING_EXAMPLE)


def read_metadata(path: Path) -> RecordingMetadata:
    if not path.is_file():
        return RecordingMetadata()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BenchbotError(f"{path}: is not valid JSON", "fix or delete metadata.json") from None
    return validate_mapping(RecordingMetadata, path, data, RECORDING_EXAMPLE)


# ---------------------------------------------------------------- frame files

def _read_frame_array(path: Path, suffix: str, fix: str) -> np.ndarray:
    from PIL import Image

    if suffix == ".npy":
        return load_npy(path, "save each frame with numpy.save: one H×W float32 array in metres")
    if suffix != ".png":
        raise BenchbotError(f"{path}: unknown frame format '{suffix}'", "frames must be .npy (m) or .png (mm)")
    try:
        with Image.open(path) as im:
            im.load()
            return np.array(im)
    except (OSError, ValueError, EOFError, SyntaxError, MemoryError, Image.DecompressionBombError) as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise BenchbotError(f"{path}: cannot read frame (truncated or corrupt: {reason})", fix) from None


def load_depth_file(path: Path, intr: Intrinsics | None = None) -> np.ndarray:
    """Read one frame file (.npy metres or 16-bit .png millimetres) → float32 metres H×W, 0 = invalid.
    Zero, negative and non-finite depths are invalid pixels (returned as 0: no detector sees them).
    Raises BenchbotError naming the file for unreadable, mis-typed, mis-shaped or empty frames."""
    fix = "re-record it or delete that frame file"
    suffix = path.suffix.lower()
    raw = _read_frame_array(path, suffix, fix)

    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[:, :, 0]
    if raw.ndim != 2:
        raise BenchbotError(f"{path}: frame has shape {raw.shape}, expected H×W", fix)
    if suffix == ".npy":
        if raw.dtype not in (np.float32, np.float64):
            raise BenchbotError(f"{path}: .npy frame has dtype {raw.dtype}, expected float32 metres",
                                "save depth as float32 metres (or as 16-bit PNG millimetres)")
        depth = raw.astype(np.float32, copy=False)
    else:
        if raw.dtype != np.uint16:
            raise BenchbotError(f"{path}: .png frame has dtype {raw.dtype}, expected 16-bit millimetres",
                                "save depth PNGs as uint16 millimetres (0 = invalid)")
        depth = raw.astype(np.float32) / np.float32(1000.0)

    if intr is not None and depth.shape != (intr.height, intr.width):
        raise BenchbotError(f"{path}: frame is {depth.shape[1]}×{depth.shape[0]} but intrinsics say "
                            f"{intr.width}×{intr.height}", "fix width/height in intrinsics.yaml or the frame")
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        raise BenchbotError(f"{path}: frame has no valid depth (all zero, negative or NaN)", fix)
    median = float(np.median(depth[valid]))
    if not MIN_PLAUSIBLE_DEPTH_M <= median <= MAX_PLAUSIBLE_DEPTH_M:
        raise BenchbotError(f"{path}: median depth {median:g} m is implausible (wrong units?)",
                            ".npy frames must be metres and .png frames millimetres")
    return np.where(valid, depth, 0.0).astype(np.float32, copy=False)


def _frame_files(frames_dir: Path) -> list[Path]:
    if not frames_dir.is_dir():
        raise BenchbotError(f"{frames_dir}: frames folder not found",
                            "put frames/NNNNN.npy (metres) or frames/NNNNN.png (mm) in the recording")
    files = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in (".npy", ".png") and p.is_file())
    if not files:
        raise BenchbotError(f"{frames_dir}: no .npy or .png frames", "record frames with `benchbot record`")
    dup = duplicates(p.stem for p in files)
    if dup:
        raise BenchbotError(f"{frames_dir}: frame '{dup[0]}' exists as both .npy and .png", "delete one of them")
    return files


# ---------------------------------------------------------------- Recording

@dataclass
class Recording:
    """A validated recording, frames loaded in memory (float32 metres, 0 = invalid)."""

    folder: Path
    intrinsics: Intrinsics
    frame_files: list[Path]
    depths: list[np.ndarray]
    metadata: RecordingMetadata
    T_camera_world: np.ndarray | None = None  # p_world = R @ p_camera + t
    table_distance_m: float | None = None
    info: dict[str, Any] = field(default_factory=dict)  # the raw intrinsics.yaml content

    def __len__(self) -> int:
        return len(self.depths)

    def frame(self, index: int) -> DepthFrame:
        """Frame `index` as a fresh DepthFrame (its array is a copy; captured_at left at 0)."""
        path = self.frame_files[index]
        meta = {"source": "replay", "recording": str(self.folder), "frame_index": index, "frame_file": path.name}
        note = self.metadata.frame_notes.get(path.stem)
        if note:
            meta["frame_note"] = note
        return DepthFrame(self.depths[index].copy(), self.intrinsics, 0.0, meta)


def read_recording(folder: str | Path) -> Recording:
    """Read and validate a recording folder (see module doc). Raises BenchbotError (one line)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchbotError(f"{folder}: recording folder not found",
                            "check the path, or record one with `benchbot record`")
    ifile = read_intrinsics_file(folder / "intrinsics.yaml")
    intr = ifile.intrinsics()
    meta = read_metadata(folder / "metadata.json")
    files = _frame_files(folder / "frames")
    depths = [load_depth_file(p, intr) for p in files]
    tf = ifile.T_camera_world.matrix() if ifile.T_camera_world else None
    return Recording(folder, intr, files, depths, meta, tf, ifile.table_distance_m,
                     ifile.model_dump(exclude_none=True))


def write_recording(folder: str | Path, frames: Iterable[DepthFrame], metadata: dict[str, Any] | None = None,
                    fmt: Literal["png", "npy"] = "png", overwrite: bool = False,
                    extra_intrinsics: dict[str, Any] | None = None) -> Path:
    """Write frames as a recording folder, atomically: frames go to a temporary sibling folder
    that is renamed into place only when everything was written (nothing half-written on error).

    fmt "png": uint16 millimetres (lossless for Kinect/k4a, depth ≤ 65.5 m); "npy": float32 metres.
    `extra_intrinsics` adds keys to intrinsics.yaml (e.g. T_camera_world, table_distance_m, sensor).
    """
    folder = Path(folder)
    if fmt not in ("png", "npy"):
        raise BenchbotError(f"unknown recording format '{fmt}'", "use 'png' (mm) or 'npy' (metres)")
    if folder.exists() and not overwrite:
        raise BenchbotError(f"{folder}: already exists", "choose another folder or pass overwrite")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        intr = _write_frames(tmp, frames, fmt)
        info: dict[str, Any] = {**intr.to_dict(), "depth_units": "millimeters" if fmt == "png" else "meters"}
        info.update(extra_intrinsics or {})
        (tmp / "intrinsics.yaml").write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")
        meta = {"camera_kind": "unknown", "serial": None, "created_at": utc_now(), "source": "", "notes": ""}
        meta.update(metadata or {})
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        read_recording(tmp)  # what we wrote must read back
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_frames(folder: Path, frames: Iterable[DepthFrame], fmt: str) -> Intrinsics:
    from PIL import Image

    frames_dir = folder / "frames"
    frames_dir.mkdir()
    intr: Intrinsics | None = None
    n = 0
    for n, frame in enumerate(frames):
        if intr is None:
            intr = frame.intrinsics
        elif frame.intrinsics != intr:
            raise BenchbotError(f"frame {n} has different intrinsics from frame 0",
                                "record each camera setting into its own folder")
        d = np.asarray(frame.depth_m, dtype=np.float32)
        if d.shape != (intr.height, intr.width):
            raise BenchbotError(f"frame {n} is {d.shape}, intrinsics say {(intr.height, intr.width)}",
                                "check the camera driver's intrinsics")
        d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
        if not d.any():
            raise BenchbotError(f"frame {n} from the camera has no valid depth",
                                "check the camera's view (lens cap, distance) and try again")
        if fmt == "npy":
            np.save(frames_dir / f"{n:05d}.npy", d)
        else:
            mm = np.round(d * 1000.0)
            if mm.max() > 65535:
                raise BenchbotError(f"frame {n} has depth beyond 65.5 m", "record with fmt='npy'")
            Image.fromarray(mm.astype(np.uint16)).save(frames_dir / f"{n:05d}.png")
    if intr is None:
        raise BenchbotError("no frames to write", "capture at least one frame")
    return intr


# ---------------------------------------------------------------- recording from a live camera

def record(camera: Any, folder: str | Path, n_frames: int, interval_s: float = 0.0,
           metadata: dict[str, Any] | None = None, fmt: Literal["png", "npy"] = "png",
           sleep: Any = time.sleep, extra_intrinsics: dict[str, Any] | None = None) -> Path:
    """Capture `n_frames` from `camera` (one every `interval_s` seconds) into a recording folder.
    Atomic: on any error (camera failure, Ctrl-C) nothing is left at `folder`."""
    if n_frames < 1:
        raise BenchbotError(f"n_frames must be at least 1 (got {n_frames})", "ask for one frame or more")
    if interval_s < 0:
        raise BenchbotError("interval_s must be ≥ 0", "pass a non-negative interval")
    meta = {"camera_kind": getattr(camera, "kind", type(camera).__name__), "serial": getattr(camera, "serial", None),
            "source": "benchbot record", "interval_s": interval_s}
    meta.update(metadata or {})

    def frames() -> Iterable[DepthFrame]:
        for i in range(n_frames):
            if i and interval_s:
                sleep(interval_s)
            yield camera.capture()

    return write_recording(folder, frames(), meta, fmt=fmt, extra_intrinsics=extra_intrinsics)

"""Workspace mask: detectors see only the table region of the workspace; everything else (robot
fingers, the robot base, the floor, clutter beyond the table) is replaced by the table's depth.

Two sources, combined (a pixel is kept when both keep it):
* automatic (default on): the largest connected region of table pixels (within `table_tol_m` of
  the fitted plane) with its enclosed holes filled (objects lying on the table). Whatever touches
  the frame border without being enclosed by table — fingers, robot parts, a table edge — is out,
  as are enclosed blobs taller than `max_height_m`; the excluded region grows by `margin_px`.
* configured: a polygon in image pixels (`polygon_px`, (row, col) vertices) or on the table in the
  robot base / recording world frame (`polygon_m`, (x, y) vertices at the table height; turned into
  pixels with the camera pose when the recording or hardware file is read). Given per recording
  (metadata.json key "workspace") or per hardware file (key "detection_workspace"); with a
  calibration, the hardware workspace box's x/y extent on the table is a polygon too.

`prepare_frame` is the one place that turns an inpainted frame into what detectors and the
evaluator see: table plane fitted and stored in meta, workspace mask applied.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from benchbot.config.workspace import WorkspaceSpec, parse_workspace
from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.perception.geometry import project
from benchbot.perception.table import META_KEY, TablePlane, fit_table, table_plane

KEEP_KEY = "workspace_keep"


def _largest_filled(region: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of `region` with its enclosed holes filled."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(region, bool)
    big = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    m, lab2, st2, _ = cv2.connectedComponentsWithStats((~big).astype(np.uint8), connectivity=8)
    h, w = region.shape
    filled = big.copy()
    for i in range(1, m):
        x, y, ww, hh, _ = st2[i]
        if not (x == 0 or y == 0 or x + ww >= w or y + hh >= h):  # enclosed by the table: a hole
            filled |= lab2 == i
    return filled


def auto_keep(heights_m: np.ndarray, spec: WorkspaceSpec) -> np.ndarray:
    """Automatic workspace from per-pixel heights above the table (see module doc)."""
    import cv2

    h = np.nan_to_num(heights_m, nan=np.inf)
    keep = _largest_filled(np.abs(h) < spec.table_tol_m)
    tall = keep & (h > spec.max_height_m)
    if tall.any():  # enclosed blobs reaching above max_height_m (a robot arm over the table)
        n, labels = cv2.connectedComponents((keep & (h > spec.table_tol_m)).astype(np.uint8), connectivity=8)
        for i in np.unique(labels[tall]):
            if i:
                keep &= labels != i
    if spec.margin_px and not keep.all():
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * spec.margin_px + 1, 2 * spec.margin_px + 1))
        keep = cv2.erode(keep.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return keep


def polygon_mask(shape: tuple[int, int], polygon_px: Any) -> np.ndarray:
    """Pixels inside a polygon of (row, col) vertices."""
    import cv2

    pts = np.round(np.asarray(polygon_px, float)[:, ::-1] * 16).astype(np.int32)  # (x=col, y=row), 4 bits sub-pixel
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def table_polygon_to_px(polygon_m: Any, t_base_camera: np.ndarray, table_z_m: float, intr: Intrinsics) -> np.ndarray:
    """(x, y) table vertices in the base frame → (row, col) image vertices."""
    xy = np.asarray(polygon_m, float)
    p_base = np.column_stack([xy, np.full(len(xy), table_z_m), np.ones(len(xy))])
    p_cam = (np.linalg.inv(np.asarray(t_base_camera, float)) @ p_base.T).T[:, :3]
    if np.any(p_cam[:, 2] <= 0):
        raise BenchbotError("a workspace vertex lies behind the camera", "check polygon_m and the camera pose")
    return project(intr, p_cam)


def resolve_polygon_m(spec: WorkspaceSpec, t_base_camera: np.ndarray | None, table_z_m: float,
                      intr: Intrinsics, source: str) -> WorkspaceSpec:
    """The spec with its table polygon (metres) turned into image pixels (intersected with polygon_px
    when both are given, as their masks are)."""
    if not spec.polygon_m:
        return spec
    if t_base_camera is None:
        raise BenchbotError(f"{source}: workspace polygon_m needs the camera pose",
                            "add a calibration (hardware) or T_camera_world (recording), or use polygon_px")
    px = table_polygon_to_px(spec.polygon_m, t_base_camera, table_z_m, intr)
    extra = {"polygon_px_m": tuple(map(tuple, px))}
    return WorkspaceSpec.model_validate({**spec.model_dump(), "polygon_m": None, **extra})


def workspace_keep(frame: DepthFrame, plane: TablePlane, spec: WorkspaceSpec | None = None) -> np.ndarray:
    """H×W bool: the pixels detectors may see (a spec with polygon_m must be resolved first)."""
    spec = spec or WorkspaceSpec()
    if spec.polygon_m:
        raise BenchbotError("workspace polygon_m was not turned into pixels", "call resolve_polygon_m first")
    keep = np.ones(frame.shape, bool)
    if spec.auto:
        keep &= auto_keep(plane.heights(frame.depth_m, frame.intrinsics), spec)
    for poly in (spec.polygon_px, spec.polygon_px_m):
        if poly:
            keep &= polygon_mask(frame.shape, poly)
    return keep


def recording_workspace(rec: Any) -> WorkspaceSpec:
    """The workspace of a recording (metadata.json key "workspace"; automatic when absent)."""
    data = (rec.metadata.model_extra or {}).get("workspace")
    source = f"{rec.folder}/metadata.json"
    spec = WorkspaceSpec() if data is None else parse_workspace(data, source)
    return resolve_polygon_m(spec, rec.T_camera_world, 0.0, rec.intrinsics, source)


def hardware_workspace(hw: Any, t_base_camera: np.ndarray | None, intr: Intrinsics,
                       recording: Any = None) -> WorkspaceSpec:
    """The workspace of a hardware file: its `detection_workspace` (else a replayed recording's own,
    else automatic) and, with a calibration, the x/y extent of the workspace box on the table."""
    if hw.detection_workspace is None and recording is not None:
        spec = recording_workspace(recording)
    else:
        spec = hw.detection_workspace or WorkspaceSpec()
    source = "hardware file key 'detection_workspace'"
    if t_base_camera is not None and not spec.polygon_m:
        (x0, y0, _), (x1, y1, _) = hw.workspace.min_m, hw.workspace.max_m
        box = ((x0, y0), (x0, y1), (x1, y1), (x1, y0))
        spec = WorkspaceSpec.model_validate({**spec.model_dump(), "polygon_m": box})
    return resolve_polygon_m(spec, t_base_camera, hw.table_z_m, intr, source)


def apply_keep(frame: DepthFrame, plane: TablePlane, keep: np.ndarray) -> DepthFrame:
    """A copy of `frame` whose pixels outside `keep` show the table (its depth along their rays)."""
    depth = np.asarray(frame.depth_m, np.float32).copy()
    if not keep.all():
        table = plane.depth_map(frame.intrinsics)
        out = ~keep & np.isfinite(table)
        depth[out] = table[out]
    meta = dict(frame.meta)
    meta[KEEP_KEY] = keep
    return dataclasses.replace(frame, depth_m=depth, meta=meta)


def prepare_frame(frame: DepthFrame, spec: WorkspaceSpec | None = None, prior: TablePlane | None = None) -> DepthFrame:
    """An (inpainted) frame → the frame detectors and the evaluator see: table plane in meta
    (fitted; `prior` when the fit finds no table), workspace mask applied. Idempotent."""
    if KEEP_KEY in frame.meta:
        return frame
    if META_KEY not in frame.meta:
        try:
            frame.meta[META_KEY] = fit_table(frame)
        except BenchbotError:
            if prior is None:
                raise
            frame.meta[META_KEY] = prior
    plane = table_plane(frame)
    keep = workspace_keep(frame, plane, spec)
    if not keep.any():
        raise BenchbotError("the workspace mask leaves nothing of the frame",
                            "check the workspace polygon (rows, cols / metres) and the camera view")
    return apply_keep(frame, plane, keep)


def perception_record(frame: DepthFrame, spec: WorkspaceSpec | None = None) -> dict[str, Any]:
    """What to store with a detection: the table plane and the workspace used."""
    out: dict[str, Any] = {}
    plane = frame.meta.get(META_KEY)
    if isinstance(plane, TablePlane):
        out["table_plane"] = plane.to_dict()
    keep = frame.meta.get(KEEP_KEY)
    if keep is not None:
        out["workspace"] = {"spec": (spec or WorkspaceSpec()).describe(), "kept_frac": round(float(np.mean(keep)), 4)}
    return out

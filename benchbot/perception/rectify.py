"""Rectified view: a depth frame re-rendered by a virtual camera that looks straight down at the
table from the height and with the focal length a learned detector was trained at.

The frame's measured pixels (not the inpainted ones) are deprojected to 3-D points, moved into the
virtual camera and splatted into its image (each point to its nearest virtual pixel; source pixels
are split into k×k sub-points when the virtual camera sees the table more finely than the real one).
A z-buffer keeps the visible surface: a pixel shows the mean of the points within 4 mm of its nearest
one (the nearest alone would pull a noisy surface toward the camera). Virtual pixels whose table
point lies outside the real view get the table depth; every other hole (a surface the real camera
did not see, mostly behind an object) takes the largest depth on its border — what lies behind an
occluder is background, so the object keeps a sharp edge instead of an inpainted slope. Grasps map
between the two cameras exactly, through their 3-D pose: centre point, jaw axis parallel to the
table, opening in metres, approach perpendicular to the table.

Virtual camera: principal point at the image centre, focal length px_per_m · table_distance_m,
optical axis = −(table normal) through the table point seen at `center_px` of the real frame, image
+col along the real camera's x axis projected onto the table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame, Grasp, GraspPose, Intrinsics
from benchbot.perception.geometry import (
    camera_to_grasp,
    deproject,
    grasp_to_camera,
    pixels_per_metre,
    project,
)
from benchbot.perception.inpaint import inpaint
from benchbot.perception.table import META_KEY, TablePlane

MAX_OBJECT_HEIGHT_M = 0.30  # points higher above the table than this are not rendered
INPAINTED_KEY = "inpainted_mask"  # set by perception.inpaint.inpaint_frame


@dataclass(frozen=True)
class View:
    """A learned model's training view: pixels per metre at the table, square side (px) and the
    camera-to-table distance (m). Models record it in their metadata as a dict with these keys."""

    px_per_m: float
    side: int
    table_distance_m: float

    def __post_init__(self) -> None:
        if not (self.px_per_m > 0 and self.side > 1 and self.table_distance_m > 0):
            raise BenchbotError(f"invalid training view {self}", "px_per_m, side and table_distance_m must be positive")

    @staticmethod
    def from_meta(view: dict[str, Any] | View) -> View:
        if isinstance(view, View):
            return view
        return View(float(view["px_per_m"]), int(view["side"]), float(view["table_distance_m"]))

    @property
    def intrinsics(self) -> Intrinsics:
        f = self.px_per_m * self.table_distance_m
        c = (self.side - 1) / 2.0
        return Intrinsics(f, f, c, c, self.side, self.side)


def _wrap(angle: float) -> float:
    return (angle + math.pi / 2) % math.pi - math.pi / 2


@dataclass
class Rectified:
    """The virtual view of a frame and the exact grasp mapping between the two cameras.

    frame: the virtual DepthFrame (table at view.table_distance_m everywhere); t_real_virtual: 4×4,
    p_real = R p_virtual + t; holes: virtual pixels no real point reached (filled from their border); outside:
    virtual pixels beyond the real camera's view (set to the table depth)."""

    frame: DepthFrame
    source: Intrinsics
    plane: TablePlane
    view: View
    t_real_virtual: np.ndarray
    holes: np.ndarray
    outside: np.ndarray

    def pose_to_real(self, grasp: Grasp) -> GraspPose:
        """A virtual-view grasp as a metric pose in the real camera frame (approach ⟂ table)."""
        return grasp_to_camera(grasp, self.frame.intrinsics).transformed(self.t_real_virtual, "camera")

    def to_real(self, grasp: Grasp) -> Grasp:
        """Virtual-view grasp → the same physical grasp in the real camera's pixels."""
        g = camera_to_grasp(self.pose_to_real(grasp), self.source, grasp.score)
        return Grasp(g.row, g.col, _wrap(g.angle_rad), g.width_px, g.depth_m, g.score)

    def to_virtual(self, grasp: Grasp) -> Grasp:
        """Real-camera grasp (jaws parallel to the table) → the same grasp in the virtual view."""
        pose = grasp_to_camera(grasp, self.source, self.plane.normal)
        g = camera_to_grasp(pose.transformed(np.linalg.inv(self.t_real_virtual), "virtual"),
                            self.frame.intrinsics, grasp.score)
        return Grasp(g.row, g.col, _wrap(g.angle_rad), g.width_px, g.depth_m, g.score)


def virtual_camera_pose(plane: TablePlane, intr: Intrinsics, view: View,
                        center_px: tuple[float, float] | None = None) -> np.ndarray:
    """T_real_virtual of the virtual camera (see module doc)."""
    n = plane.normal
    row, col = center_px if center_px is not None else ((intr.height - 1) / 2.0, (intr.width - 1) / 2.0)
    z_c = float(plane.ray_depth_m(intr, row, col))
    if not np.isfinite(z_c):
        raise BenchbotError(f"the ray of pixel ({row:.0f}, {col:.0f}) does not meet the table",
                            "check the table plane and the view centre")
    centre = deproject(intr, row, col, z_c)
    z_v = -n
    x_v = np.array([1.0, 0.0, 0.0]) - n[0] * n
    if np.linalg.norm(x_v) < 1e-6:  # camera x along the normal: table seen edge-on
        raise BenchbotError("the camera sees the table edge-on", "aim the camera at the table")
    x_v /= np.linalg.norm(x_v)
    y_v = np.cross(z_v, x_v)
    t = np.eye(4)
    t[:3, :3] = np.column_stack([x_v, y_v, z_v])
    t[:3, 3] = centre + view.table_distance_m * n
    return t


def _source_window(intr: Intrinsics, vintr: Intrinsics, t: np.ndarray, view: View) -> tuple[slice, slice]:
    """The real-frame rows and columns whose points (0 to MAX_OBJECT_HEIGHT_M above the table) can
    land in the virtual image: the bounding box of its frustum slab projected into the real camera."""
    s = vintr.width
    corners = np.array([[-0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, -0.5], [s - 0.5, s - 0.5]])
    pts = []
    for depth in (view.table_distance_m, view.table_distance_m - MAX_OBJECT_HEIGHT_M):
        pv = deproject(vintr, corners[:, 0], corners[:, 1], np.full(4, depth))
        pts.append(pv @ t[:3, :3].T + t[:3, 3])
    p = np.concatenate(pts)
    if np.any(p[:, 2] <= 0):
        return slice(0, intr.height), slice(0, intr.width)
    rc = project(intr, p)
    r0, c0 = np.floor(rc.min(axis=0)).astype(int) - 2
    r1, c1 = np.ceil(rc.max(axis=0)).astype(int) + 3
    return slice(max(r0, 0), min(r1, intr.height)), slice(max(c0, 0), min(c1, intr.width))


def check_focus(focus: str) -> str:
    if focus not in ("largest", "none"):
        raise BenchbotError(f"focus={focus!r}", "use 'largest' (one object, centred) or 'none' (the whole view)")
    return focus


def model_view(frame: DepthFrame, view: View | dict[str, Any], focus: str = "largest",
               plane: TablePlane | None = None, pick_px: np.ndarray | None = None) -> Rectified:
    """What a learned one-shot detector sees — the one function for inference and for training data:
    the frame's rectified view (`rectify`) on its table plane (`table_plane(frame)` unless given);
    focus "largest": centred on the largest object with the other objects replaced by the table
    (`segment.isolate_largest_object`; `pick_px`: the object under those pixels instead, for training
    data), "none": centred on the frame's centre ray."""
    from benchbot.perception.segment import isolate_largest_object
    from benchbot.perception.table import table_plane

    plane = plane or table_plane(frame)
    at = None
    if check_focus(focus) == "largest":
        frame, at = isolate_largest_object(frame, plane, pick_px=pick_px)
    return rectify(frame, plane, view, center_px=at)


def zbuffer(cells: np.ndarray, z: np.ndarray, n: int, surface_m: float = 0.004) -> np.ndarray:
    """Per cell, the mean depth of the points within `surface_m` of the nearest one (the visible
    surface; farther points are hidden behind it): the nearest point alone would bias a noisy
    surface toward the camera by the minimum of its noise. inf where no point lands."""
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, cells, z)
    front = z <= nearest[cells] + surface_m
    total = np.bincount(cells[front], weights=z[front], minlength=n)
    count = np.bincount(cells[front], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def fill_from_background(depth: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Each connected hole takes the largest depth on its 1-px border (its background); holes
    without a valid border are inpainted."""
    if not holes.any():
        return depth
    import cv2

    n, lab = cv2.connectedComponents(holes.astype(np.uint8), connectivity=8)
    grown = cv2.dilate(lab.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int64)
    ring = (grown > 0) & ~holes & (depth > 0)
    deepest = np.zeros(n)
    np.maximum.at(deepest, grown[ring], depth[ring])
    out = depth.copy()
    out[holes] = deepest[lab[holes]]
    return inpaint(out) if np.any(out <= 0) else out


def rectify(frame: DepthFrame, plane: TablePlane, view: View | dict[str, Any],
            center_px: tuple[float, float] | None = None, supersample: int | None = None) -> Rectified:
    """Re-render `frame` by the virtual camera of `view` looking straight down at `plane` (see the
    module doc). center_px: real-frame pixel whose table point the virtual camera is centred on
    (default: the frame centre). supersample: sub-points per source pixel side (default: from the
    ratio of the two cameras' pixels per metre at the table)."""
    view = View.from_meta(view)
    intr, vintr = frame.intrinsics, view.intrinsics
    t = virtual_camera_pose(plane, intr, view, center_px)
    d = np.asarray(frame.depth_m, dtype=np.float64)
    d = d[..., 0] if d.ndim == 3 else d
    rows_w, cols_w = _source_window(intr, vintr, t, view)
    sub = d[rows_w, cols_w]
    rr, cc = np.indices(sub.shape)
    rr, cc = rr + rows_w.start, cc + cols_w.start
    ok = np.isfinite(sub) & (sub > 0)
    filled_in = frame.meta.get(INPAINTED_KEY)
    if filled_in is not None and np.shape(filled_in) == d.shape:  # only measured points are moved
        ok &= ~np.asarray(filled_in, bool)[rows_w, cols_w]
    rr, cc, zz = rr[ok].astype(np.float64), cc[ok].astype(np.float64), sub[ok]
    if supersample is None:
        ratio = view.px_per_m / pixels_per_metre(intr, plane.axis_distance_m)
        supersample = max(1, math.ceil(1.5 * ratio - 1e-9))
    k = int(supersample)
    offsets = (np.arange(k) + 0.5) / k - 0.5
    s = view.side
    rot_t, origin = t[:3, :3], t[:3, 3]
    cells, zs = [], []
    for dr in offsets:
        for dc in offsets:
            p = deproject(intr, rr + dr, cc + dc, zz)
            pv = (p - origin) @ rot_t  # R^T (p - t), row-wise
            z = pv[:, 2]
            keep = z > view.table_distance_m - MAX_OBJECT_HEIGHT_M
            u = np.rint(pv[keep, 0] * vintr.fx / z[keep] + vintr.cx).astype(np.int64)
            v = np.rint(pv[keep, 1] * vintr.fy / z[keep] + vintr.cy).astype(np.int64)
            inside = (u >= 0) & (u < s) & (v >= 0) & (v < s)
            cells.append(v[inside] * s + u[inside])
            zs.append(z[keep][inside])
    depth = zbuffer(np.concatenate(cells), np.concatenate(zs), s * s).reshape(s, s)
    # virtual pixels whose table point lies outside the real image: table depth, not filled
    vr, vc = np.indices((s, s))
    table_pts = deproject(vintr, vr, vc, np.full((s, s), view.table_distance_m)) @ rot_t.T + origin
    src = project(intr, table_pts)
    outside = ~((src[..., 0] > -0.5) & (src[..., 0] < intr.height - 0.5) & (src[..., 1] > -0.5)
                & (src[..., 1] < intr.width - 0.5))
    holes = ~np.isfinite(depth) & ~outside
    depth[outside & ~np.isfinite(depth)] = view.table_distance_m
    depth[holes] = 0.0
    if not np.any(depth > 0):
        raise BenchbotError("the rectified view is empty (no point of the frame lies in it)",
                            "check the table plane and the view centre")
    filled = fill_from_background(depth, holes).astype(np.float32)
    meta = {META_KEY: TablePlane.overhead(view.table_distance_m, "rectified"), "rectified": True,
            "source": frame.meta.get("source")}
    vframe = DepthFrame(filled, vintr, frame.captured_at, meta)
    return Rectified(vframe, intr, plane, view, t, holes, outside)

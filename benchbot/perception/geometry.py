"""Camera geometry: pixels + depth ↔ camera-frame points, and image grasps ↔ metric grasps.

Camera frame: x right (+col), y down (+row), z forward (away from the camera, into the scene).
"""
from __future__ import annotations

import numpy as np

from benchbot.core.types import Grasp, GraspPose, Intrinsics


def deproject(intr: Intrinsics, row: np.ndarray | float, col: np.ndarray | float,
              depth_m: np.ndarray | float) -> np.ndarray:
    """Pixel (row, col) at depth z → camera-frame point(s) [..., 3] in metres."""
    row, col, z = np.broadcast_arrays(np.asarray(row, float), np.asarray(col, float), np.asarray(depth_m, float))
    x = (col - intr.cx) * z / intr.fx
    y = (row - intr.cy) * z / intr.fy
    return np.stack([x, y, z], axis=-1)


def project(intr: Intrinsics, points_m: np.ndarray) -> np.ndarray:
    """Camera-frame point(s) [..., 3] → pixel (row, col) [..., 2]."""
    p = np.asarray(points_m, float)
    col = p[..., 0] * intr.fx / p[..., 2] + intr.cx
    row = p[..., 1] * intr.fy / p[..., 2] + intr.cy
    return np.stack([row, col], axis=-1)


def pixels_per_metre(intr: Intrinsics, distance_m: float) -> float:
    """Image scale on a fronto-parallel plane at `distance_m` (mean of fx, fy over z)."""
    return 0.5 * (intr.fx + intr.fy) / distance_m


def jaw_axis_camera(angle_rad: float) -> np.ndarray:
    """Unit jaw axis in the camera frame for an image angle (CCW from +col; rows grow downward)."""
    return np.array([np.cos(angle_rad), -np.sin(angle_rad), 0.0])


def lifted_jaw_axis(center_m: np.ndarray, angle_rad: float, normal: np.ndarray) -> np.ndarray:
    """The unit direction perpendicular to `normal` (a table-parallel jaw axis) whose image, seen
    from the camera at the point `center_m`, runs at `angle_rad` (CCW from +col, in normalised image
    coordinates x/z, y/z: the angle convention of `jaw_axis_camera`)."""
    c = np.asarray(center_m, float)
    img_dir = np.array([np.cos(angle_rad), -np.sin(angle_rad), 0.0])  # change of (x/z, y/z) per unit
    m = np.cross(c, img_dir)  # normal of the plane through the camera holding the image line
    j = np.cross(np.asarray(normal, float), m)
    j /= np.linalg.norm(j)
    return j if np.cos(image_angle(c, j) - angle_rad) >= 0 else -j


def image_angle(center_m: np.ndarray, jaw_axis: np.ndarray) -> float:
    """Angle (CCW from +col, normalised image coordinates) of the image of the 3-D direction
    `jaw_axis` at the point `center_m`."""
    c, j = np.asarray(center_m, float), np.asarray(jaw_axis, float)
    dx = j[0] * c[2] - c[0] * j[2]  # d(x/z) · z², d(y/z) · z² along the jaw axis
    dy = j[1] * c[2] - c[1] * j[2]
    return float(np.arctan2(-dy, dx))


def grasp_to_camera(grasp: Grasp, intr: Intrinsics, table_normal: np.ndarray | None = None) -> GraspPose:
    """An image grasp → metric grasp in the camera frame. Without `table_normal`: top-down along the
    optical axis (approach +z, jaw axis in the image plane). With the table's normal (unit, toward
    the camera): approach −normal (perpendicular to the table) and the jaw axis parallel to the
    table whose image runs at the grasp's angle. width_m = width_px · depth / mean focal length."""
    center = deproject(intr, grasp.row, grasp.col, grasp.depth_m)
    width_m = float(grasp.width_px) * grasp.depth_m / (0.5 * (intr.fx + intr.fy))
    if table_normal is None:
        return GraspPose(center_m=center, approach=np.array([0.0, 0.0, 1.0]),
                         jaw_axis=jaw_axis_camera(grasp.angle_rad), width_m=width_m, frame="camera")
    n = np.asarray(table_normal, float)
    return GraspPose(center_m=center, approach=-n / np.linalg.norm(n),
                     jaw_axis=lifted_jaw_axis(center, grasp.angle_rad, n), width_m=width_m, frame="camera")


def camera_to_grasp(pose: GraspPose, intr: Intrinsics, score: float | None = None) -> Grasp:
    """A camera-frame grasp → image grasp: centre projected, depth = its z, angle = the image of the
    jaw axis at the centre, width_px = width_m · mean focal length / depth (the inverse of
    `grasp_to_camera`, with or without the table normal; the approach is not encoded)."""
    row, col = project(intr, pose.center_m)
    z = float(pose.center_m[2])
    angle = image_angle(pose.center_m, pose.jaw_axis)
    width_px = pose.width_m * (0.5 * (intr.fx + intr.fy)) / z
    return Grasp(float(row), float(col), angle, float(width_px), z, score)

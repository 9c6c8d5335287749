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


def grasp_to_camera(grasp: Grasp, intr: Intrinsics) -> GraspPose:
    """A top-down image grasp → metric grasp in the camera frame (approach along +z)."""
    center = deproject(intr, grasp.row, grasp.col, grasp.depth_m)
    width_m = float(grasp.width_px) * grasp.depth_m / (0.5 * (intr.fx + intr.fy))
    return GraspPose(center_m=center, approach=np.array([0.0, 0.0, 1.0]),
                     jaw_axis=jaw_axis_camera(grasp.angle_rad), width_m=width_m, frame="camera")


def camera_to_grasp(pose: GraspPose, intr: Intrinsics, score: float | None = None) -> Grasp:
    """Inverse of `grasp_to_camera` for camera-frame grasps (approach component ignored)."""
    row, col = project(intr, pose.center_m)
    z = float(pose.center_m[2])
    angle = float(np.arctan2(-pose.jaw_axis[1], pose.jaw_axis[0]))
    width_px = pose.width_m * (0.5 * (intr.fx + intr.fy)) / z
    return Grasp(float(row), float(col), angle, float(width_px), z, score)

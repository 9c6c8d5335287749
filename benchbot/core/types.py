"""Plain data passed between layers. Images are (row, col); angles in radians CCW from +col."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a depth camera, in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, factor: float) -> Intrinsics:
        """Intrinsics of the same camera after resizing the image by `factor`."""
        return Intrinsics(self.fx * factor, self.fy * factor, self.cx * factor, self.cy * factor,
                          int(round(self.width * factor)), int(round(self.height * factor)))

    def to_dict(self) -> dict[str, float | int]:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
                "width": self.width, "height": self.height}


@dataclass
class DepthFrame:
    """A depth image in metres (float32, H×W; 0 or NaN = invalid) with its intrinsics.

    `captured_at` is the `time.perf_counter()` value when capture started: detection time is
    measured from it (paper: image capture → grasp, inpainting excluded).
    """

    depth_m: np.ndarray
    intrinsics: Intrinsics
    captured_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def valid_mask(self) -> np.ndarray:
        d = self.depth_m
        return np.isfinite(d) & (d > 0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth_m.shape[0], self.depth_m.shape[1]


@dataclass(frozen=True)
class Grasp:
    """A planar parallel-jaw grasp in image pixels.

    (row, col): grasp centre; angle_rad: jaw axis in the image plane, CCW from +col;
    width_px: jaw opening across the object in pixels; depth_m: gripper depth z (camera frame)
    at which the fingertips close; score: the detector's own confidence (not the robustness q).
    """

    row: float
    col: float
    angle_rad: float
    width_px: float
    depth_m: float
    score: float | None = None

    def is_finite(self) -> bool:
        return all(np.isfinite(v) for v in (self.row, self.col, self.angle_rad, self.width_px, self.depth_m))

    def to_dict(self) -> dict[str, float | None]:
        return {"row": self.row, "col": self.col, "angle_rad": self.angle_rad,
                "width_px": self.width_px, "depth_m": self.depth_m, "score": self.score}


@dataclass(frozen=True)
class Pose:
    """A tool pose: position in metres and orientation as a 3×3 rotation matrix, in `frame`. The one
    pose type: 4×4 matrices are transforms between frames (`benchbot.core.geometry`), and UR's
    [x, y, z, rx, ry, rz] vectors exist only at the RTDE edge (`as_rotvec` / `from_rotvec`, inside the
    ur_rtde arm and its controller emulator) and in command logs (`as_record`)."""

    position_m: np.ndarray
    rotation: np.ndarray
    frame: str = "base"

    def as_matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.position_m
        return m

    @staticmethod
    def from_matrix(m: np.ndarray, frame: str = "base") -> Pose:
        m = np.asarray(m, dtype=float)
        return Pose(m[:3, 3].copy(), m[:3, :3].copy(), frame)

    def as_rotvec(self) -> list[float]:
        """[x, y, z, rx, ry, rz]: UR's pose vector (axis-angle)."""
        from scipy.spatial.transform import Rotation

        return [*map(float, self.position_m), *map(float, Rotation.from_matrix(self.rotation).as_rotvec())]

    def as_record(self, digits: int = 6) -> list[float]:
        """The pose as a rounded [x, y, z, rx, ry, rz] for logs; NaN-safe (a broken rotation logs NaN)."""
        try:
            return [round(v, digits) for v in self.as_rotvec()]
        except ValueError:
            return [float(v) for v in np.asarray(self.position_m, float).ravel()[:3]] + [float("nan")] * 3

    @staticmethod
    def from_rotvec(v: Sequence[float] | np.ndarray, frame: str = "base") -> Pose:
        from scipy.spatial.transform import Rotation

        v = np.asarray(v, dtype=float)
        return Pose(v[:3].copy(), Rotation.from_rotvec(v[3:6]).as_matrix(), frame)


@dataclass(frozen=True)
class GraspPose:
    """A grasp in metres: fingertip centre, approach axis (unit, pointing into the object),
    jaw axis (unit, from one finger to the other) and jaw opening, in `frame`."""

    center_m: np.ndarray
    approach: np.ndarray
    jaw_axis: np.ndarray
    width_m: float
    frame: str = "camera"

    def tool_pose(self) -> Pose:
        """Tool pose with z = approach, x = jaw axis (orthonormalised), at the fingertip centre."""
        z = self.approach / np.linalg.norm(self.approach)
        x = self.jaw_axis - np.dot(self.jaw_axis, z) * z
        x = x / np.linalg.norm(x)
        y = np.cross(z, x)
        return Pose(np.asarray(self.center_m, float), np.column_stack([x, y, z]), self.frame)

    def transformed(self, t_target_from_frame: np.ndarray, target: str) -> GraspPose:
        r, p = t_target_from_frame[:3, :3], t_target_from_frame[:3, 3]
        return GraspPose(r @ self.center_m + p, r @ self.approach, r @ self.jaw_axis, self.width_m, target)


@dataclass(frozen=True)
class GripperStatus:
    """Read-back of a parallel gripper. object_detected mirrors Robotiq's gOBJ 1/2."""

    activated: bool
    moving: bool
    object_detected: bool
    position_m: float  # current opening between the fingertips
    fault: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where the object of one trial slot lies (sim) or what the operator is told (real)."""

    placement_id: str
    object_id: str
    seed: int
    pose: tuple[float, float, float] | None = None  # x, y (m, table frame), yaw (rad) when known

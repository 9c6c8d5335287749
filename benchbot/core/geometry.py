"""Rigid transforms: the one home of geometry shared by calibration, the workcells and recording.
Transforms are 4×4 numpy matrices, `t_a_b` maps frame b into frame a; poses of the tool are
`benchbot.core.types.Pose`. The table plane (and every camera-to-table distance) is
`benchbot.perception.table.TablePlane`."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Tool pointing straight down: tool z (approach) → base −z, tool x (jaw axis) along base x.
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])
# Camera looking straight down: camera x → base x, camera y (image rows) → base −y, optical axis → base −z.
DOWN_LOOKING = TOOL_DOWN


def make_transform(rotation: np.ndarray, translation: Sequence[float] | np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return m


def invert(t: np.ndarray) -> np.ndarray:
    r, p = t[:3, :3], t[:3, 3]
    return make_transform(r.T, -r.T @ p)


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, float)
    return p @ t[:3, :3].T + t[:3, 3]


def rotation_angle_deg(r: np.ndarray) -> float:
    c = (np.trace(r) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def overhead_camera_transform(table_distance_m: float, table_z_m: float = 0.0,
                              xy_m: tuple[float, float] = (0.45, 0.0)) -> np.ndarray:
    """T_base_camera of a camera `table_distance_m` above the table, looking straight down."""
    return make_transform(DOWN_LOOKING, [xy_m[0], xy_m[1], table_z_m + table_distance_m])

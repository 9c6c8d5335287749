"""One Pose type: UR's [x, y, z, rx, ry, rz] vectors only at the RTDE edge and in command logs."""
import math

import numpy as np
import pytest

from benchbot.core.geometry import TOOL_DOWN
from benchbot.core.types import Pose
from benchbot.devices.arms.ur_kinematics import matrix_to_pose, pose_to_matrix


def test_rotvec_matrix_and_record_round_trip():
    pose = Pose(np.array([0.41, -0.12, 0.3]), TOOL_DOWN, "base")
    vec = pose.as_rotvec()
    assert vec[:3] == pytest.approx([0.41, -0.12, 0.3]) and np.linalg.norm(vec[3:]) == pytest.approx(math.pi)
    back = Pose.from_rotvec(vec)
    np.testing.assert_allclose(back.as_matrix(), pose.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(Pose.from_matrix(pose.as_matrix()).rotation, TOOL_DOWN)
    assert pose.as_record() == [round(v, 6) for v in vec] and pose.as_record(3) == [round(v, 3) for v in vec]


def test_the_rtde_edge_converts_through_the_pose_type():
    vec = [0.3, 0.1, 0.25, 0.2, -2.9, 0.4]
    np.testing.assert_allclose(pose_to_matrix(vec), Pose.from_rotvec(vec).as_matrix(), atol=0)
    np.testing.assert_allclose(matrix_to_pose(pose_to_matrix(vec)), vec, atol=1e-12)


def test_a_broken_rotation_logs_nan_instead_of_raising():
    broken = Pose(np.array([0.1, 0.2, 0.3]), np.full((3, 3), np.nan), "base")
    rec = broken.as_record()
    assert rec[:3] == [0.1, 0.2, 0.3] and all(math.isnan(v) for v in rec[3:])

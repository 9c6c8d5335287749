"""Tilt sweep pieces: the MuJoCo depth camera moved to a tilted pose renders the table where the
pose says, and grasps move between the tilted and the overhead camera exactly."""
import math

import numpy as np
import pytest

from benchbot.bench.tilt import DISTANCE_M, _place_camera, tilted_pose, to_overhead
from benchbot.core.types import DepthFrame, Grasp
from benchbot.perception.table import TablePlane, fit_table
from benchbot.sim.scene import TABLE_CENTER_XY, camera_pose_base, sim_intrinsics

TARGET = np.array([TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], 0.0])


def test_zero_tilt_is_the_overhead_camera():
    assert np.allclose(tilted_pose(0.0, 1.3, TARGET), camera_pose_base(DISTANCE_M))


@pytest.mark.parametrize("tilt", [0.0, 12.0, 20.0])
def test_tilted_render_matches_its_pose(paper, tilt):
    from benchbot.sim.world import SimWorld

    world = SimWorld(dict(paper.objects), DISTANCE_M)
    try:
        sim = world.load(None)  # the empty table
        t = tilted_pose(tilt, 0.7, TARGET)
        _place_camera(sim, t)
        frame = DepthFrame(world.render_depth(), sim_intrinsics())
        fit, want = fit_table(frame), TablePlane.from_camera_pose(t, 0.0)
        assert math.degrees(math.acos(min(1.0, fit.normal @ want.normal))) < 0.05
        assert fit.distance_m == pytest.approx(want.distance_m, abs=5e-4)
        assert fit.axis_distance_m == pytest.approx(DISTANCE_M, abs=5e-4)  # it looks at the table centre
        # a grasp on that frame, moved to the overhead camera and back, is the same grasp
        frame.meta["table_plane"] = want
        g = Grasp(180.0, 300.0, 0.4, 40.0, float(frame.depth_m[180, 300]) - 0.01, 0.5)
        over = to_overhead(g, frame, t, camera_pose_base(DISTANCE_M))
        back = to_overhead(over, DepthFrame(frame.depth_m, frame.intrinsics, meta={"table_plane":
                           TablePlane.overhead(DISTANCE_M)}), camera_pose_base(DISTANCE_M), t)
        assert (back.row, back.col, back.width_px, back.depth_m) == pytest.approx((g.row, g.col, g.width_px, g.depth_m))
        assert math.cos(2 * (back.angle_rad - g.angle_rad)) == pytest.approx(1.0)
        if tilt == 0.0:
            assert (over.row, over.col, over.depth_m) == pytest.approx((g.row, g.col, g.depth_m))
    finally:
        world.close()


def test_the_sweep_reads_the_packaged_held_out_objects():
    from benchbot.bench.tilt import HELDOUT_OBJECTS
    from benchbot.config.protocol import load_objects

    assert HELDOUT_OBJECTS.is_file() and load_objects(HELDOUT_OBJECTS)  # the package's data folder, not bench/

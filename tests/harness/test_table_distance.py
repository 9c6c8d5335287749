"""One table plane, one camera-to-table distance: `benchbot record`, the runner's workcell and trial
record, `benchbot detect` and the GQ-CNN evaluator all read `TablePlane.axis_distance_m` of the same
plane (issue 14: the distance was estimated several ways)."""
import math

import numpy as np
import pytest
import yaml

from benchbot.calibration.calfile import Calibration, save_calibration
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.cameras.recording import read_recording, write_recording
from benchbot.perception.table import TablePlane
from benchbot.sim.randomize import camera_pose_table

TABLE_Z_M = 0.05
INTR = Intrinsics(525.0, 525.0, 159.5, 119.5, 320, 240)


@pytest.fixture(scope="module")
def t_base_camera():
    t = camera_pose_table(0.62, math.radians(9.0), math.radians(30.0), math.radians(90.0), (0.45, 0.0))
    t[2, 3] += TABLE_Z_M  # the table top at z = 0.05 of the robot base
    return t


@pytest.fixture(scope="module")
def plane(t_base_camera):
    p = TablePlane.from_camera_pose(t_base_camera, TABLE_Z_M)
    assert p.axis_distance_m == pytest.approx(0.62 / math.cos(math.radians(9.0)))  # 0.628 m, not the height
    return p


def _hw(tmp_path, t_base_camera):
    save_calibration(tmp_path / "cal.yaml", Calibration(t_base_camera, "t", 1.0, 0.1, 12, "2026-01-01T00:00:00+00:00"))
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump({"robot": {"kind": "dryrun"}, "camera": {"kind": "replay", "serial": "CAM7"},
                                 "calibration": "cal.yaml", "table_z_m": TABLE_Z_M,
                                 "drop_pose": [0.3, -0.3, 0.3, 3.1416, 0, 0]}))
    return p


def _scene(plane: TablePlane) -> DepthFrame:
    """The table as `plane`, with a 4 cm box on it in the middle of the image."""
    heights = np.zeros((INTR.height, INTR.width))
    heights[100:140, 140:180] = 0.04
    depth = np.where(heights > 0, plane.depth_map(INTR, 0.04), plane.depth_map(INTR))
    return DepthFrame(depth.astype(np.float32), INTR)


def test_record_and_the_workcell_store_the_calibrated_planes_distance(tmp_path, t_base_camera, plane):
    from benchbot.config.protocol import default_protocol_path, load_protocol
    from benchbot.harness.cells.hardware import build_hardware_workcell
    from benchbot.harness.record import record_from_hardware

    hw = _hw(tmp_path, t_base_camera)
    rec = read_recording(record_from_hardware(hw, tmp_path / "rec", n_frames=1))
    assert rec.table_distance_m == pytest.approx(plane.axis_distance_m, abs=1e-4)

    class Cfg:
        hardware = hw

    with build_hardware_workcell(load_protocol(default_protocol_path()), Cfg) as wc:
        assert wc.table_distance_m == pytest.approx(plane.axis_distance_m, abs=1e-9)
        assert wc.table_prior.normal == pytest.approx(plane.normal)


def test_detect_the_trial_record_and_the_evaluator_see_the_same_distance(tmp_path, plane):
    from benchbot.harness.detect import detect_one
    from benchbot.models.robustness import load_evaluator
    from benchbot.perception.inpaint import inpaint_frame
    from benchbot.perception.workspace import perception_record, prepare_frame

    frame = _scene(plane)
    folder = write_recording(tmp_path / "rec", [frame], fmt="npy",
                             extra_intrinsics={"table_distance_m": plane.axis_distance_m})
    out = detect_one(folder, "centroid", robustness=False)  # `benchbot detect`: the plane fitted to the frame
    fitted = out["perception"]["table_plane"]["axis_distance_m"]
    assert fitted == pytest.approx(plane.axis_distance_m, abs=1e-3)
    assert fitted == pytest.approx(read_recording(folder).table_distance_m, abs=1e-3)

    seen = prepare_frame(inpaint_frame(_scene(plane)), None, None)  # a trial's steps, stored as its perception
    record = perception_record(seen)["table_plane"]
    assert record["axis_distance_m"] == pytest.approx(fitted, abs=1e-6)
    evaluator = load_evaluator()
    evaluator.qualities(seen, [out_grasp(out)])
    assert evaluator.last_table_distance_m == pytest.approx(record["axis_distance_m"], abs=1e-6)
    assert evaluator.describe()["last_table_distance_m"] == evaluator.last_table_distance_m  # the run's event

    given = prepare_frame(DepthFrame(_scene(plane).depth_m, INTR, meta={"table_plane": plane}), None, None)
    assert perception_record(given)["table_plane"]["axis_distance_m"] == pytest.approx(plane.axis_distance_m, abs=1e-6)


def out_grasp(out):
    from benchbot.core.types import Grasp

    g = out["grasp"]
    return Grasp(g["row"], g["col"], g["angle_rad"], g["width_px"], g["depth_m"])

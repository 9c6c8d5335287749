"""Workspace mask: what detectors may see (automatic table region, configured polygons)."""
import json
import shutil

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.core.types import DepthFrame
from benchbot.devices.cameras.recording import read_recording
from benchbot.perception.table import TablePlane
from benchbot.perception.workspace import (
    KEEP_KEY,
    WorkspaceSpec,
    parse_workspace,
    perception_record,
    prepare_frame,
    recording_workspace,
    table_polygon_to_px,
    workspace_keep,
)

from .scenes import PRIME, render, tilted_camera

OBJECT = (0.0, 0.0, 0.3, 0.08, 0.04, 0.05)


def _scene_with_fingers():
    t = tilted_camera(8.0, 0.7)
    depth = render(t, [OBJECT])
    clean = depth.copy()
    depth[400:, 100:180] -= 0.12  # a finger reaching in from the bottom edge
    depth[380:, 450:520] -= 0.05  # another one
    depth[:, 600:] += 0.4  # the floor beyond the table's right edge
    return DepthFrame(depth, PRIME), clean, t


def test_auto_mask_keeps_the_table_and_its_objects_only():
    frame, clean, t = _scene_with_fingers()
    out = prepare_frame(frame)
    keep = out.meta[KEEP_KEY]
    assert not keep[400:, 100:180].any() and not keep[380:, 450:520].any() and not keep[:, 600:].any()
    obj = np.abs(clean - render(t, [])) > 1e-6
    assert keep[obj].all() and keep.mean() > 0.75
    # outside pixels show the table: the finger and the floor are gone, the object stays
    table = TablePlane.from_camera_pose(t).depth_map(PRIME)
    assert np.allclose(out.depth_m[~keep], table[~keep], atol=2e-3)
    assert np.array_equal(out.depth_m[keep], frame.depth_m[keep])
    assert prepare_frame(out) is out  # idempotent
    rec = perception_record(out)
    assert rec["workspace"]["spec"] == "auto" and 0.75 < rec["workspace"]["kept_frac"] < 0.95
    assert rec["table_plane"]["tilt_deg"] == pytest.approx(8.0, abs=0.1)


def test_tall_blob_inside_the_table_is_not_kept():
    t = tilted_camera(0.0, 0.7)
    depth = render(t, [OBJECT, (0.12, 0.1, 0.0, 0.05, 0.05, 0.35)])  # a 35 cm post: robot, not an object
    keep = workspace_keep(DepthFrame(depth, PRIME), TablePlane.from_camera_pose(t), WorkspaceSpec())
    post = np.abs(depth - 0.35) < 0.01
    assert post.any() and not keep[post].any()


def test_polygons_in_pixels_and_on_the_table():
    frame, _, t = _scene_with_fingers()
    spec = WorkspaceSpec(auto=False, polygon_px=((100, 100), (100, 500), (300, 500), (300, 100)))
    keep = workspace_keep(frame, TablePlane.from_camera_pose(t), spec)
    assert keep[150:250, 150:450].all() and not keep[:90].any() and not keep[:, 510:].any()
    # a table square of ±5 cm around the origin, seen by the camera at pose t
    px = table_polygon_to_px([(-0.05, -0.05), (-0.05, 0.05), (0.05, 0.05), (0.05, -0.05)], t, 0.0, PRIME)
    assert np.all(np.abs(px - [239.5, 319.5]) < 60)
    with pytest.raises(BenchbotError, match="not turned into pixels"):
        workspace_keep(frame, TablePlane.from_camera_pose(t), WorkspaceSpec(polygon_m=((0, 0), (0, 1), (1, 1))))


def test_bad_specs_give_one_line_errors():
    for bad in ({"polygon_px": [[0, 0], [1, 1]]}, {"polygon_px": "x"}, {"margin": 3}, {"table_tol_m": 1.0}):
        with pytest.raises(BenchbotError) as e:
            parse_workspace(bad, "metadata.json")
        assert e.value.one_line().startswith("metadata.json: invalid workspace") and "\n" not in e.value.one_line()


def test_recording_workspace_from_metadata(tmp_path):
    src = read_recording("benchbot/data/recordings/default").folder
    dst = tmp_path / "rec"
    shutil.copytree(src, dst)
    assert recording_workspace(read_recording(dst)).polygon_px  # the shipped one has a table polygon
    meta = json.loads((dst / "metadata.json").read_text())
    # world frame (T_camera_world)
    meta["workspace"] = {"polygon_m": [[0.2, -0.1], [0.2, 0.1], [0.3, 0.1], [0.3, -0.1]]}
    (dst / "metadata.json").write_text(json.dumps(meta))
    spec = recording_workspace(read_recording(dst))
    assert spec.polygon_m is None and len(spec.polygon_px_m) == 4
    assert all(0 <= r < 480 and 0 <= c < 640 for r, c in spec.polygon_px_m)
    meta["workspace"] = {"polygon_px": [[0, 0]]}
    (dst / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BenchbotError, match="invalid workspace"):
        recording_workspace(read_recording(dst))


def test_empty_workspace_is_refused():
    frame, _, t = _scene_with_fingers()
    with pytest.raises(BenchbotError, match="leaves nothing"):
        prepare_frame(frame, WorkspaceSpec(auto=False, polygon_px=((-50, -50), (-50, -10), (-10, -10))))


def test_hardware_file_workspace(tmp_path):
    import yaml

    from benchbot.config.hardware import load_hardware
    from benchbot.perception.workspace import hardware_workspace

    path = tmp_path / "hw.yaml"
    data = {"workspace": {"min_m": [-0.1, -0.1, 0.0], "max_m": [0.1, 0.1, 0.5]},
            "drop_pose": [0.05, 0.05, 0.3, 3.1416, 0, 0]}
    path.write_text(yaml.safe_dump(data))
    hw = load_hardware(path)
    assert hw.detection_workspace is None
    t = tilted_camera(0.0, 0.7)  # base frame = table frame, camera 0.7 m above its origin
    spec = hardware_workspace(hw, t, PRIME)  # with a calibration: the box's x/y extent on the table
    box = np.asarray(spec.polygon_px_m)
    assert spec.auto and box.shape == (4, 2)
    assert np.allclose(np.ptp(box, axis=0), 0.2 * 525 / 0.7, atol=1e-6)  # 20 cm at 0.7 m: 150 px
    assert hardware_workspace(hw, None, PRIME).polygon_px_m is None  # no calibration: automatic only
    manual = {"auto": False, "polygon_px": [[0, 0], [0, 9], [9, 9]]}
    path.write_text(yaml.safe_dump({**data, "detection_workspace": manual}))
    assert load_hardware(path).detection_workspace.polygon_px == ((0, 0), (0, 9), (9, 9))
    path.write_text(yaml.safe_dump({**data, "detection_workspace": {"polygon_px": [[0, 0]]}}))
    with pytest.raises(BenchbotError) as e:
        load_hardware(path)
    assert "detection_workspace" in e.value.one_line() and "\n" not in e.value.one_line()

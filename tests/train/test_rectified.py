"""Rectified-view training data (benchbot/train/rectified.py) on a synthetic tilted scene whose
answer is known: a camera 15° off vertical looks at two flat-topped pucks on the table; the grasps
on the puck with the robust labels (the smaller one: not what inference's "largest" focus picks) must
land at the view's centre, at the angle of their jaw axis
on the table, with their metric width, and the grasp on the other puck must be dropped."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchbot.core.types import Intrinsics
from benchbot.perception.geometry import image_angle, project
from benchbot.perception.rectify import View
from benchbot.train.data import G_ROBUST, ImageIndex
from benchbot.train.rectified import SourceImage, make_view_dataset, rectify_image

INTR = Intrinsics(365.0, 365.0, 255.5, 211.5, 512, 424)
VIEW = View(520.0, 160, 0.7)
PUCK_H_M, GRASP_H_M, WIDTH_M = 0.04, 0.02, 0.05
MAIN = np.array([0.03, -0.02])  # puck centres on the table (x, y), metres
OTHER = np.array([-0.10, 0.06])
MAIN_R_M = 0.03


def camera_pose(tilt_deg: float = 15.0, height_m: float = 0.75) -> np.ndarray:
    """T_table_camera: camera above the table, optical axis through MAIN's foot, tilted about x."""
    t = math.radians(tilt_deg)
    target = np.array([*MAIN, 0.0])
    z = np.array([0.0, math.sin(t), -math.cos(t)])  # optical axis (table frame)
    eye = target - z * (height_m / math.cos(t))
    x = np.array([1.0, 0.0, 0.0])
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([x, y, z])
    pose[:3, 3] = eye
    return pose


def render(pose: np.ndarray) -> np.ndarray:
    """Depth of the table and the pucks' tops (the other puck is the larger), ray-cast per pixel."""
    rows, cols = np.indices((INTR.height, INTR.width), dtype=np.float64)
    rays = np.stack([(cols - INTR.cx) / INTR.fx, (rows - INTR.cy) / INTR.fy, np.ones_like(rows)], -1)
    r_t = rays @ pose[:3, :3].T  # directions in the table frame, per unit camera depth
    depth = -pose[2, 3] / r_t[..., 2]  # table z = 0
    for centre, radius in ((MAIN, MAIN_R_M), (OTHER, 0.045)):
        z_top = (PUCK_H_M - pose[2, 3]) / r_t[..., 2]
        xy = pose[:2, 3] + z_top[..., None] * r_t[..., :2]
        on = np.linalg.norm(xy - centre, axis=-1) < radius
        depth[on] = z_top[on]
    return depth.astype(np.float32)


def grasp_row(pose: np.ndarray, centre_xy: np.ndarray, jaw_table: np.ndarray, label: int, robust: float) -> np.ndarray:
    """An images/grasps row of the real camera: centre GRASP_H_M above the table at centre_xy."""
    t_ct = np.linalg.inv(pose)
    c = t_ct[:3, :3] @ np.array([*centre_xy, GRASP_H_M]) + t_ct[:3, 3]
    a = t_ct[:3, :3] @ jaw_table
    r, col = project(INTR, c)
    return np.array([0, r, col, image_angle(c, a), WIDTH_M * INTR.fx / c[2], c[2], robust, robust, label], np.float32)


def source_image(pose: np.ndarray) -> SourceImage:
    x_t, y_t = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    rows = np.stack([grasp_row(pose, MAIN, x_t, 3, 1.0), grasp_row(pose, MAIN, y_t, 3, 1.0),
                     grasp_row(pose, OTHER, x_t, 5, 0.0)])
    record = {"image": 0, "T_table_camera": pose.tolist(), "intrinsics": INTR.to_dict(), "sensor": "test",
              "camera": {"tilt_deg": 15.0, "height_m": 0.75}, "objects": [{"id": "a"}, {"id": "b"}], "fingers": None}
    return SourceImage("synthetic", 0, render(pose), INTR, record, rows)


def test_tilted_grasps_land_where_they_are_on_the_table():
    pose = camera_pose()
    rect, rows = rectify_image(source_image(pose), VIEW)
    assert rect.plane.tilt_deg == pytest.approx(15.0, abs=1e-6)
    assert rows.shape == (2, 9) and set(rows[:, 8]) == {3}  # the other puck's grasp is dropped
    # the virtual camera looks straight down at MAIN's middle: both grasps at the view centre
    centre = (VIEW.side - 1) / 2
    np.testing.assert_allclose(rows[:, 1:3], centre, atol=1.0)
    # virtual +col is the real camera's x axis on the table (table x here): jaw along x → angle 0,
    # along y → ±90°
    assert abs(math.degrees(rows[0, 3])) < 1.0
    assert abs(abs(math.degrees(rows[1, 3])) - 90.0) < 1.0
    depth_v = VIEW.table_distance_m - GRASP_H_M
    np.testing.assert_allclose(rows[:, 5], depth_v, atol=1e-4)
    np.testing.assert_allclose(rows[:, 4], WIDTH_M * VIEW.px_per_m * VIEW.table_distance_m / depth_v, rtol=1e-3)
    # the view shows MAIN's top at its height and the other puck replaced by the table
    d = rect.frame.depth_m
    assert d[int(centre), int(centre)] == pytest.approx(VIEW.table_distance_m - PUCK_H_M, abs=2e-3)
    top_radius_px = MAIN_R_M * VIEW.px_per_m * VIEW.table_distance_m / (VIEW.table_distance_m - PUCK_H_M)
    assert (d < VIEW.table_distance_m - 0.01).sum() == pytest.approx(math.pi * top_radius_px ** 2, rel=0.05)


def test_view_dataset_from_unfinished_parts_reads_as_image_dataset(tmp_path):
    src = tmp_path / "dr" / ".parts"
    src.mkdir(parents=True)
    imgs = [source_image(camera_pose(t)) for t in (5.0, 15.0)]
    depth, grasps, scenes = [], [], []
    for k, img in enumerate(imgs):
        depth.append(np.pad(img.depth_m, ((0, 8), (0, 8)))[..., None])  # datagen pads to a canvas
        g = img.grasps.copy()
        g[:, 0] = k
        grasps.append(g)
        scenes.append(json.dumps({**img.record, "image": k}))
    (src / "config.json").write_text(json.dumps({"object_ids": [f"o{i}" for i in range(6)]}))
    np.savez(src / "unit_000000.npz", depth=np.stack(depth), grasps=np.concatenate(grasps), scenes=np.array(scenes))
    meta = make_view_dataset([tmp_path / "dr"], tmp_path / "view", VIEW)
    assert meta["counts"] == {"images": 2, "grasps": 4, "image_files": 1}
    index = ImageIndex(tmp_path / "view")
    assert (index.height, index.width) == (VIEW.side, VIEW.side)
    assert all(len(index.robust_grasps(i)) == 2 and (index.grasps[i][:, G_ROBUST] > 0).all() for i in (0, 1))
    views = json.loads((tmp_path / "view" / "images" / "views.json").read_text())["views"]
    assert [v["tilt_deg"] for v in views] == [15.0, 15.0] and views[0]["grasps_in"] == 3
    assert not list(tmp_path.glob(".view*"))  # nothing half-written left behind


def _cli(argv, capsys, monkeypatch):
    import sys

    from benchbot import cli

    monkeypatch.setattr(sys, "argv", ["benchbot", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return e.value.code, capsys.readouterr().err


def test_datagen_view_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    cases = [(["datagen-view", str(tmp_path / "empty"), "--out", str(tmp_path / "v")], "neither a finished"),
             (["train", "gqstn", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"),
               "--schedule", "[b]fast"], "--schedule '[b]fast'"),
             (["train", "gqstn", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"),
               "--init", str(tmp_path / "none.pt")], "none.pt does not exist")]
    for argv, expected in cases:
        code, err = _cli(argv, capsys, monkeypatch)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]

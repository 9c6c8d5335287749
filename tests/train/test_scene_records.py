"""Randomized datasets in training: per-image scene records, each image's own camera and exact table
plane, and the per-image view-transform hook."""
import json
import math

import numpy as np
import pytest

from benchbot.models.gqstn import letterbox, params_to_grasp
from benchbot.sim.randomize import camera_pose_table
from benchbot.train.data import G_ANGLE, G_COL, G_ROW, ImageIndex, ImageStream
from benchbot.train.targets import classifier_scores

from .conftest import make_dataset


def _add_records(root, n_images: int = 12, per_file: int = 5) -> list[dict]:
    """Scene records as datagen --randomize writes them: each image from its own tilted camera, whose
    picture (40×60) sits in the top-left corner of the stored 48×64 canvas."""
    recs = []
    for i in range(n_images):
        t = camera_pose_table(0.6 + 0.02 * i, math.radians(2 * i), math.radians(30 * i), 0.0)
        recs.append({"image": i, "sensor": "d435", "T_table_camera": t.tolist(),
                     "intrinsics": {"fx": 50.0 + i, "fy": 50.0 + i, "cx": 29.5, "cy": 19.5, "width": 60, "height": 40}})
    for f, start in enumerate(range(0, n_images, per_file)):
        (root / "images" / f"scenes_{f:05d}.json").write_text(json.dumps({"scenes": recs[start:start + per_file]}))
    return recs


def test_each_image_gets_its_own_camera_and_exact_table_plane(tmp_path):
    root = make_dataset(tmp_path / "ds")
    recs = _add_records(root)
    idx = ImageIndex(root)
    assert sorted(idx.scenes) == list(range(12))
    for ref, depth in idx.iter_depth(idx.refs):
        frame = idx.frame(ref.image, depth, {"image": ref.image})
        rec = recs[ref.image]
        assert frame.depth_m.shape == (40, 60) and frame.intrinsics.fx == rec["intrinsics"]["fx"]
        np.testing.assert_array_equal(frame.depth_m, depth[:40, :60])
        plane = frame.meta["table_plane"]
        assert plane.tilt_deg == pytest.approx(2 * ref.image, abs=1e-6)
        assert plane.distance_m == pytest.approx(0.6 + 0.02 * ref.image)
        slant_m = (0.6 + 0.02 * ref.image) / math.cos(math.radians(2 * ref.image))
        assert frame.meta["table_distance_m"] == pytest.approx(slant_m)
        assert frame.meta["image"] == ref.image and frame.meta["sensor"] == "d435"


def test_datasets_without_records_keep_their_single_camera(dataset):
    idx = ImageIndex(dataset)
    assert idx.scenes is None and idx.view_transform is None
    ref, depth = next(idx.iter_depth(idx.refs[:1]))
    frame = idx.frame(ref.image, depth)
    assert frame.depth_m.shape == depth.shape and "table_plane" not in frame.meta
    d, g, best = idx.view_sample(ref.image, depth)
    assert d is depth and g is idx.grasps[ref.image]
    np.testing.assert_array_equal(best, idx.best_grasp(ref.image))


def test_the_view_transform_hook_feeds_the_models_what_it_returns(tmp_path):
    root = make_dataset(tmp_path / "ds")
    _add_records(root)
    idx = ImageIndex(root)
    seen = []

    def mirror(frame, rows):  # a stand-in for the rectified view: mirror the camera's own picture
        seen.append((frame.meta["table_plane"], frame.depth_m.shape))
        out = rows.copy()
        out[:, G_COL] = frame.depth_m.shape[1] - 1 - rows[:, G_COL]
        out[:, G_ANGLE] = -rows[:, G_ANGLE]
        return np.ascontiguousarray(frame.depth_m[:, ::-1]), out

    idx.view_transform = mirror
    stream = ImageStream(idx, "train", seed=0, shuffle=False, augment=False)
    samples = list(stream)
    assert len(seen) == len(samples) and all(shape == (40, 60) for _, shape in seen)
    s, ref = samples[0], stream.ordered_refs()[0]
    best = idx.best_grasp(ref.image)
    assert s["depth"].shape == (1, 60, 60)  # the 40×60 view, letterboxed: not the stored 48×64 canvas
    _, box = letterbox(np.zeros((40, 60), np.float32))
    g = params_to_grasp(s["target"].numpy(), box)
    assert (g.row, g.col) == pytest.approx((best[G_ROW], 59 - best[G_COL]), abs=1e-3)
    np.testing.assert_array_equal(s["depth"][0, 10:50].numpy(), idx.frame(ref.image, next(
        idx.iter_depth([ref]))[1]).depth_m[:, ::-1])


def test_classifier_scores_see_each_images_camera(tmp_path):
    root = make_dataset(tmp_path / "ds")
    recs = _add_records(root)
    idx = ImageIndex(root)

    class Spy:
        name, threshold = "spy", 0.5
        frames = []

        def qualities(self, frame, grasps):
            self.frames.append(frame)
            return [0.5] * len(grasps)

    spy = Spy()
    classifier_scores(idx, spy)
    assert sorted(f.intrinsics.fx for f in spy.frames) == sorted(r["intrinsics"]["fx"] for r in recs)
    assert all(f.depth_m.shape == (40, 60) and "table_plane" in f.meta for f in spy.frames)

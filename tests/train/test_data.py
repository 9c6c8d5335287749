import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.models.gqstn import letterbox, params_to_grasp
from benchbot.models.multigrasp import MultiGraspConfig
from benchbot.train.data import (
    ImageIndex,
    ImageStream,
    TensorStream,
    npz_shape,
    numbered_files,
    robust_threshold,
    split_of,
)


def test_numbered_files_exact_field_and_order(tmp_path) -> None:
    for name in ["a_00010.npz", "a_00002.npz", "a_96_00001.npz"]:
        np.savez(tmp_path / name, np.zeros(3))
    assert [p.name for p in numbered_files(tmp_path, "a")] == ["a_00002.npz", "a_00010.npz"]
    assert npz_shape(tmp_path / "a_00002.npz") == (3,)


def test_threshold_from_meta_or_dexnet() -> None:
    assert robust_threshold({}) == 0.002
    assert robust_threshold({"robust_threshold": 0.5}) == 0.5
    assert robust_threshold({"metric": {"threshold": 0.25}}) == 0.25


def test_split_is_seeded_and_covers_both_sides() -> None:
    a = split_of(np.arange(10), seed=3)
    assert a == split_of(np.arange(10), seed=3)
    assert sum(v == "train" for v in a.values()) == 8


def test_tensor_stream_splits_by_object_without_leakage(dataset) -> None:
    train = list(TensorStream(dataset, "train"))
    val = list(TensorStream(dataset, "val"))
    assert len(train) + len(val) == 36  # 12 images × 3 grasps, across 6 files of ≤ 7 rows
    assert {s["object_label"] for s in train}.isdisjoint({s["object_label"] for s in val})
    assert train[0]["crop"].shape == (1, 32, 32)
    assert {s["robust"] for s in train} == {0, 1}  # threshold 0.5 from meta.json
    shuffled = TensorStream(dataset, "train", shuffle=True)
    shuffled.set_epoch(1)
    assert sorted(s["metric"] for s in shuffled) == sorted(s["metric"] for s in train)


def test_image_index_split_by_object_and_targets(dataset) -> None:
    idx = ImageIndex(dataset)
    assert idx.split_by == "object" and (idx.height, idx.width) == (48, 64) and idx.side == 64
    train, val = idx.images("train"), idx.images("val")
    assert len(train) + len(val) == 12 and len(val) > 0
    objs = lambda refs: {int(idx.grasps[r.image][0, 8]) for r in refs}  # noqa: E731
    assert objs(train).isdisjoint(objs(val))
    stats = idx.target_stats("train")
    assert stats["scale_mean"] == pytest.approx(3 * 12 / 64) and stats["depth_mean_m"] == pytest.approx(0.72)


def test_image_stream_target_maps_back_to_ground_truth(dataset) -> None:
    idx = ImageIndex(dataset)
    stream = ImageStream(idx, "train", source_size=32, grid_cfg=MultiGraspConfig(input_size=32), seed=1)
    samples = list(stream)
    assert len(samples) == len(idx.images("train"))
    s = samples[0]
    assert s["depth"].shape == (1, 32, 32) and s["grid"].shape == (7, 7, 8) and s["grid"][..., 0].sum() == 1
    best = idx.best_grasp(s["image"])
    _, box = letterbox(np.zeros((48, 64), np.float32))
    g = params_to_grasp(s["target"].numpy(), box)
    assert (g.row, g.col, g.width_px, g.depth_m) == pytest.approx((best[1], best[2], best[4], best[5]), abs=1e-3)
    # epochs reshuffle; ranks partition the samples
    stream.set_epoch(1)
    order1 = [r.image for r in stream.ordered_refs()]
    stream.set_epoch(2)
    assert sorted(order1) == sorted(r.image for r in stream.ordered_refs())
    halves = [ImageStream(idx, "train", seed=1, rank=k, world=2).ordered_refs() for k in (0, 1)]
    assert sorted(r.image for h in halves for r in h) == sorted(r.image for r in idx.images("train"))


def test_missing_folder_is_one_line_error(tmp_path) -> None:
    with pytest.raises(BenchbotError, match="depth_ims"):
        ImageIndex(tmp_path)
    with pytest.raises(BenchbotError, match="depth_ims_tf_table"):
        TensorStream(tmp_path)

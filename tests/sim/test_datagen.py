"""Synthetic dataset: documented layout and shapes, determinism per seed, resume, shard merge."""
import json

import numpy as np
import pytest

from benchbot.core.errors import BenchbotError
from benchbot.sim import datagen
from benchbot.sim.datagen import TENSOR_FIELDS, generate, merge_shards
from benchbot.sim.dataset_io import save_npz_atomic

SMALL = dict(grasps_per_image=4, perturbations=1, progress=False, object_ids=["soup-can", "foam-brick"])


@pytest.fixture(autouse=True)
def small_units(monkeypatch):
    monkeypatch.setattr(datagen, "UNIT_IMAGES", 1)  # one image per resumable unit


def _arrays(root):
    return {p.relative_to(root).as_posix(): np.load(p)["arr_0"] for p in sorted(root.glob("*/*.npz"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    import benchbot.sim.datagen as dg

    old, dg.UNIT_IMAGES = dg.UNIT_IMAGES, 1
    try:
        out = tmp_path_factory.mktemp("ref")
        generate(out, n_images=3, seed_start=5, **SMALL)
    finally:
        dg.UNIT_IMAGES = old
    return out


def test_layout_and_shapes(reference):
    meta = json.loads((reference / "meta.json").read_text())
    n = meta["counts"]["grasps"]
    assert meta["counts"]["images"] == 3 and n == 12 and meta["seed_range"] == [5, 8]
    assert not (reference / ".parts").exists()
    t = {f: np.load(reference / "tensors" / f"{f}_00000.npz")["arr_0"] for f in TENSOR_FIELDS}
    assert t["depth_ims_tf_table"].shape == (n, 32, 32, 1) and t["depth_ims_tf_table"].dtype == np.float32
    assert t["depth_ims_tf_table_96"].shape == (n, 96, 96, 1)
    assert t["hand_poses"].shape == (n, 7) and t["hand_poses"].dtype == np.float32
    assert t["robust_ferrari_canny"].shape == (n,) and set(np.unique(t["robust_ferrari_canny"])) <= {0.0, 0.5, 1.0}
    assert t["image_labels"].dtype == np.int32 and sorted(set(t["image_labels"])) == [0, 1, 2]
    assert set(t["object_labels"]) <= {0, 1}
    depth = np.load(reference / "images" / "depth_ims_00000.npz")["arr_0"]
    assert depth.shape == (3, 424, 512, 1) and depth.dtype == np.float32 and (depth > 0).all()
    g = np.load(reference / "images" / "grasps_00000.npz")["arr_0"]
    assert g.shape == (n, 9)
    np.testing.assert_array_equal(g[:, 0], t["image_labels"])
    np.testing.assert_array_equal(g[:, 6], t["robust_ferrari_canny"])
    hp = t["hand_poses"]
    np.testing.assert_allclose(hp[:, 4], hp[:, 0] - meta["camera_intrinsics"]["cy"], atol=1e-4)
    # crops are grasp-centred depth patches: the centre pixel is on the object, above the table
    assert (t["depth_ims_tf_table_96"][:, 48, 48, 0] < meta["table_distance_m"] - 0.003).mean() > 0.7


def test_same_seeds_give_identical_arrays(reference, tmp_path):
    generate(tmp_path, n_images=3, seed_start=5, **SMALL)
    a, b = _arrays(reference), _arrays(tmp_path)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_killed_run_resumes_without_duplicates(reference, tmp_path, monkeypatch):
    real = datagen._run_unit
    calls = []

    def dies_on_second(out, unit, cfg, worker):
        calls.append(unit)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is killed while making unit 1
        return real(out, unit, cfg, worker)

    monkeypatch.setattr(datagen, "_run_unit", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, n_images=3, seed_start=5, **SMALL)
    assert not (tmp_path / "meta.json").exists()
    monkeypatch.setattr(datagen, "_run_unit", lambda *a: calls.append(a[1]) or real(*a))
    generate(tmp_path, n_images=3, seed_start=5, **SMALL)
    assert calls == [0, 1, 1, 2]  # unit 0 was not redone
    a, b = _arrays(reference), _arrays(tmp_path)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # a finished dataset is left alone
    generate(tmp_path, n_images=3, seed_start=5, **SMALL)
    assert calls == [0, 1, 1, 2]


def test_shards_merge_by_concatenation(reference, tmp_path):
    generate(tmp_path / "s1", n_images=2, seed_start=5, **SMALL)
    generate(tmp_path / "s2", n_images=1, seed_start=7, **SMALL)
    meta = merge_shards([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")
    assert meta["counts"]["images"] == 3 and meta["counts"]["grasps"] == 12
    a, b = _arrays(reference), _arrays(tmp_path / "merged")
    for k in a:  # the same seeds split over two shards give the single run's arrays
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_worker_processes_give_the_same_arrays(reference, tmp_path):
    generate(tmp_path, n_images=3, seed_start=5, workers=2, **SMALL)
    a, b = _arrays(reference), _arrays(tmp_path)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_merge_command_prints_the_counts(tmp_path):
    from typer.testing import CliRunner

    from benchbot.cli import app

    generate(tmp_path / "s1", n_images=1, seed_start=5, **SMALL)
    generate(tmp_path / "s2", n_images=1, seed_start=6, **SMALL)
    res = CliRunner().invoke(app, ["datagen-merge", str(tmp_path / "s1"), str(tmp_path / "s2"),
                                   "--out", str(tmp_path / "m")])
    assert res.exit_code == 0 and "2 images, 8 labelled grasps" in " ".join(res.output.split())


def test_merge_accepts_an_extended_object_list_only(tmp_path):
    generate(tmp_path / "a", n_images=1, seed_start=5, **{**SMALL, "object_ids": ["soup-can"]})
    generate(tmp_path / "b", n_images=1, seed_start=6, **SMALL)  # soup-can, foam-brick
    meta = merge_shards([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert [o["id"] for o in meta["objects"]] == ["soup-can", "foam-brick"] == meta["config"]["object_ids"]
    generate(tmp_path / "c", n_images=1, seed_start=7, **{**SMALL, "object_ids": ["foam-brick"]})
    with pytest.raises(BenchbotError, match="different object lists"):
        merge_shards([tmp_path / "a", tmp_path / "c"], tmp_path / "m2")


DR = dict(grasps_per_image=4, perturbations=0, progress=False,
          object_ids=["soup-can", "foam-brick", "mug", "sponge"])


@pytest.fixture(scope="module")
def randomized(tmp_path_factory):
    import benchbot.sim.datagen as dg
    from benchbot.sim.randomize import Randomization

    old, dg.UNIT_IMAGES = dg.UNIT_IMAGES, 1
    try:
        out = tmp_path_factory.mktemp("dr")
        generate(out, n_images=4, seed_start=40, randomize=Randomization(objects=(1, 3)), **DR)
    finally:
        dg.UNIT_IMAGES = old
    return out


def _scenes(root):
    return [r for p in sorted((root / "images").glob("scenes_*.json")) for r in json.loads(p.read_text())["scenes"]]


def test_randomized_dataset_records_every_image_in_its_own_camera(randomized):
    from benchbot.sim.randomize import Randomization
    from benchbot.sim.sensors import SENSORS

    meta = json.loads((randomized / "meta.json").read_text())
    assert meta["format_version"] == 2 and meta["randomization"] == Randomization(objects=(1, 3)).to_json()
    assert meta["camera_intrinsics"] is None and meta["table_distance_m"] is None
    assert meta["config"]["camera_height_m"] is None
    assert set(meta["sensors"]) == set(SENSORS) and meta["canvas_hw"] == [576, 640]
    recs = _scenes(randomized)
    assert [r["image"] for r in recs] == [0, 1, 2, 3] and [r["seed"] for r in recs] == [40, 41, 42, 43]
    depth = np.load(randomized / "images" / "depth_ims_00000.npz")["arr_0"][..., 0]
    g = np.load(randomized / "images" / "grasps_00000.npz")["arr_0"]
    t = {f: np.load(randomized / "tensors" / f"{f}_00000.npz")["arr_0"] for f in TENSOR_FIELDS}
    assert depth.shape == (4, 576, 640)
    names = [o["id"] for o in meta["objects"]]
    for r in recs:
        k, i = r["intrinsics"], r["image"]
        assert (depth[i, :k["height"], :k["width"]] > 0).all()  # inpainted picture, top-left
        assert (depth[i, k["height"]:] == 0).all() and (depth[i, :, k["width"]:] == 0).all()  # padding
        mine = g[g[:, 0] == i]
        assert len(mine) == r["n_grasps"] > 0
        assert (mine[:, 1] < k["height"]).all() and (mine[:, 2] < k["width"]).all()  # the camera's own pixels
        assert {names[int(o)] for o in mine[:, 8]} <= {o["id"] for o in r["objects"]}
        hp = t["hand_poses"][t["image_labels"] == i]
        np.testing.assert_allclose(hp[:, 4], hp[:, 0] - k["cy"], atol=1e-4)
        np.testing.assert_allclose(hp[:, 5], hp[:, 1] - k["cx"], atol=1e-4)


def test_randomized_datasets_are_reproducible_and_merge_with_their_records(randomized, tmp_path):
    from benchbot.sim.randomize import Randomization

    rnd = Randomization(objects=(1, 3))
    generate(tmp_path / "s1", n_images=3, seed_start=40, randomize=rnd, **DR)
    generate(tmp_path / "s2", n_images=1, seed_start=43, randomize=rnd, **DR)
    merge_shards([tmp_path / "s1", tmp_path / "s2"], tmp_path / "m")
    a, b = _arrays(randomized), _arrays(tmp_path / "m")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert _scenes(randomized) == _scenes(tmp_path / "m")
    generate(tmp_path / "plain", n_images=1, seed_start=0, **SMALL)
    with pytest.raises(BenchbotError, match="randomisation"):
        merge_shards([tmp_path / "s1", tmp_path / "plain"], tmp_path / "m2")


def test_datagen_command_randomizes_with_chosen_sensors(tmp_path, capsys, monkeypatch):
    import sys

    from benchbot import cli

    def run(*argv):
        monkeypatch.setattr(sys, "argv", ["benchbot", "datagen", *argv])
        with pytest.raises(SystemExit) as e:
            cli.main()
        return e.value.code, capsys.readouterr().err

    monkeypatch.setattr(sys, "argv", ["benchbot", "datagen", str(tmp_path / "d"), "--images", "1", "--grasps-per-image",
                                      "2", "--perturbations", "0", "--no-progress", "--randomize", "--sensors", "d435"])
    cli.main()
    assert [r["sensor"] for r in _scenes(tmp_path / "d")] == ["d435"]
    code, err = run(str(tmp_path / "e"), "--images", "1", "--sensors", "d435")
    assert code == 2 and "error: --sensors needs --randomize" in err and not (tmp_path / "e").exists()
    code, err = run(str(tmp_path / "f"), "--images", "1", "--randomize", "--sensors", "kinect9")
    assert code == 2 and "unknown sensor 'kinect9'" in err and not (tmp_path / "f").exists()


def test_held_out_objects_can_be_kept_out_of_a_training_set(tmp_path):
    from benchbot.config.protocol import load_objects
    from benchbot.train.objects import TRAIN_OBJECTS, training_objects

    held = TRAIN_OBJECTS.parent / "heldout_objects.yaml"
    _, ids = training_objects(None, held)
    assert len(ids) == len(load_objects(TRAIN_OBJECTS)) - 8 and not set(ids) & set(load_objects(held))
    with pytest.raises(BenchbotError, match="every object is excluded"):
        training_objects(held, held)


def test_an_array_may_be_named_compress(tmp_path):
    """The units' arrays are passed by name: one called `compress` is stored, not taken as the flag."""
    save_npz_atomic(tmp_path / "u.npz", compress=np.arange(3), grasps=np.zeros((1, 9)))
    with np.load(tmp_path / "u.npz") as z:
        assert sorted(z.files) == ["compress", "grasps"] and list(z["compress"]) == [0, 1, 2]

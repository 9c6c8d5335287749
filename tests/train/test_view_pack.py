import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from benchbot.train.data import ImageIndex, prepare_image

ROOT = Path(__file__).resolve().parents[2]


def view_pack():
    spec = importlib.util.spec_from_file_location("view_pack", ROOT / "scripts" / "view_pack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_packed_view_trains_on_the_same_pixels(dataset, tmp_path) -> None:
    meta = json.loads((dataset / "meta.json").read_text())
    meta.update(camera_intrinsics={"fx": 364.0, "fy": 364.0, "cx": 31.5, "cy": 23.5, "width": 64, "height": 48},
                table_distance_m=0.75)
    (dataset / "meta.json").write_text(json.dumps(meta))
    vp = view_pack()
    view_m = 40 / (364.0 / 0.75)  # a 40-pixel view
    vp.pack(dataset, tmp_path / "v.npz", view_m)
    vp.unpack(tmp_path / "v.npz", tmp_path / "view")
    a, b = ImageIndex(dataset), ImageIndex(tmp_path / "view")
    assert (b.height, b.width) == (40, 40) and a.split == b.split
    a.view_side = b.view_side = 40
    for ra, rb in zip(a.images("train"), b.images("train"), strict=True):
        da, db = next(a.iter_depth([ra]))[1], next(b.iter_depth([rb]))[1]
        sa = prepare_image(da, a.grasps[ra.image], None, best=a.best_grasp(ra.image), view_side=40)
        sb = prepare_image(db, b.grasps[rb.image], None, best=b.best_grasp(rb.image), view_side=40)
        assert np.abs(sa["depth"].numpy() - sb["depth"].numpy()).max() <= 0.0005 + 1e-6  # whole millimetres
        assert sa["target"].tolist() == pytest.approx(sb["target"].tolist(), abs=1e-6)

"""Pack the central view of a benchbot dataset into one small file, and unpack it elsewhere.

For moving training data to a GPU machine with a small upload limit. The models of
`benchbot train --view-m M` only see the central M × M metres of the table, so the rest of each frame
can stay behind. Depths are stored in whole millimetres (a Kinect's own resolution), as row-wise
differences, lzma-compressed: about 17 kB per 208 × 208 view instead of 870 kB per 424 × 512 frame.

    python scripts/view_pack.py pack datasets/train-v2 view.npz --view-m 0.4
    python scripts/view_pack.py unpack view.npz datasets/view-v2

The unpacked folder is an ordinary dataset whose frames are the views (intrinsics shifted to match,
grasps moved with them), and `--view-m` on it selects the same pixels as on the original.
"""
from __future__ import annotations

import argparse
import json
import lzma
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchbot.train.data import G_COL, G_ROW, ImageIndex, load_array  # noqa: E402
from benchbot.train.targets import dataset_view  # noqa: E402


def pack(src: Path, out: Path, view_m: float) -> None:
    index = ImageIndex(src)
    view = dataset_view(index)
    if view is None:
        sys.exit(f"{src}/meta.json records no camera intrinsics and table distance")
    side = int(round(view_m * view["px_per_m"]))
    side += (side - index.height) % 2  # an even margin on each side: a pure crop
    top, left = (index.height - side) // 2, (index.width - side) // 2
    if (index.width - side) % 2 or top < 0 or left < 0:
        sys.exit(f"a {side} px view does not crop evenly from {index.height}×{index.width} frames")
    meta = dict(index.meta)
    intr = dict(meta["camera_intrinsics"])
    intr.update(cx=intr["cx"] - left, cy=intr["cy"] - top, width=side, height=side)
    meta.update(camera_intrinsics=intr, view_of={"data": str(src), "top": top, "left": left, "depth_unit_m": 0.001})
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    for f, path in enumerate(index.depth_files):
        d = load_array(path)
        d = (d[..., 0] if d.ndim == 4 else d)[:, top:top + side, left:left + side]
        mm = np.round(np.nan_to_num(d, nan=0.0) * 1000.0).astype(np.int32)
        delta = np.diff(mm, axis=2, prepend=0).astype(np.int16)
        arrays[f"depth_{f:05d}"] = np.frombuffer(lzma.compress(delta.tobytes(), preset=6), np.uint8)
        arrays[f"shape_{f:05d}"] = np.array(delta.shape)
        g = load_array(index.dir / path.name.replace("depth_ims_", "grasps_")).copy()
        g[:, G_ROW] -= top
        g[:, G_COL] -= left
        arrays[f"grasps_{f:05d}"] = g
    np.savez(out, **arrays)
    print(f"{out}: {len(index.refs)} views of {side} px, {out.stat().st_size / 1e6:.1f} MB")


def unpack(packed: Path, dest: Path) -> None:
    (dest / "images").mkdir(parents=True, exist_ok=True)
    with np.load(packed) as z:
        (dest / "meta.json").write_text(json.dumps(json.loads(z["meta"].tobytes()), indent=2))
        for name in sorted(n for n in z.files if n.startswith("depth_")):
            f = name.split("_")[1]
            delta = np.frombuffer(lzma.decompress(z[name].tobytes()), np.int16).reshape(z[f"shape_{f}"])
            depth = (np.cumsum(delta, axis=2, dtype=np.int32) / 1000.0).astype(np.float32)
            np.savez(dest / "images" / f"depth_ims_{f}.npz", depth[..., None])
            np.savez(dest / "images" / f"grasps_{f}.npz", z[f"grasps_{f}"])
    print(f"{dest}: unpacked")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--view-m", type=float, required=True)
    u = sub.add_parser("unpack")
    u.add_argument("packed", type=Path)
    u.add_argument("dest", type=Path)
    a = ap.parse_args()
    pack(a.src, a.out, a.view_m) if a.cmd == "pack" else unpack(a.packed, a.dest)


if __name__ == "__main__":
    main()

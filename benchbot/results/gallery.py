"""The grasp gallery: overlay images of successful and failed final attempts (a few per method),
and keyframe strips of physics trials when the run's artifacts have them."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from benchbot.core.errors import BenchbotError
from benchbot.results.aggregate import RunView

KINDS = ("overlay", "keyframes")
MAX_WIDTH_PX = {"overlay": 420, "keyframes": 1100}

_SQL = """
WITH art AS (SELECT f.kind, f.path, a.method, a.source, a.object_id, a.trial_id, a.seq, a.success, a.cause,
                    a.q_robust, a.error
        FROM artifacts f JOIN {a} a ON a.attempt_id = f.attempt_id
        WHERE f.kind IN ('overlay', 'keyframes') AND a.status = 'final' AND a.success IS NOT NULL),
ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY kind, method, source, success ORDER BY seq) AS k FROM art)
SELECT * FROM ranked WHERE k <= CASE kind WHEN 'overlay' THEN :per_group ELSE :strips END
ORDER BY kind DESC, success DESC, method, seq"""


@dataclass
class GalleryItem:
    kind: str  # overlay | keyframes
    method: str
    source: str
    object_id: str
    trial_id: str
    success: bool
    cause: str | None
    q: float | None
    path: str  # relative to the results folder
    png: bytes | None  # None when the file is missing


def safe_artifact_path(results_dir: Path, rel: str) -> Path:
    """results_dir / rel, refusing absolute paths and '..' (artifact paths come from a database)."""
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in rel:
        raise BenchbotError(f"artifact path {rel!r} leaves the results folder", "the database is damaged or forged")
    return results_dir.joinpath(*p.parts)


def _load_png(path: Path, max_width: int) -> bytes | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            im: Image.Image = opened
            if im.width > max_width:
                im = im.resize((max_width, max(1, round(im.height * max_width / im.width))), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="PNG", optimize=True)
            return buf.getvalue()
    except (OSError, UnidentifiedImageError):
        return None


def select(view: RunView, results_dir: Path | None, per_group: int = 3, strips: int = 2) -> list[GalleryItem]:
    """Up to `per_group` overlays per method, source and verdict (the earliest in the schedule), and
    `strips` keyframe strips; images read from `results_dir` (missing files: png None)."""
    items = []
    for r in view.rows(_SQL, {**view.params, "per_group": per_group, "strips": strips}):
        png = None
        if results_dir is not None:
            path = safe_artifact_path(Path(results_dir), r["path"])
            png = _load_png(path, MAX_WIDTH_PX[r["kind"]]) if path.is_file() else None
        cause = r["cause"] or (r["error"] and "no grasp")
        items.append(GalleryItem(r["kind"], r["method"], r["source"], r["object_id"], r["trial_id"],
                                 bool(r["success"]), None if r["success"] else cause, r["q_robust"], r["path"], png))
    return items

"""Per-attempt files under `results/<run>/`, written atomically before the DB commit.

A kill between the file writes and the commit leaves orphan files, never dangling rows:
`remove_orphans` deletes files the DB does not know when a run resumes.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np


def attempt_prefix(run_id: str, seq: int, trial_id: str, attempt_no: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", trial_id)
    return Path(run_id) / f"{seq:04d}_{safe}" / f"a{attempt_no}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_array(results_dir: Path, rel: Path, array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array)
    _atomic_write(results_dir / rel, buf.getvalue())
    return rel.as_posix()


def save_png(results_dir: Path, rel: Path, image: "object") -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")  # PIL image
    _atomic_write(results_dir / rel, buf.getvalue())
    return rel.as_posix()


def remove_orphans(results_dir: Path, run_id: str, known: set[str]) -> list[str]:
    """Delete files under results/<run_id> that no committed attempt references."""
    removed = []
    root = results_dir / run_id
    if not root.is_dir():
        return removed
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(results_dir).as_posix()
            if rel not in known:
                path.unlink()
                removed.append(rel)
    return removed

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

from ..errors import BenchbotError


def attempt_prefix(run_id: str, seq: int, trial_id: str, attempt_no: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", trial_id)
    return Path(run_id) / f"{seq:04d}_{safe}" / f"a{attempt_no}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # disk full, permissions, a vanished mount: no half file, one-line error
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise BenchbotError(f"cannot write artifact {path}: {e.strerror or e}",
                            "free disk space or fix the results folder, then resume with "
                            "`benchbot run --resume`") from None


def discard(results_dir: Path, arts: list[tuple[str, str]]) -> None:
    """Delete the files of an attempt that will not be committed (and any .tmp beside them)."""
    for _kind, rel in arts:
        for p in (results_dir / rel, results_dir / (rel + ".tmp")):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass  # resume removes orphans anyway


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

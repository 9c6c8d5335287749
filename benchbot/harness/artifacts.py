"""Per-attempt files under `results/<run>/`, written atomically before the DB commit.

Each path is journaled in the database (committed) before its file is created. A kill between
the file writes and the attempt's commit leaves orphan files, never dangling rows; on resume
`remove_unreferenced` deletes exactly the journaled files no committed attempt references. Nothing
else in the results folder is ever touched (a user's notes, another database's runs).
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from benchbot.core.errors import BenchbotError

if TYPE_CHECKING:
    from PIL import Image


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


Journal = Callable[[str], None] | None


def _save(results_dir: Path, rel: Path, data: bytes, journal: Journal) -> str:
    if journal is not None:
        journal(rel.as_posix())  # committed before the file (or its .tmp) exists
    _atomic_write(results_dir / rel, data)
    return rel.as_posix()


def save_array(results_dir: Path, rel: Path, array: np.ndarray, journal: Journal = None) -> str:
    buf = io.BytesIO()
    np.save(buf, array)
    return _save(results_dir, rel, buf.getvalue(), journal)


def save_png(results_dir: Path, rel: Path, image: Image.Image, journal: Journal = None) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return _save(results_dir, rel, buf.getvalue(), journal)


def claim_run_folder(results_dir: Path, run_id: str) -> list[Path] | None:
    """Create `results/<run_id>/` for a new run and return the folders created (to release them
    if the run is not created after all); None when it exists: another run, perhaps of another
    database sharing this results folder, owns it, and nothing is ever written into it."""
    created = [p for p in reversed([results_dir, *results_dir.parents]) if not p.exists()]
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / run_id).mkdir()
    except FileExistsError:
        return None
    except OSError as e:
        raise BenchbotError(f"cannot create the run folder {results_dir / run_id}: {e.strerror or e}",
                            "check --results (a folder you can write)") from None
    return created + [results_dir / run_id]


def claim_new_run(results_dir: Path, run_id: str | None, new_id: Callable[[], str]) -> tuple[str, list[Path]]:
    """Claim the folder of a new run: `run_id`, or a fresh `new_id()` (retried if taken)."""
    for _ in range(20):
        rid = run_id or new_id()
        folders = claim_run_folder(results_dir, rid)
        if folders is not None:
            return rid, folders
        if run_id:
            raise BenchbotError(f"{results_dir / rid} already exists (a run of another database?)",
                                "choose another --run id, or another --results folder")
    raise BenchbotError(f"no free run folder in {results_dir}", "pass another --results folder")


def release_folders(folders: list[Path]) -> None:
    """Remove folders a claim created, deepest first, as long as they are empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def remove_unreferenced(results_dir: Path, run_id: str, paths: set[str]) -> list[str]:
    """Delete these journaled files of run `run_id` (and their .tmp) that exist; returns them.
    A path that does not lie inside results/<run_id>/ is never touched."""
    removed = []
    for rel in sorted(paths):
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or len(parts) < 2 or parts[0] != run_id or ".." in parts:
            continue
        for p in (results_dir / rel, results_dir / (rel + ".tmp")):
            if p.is_file():
                p.unlink()
                removed.append(p.relative_to(results_dir).as_posix())
    return removed

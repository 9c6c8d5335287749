"""Reading one .npy array from a file a user gave: any failure is a one-line BenchbotError."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from benchbot.core.errors import BenchbotError


def load_npy(path: Path, fix: str) -> np.ndarray:
    """The array in a .npy file (no pickled objects). An .npz archive under a .npy name, a folder,
    a truncated, corrupt or unreadable file → BenchbotError naming the file and `fix`."""
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile) as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise BenchbotError(f"{path}: cannot read it as .npy (truncated or corrupt: {reason})", fix) from None
    if not isinstance(raw, np.ndarray):  # np.load opens an .npz archive whatever its name
        raw.close()
        raise BenchbotError(f"{path}: is an .npz archive, not a .npy array", fix)
    return raw

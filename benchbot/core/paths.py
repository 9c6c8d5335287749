"""Where the package's own files live (they ship in the wheel, so never read them from the cwd)."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PACKAGE_DIR / "data"  # weights, recordings, object lists
WEIGHTS_DIR = DATA_DIR / "weights"
RECORDINGS_DIR = DATA_DIR / "recordings"
DEFAULTS_DIR = PACKAGE_DIR / "config" / "defaults"  # protocols, objects, the example hardware file
SOURCE_CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / ".git").exists() else None  # None in a wheel

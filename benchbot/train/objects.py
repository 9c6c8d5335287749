"""Objects for synthetic training data: by default the YCB models that are NOT benchmark objects
(benchbot/data/train_objects.yaml), so learned detectors are benchmarked on unseen objects."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from benchbot.config.protocol import load_objects
from benchbot.core.errors import BenchbotError
from benchbot.core.paths import DATA_DIR, DEFAULTS_DIR

TRAIN_OBJECTS = DATA_DIR / "train_objects.yaml"


def training_objects(path: Path | None = None, exclude: Path | None = None) -> tuple[Path, list[str]]:
    """(objects file that also holds the benchmark objects, ids to sample from); the ids of the
    objects in `exclude` (e.g. benchbot/data/heldout_objects.yaml) are never sampled.

    datagen resolves objects through the benchmark protocol, so the training objects are merged
    with objects.yaml into one validated temporary file."""
    chosen = load_objects(path or TRAIN_OBJECTS)
    if exclude is not None:
        drop = set(load_objects(exclude))
        chosen = {k: v for k, v in chosen.items() if k not in drop}
        if not chosen:
            raise BenchbotError(f"every object is excluded by {exclude}", "exclude fewer objects")
    bench = load_objects(DEFAULTS_DIR / "objects.yaml")
    merged = {**bench, **chosen}
    tmp = Path(tempfile.mkdtemp(prefix="benchbot-objects-")) / "objects.yaml"
    tmp.write_text(yaml.safe_dump({"objects": [o.model_dump(mode="json") for o in merged.values()]}))
    return tmp, list(chosen)

"""Table I of the shipped one-shot detectors on fresh MuJoCo scenes of the held-out objects (the 8
training objects they never saw, benchbot/data/heldout_objects.yaml), as in the model card."""
from pathlib import Path

import pytest

from benchbot.models.robustness import load_evaluator
from benchbot.sim.datagen import generate
from benchbot.train.evaluate import evaluate
from benchbot.train.objects import training_objects

DATA = Path(__file__).resolve().parents[2] / "benchbot" / "data"


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heldout")
    objects_file, ids = training_objects(DATA / "heldout_objects.yaml")  # what `datagen --objects` does
    generate(out, n_images=40, seed_start=70000, grasps_per_image=12, perturbations=0, progress=False,
             objects_file=objects_file, object_ids=ids)
    return out


def test_shipped_gqstn_beats_multigrasp_by_15_points_and_with_8_views_the_centroid(heldout) -> None:
    table = evaluate(["gqstn", "gqstn-sym8", "multigrasp"], heldout, split="all", evaluator=load_evaluator())
    by = {r.method: r for r in table.rows}
    print(table.to_markdown())
    assert by["gqstn"].n_images >= 25 and by["gqstn"].n_failed == 0
    assert by["gqstn"].robust_pct >= by["multigrasp"].robust_pct + 15  # the paper's ordering, our target gap
    assert by["multigrasp"].rectangle_pct > by["centroid"].rectangle_pct  # learned rectangles beat the floor
    # one pass is level with the untrained centroid grasp (model card); the 8-view ensemble is above it
    assert by["gqstn-sym8"].robust_pct > by["centroid"].robust_pct

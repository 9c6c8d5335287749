from pathlib import Path

import pytest
import yaml

from benchbot.harness.runner import RunConfig, Runner

REPO = Path(__file__).resolve().parents[2]


def write_protocol(folder: Path, methods=("centroid", "gqstn", "multigrasp"), objects=("soup-can", "banana", "sponge"),
                   trials=2, seed=2019) -> Path:
    data = yaml.safe_load((REPO / "protocols" / "baselines.yaml").read_text())
    data.update(objects=list(objects), methods=list(methods), trials_per_object=trials, seed=seed,
                objects_file=str(REPO / "objects.yaml"))
    data["motion"]["hold_s"] = 0.0
    path = folder / "protocol.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sim_run(folder: Path, **protocol) -> tuple[Path, Path, str, Path]:
    """A real replay run (dry-run arm, Modbus gripper emulator, GQ-CNN q): (db, results, run id, protocol)."""
    folder.mkdir(parents=True, exist_ok=True)
    proto = write_protocol(folder, **protocol)
    db, results = folder / "r.db", folder / "res"
    summary = Runner(RunConfig(protocol_path=proto, db_path=db, results_dir=results, backend="replay")).run()
    return db, results, summary.run_id, proto


@pytest.fixture(scope="session")
def sim_results(tmp_path_factory):
    return sim_run(tmp_path_factory.mktemp("sim"))

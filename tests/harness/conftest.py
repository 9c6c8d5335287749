from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def write_protocol(tmp: Path, *, objects=("soup-can", "banana", "sponge"), methods=("centroid",), trials=2,
                   **over) -> Path:
    data = yaml.safe_load((REPO / "protocols" / "baselines.yaml").read_text())
    data.update(objects=list(objects), methods=list(methods), trials_per_object=trials,
                objects_file=str(REPO / "objects.yaml"))
    data["motion"]["hold_s"] = 0.0
    data.update(over)
    path = tmp / "protocol.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def small_protocol(tmp_path: Path) -> Path:
    return write_protocol(tmp_path)


@pytest.fixture
def protocol_writer():
    return write_protocol

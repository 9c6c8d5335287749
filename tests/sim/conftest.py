import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
mujoco = pytest.importorskip("mujoco")
pytest.importorskip("trimesh")


@pytest.fixture(scope="session")
def paper():
    from benchbot.config.protocol import default_protocol_path, load_protocol

    return load_protocol(default_protocol_path())

import importlib.util
import os
import shutil

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (the MuJoCo rehearsal renders headless)


@pytest.fixture
def browser():
    """Debian's chromium and the playwright package (scripts/setup.sh --test installs both)."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (pip install 'benchbot[test]')")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")

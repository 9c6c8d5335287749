"""ruff and mypy (configured in pyproject.toml [tool.ruff], [tool.mypy]) report nothing, run from the
repository root as CI runs them. Both are in the `test` extra; without them these tests are skipped."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str, args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", name, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_ruff_is_clean():
    res = _tool("ruff", ["check", "--no-cache", "benchbot", "tests"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_is_clean(tmp_path):
    res = _tool("mypy", ["--cache-dir", str(tmp_path / "mypy_cache")])  # files from [tool.mypy] packages
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout


def test_the_checks_can_fail(tmp_path):
    """The same configuration flags a planted unused import and a planted type error."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef half(n: int) -> int:\n    return n / 2\n")
    ruff = _tool("ruff", ["check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(bad)])
    assert ruff.returncode == 1 and "F401" in ruff.stdout
    mypy = _tool("mypy", ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
                          str(bad)])
    assert mypy.returncode == 1 and "[return-value]" in mypy.stdout

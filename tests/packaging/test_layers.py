"""The package layering (pyproject.toml [tool.importlinter]): imports point down, checked by import-linter."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tmp_path: Path, config: Path, source: Path = REPO) -> subprocess.CompletedProcess:
    """lint-imports on the benchbot found in `source` (this checkout, not another install), cwd tmp_path."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"lint-imports not found beside {sys.executable}: "
                    "install the test extra (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _ini(ignore_imports: tuple[str, ...] = ()) -> str:
    """The pyproject contracts as an .importlinter (INI) file, with extra ignored imports."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[importlinter]", f"root_package = {tool['root_package']}"]
    for i, contract in enumerate(tool["contracts"]):
        contract = {**contract, "ignore_imports": [*contract.get("ignore_imports", []), *ignore_imports],
                    "unmatched_ignore_imports_alerting": "none"}
        lines.append(f"[importlinter:contract:{i}]")
        for key, value in contract.items():
            if isinstance(value, list):
                lines.append(f"{key} =" + "".join(f"\n    {v}" for v in value))
            else:
                lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


def test_the_contract_is_checked_and_names_the_layers(tmp_path):
    contract = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    assert contract["type"] == "layers" and contract["exhaustive"] is True
    assert contract["layers"][0] == "cli" and contract["layers"][-1] == "core"
    # a deliberate upward import (core -> cli) in a copy of the package breaks the contract
    pkg = tmp_path / "src" / "benchbot"
    shutil.copytree(REPO / "benchbot", pkg, ignore=shutil.ignore_patterns("__pycache__", "data"))
    (pkg / "core" / "upward.py").write_text("from benchbot.cli import main  # noqa: F401\n")
    config = tmp_path / ".importlinter"
    config.write_text(_ini())
    out = _lint(tmp_path, config, source=pkg.parent)
    assert out.returncode != 0
    assert "benchbot.core.upward -> benchbot.cli" in out.stdout


def test_layers(tmp_path):
    out = _lint(tmp_path, REPO / "pyproject.toml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout
    assert not list(tmp_path.iterdir())  # no cache written anywhere

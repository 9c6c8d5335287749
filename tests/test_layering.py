"""The package layers import downward only (issue 14): a module imports from its own layer or a
lower one, lazy imports inside functions included. Layers, top to bottom:
cli > bench > console > harness > calibration | train > results | detectors | devices > sim >
models > perception > config > core."""
from __future__ import annotations

import ast
from pathlib import Path

import benchbot

LAYERS: list[tuple[str, ...]] = [
    ("core",), ("config",), ("perception",), ("models",), ("sim",), ("results", "detectors", "devices"),
    ("calibration", "train"), ("harness",), ("console",), ("bench",), ("cli",)]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
ROOT = Path(benchbot.__file__).parent


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "benchbot":  # `from benchbot import harness`; `__version__` is no layer's
                found += [(node.lineno, f"benchbot.{a.name}") for a in node.names if not a.name.startswith("__")]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "<relative>"))
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "benchbot" or parts[1].startswith("__"):
        return None  # not ours, or the root package's metadata (benchbot.__version__)
    return parts[1]


def upward_imports(root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:  # benchbot/__init__.py, __main__.py: the entry points sit above every layer
            continue
        me = rel.parts[0]
        if me not in RANK:
            bad.append(f"{rel}: package '{me}' has no layer (add it to LAYERS)")
            continue
        for line, module in _imports(path):
            if module == "<relative>":
                bad.append(f"{rel}:{line}: relative import (imports are absolute)")
                continue
            target = _layer_of(module)
            if target is None:
                continue
            if target not in RANK:
                bad.append(f"{rel}:{line}: imports {module}, outside every layer")
            elif RANK[target] > RANK[me]:
                bad.append(f"{rel}:{line}: {me} imports {module} ({target} is a higher layer)")
    return bad


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_the_check_catches_an_upward_import(tmp_path):
    pkg = tmp_path / "benchbot"
    (pkg / "config").mkdir(parents=True)
    (pkg / "devices").mkdir()
    (pkg / "config" / "hw.py").write_text("def f():\n    from benchbot.devices.arms import make_arm\n")
    (pkg / "devices" / "arms.py").write_text("from benchbot.config.hw import f\n")  # downward: fine
    assert upward_imports(pkg) == ["config/hw.py:2: config imports benchbot.devices.arms (devices is a higher layer)"]

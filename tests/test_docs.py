"""The documentation stays true: the README is short and starts with the two commands CI runs,
every `benchbot …` command line in the docs parses against the CLI, the Python examples run
(or, where marked `<!-- docs-test: compile -->` because they need a robot or a large dataset,
compile and import what they name), and the site builds with `mkdocs build --strict`."""
from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from benchbot.cli import app

ROOT = Path(__file__).resolve().parents[1]
MODEL_CARD = ROOT / "benchbot" / "data" / "weights" / "MODEL_CARD.md"  # shipped with the weights, included in the site
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md", MODEL_CARD]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*docs-test:\s*([\w-]+)\s*(.*?)-->\s*$")


def blocks(lang: str) -> list[tuple[str, str, str]]:
    """(where, code, mark) for every fenced block of that language; mark from the line above it."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) != lang:
                continue
            line_no = text.count("\n", 0, m.start()) + 1
            above = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARK.search(above)
            found.append((f"{page.relative_to(ROOT)}:{line_no}", m.group(2), mark.group(1) if mark else "run"))
    return found


def benchbot_commands() -> list[tuple[str, list[str]]]:
    """Every `benchbot …` invocation in the shell and plain code blocks, as argv (after `benchbot`)."""
    found = []
    for lang in ("bash", ""):
        for where, code, _ in blocks(lang):
            code = code.replace("\\\n", " ")
            code = re.sub(r"\$\(\(.*?\)\)|\$\{?\w+\}?", "1", code)  # shell arithmetic and variables
            for line in code.splitlines():
                for part in re.split(r"&&|;|\|\|?", line.split(" #", 1)[0]):
                    if not re.match(r"\s*(do\s+|then\s+)?(\S*/)?benchbot\s", part + " "):
                        continue
                    words = shlex.split(part, comments=True)
                    while words and words[0] in ("do", "then", "time"):
                        words = words[1:]
                    if words and (words[0] == "benchbot" or words[0].endswith("/bin/benchbot")):
                        found.append((f"{where}: {part.strip()}", words[1:]))
    return found


def parse(argv: list[str]) -> None:
    """Parse argv the way `benchbot` does, down to the leaf command, without running anything."""
    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("benchbot", list(argv))
    while hasattr(cmd, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)


COMMANDS = benchbot_commands()
PYTHON = blocks("python")


def test_readme_is_short_and_starts_with_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    first, second = [code.strip() for _, code in FENCE.findall(readme)[:2]]  # the README's first code blocks
    assert first == "bash scripts/setup.sh && .venv/bin/benchbot run --sim && .venv/bin/benchbot report"
    assert second == "bash scripts/setup.sh --test && .venv/bin/python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci and "mkdocs build --strict" in ci


def test_the_docs_show_command_lines():
    assert len(COMMANDS) > 50 and len(PYTHON) > 10  # the extraction itself works


@pytest.mark.parametrize("argv", [c[1] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_command_line_parses(argv):
    parse(argv)


def test_a_wrong_command_line_is_caught():
    parse(["report", "--by-object"])
    for bad in (["report", "--by-objects"], ["run", "--seed", "many"], ["emulate", "robot"]):
        with pytest.raises(Exception) as e:
            parse(bad)
        assert hasattr(e.value, "exit_code"), e.value  # a usage error, as the CLI would report it


def imported_names(code: str) -> list[tuple[str, str | None]]:
    names = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchbot"):
            names += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            names += [(a.name, None) for a in node.names if a.name.startswith("benchbot")]
    return names


def run_benchbot(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchbot.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def sim_results(tmp_path_factory) -> Path:
    """A folder whose results/ holds a short `benchbot run --sim` (for the examples that read a run)."""
    cwd = tmp_path_factory.mktemp("sim-run")
    run_benchbot(["run", "--sim", "-p", str(ROOT / "protocols" / "baselines.yaml"), "--method", "centroid",
                  "--max-trials", "2", "--no-robustness"], cwd)
    return cwd / "results"


@pytest.mark.parametrize("where,code,mark", PYTHON, ids=[p[0] for p in PYTHON])
def test_python_example(where, code, mark, tmp_path, request):
    assert mark in ("run", "compile", "after-sim-run"), f"{where}: unknown docs-test mark {mark!r}"
    compile(code, where, "exec")
    for module, name in imported_names(code):
        mod = importlib.import_module(module)
        assert name is None or hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), \
            f"{where}: {module} has no {name}"
    if mark == "compile":
        return
    # Run in an empty folder that sees the repository's package data by its documented paths.
    for name in ("benchbot", "protocols", "objects.yaml"):
        (tmp_path / name).symlink_to(ROOT / name)
    if mark == "after-sim-run":
        (tmp_path / "results").symlink_to(request.getfixturevalue("sim_results"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)  # a loaded 2-core CI box: torch + GQ-CNN can take minutes
    assert proc.returncode == 0, f"{where}:\n{proc.stdout}\n{proc.stderr}"


def test_site_builds_strict(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"  # never into the repository
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "benchbot run" in (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")

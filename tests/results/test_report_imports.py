"""What `benchbot` and `benchbot report` import, and what the report leaves behind. Start-up time
is most of a report's time (speed itself is measured by `benchbot bench report`, not here): the
CLI must not load heavy modules it does not need, and the figures must not touch global state."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchbot.cli.results import preload

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "yaml", "numpy", "pandas", "scipy", "matplotlib", "torch", "sqlite_utils", "PIL")

# Runs `benchbot ARGS` in this process and, at exit, writes the names of the loaded modules to OUT.
_CHILD = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["benchbot"] + sys.argv[2:]
from benchbot.cli import main
main()
"""


def loaded_modules(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text()))


def test_cli_start_up_imports_no_heavy_module(tmp_path):
    code = "import json, sys, benchbot.cli; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout))
    assert not [m for m in HEAVY if m in modules]
    assert "benchbot.config.protocol" not in modules  # commands that need a protocol import it themselves


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_imports_only_what_its_format_needs(sim_results, tmp_path, fmt):
    db, results, run_id, _ = sim_results
    modules = loaded_modules(tmp_path, "report", "--db", str(db), "--results", str(results), "--format", fmt,
                             "-o", str(tmp_path / f"r.{fmt}"))
    assert (tmp_path / f"r.{fmt}").stat().st_size > 1000
    assert {"pandas", "scipy.special"} <= modules
    never = {"torch", "benchbot.config.protocol", "benchbot.harness.runner", "matplotlib.pyplot",
             "sqlite_utils"}  # a read-only Store needs no sqlite-utils (it would import pandas up front)
    if fmt == "md":
        never |= {"matplotlib", "PIL"}
    else:
        assert {"matplotlib.figure", "matplotlib.backends.backend_agg"} <= modules
    assert not never & modules, sorted(never & modules)


def test_figures_leave_global_matplotlib_state_alone(sim_results, tmp_path):
    import matplotlib

    from benchbot.results.report import build_report, render
    from benchbot.results.store import Store

    before = dict(matplotlib.rcParams)
    db, results, run_id, _ = sim_results
    with Store(db, readonly=True) as store:
        page = render(build_report(store, run_id, by_object=True, details=True, results_dir=results), "html")
    assert page.count("data:image/png;base64,") >= 5
    assert dict(matplotlib.rcParams) == before  # the report's style lives in an rc context
    if "matplotlib.pyplot" in sys.modules:  # imported by another test: no figure of ours left open in it
        assert not sys.modules["matplotlib.pyplot"].get_fignums()


def test_preload_ignores_what_it_cannot_import():
    thread = preload(("benchbot_no_such_module", "json"))
    thread.join(timeout=60)
    assert not thread.is_alive()
    with pytest.raises(ModuleNotFoundError):  # the real import still says what is missing
        __import__("benchbot_no_such_module")

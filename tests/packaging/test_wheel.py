"""The wheel carries everything benchbot reads at run time: installed in a fresh venv (offline), `benchbot run
--sim` and `benchbot report` work from an empty directory and never touch the source checkout."""
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEIGHTS_BUDGET_BYTES = 50_000_000  # committed weights (benchbot/data/weights) stay under 50 MB
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")

# Loaded by every interpreter of the new venv (the run's child processes too): logs each file opened, folder
# listed or process started that names the source checkout, outside the dependencies' own folders.
SITECUSTOMIZE = '''
import os, sys
_REPO, _ALLOWED, _LOG = {repo!r}, {allowed!r}, {log!r}
def _hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        names = [os.path.abspath(os.fsdecode(args[0]))]
    elif event == "subprocess.Popen":
        names = [os.fsdecode(a) for a in (args[1] or ()) if isinstance(a, (str, bytes, os.PathLike))]
        names += [os.fsdecode(args[2])] if args[2] else []
    else:
        return
    for name in names:
        if _REPO in name and not any(name.startswith(a) for a in _ALLOWED):
            with open(_LOG, "a") as f:
                f.write(event + " " + name + "\\n")
sys.addaudithook(_hook)
'''


def _env(**extra: str) -> dict[str, str]:
    """This environment without anything that would put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    return {**env, "PYTHONNOUSERSITE": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "COLUMNS": "250", **extra}


def _check(cmd: list[str], timeout_s: float, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, **kw)
    assert out.returncode == 0, f"{cmd} -> {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the package (a build never writes into the checkout)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(REPO / "benchbot", src / "benchbot", ignore=IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
            str(src)], 300, env=_env(), cwd=src)
    (whl,) = dist.glob("benchbot-*.whl")
    return whl


def test_the_wheel_holds_every_package_file_and_the_weights_fit_the_budget(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = {p.relative_to(REPO).as_posix() for p in (REPO / "benchbot").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert package_files - names == set()  # data, defaults, recordings, console page, model card, notices
    for must in ("benchbot/config/defaults/protocols/paper.yaml", "benchbot/config/defaults/objects.yaml",
                 "benchbot/config/defaults/hardware.example.yaml", "benchbot/data/weights/MODEL_CARD.md",
                 "benchbot/data/weights/gqcnn_4.0_pj/NOTICE", "benchbot/data/weights/gqcnn_4.0_pj/PROVENANCE.md",
                 "benchbot/data/recordings/default/intrinsics.yaml", "benchbot/console/static/console.html"):
        assert must in names
    weights = sum(i.file_size for i in zipfile.ZipFile(wheel).infolist()
                  if i.filename.startswith("benchbot/data/weights/"))
    assert 0 < weights <= WEIGHTS_BUDGET_BYTES


def test_installed_wheel_runs_the_sim_and_reports_from_an_empty_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], 120, env=_env())
    python = venv / "bin" / "python"
    _check([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], 300,
           env=_env())
    # dependencies: this interpreter's third-party packages, by path (no .pth of theirs runs, so an editable
    # benchbot there stays invisible); benchbot itself comes from the wheel alone
    site_dir = Path(_check([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], 60,
                           env=_env()).stdout.strip())
    deps = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib")]) if Path(p).is_dir()]
    (site_dir / "_benchbot_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    log = tmp_path / "checkout-reads.log"
    allowed = tuple(str(Path(p).resolve()) for p in (*deps, sys.prefix))
    (site_dir / "sitecustomize.py").write_text(SITECUSTOMIZE.format(repo=str(REPO), allowed=allowed, log=str(log)))

    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    env = _env()
    where = _check([str(python), "-c", "import benchbot; print(benchbot.__file__)"], 60, cwd=cwd, env=env)
    assert Path(where.stdout.strip()).resolve().is_relative_to(site_dir.resolve())
    benchbot = str(venv / "bin" / "benchbot")
    run = _check([benchbot, "run", "--sim", "--db", str(out / "r.db"), "--results", str(out / "res"),
                  "--max-trials", "2", "-y"], 600, cwd=cwd, env=env)
    assert "2 judged" in run.stdout + run.stderr
    report = _check([benchbot, "report", "--db", str(out / "r.db")], 300, cwd=cwd, env=env)
    assert "## Table II" in report.stdout
    assert f"protocol file**: {site_dir.resolve()}/benchbot/config/defaults/protocols/paper.yaml" in report.stdout
    assert str(REPO) not in run.stdout + run.stderr + report.stdout + report.stderr
    assert not log.exists(), log.read_text()
    assert list(cwd.iterdir()) == []

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_built_from_docs_readme():
    spec = importlib.util.spec_from_file_location("build_readme", ROOT / "scripts" / "build_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "README.md").read_text(encoding="utf-8") == mod.build(), "run python scripts/build_readme.py"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```bash\n")
    first, second = blocks[1].split("```")[0].strip(), blocks[2].split("```")[0].strip()
    assert "run --sim" in first and "report" in first
    assert second in (ROOT / ".ci" / "run").read_text()

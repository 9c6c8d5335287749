"""The hardware page shows the real error line (its Python examples run in tests/test_docs.py)."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "hardware" / "index.md"


def test_example_error_line_in_the_doc_is_the_real_one(tmp_path):
    import pytest
    import yaml

    from benchbot.config.hardware import load_hardware
    from benchbot.core.errors import BenchbotError

    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump({"robot": {"kind": "ur5"}}))
    with pytest.raises(BenchbotError) as e:
        load_hardware(p)
    shown = re.search(r"error: hw\.yaml: (.*)", DOC.read_text(encoding="utf-8")).group(1)
    assert e.value.one_line().replace(str(p), "hw.yaml") == "hw.yaml: " + shown

"""The html page (with plots) and the comparisons for unusual runs: no trials, nothing run yet,
all aborted, several outcome sources, a single method."""
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from benchbot.results.report import build_report, render

spec = importlib.util.spec_from_file_location("report_tests", Path(__file__).parent / "test_report.py")
report_tests = importlib.util.module_from_spec(spec)
sys.modules["report_tests"] = report_tests
spec.loader.exec_module(report_tests)
# the fixture of tests/results/test_report.py: runs r1 (aborted method, redo), r2 (2 sources), r3, r4xx
db = report_tests.db


@pytest.mark.parametrize("run_id", ["r1", "r2", "r3", "r4xx"])
def test_page_for_every_kind_of_run(db, tmp_path, run_id):
    rep = build_report(db, run_id, by_object=True, compare_paper=True, details=True, results_dir=tmp_path)
    page = render(rep, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    for out in (text, render(rep, "md"), render(rep, "latex"), render(rep, "json")):
        assert not re.search(r"\bnan\b", out, re.I)


def test_two_sources_are_paired_within_a_source_only(db):
    rep = build_report(db, "r2")  # one method: no pair at all
    assert rep.comparisons.empty
    rep = build_report(db, "r1")
    success = rep.comparisons[rep.comparisons["metric"] == "success"]
    # gqstn (10 judged) and multigrasp (10 judged) share all 10 placements; prop-gqcnn was aborted
    assert len(success) == 1 and success.iloc[0]["pairs"] == 10
    assert (success.iloc[0]["method_a"], success.iloc[0]["method_b"]) == ("multigrasp", "gqstn")

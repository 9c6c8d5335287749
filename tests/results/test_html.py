"""The html report renders in a real headless Chromium: every embedded image loads, nothing is
fetched from the network; the page prints to PDF. BENCHBOT_DOCS_SCREENSHOT=path saves the
screenshot used in the README (scripts/report_screenshot.sh)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchbot.results.html import CHROMIUM_FLAGS
from benchbot.results.report import build_report, render
from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]


def chromium_or_skip():
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.environ.get("CI"):
        pytest.fail("chromium and chromedriver are needed in CI (scripts/setup.sh --test installs them)")
    pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")


def browser(width=1280, height=1600):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + (f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.fixture(scope="module")
def page(sim_results, tmp_path_factory):
    db, results, run_id, _proto = sim_results
    out = tmp_path_factory.mktemp("html") / "report.html"
    # a keyframe strip for one attempt, as the physics backend writes them
    from benchbot.harness.cells.keyframes import save_strip

    with Store(db, readonly=True) as store:
        attempt_id, path = store.conn.execute(
            "SELECT f.attempt_id, f.path FROM artifacts f WHERE f.kind = 'overlay' ORDER BY f.id LIMIT 1").fetchone()
    keyframes_db = out.parent / "k.db"
    shutil.copyfile(db, keyframes_db)
    strip = path.replace("_overlay.png", "_keyframes.png")
    frames = [(f"f{i}", np.full((60, 80, 3), 40 * i, np.uint8)) for i in range(4)]
    save_strip(frames, results / strip)
    import sqlite3

    with sqlite3.connect(keyframes_db) as c:
        c.execute("INSERT INTO artifacts (attempt_id, kind, path) VALUES (?, 'keyframes', ?)", [attempt_id, strip])
    proc = subprocess.run([sys.executable, "-m", "benchbot.cli", "report", "--db", str(keyframes_db), "--run", run_id,
                           "--results", str(results), "--format", "html", "-o", str(out), "--compare-paper"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return out


def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    for section in ("Table II", "Paired comparisons (shared placements)", "Robustness q", "Detection time",
                    "Success by object", "Failure causes", "Grasp gallery", "Keyframes (physics)", "Setup"):
        assert f">{section}<" in html, section
    assert html.count('class="card"') >= 6  # overlays of successes and failures


def test_page_renders_in_headless_chromium(page, tmp_path):
    chromium_or_skip()
    driver = browser()
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return [...document.images].map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) >= 10
        assert all(done and width > 0 for done, width, _alt in images), images
        title = driver.execute_script("return document.querySelector('h1').innerText")
        assert title.startswith("Grasp benchmark report")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(height, 2400))
        shot = Path(os.environ.get("BENCHBOT_DOCS_SCREENSHOT") or tmp_path / "report.png")
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    from PIL import Image

    with Image.open(shot) as im:
        assert im.width >= 1000 and np.asarray(im.convert("L")).std() > 10  # not a blank page


def test_pdf_of_the_same_page(sim_results, tmp_path):
    chromium_or_skip()
    db, results, run_id, _ = sim_results
    out = tmp_path / "report.pdf"
    proc = subprocess.run([sys.executable, "-m", "benchbot.cli", "report", "--db", str(db), "--results", str(results),
                           "--format", "pdf", "-o", str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 50_000 and b"/Type /Page" in data


def test_library_render_without_details_and_missing_images(sim_results, tmp_path):
    db, _results, run_id, _ = sim_results
    with Store(db, readonly=True) as store:
        plain = render(build_report(store, run_id), "html")
        missing = render(build_report(store, run_id, details=True, results_dir=tmp_path), "html")
    assert "<table>" in plain and "Grasp gallery" not in plain
    assert "image(s) not found under" in missing


def test_pdf_and_bad_format_errors(sim_results, tmp_path):
    db = sim_results[0]
    for args, text in ((["--format", "pdf"], "--format pdf needs an output file"),
                       (["--format", "xlsx"], "unknown report format 'xlsx'")):
        proc = subprocess.run([sys.executable, "-m", "benchbot.cli", "report", "--db", str(db), *args],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 2 and text in proc.stderr and "Traceback" not in proc.stderr

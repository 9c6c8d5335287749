#!/usr/bin/env bash
# Regenerate docs/images/report.png (the README's picture of the html report): a short replay run,
# its html report, and a screenshot of the page in headless Chromium (tests/results/test_html.py).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHBOT_DOCS_SCREENSHOT="$PWD/docs/images/report.png" PYTHONPATH="$PWD" \
  "${PYTHON:-.venv/bin/python}" -m pytest -q -p no:cacheprovider tests/results/test_html.py -k chromium

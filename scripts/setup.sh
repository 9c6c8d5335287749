#!/usr/bin/env bash
# Set up benchbot on a fresh machine: system libraries for headless MuJoCo rendering (EGL),
# a virtual environment in .venv and the package with its dependencies.
#   bash scripts/setup.sh          # the application
#   bash scripts/setup.sh --test   # plus the test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# MuJoCo renders depth headless through EGL (Debian: libegl1 + libgl1-mesa-dri); socat lets the
# Robotiq serial-RTU test run over a pty pair; the console page and the html report are tested in
# Debian's headless chromium (playwright and chromedriver must not download a browser of their own),
# the terminal prompts under tmux.
need=()
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || need+=(libegl1)
[ -e /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so ] || ls /usr/lib/*/dri/*swrast* >/dev/null 2>&1 || need+=(libgl1-mesa-dri)
[ -n "$extras" ] && ! command -v socat >/dev/null 2>&1 && need+=(socat)
[ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1 && need+=(chromium)
[ -n "$extras" ] && ! command -v chromedriver >/dev/null 2>&1 && need+=(chromium-driver)
[ -n "$extras" ] && ! command -v tmux >/dev/null 2>&1 && need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]} (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: please install ${need[*]} (Debian/Ubuntu packages) for headless MuJoCo rendering and the tests" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# torch is pinned (torch==2.13.0, CPU build) in pyproject.toml
.venv/bin/python -m pip install -q -e ".${extras}"
echo "setup: done (.venv/bin/benchbot)"

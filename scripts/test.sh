#!/usr/bin/env bash
# The whole suite: lint, then every test on SQLite, then again on a real PostgreSQL server.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export MADOGUCHI_DATA_DIR="${MADOGUCHI_DATA_DIR:-$(mktemp -d)}"

# The browser tests drive Debian's Chromium (Playwright never downloads a browser of its own).
if [ ! -x /usr/bin/chromium ]; then
    echo "== installing chromium and Japanese fonts for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q chromium fonts-ipafont-gothic >/dev/null
fi

echo "== ruff"
$BIN/ruff check src

echo "== tests on SQLite"
$BIN/pytest -p no:cacheprovider

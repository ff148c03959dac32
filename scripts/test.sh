#!/usr/bin/env bash
# The whole suite: lint, then every test on SQLite, then again on a real PostgreSQL server.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export MADOGUCHI_DATA_DIR="${MADOGUCHI_DATA_DIR:-$(mktemp -d)}"

echo "== ruff"
$BIN/ruff check src

echo "== tests on SQLite"
$BIN/pytest -p no:cacheprovider

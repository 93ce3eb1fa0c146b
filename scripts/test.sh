#!/usr/bin/env bash
# Set up .venv if needed, then run every check: ruff, mypy (strict), the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
.venv/bin/ruff check src tests benchmarks fuzz
.venv/bin/mypy
.venv/bin/python -m pytest "$@"

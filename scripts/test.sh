#!/usr/bin/env bash
# Set up .venv if needed, then run every check: ruff (lint, and format --check), mypy (strict),
# the whole pytest suite (with a local PostgreSQL from scripts/postgres.sh for the SQLAlchemy tests).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
.venv/bin/ruff check src tests benchmarks fuzz
.venv/bin/ruff format --check src tests benchmarks fuzz scripts
.venv/bin/mypy
# PostgreSQL for tests/test_sqlalchemy.py; without it those tests skip, or fail when CI=true.
if url=$(bash scripts/postgres.sh); then
    export AES_HMAC_PG_URL=$url
    trap 'bash scripts/postgres.sh stop' EXIT
else
    echo "test.sh: PostgreSQL unavailable" >&2
fi
.venv/bin/python -m pytest "$@"

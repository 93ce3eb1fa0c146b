#!/usr/bin/env bash
# Set up .venv if needed, then run every check: ruff (lint, and format --check), mypy (strict), the
# layer check (scripts/import_graph.py: no upward import, every place in docs/ARCHITECTURE.md),
# the whole pytest suite (with a local PostgreSQL from scripts/postgres.sh for the SQLAlchemy tests
# and a local S3 API server from scripts/s3.sh for the object storage tests).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
.venv/bin/ruff check src tests benchmarks fuzz
.venv/bin/ruff format --check src tests benchmarks fuzz scripts
.venv/bin/mypy
.venv/bin/python scripts/import_graph.py >/dev/null
stop=()
trap 'for s in "${stop[@]}"; do bash "scripts/$s.sh" stop; done' EXIT
# PostgreSQL for tests/test_sqlalchemy.py; without it those tests skip, or fail when CI=true.
if url=$(bash scripts/postgres.sh); then
    export AES_HMAC_PG_URL=$url
    stop+=(postgres)
else
    echo "test.sh: PostgreSQL unavailable" >&2
fi
# An S3 API server for tests/test_s3.py; the same rule.
if url=$(bash scripts/s3.sh); then
    export AES_HMAC_S3_ENDPOINT=$url
    stop+=(s3)
else
    echo "test.sh: S3 server unavailable" >&2
fi
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The main job: round-trip the design note's example, a token and a file.
# Installs only the library and its cli extra into .venv (the development tools come with
# scripts/test.sh), then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f .venv/.installed-cli ] || [ pyproject.toml -nt .venv/.installed-cli ]; then
    .venv/bin/python -m pip install -q -e '.[cli]'
    touch .venv/.installed-cli
fi
.venv/bin/python -m aes_hmac._demo

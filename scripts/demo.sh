#!/usr/bin/env bash
# The main job: set up .venv if needed, then round-trip the design note's example, a token and a file.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
.venv/bin/python -m aes_hmac._demo

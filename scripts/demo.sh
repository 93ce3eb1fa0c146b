#!/usr/bin/env bash
# The main job: round-trip the design note's example, a token and a file.
# Installs only the library and its cli extra into .venv (the development tools and the
# integrations' libraries come with scripts/test.sh), then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_EXTRAS=cli . scripts/_venv.sh
.venv/bin/python -m aes_hmac._demo

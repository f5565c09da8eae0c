#!/usr/bin/env bash
# Sets up (first time only) and starts speech2image on http://127.0.0.1:5000 with embedded defaults.
# The work is scripts/bootstrap.py's (Windows: py scripts\bootstrap.py); arguments go to the app.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/bootstrap.py serve "$@"

#!/usr/bin/env bash
# Sets up (first time only) and starts speech2image on http://127.0.0.1:5000 with embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
exec .venv/bin/python app.py "$@"

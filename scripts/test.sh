#!/usr/bin/env bash
# Sets up everything the tests need (Debian packages, .venv) and runs the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k transcribe
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/setup.sh requirements-dev.txt
exec .venv/bin/python -m pytest "$@"

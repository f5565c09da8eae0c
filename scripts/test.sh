#!/usr/bin/env bash
# Sets up everything the tests need (Debian packages, .venv) and runs the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k transcribe. The work is scripts/bootstrap.py's.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/bootstrap.py test "$@"

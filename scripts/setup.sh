#!/usr/bin/env bash
# Creates .venv and installs the requirements into it; installs again only when they changed.
# Usage: scripts/setup.sh [app|test|all]   (default: app; all: the heavy test group too, as CI)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-app}" in
  requirements-dev.txt|test) kind=test ;;
  requirements.txt|app) kind=app ;;
  all) kind=all ;;
  *) echo "usage: scripts/setup.sh [app|test|all]" >&2; exit 2 ;;
esac
exec "${PYTHON:-python3}" scripts/bootstrap.py setup "$kind"

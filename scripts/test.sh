#!/usr/bin/env bash
# `make test`: install what the tests need (apt and pip, idempotent), make sure the
# local PostgreSQL and Redis answer, then run every test. Under CI nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh test
scripts/services.sh
if [ ! -f tests/tools/node_modules/axe-core/axe.min.js ]; then
  echo "Installing browser test tools (npm ci in tests/tools)..." >&2
  (cd tests/tools && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
mkdir -p test-output
echo "Lint (ruff) and types (mypy strict on portal/core and portal/sdk)..." >&2
.venv/bin/ruff check portal tests bench scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest --cov=portal --cov-branch --cov-report=term:skip-covered "$@"

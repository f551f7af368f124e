#!/usr/bin/env bash
# `make run`: set up everything and start the portal on its embedded default
# (SQLite in instance/, one process) at http://127.0.0.1:${PORT:-5000}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh runtime
export FLASK_APP=wsgi
PORT=${PORT:-5000}
export PORT
.venv/bin/flask setup
echo "Portal: ${PORTAL_BASE_URL:-http://127.0.0.1:$PORT}   (health: /healthz, SDK: /PfWsSdk.asmx?wsdl)"
exec .venv/bin/gunicorn --worker-class gthread --workers 1 --threads 8 \
  --bind "127.0.0.1:$PORT" --access-logfile - --log-level info wsgi:app

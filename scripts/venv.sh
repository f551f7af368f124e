#!/usr/bin/env bash
# Create or refresh the virtual environment. `venv.sh` installs the runtime set,
# `venv.sh test` the test set too. Re-installs only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:-runtime}
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtual environment (.venv)..." >&2
  "$PY" -m venv .venv
fi
files=requirements.txt
[ "$want" = test ] && files="requirements.txt requirements-test.txt"
stamp=".venv/.installed-$want"
sum=$(cat $files | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  echo "Installing Python packages ($want)..." >&2
  req=requirements.txt; [ "$want" = test ] && req=requirements-test.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$sum" > "$stamp"
fi

#!/usr/bin/env bash
# The one command: bash benchmarks/run.sh [--quick] [--only startup,logging,search,data] [--keep]
#                  [--large]  (data benchmark: add the 100,000-file dataset)
# Env: BENCH_QUICK=1 (same as --quick), BENCH_ONLY=..., BENCH_LARGE=1 (same as --large),
#      BENCH_PYTHON=python3.11 (venv interpreter).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="$HERE/.venv-bench"
BASE_PY="${BENCH_PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$BASE_PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "run.sh: $BASE_PY is $("$BASE_PY" -V 2>&1); mltrail needs Python 3.11+ (set BENCH_PYTHON)" >&2
        exit 2
    }
    echo "run.sh: creating $VENV" >&2
    "$BASE_PY" -m venv "$VENV"
fi

# Reinstall only when the requirements or mltrail's packaging change (the install is editable,
# so source edits need no reinstall).
STAMP="$VENV/.bench-installed"
WANT="$(cat "$HERE/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] \
    || ! "$VENV/bin/python" -c 'import mltrail, mlflow, dvc' 2>/dev/null; then
    echo "run.sh: installing mltrail (editable), $(grep -m1 '^mlflow' "$HERE/requirements.txt") and $(grep -m1 '^dvc' "$HERE/requirements.txt") into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e "$ROOT" -r "$HERE/requirements.txt"
    echo "$WANT" > "$STAMP"
fi

mkdir -p "$HERE/.work"
exec "$VENV/bin/python" "$HERE/bench.py" "$@"

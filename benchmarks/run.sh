#!/usr/bin/env bash
# The one command: bash benchmarks/run.sh [--quick] [--keep]
#                  [--only startup,logging,search,data,serving,server,compat,ui,pipeline,import]
#                  [--large]  (data benchmark: add the 100,000-file dataset)
#                  (serving: serving_bench.py, needs `wrk`: sudo apt-get install -y wrk)
#                  (server: server_bench.py, mltrail server vs mlflow server on SQLite and on a
#                   throwaway PostgreSQL from /usr/lib/postgresql/*/bin: apt-get install postgresql)
#                  (compat: compat_bench.py, the real mlflow client against mltrail server and
#                   mlflow server, SQLite and the same throwaway PostgreSQL)
#                  (ui: ui_bench.py, the web UI vs `mlflow ui` in headless Chromium, driven by
#                   Playwright: apt-get install chromium)
#                  (pipeline: pipeline_bench.py, `mltrail repro` vs `dvc repro` on the same
#                   50-stage and 20,000-out-file pipelines)
#                  (import: import_mlflow_bench.py, `mltrail import mlflow` of a 10,000-run
#                   MLflow store; import_dvc_bench.py, `mltrail import dvc` of a 20,000-file repo)
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
    || ! "$VENV/bin/python" -c 'import mltrail, mlflow, dvc, fastapi, psycopg, psycopg2, playwright' 2>/dev/null; then
    echo "run.sh: installing mltrail (editable), $(grep -m1 '^mlflow' "$HERE/requirements.txt") and $(grep -m1 '^dvc' "$HERE/requirements.txt") into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e "$ROOT[server]" -r "$HERE/requirements.txt"
    echo "$WANT" > "$STAMP"
fi

mkdir -p "$HERE/.work"

# "serving" (model loading and serving vs `mlflow models serve`) is serving_bench.py, "server"
# (the team server vs `mlflow server`) is server_bench.py and "compat" (the mlflow client against
# both servers) is compat_bench.py, all run after bench.py's benchmarks: take them out of
# --only / BENCH_ONLY and pass bench.py the rest.
ONLY="${BENCH_ONLY:-startup,logging,search,data,serving,server,compat,ui,pipeline,import}"
BENCH_ARGS=()
SERVE_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="${2:-}"; shift 2 || shift ;;
        --only=*) ONLY="${1#--only=}"; shift ;;
        --quick|--keep) BENCH_ARGS+=("$1"); SERVE_ARGS+=("$1"); shift ;;
        *) BENCH_ARGS+=("$1"); shift ;;
    esac
done
LIST="$(echo "$ONLY" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -v '^$')" || true
LISTC=",$(echo "$LIST" | paste -sd, -),"
has() { [[ "$LISTC" == *",$1,"* ]]; }
REST="$(echo "$LIST" | grep -vx -e 'serving' -e 'server' -e 'compat' -e 'ui' -e 'pipeline' -e 'import' \
    | paste -sd, -)" || true
if [ -n "$REST" ] && ! has serving && ! has server && ! has compat && ! has ui && ! has pipeline \
    && ! has import; then
    exec "$VENV/bin/python" "$HERE/bench.py" "${BENCH_ARGS[@]}" --only "$REST"
fi
if ! "$VENV/bin/python" -c 'import sklearn, psutil' 2>/dev/null; then
    echo "run.sh: installing scikit-learn and psutil (serving, server and compat benchmarks) into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check scikit-learn psutil
fi
RC=0
if [ -n "$REST" ]; then
    "$VENV/bin/python" "$HERE/bench.py" "${BENCH_ARGS[@]}" --only "$REST" || RC=$?
fi
QUICK="${BENCH_QUICK:-}"
[[ " ${SERVE_ARGS[*]} " == *" --quick "* ]] && QUICK=1
if has serving; then
    "$VENV/bin/python" "$HERE/serving_bench.py" "${SERVE_ARGS[@]}" \
        --json "$HERE/.work/serving-results${QUICK:+-quick}.json" || RC=$((RC > 0 ? RC : $?))
fi
if has server; then
    "$VENV/bin/python" "$HERE/server_bench.py" "${SERVE_ARGS[@]}" \
        --json "$HERE/.work/server-results${QUICK:+-quick}.json" || RC=$((RC > 0 ? RC : $?))
fi
if has compat; then
    "$VENV/bin/python" "$HERE/compat_bench.py" "${SERVE_ARGS[@]}" \
        --json "$HERE/.work/compat-results${QUICK:+-quick}.json" || RC=$((RC > 0 ? RC : $?))
fi
if has ui; then
    "$VENV/bin/python" "$HERE/ui_bench.py" "${SERVE_ARGS[@]}" \
        --json "$HERE/.work/ui-results${QUICK:+-quick}.json" || RC=$((RC > 0 ? RC : $?))
fi
if has pipeline; then
    "$VENV/bin/python" "$HERE/pipeline_bench.py" "${SERVE_ARGS[@]}" \
        --json "$HERE/.work/pipeline-results${QUICK:+-quick}.json" || RC=$((RC > 0 ? RC : $?))
fi
if has import; then
    for kind in mlflow dvc; do
        [ -f "$HERE/import_${kind}_bench.py" ] || continue
        "$VENV/bin/python" "$HERE/import_${kind}_bench.py" "${SERVE_ARGS[@]}" \
            --json "$HERE/.work/import-${kind}-results${QUICK:+-quick}.json" || RC=$((RC > 0 ? RC : $?))
    done
fi
exit "$RC"

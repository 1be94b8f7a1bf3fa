#!/usr/bin/env bash
# Create benchmarks/.venv with the peer frameworks and asyncweb (editable).
# The peers live only in this venv: they are never asyncweb's dependencies.
# Idempotent: re-running reuses the venv and only installs what is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
    "tornado>=6,<7" \
    aiohttp \
    uvicorn \
    starlette \
    httptools \
    uvloop \
    h11 \
    wsproto \
    jinja2 \
    matplotlib \
    websockets
"$VENV/bin/python" -m pip install --quiet -e "$REPO"

if ! command -v wrk >/dev/null 2>&1; then
    echo "warning: wrk not found; install it (Debian: apt-get install -y wrk)" >&2
fi

"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
for name in ("tornado", "aiohttp", "uvicorn", "starlette", "httptools", "uvloop", "h11",
             "wsproto", "jinja2", "matplotlib", "websockets", "asyncweb"):
    print(f"{name:10} {version(name)}")
PY
echo "ok: run with $VENV/bin/python $HERE/run.py"

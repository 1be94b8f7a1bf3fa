#!/bin/bash
# count.sh's twin for the peers: (count at 2500 - count at 500) / 2000 instructions per request.
#   benchmarks/instructions/count_peer.sh aiohttp|uvicorn hello|realistic [uvloop]
# Runs benchmarks/.venv's python (bash benchmarks/setup.sh), where the peers live; the drivers are
# aiohttp_per_request.py and uvicorn_per_request.py (uvicorn+Starlette, httptools). Needs valgrind.
set -eu
peer=$1; endpoint=$2; loop=${3:-}
here=$(cd "$(dirname "$0")" && pwd); py=${PYTHON:-$here/../.venv/bin/python}; out=$(mktemp -d)
count() {
  PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" \
    "$py" "$here/${peer}_per_request.py" "$1" "$endpoint" $loop >/dev/null 2>"$out/log.$1"
  awk '/Collected/{gsub(",", "", $4); print $4}' "$out/log.$1"
}
a=$(count 500); b=$(count 2500)
echo "$peer $endpoint ${loop:-asyncio}: $(( (b - a) / 2000 )) instructions per request"
rm -rf "$out"

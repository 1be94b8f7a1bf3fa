#!/bin/bash
# Before/after on the 16-core device machine: two asyncweb trees side by side against aiohttp,
# one server core, wrk -t4 -c100 on cores 4-7, interleaved rounds (DUR seconds, ROUNDS rounds).
# Prepare here: bash ../shared/devicebench/prepare.sh (wrk and peer wheels in .devkit/; add h2,
# hpack and hyperframe wheels to .devkit/whl), then
#   git archive OLD_REV asyncweb benchmarks/apps | tar -x -C .devkit/old   (mkdir first)
#   git archive HEAD asyncweb benchmarks/apps | tar -x -C .devkit/new
#   cp benchmarks/device_compare.sh .devkit/cmp.sh
# and run there, carrying .devkit: cd .devkit && python3 -m pip install -q --no-index --no-deps
#   --target /tmp/site whl/*.whl && LD_LIBRARY_PATH=$PWD/lib OUT=$OUT ROUNDS=4 ./cmp.sh
set -u
K=$(cd "$(dirname "$0")" && pwd); PY=python3; WRK=$K/bin/wrk; OUTD=${OUT:-/tmp/cmpout}; mkdir -p "$OUTD"
R=$OUTD/cmp.txt; log() { echo "$*" | tee -a "$R"; }
up() { for i in $(seq 150); do $PY -c "import urllib.request;urllib.request.urlopen('http://127.0.0.1:$1$2',timeout=1)" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
run() { # name root path app
  local name=$1 root=$2 path=$3 app=$4; port=$((port+1))
  PYTHONPATH=/tmp/site:$root:$root/benchmarks/apps setsid taskset -c 0 $PY $root/benchmarks/apps/$app --port $port >$OUTD/srv_$name.log 2>&1 & local pid=$!
  up $port "$path" || { log "$name FAILED"; kill -9 -- -$pid; return; }
  local H=(); [[ $path == /user/* ]] && H=(-H "Cookie: theme=dark; session=abc123")
  taskset -c 4-7 $WRK -t4 -c100 -d1s "${H[@]}" "http://127.0.0.1:$port$path" >/dev/null 2>&1
  local o; o=$(taskset -c 4-7 $WRK -t4 -c100 -d${DUR:-5}s --latency "${H[@]}" "http://127.0.0.1:$port$path" 2>&1)
  kill -TERM -- -$pid 2>/dev/null; sleep 0.3; kill -KILL -- -$pid 2>/dev/null; wait $pid 2>/dev/null
  log "$name rps=$(echo "$o" | awk '/Requests\/sec/{print $2}') p99=$(echo "$o" | awk '$1=="99%"{print $2}') $(echo "$o" | grep -E 'Non-2xx|Socket errors' | tr '\n' ' ')"
}
NEW=$K/new; OLD=$K/old; port=9700
log "== $(date -u) $($PY -c 'import sys,uvloop,aiohttp;print(sys.version.split()[0],uvloop.__version__,aiohttp.__version__)')"
for r in $(seq ${ROUNDS:-3}); do
  run new_h11 $NEW / asyncweb_hello.py; run old_h11 $OLD / asyncweb_hello.py
  run new_httptools $NEW / asyncweb_httptools_hello.py; run old_httptools $OLD / asyncweb_httptools_hello.py
  run R_new_h11 $NEW "/user/alice?greeting=hi" asyncweb_realistic.py; run R_old_h11 $OLD "/user/alice?greeting=hi" asyncweb_realistic.py
  run R_new_httptools $NEW "/user/alice?greeting=hi" asyncweb_httptools_realistic.py; run R_old_httptools $OLD "/user/alice?greeting=hi" asyncweb_httptools_realistic.py
  run aiohttp $NEW / aiohttp_hello.py
done
log "== end $(date -u)"

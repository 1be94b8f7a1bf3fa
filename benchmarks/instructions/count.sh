#!/bin/bash
# Instructions per request (callgrind), start-up cancelled out: (count at 2500 - count at 500) / 2000.
#   benchmarks/instructions/count.sh TREE hello|realistic h11|httptools [uvloop]
# TREE is a folder holding an asyncweb package (e.g. `git archive REV asyncweb | tar -x -C DIR`),
# so two revisions can be compared on the same interpreter. Needs valgrind.
set -eu
tree=$1; endpoint=$2; parser=$3; loop=${4:-}
here=$(cd "$(dirname "$0")" && pwd); py=${PYTHON:-python3}; out=$(mktemp -d)
count() {
  PYTHONHASHSEED=0 PYTHONPATH=$tree valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" \
    "$py" "$here/per_request.py" "$1" "$endpoint" "$parser" $loop >/dev/null 2>"$out/log.$1"
  awk '/Collected/{gsub(",", "", $4); print $4}' "$out/log.$1"
}
a=$(count 500); b=$(count 2500)
echo "$endpoint $parser ${loop:-asyncio}: $(( (b - a) / 2000 )) instructions per request"
rm -rf "$out"

#!/bin/bash
# The whole suite beside a CPU and I/O load, several times in a row (issue 9's proof that
# no test depends on timing): `bash test/loaded.sh` as root, from the project root.
#   RUNS (3)  how many whole-suite runs; each runs `npm test` beside
#             `stress-ng --cpu 2 --io 1` (apt-get install stress-ng), stopped after it.
# Prints one line per run: its "N passed, M failed", the seconds it took, the load average.
set -u
RUNS=${RUNS:-3}
cd "$(dirname "$0")/.." || exit 1
command -v stress-ng > /dev/null || { echo "loaded.sh: stress-ng missing (apt-get install stress-ng)" >&2; exit 1; }
for i in $(seq 1 "$RUNS"); do
  stress-ng --cpu 2 --io 1 --timeout 3600s > /dev/null 2>&1 &
  S=$!
  start=$(date +%s)
  npm test > "${TMPDIR:-/tmp}/tsfuse-loaded-$i.txt" 2>&1
  end=$(date +%s)
  kill "$S"; wait "$S" 2>/dev/null
  echo "run $i: $(tail -1 "${TMPDIR:-/tmp}/tsfuse-loaded-$i.txt") in $((end - start)) s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
done

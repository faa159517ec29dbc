#!/bin/bash
# The cost of crash takeover: journal overhead on metadata, and takeover time.
#
#   REPS=5 bash bench/takeover.sh          (root; run `npx tsc -p .` first)
#
# SRC is a tmpfs with two halves, each mirrored by `tsfuse passthrough -f`: one
# plain (no journal), one with --supervise (the server journals every node,
# handle and non-idempotent request before its reply). Rounds alternate which
# mount goes first:
#   meta   bench/metaclient: N × (create, close, stat, unlink)
#   cold   N files made in the source, `echo 2 > drop_caches`, then stat() of
#          each through the mount (every stat is a LOOKUP reaching the server)
# Then KILLS times: kill -9 of the supervised server, and the time until a
# stat() of a new name through the mount (a LOOKUP the new server must answer)
# returns: "takeover ms".
# Output: one line per run, medians (min..max) and ratios supervised/plain.
# Environment: REPS (5), FILES (5000), KILLS (10), NODE (node), KEEP_TMP=1.
set -u
REPS=${REPS:-5}
FILES=${FILES:-5000}
KILLS=${KILLS:-10}
NODE=${NODE:-node}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=$ROOT/dist/src/cli/main.js

die() { echo "takeover.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mount(2), tmpfs, drop_caches)"
[ -f "$CLI" ] || die "$CLI missing: run 'npx tsc -p .' in $ROOT first"

W=$(mktemp -d "${TMPDIR:-/tmp}/tsfuse-tobench.XXXXXX") || die "mktemp failed"
SRC=$W/src
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  umount -l "$W/plain" 2>/dev/null
  umount -l "$W/journal" 2>/dev/null
  sleep 0.3
  umount -l "$SRC" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -O2 -o "$W/metaclient" "$ROOT/bench/metaclient.c" || die "cannot build metaclient"
cat >"$W/coldstat.c" <<'EOF'
/* coldstat DIR N: stat DIR/cK for K < N; prints "RESULT rate=R" (stats per second). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  long n = atol(argv[2]); char p[4096]; struct stat st; long bad = 0;
  double t0 = now();
  for (long i = 0; i < n; i++) { snprintf(p, sizeof p, "%s/c%ld", argv[1], i); if (stat(p, &st)) bad++; }
  double s = now() - t0;
  printf("RESULT rate=%.0f errors=%ld\n", n / s, bad);
  return bad != 0;
}
EOF
gcc -O2 -o "$W/coldstat" "$W/coldstat.c" || die "cannot build coldstat"
mkdir -p "$SRC" "$W/plain" "$W/journal"
mount -t tmpfs -o size=256m tsfuse-tobench "$SRC" || die "tmpfs mount failed"
mkdir -p "$SRC/plain" "$SRC/journal"
"$NODE" "$CLI" passthrough "$SRC/plain" "$W/plain" -f -o fsname=tsfuse-tobench-plain >"$W/plain.log" 2>&1 &
PIDS+=($!)
"$NODE" "$CLI" passthrough "$SRC/journal" "$W/journal" -f --supervise -o fsname=tsfuse-tobench-journal >"$W/journal.log" 2>&1 &
SUP=$!
PIDS+=($SUP)
for _ in $(seq 100); do grep -q "mounted" "$W/plain.log" && grep -q "mounted" "$W/journal.log" && break; sleep 0.1; done
grep -q "mounted" "$W/journal.log" || die "supervised server did not mount: $(cat "$W/journal.log")"

declare -A R
run() { # name
  local name=$1 dir=$W/$1 m c
  mkdir -p "$dir/meta"
  m=$("$W/metaclient" "$dir/meta" "$FILES" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  rmdir "$dir/meta"
  mkdir -p "$SRC/$name/cold"
  (cd "$SRC/$name/cold" && seq 0 $((FILES - 1)) | sed 's/^/c/' | xargs touch)
  echo 2 > /proc/sys/vm/drop_caches
  c=$("$W/coldstat" "$dir/cold" "$FILES" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  rm -rf "$SRC/$name/cold"
  printf '%-8s meta %8s files/s  cold stat %8s stats/s\n' "$name" "$m" "$c"
  R[$name.meta]+="$m "; R[$name.cold]+="$c "
}
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then run plain; run journal; else run journal; run plain; fi
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR]=$1 } END { m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f (%s..%s)", m, a[1], a[NR] }'; }
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR]=$1 } END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
echo
echo "# medians over $REPS rounds, $FILES files"
for k in meta cold; do
  a=$(echo "${R[plain.$k]}" | med); b=$(echo "${R[journal.$k]}" | med)
  printf '%-5s plain %-26s journal %-26s ratio journal/plain %.3f\n' "$k" "$(echo "${R[plain.$k]}" | median)" "$(echo "${R[journal.$k]}" | median)" "$(awk -v a="$b" -v b="$a" 'BEGIN { print a / b }')"
done

# The serving server: the supervisor's child holding /dev/fuse (the other is the spare).
serving() {
  for p in $(pgrep -P "$SUP"); do
    ls -l /proc/$p/fd 2>/dev/null | grep -q ' /dev/fuse$' && { echo "$p"; return; }
  done
}
# Takeover time: kill -9 the server, then stat a name it has never seen.
T=""
for i in $(seq "$KILLS"); do
  touch "$SRC/journal/probe$i"
  srv=$(serving)
  [ -n "$srv" ] || die "no server under supervisor $SUP"
  t0=$(date +%s%N)
  kill -9 "$srv"
  stat "$W/journal/probe$i" >/dev/null || die "stat after kill $i failed"
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  echo "kill $i: takeover $ms ms"
  T+="$ms "
  # wait until the supervisor has a server again before the next kill
  for _ in $(seq 100); do [ -n "$(serving)" ] && [ "$(pgrep -P "$SUP" | wc -l)" -ge 2 ] && break; sleep 0.05; done
done
echo "takeover ms over $KILLS kills: median $(echo "$T" | median)"
echo "supervised mount still listed once: $(grep -c " $W/journal " /proc/mounts)"

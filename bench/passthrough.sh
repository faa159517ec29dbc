#!/bin/bash
# The passthrough against the filesystem it mirrors: throughput and metadata rate.
#
#   REPS=5 bash bench/passthrough.sh          (root; run `npx tsc -p .` first)
#
# SRC is a tmpfs (so the disk does not hide the FUSE cost); MNT is
# `tsfuse passthrough SRC MNT` (default options: default_permissions, 1 s
# entry/attr timeouts, 1 MiB max_write). Each round runs, native (SRC) and
# through tsfuse (MNT) alternately:
#   write  dd 256 MiB in 1 MiB blocks to a new file, then fsync
#   read   dd the same file back after `echo 3 > drop_caches` (through FUSE this
#          is cold: READ requests reach the server; tmpfs itself stays in memory)
#   meta   bench/metaclient: N × (create, close, stat, unlink)
# Output: one line per run, then medians (min..max) and the ratios tsfuse/native.
# Environment: REPS (5), SIZE_MB (256), FILES (5000), NODE (node), KEEP_TMP=1.
set -u
REPS=${REPS:-5}
SIZE_MB=${SIZE_MB:-256}
FILES=${FILES:-5000}
NODE=${NODE:-node}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=$ROOT/dist/src/cli/main.js

die() { echo "passthrough.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mount(2), tmpfs, drop_caches)"
[ -f "$CLI" ] || die "$CLI missing: run 'npx tsc -p .' in $ROOT first"

W=$(mktemp -d "${TMPDIR:-/tmp}/tsfuse-ptbench.XXXXXX") || die "mktemp failed"
SRC=$W/src
MNT=$W/mnt
mkdir -p "$SRC" "$MNT"
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  umount -l "$MNT" 2>/dev/null
  umount -l "$SRC" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -O2 -o "$W/metaclient" "$ROOT/bench/metaclient.c" || die "cannot build metaclient"
mount -t tmpfs -o size=$((SIZE_MB * 2 + 64))m tsfuse-ptbench "$SRC" || die "tmpfs mount failed"
"$NODE" "$CLI" passthrough "$SRC" "$MNT" -f -o fsname=tsfuse-ptbench >"$W/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "mounted" "$W/server.log" && break; sleep 0.1; done
grep -q "mounted" "$W/server.log" || die "server did not mount: $(cat "$W/server.log")"

# MB/s of a dd run (dd's own figure, converted from its unit).
dd_rate() {
  LC_ALL=C dd "$@" 2>&1 | awk '/copied/ { v=$(NF-1); u=$NF; if (u ~ /^GB/) v*=1000; if (u ~ /^kB/) v/=1000; print v }'
}
declare -A R
run() { # name dir
  local name=$1 dir=$2
  rm -f "$dir/big"
  local w r m
  w=$(dd_rate if=/dev/zero of="$dir/big" bs=1M count="$SIZE_MB" conv=fsync)
  echo 3 > /proc/sys/vm/drop_caches
  r=$(dd_rate if="$dir/big" of=/dev/null bs=1M)
  rm -f "$dir/big"
  mkdir -p "$dir/meta"
  m=$("$W/metaclient" "$dir/meta" "$FILES" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  rmdir "$dir/meta"
  printf '%-7s write %8s MB/s  read %8s MB/s  meta %8s files/s\n' "$name" "$w" "$r" "$m"
  R[$name.write]+="$w "; R[$name.read]+="$r "; R[$name.meta]+="$m "
}
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then run native "$SRC"; run tsfuse "$MNT"; else run tsfuse "$MNT"; run native "$SRC"; fi
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR]=$1 } END { m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f (%s..%s)", m, a[1], a[NR] }'; }
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR]=$1 } END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
echo
echo "# medians over $REPS rounds: ${SIZE_MB} MiB dd, $FILES files"
for k in write read meta; do
  n=$(echo "${R[native.$k]}" | med); t=$(echo "${R[tsfuse.$k]}" | med)
  printf '%-5s native %-28s tsfuse %-28s ratio tsfuse/native %.3f\n' "$k" "$(echo "${R[native.$k]}" | median)" "$(echo "${R[tsfuse.$k]}" | median)" "$(awk -v a="$t" -v b="$n" 'BEGIN { print a / b }')"
done

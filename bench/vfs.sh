#!/bin/bash
# The cost of the VFS layer: stat() round trips through a filesystem mounted alone
# and through the same filesystem attached at /x of a Vfs, in the same run.
#
#   REPS=7 SECS=3 bash bench/vfs.sh          (root; run `npx tsc -p .` first)
#
# Configurations (each round runs all four, in a rotating order; server and client
# pinned to CPU $PIN_CPU, then the same unpinned):
#   raw        bench/rtt-server.js (a raw FileSystem), stat MNT/f
#   raw-vfs    the same FileSystem at /x of a Vfs (VFS=1), stat MNT/x/f
#   tree       the same as an InodeTree (TREE=1)
#   tree-vfs   the InodeTree at /x of a Vfs
# Every stat() is one GETATTR round trip (attr_valid 0, the dentry cached for an hour).
# Prints each run, then the medians and the ratios vfs/alone.
set -u
REPS=${REPS:-7}
SECS=${SECS:-3}
WARM=${WARM:-0.5}
PIN_CPU=${PIN_CPU:-0}
NODE=${NODE:-node}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "vfs.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mount(2))"
[ -f "$ROOT/dist/bench/rtt-server.js" ] || die "run 'npx tsc -p .' in $ROOT first"
W=$(mktemp -d "${TMPDIR:-/tmp}/tsfuse-vfsbench.XXXXXX") || die "mktemp failed"
MNT=$W/mnt; mkdir -p "$MNT" "$W/bin"
gcc -Wall -O2 -o "$W/bin/statclient" "$ROOT/bench/statclient.c" || die "building statclient failed"
# A snapshot of the compiled code: a concurrent tsc elsewhere rewrites dist/.
SNAP=$W/pkg; mkdir -p "$SNAP/dist" "$SNAP/build/Release"
cp -r "$ROOT/dist/src" "$ROOT/dist/bench" "$ROOT/dist/examples" "$SNAP/dist/" && cp "$ROOT/package.json" "$SNAP/" &&
  cp "$ROOT/build/Release/tsfuse.node" "$SNAP/build/Release/" || die "cannot snapshot dist/"
ln -s "$ROOT/node_modules" "$SNAP/node_modules"
SRV=
cleanup() {
  [ -n "$SRV" ] && kill -TERM "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  grep -q " $MNT " /proc/mounts && umount -l "$MNT"
  rm -rf "$W"
}
trap cleanup EXIT
RES=$W/res; : >"$RES"
run() { # cfg pin
  local cfg=$1 pin=$2 env path pre=
  case $cfg in
    raw) env="VFS=0 TREE=0"; path=$MNT/f ;;
    raw-vfs) env="VFS=1 TREE=0"; path=$MNT/x/f ;;
    tree) env="VFS=0 TREE=1"; path=$MNT/f ;;
    tree-vfs) env="VFS=1 TREE=1"; path=$MNT/x/f ;;
  esac
  [ "$pin" = pinned ] && pre="taskset -c $PIN_CPU"
  : >"$W/out"
  env $env $pre "$NODE" "$SNAP/dist/bench/rtt-server.js" "$MNT" >"$W/out" 2>"$W/err" &
  SRV=$!
  for _ in $(seq 400); do grep -q READY "$W/out" && break; sleep 0.05; done
  grep -q READY "$W/out" || { cat "$W/err" >&2; die "$cfg server did not start"; }
  local r
  r=$($pre "$W/bin/statclient" "$path" "$SECS" "$WARM" | sed -n 's/.*rate=\([0-9.]*\).*errors=\([0-9]*\).*/\1 \2/p')
  kill -TERM "$SRV"; wait "$SRV" 2>/dev/null; SRV=
  set -- $r
  [ "${2:-1}" = 0 ] || die "$cfg: the client saw errors ($r)"
  echo "$cfg $pin $1" | tee -a "$RES"
}
CFGS=(raw raw-vfs tree tree-vfs)
for rep in $(seq "$REPS"); do
  for pin in pinned unpinned; do
    for i in 0 1 2 3; do run "${CFGS[$(( (i + rep) % 4 ))]}" "$pin"; done
  done
done
echo
echo "medians (stat/s) over $REPS rounds of ${SECS}s:"
for pin in pinned unpinned; do
  for cfg in "${CFGS[@]}"; do
    m=$(awk -v c="$cfg" -v p="$pin" '$1 == c && $2 == p { print $3 }' "$RES" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    printf '  %-9s %-9s %10.0f\n' "$cfg" "$pin" "$m"
    eval "M_${cfg//-/_}_$pin=$m"
  done
  awk -v a="$(eval echo \$M_raw_$pin)" -v b="$(eval echo \$M_raw_vfs_$pin)" -v c="$(eval echo \$M_tree_$pin)" -v d="$(eval echo \$M_tree_vfs_$pin)" -v p="$pin" \
    'BEGIN { printf "  %s: raw-vfs/raw %.3f (%.2f us per request), tree-vfs/tree %.3f (%.2f us per request)\n", p, b / a, 1e6 / b - 1e6 / a, d / c, 1e6 / d - 1e6 / c }'
done

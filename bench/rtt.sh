#!/bin/bash
# stat() round trips per second: tsfuse vs the C reference server, same client.
#
#   REPS=5 SECS=5 bash bench/rtt.sh          (root; run `npx tsc -p .` first)
#
# Every round (REPS, interleaved; the order of the configurations rotates each
# round) runs, pinned (server and client on CPU $PIN_CPU) and unpinned:
#   rtt      kernel-probes `rtt 1 st SECS`: C server, its own forked client
#            (the same stat loop as statclient; pinned with KP_SRV_CPU/KP_CLI_CPU)
#   cserver  bench/cserver.c (rtt's server loop, serving until SIGTERM) + statclient
#   tsfuse   dist/bench/rtt-server.js + statclient
#            (statclient runs WARM seconds unmeasured first, for both servers)
#   native   kernel-probes `statloop` on a tmpfs file (no FUSE): the kernel reference
# Pinned = `taskset -c $PIN_CPU` on server and client (whole process, all threads).
# Output: one line per run, then medians and the ratios tsfuse/rtt and tsfuse/cserver.
# Environment: REPS (5), SECS (5), WARM (0.5), PIN_CPU (0), KP_SRC (../shared/kernel-probes from the project root),
#   NODE (node), KEEP_TMP=1 keeps the work directory (logs).
set -u
REPS=${REPS:-5}
SECS=${SECS:-5}
WARM=${WARM:-0.5}
PIN_CPU=${PIN_CPU:-0}
NODE=${NODE:-node}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KP_SRC=${KP_SRC:-$ROOT/../shared/kernel-probes}
SERVER_JS=$ROOT/dist/bench/rtt-server.js

die() { echo "rtt.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mount(2))"
[ -e /dev/fuse ] || die "/dev/fuse missing"
[ -f "$SERVER_JS" ] || die "$SERVER_JS missing: run 'npx tsc -p .' in $ROOT first"
command -v taskset >/dev/null || die "taskset missing (util-linux)"

W=$(mktemp -d "${TMPDIR:-/tmp}/tsfuse-bench.XXXXXX") || die "mktemp failed"
W=$(cd "$W" && pwd -P)
MNT_C=$W/mnt-c
MNT_TS=$W/mnt-ts
export KP_DIR=$W/kprobe          # rtt mounts on $KP_DIR/mnt
MNT_RTT=$KP_DIR/mnt
mkdir -p "$MNT_C" "$MNT_TS" "$MNT_RTT"
SRV_PID=
TMPFS_MNT=

# ---- cleanup: stop our server, unmount everything under $W (lazily if needed) ----
is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
unmount_all() {
  local m
  for m in $(awk -v w="$W/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "rtt.sh: cannot unmount $m" >&2
  done
}
stop_server() {
  [ -n "$SRV_PID" ] || return 0
  if kill -0 "$SRV_PID" 2>/dev/null; then
    kill -TERM "$SRV_PID" 2>/dev/null
    local i
    for i in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$SRV_PID" 2>/dev/null; then
      echo "rtt.sh: server $SRV_PID ignored SIGTERM; unmounting lazily and killing it" >&2
      unmount_all
      kill -KILL "$SRV_PID" 2>/dev/null
    fi
  fi
  wait "$SRV_PID" 2>/dev/null
  SRV_PID=
}
cleanup() {
  stop_server
  unmount_all
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "work directory kept: $W" >&2
  elif ! awk -v w="$W/" 'index($2, w) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
    rm -rf --one-file-system "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build (kernel-probes is read-only and shared: build in a copy) ----
mkdir -p "$W/kp" "$W/bin"
cp "$KP_SRC"/Makefile "$KP_SRC"/kp.h "$KP_SRC"/rtt.c "$KP_SRC"/statloop.c "$W/kp/" || die "cannot copy $KP_SRC"
chmod u+w "$W/kp"/*
make -s -C "$W/kp" rtt statloop >"$W/build.log" 2>&1 || { cat "$W/build.log" >&2; die "building kernel-probes failed"; }
gcc -Wall -O2 -o "$W/bin/statclient" "$ROOT/bench/statclient.c" 2>>"$W/build.log" || { cat "$W/build.log" >&2; die "building statclient failed"; }
gcc -Wall -O2 -pthread -I"$W/kp" -o "$W/bin/cserver" "$ROOT/bench/cserver.c" 2>>"$W/build.log" || { cat "$W/build.log" >&2; die "building cserver failed"; }
RTT=$W/kp/rtt STATLOOP=$W/kp/statloop STATCLIENT=$W/bin/statclient CSERVER=$W/bin/cserver

# Snapshot the compiled server (dist/src, dist/bench, the addon, package.json for
# "type": "module"): a concurrent `tsc` elsewhere rewrites dist/ while we run.
SNAP=$W/pkg
mkdir -p "$SNAP/dist" "$SNAP/build/Release"
cp -r "$ROOT/dist/src" "$ROOT/dist/bench" "$SNAP/dist/" && cp "$ROOT/package.json" "$SNAP/" &&
  cp "$ROOT/build/Release/tsfuse.node" "$SNAP/build/Release/" || die "cannot snapshot dist/ and build/Release/tsfuse.node"
SERVER_JS=$SNAP/dist/bench/rtt-server.js

# ---- native reference file on a tmpfs ----
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  NATIVE=$(mktemp /dev/shm/tsfuse-bench.XXXXXX)
else
  TMPFS_MNT=$W/tmpfs; mkdir -p "$TMPFS_MNT"; mount -t tmpfs -o size=1m tsfuse-bench "$TMPFS_MNT" || die "mount tmpfs failed"
  NATIVE=$TMPFS_MNT/f
fi
head -c 4096 /dev/zero >"$NATIVE"
trap 'rm -f "$NATIVE"; cleanup' EXIT

RES=$W/results   # lines: cfg pin rep rate
: >"$RES"
LOG=$W/runs.log

# ---- one run of each configuration ----
# pinning prefix for a pin mode
pin_cmd() { if [ "$1" = pinned ]; then echo "taskset -c $PIN_CPU"; fi; }

# start a server (stdout → $W/srv.out), wait for READY
start_server() { # pin name cmd...
  local pin=$1 name=$2; shift 2
  : >"$W/srv.out"; : >"$W/srv.err"
  $(pin_cmd "$pin") "$@" >"$W/srv.out" 2>>"$W/srv.err" &
  SRV_PID=$!
  local i
  for i in $(seq 400); do
    grep -q READY "$W/srv.out" && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "rtt.sh: $name server did not become ready; stderr:" >&2; grep -v '^ *at ' "$W/srv.err" | tail -8 >&2
  stop_server
  return 1
}

record() { # cfg pin rep rate extra...
  local cfg=$1 pin=$2 rep=$3 rate=$4; shift 4
  echo "$cfg $pin $rep $rate" >>"$RES"
  printf 'rep=%s %-8s %-8s %10s stat/s  load1=%s %s\n' "$rep" "$cfg" "$pin" "$rate" "$LOAD" "$*"
}

run_rtt() { # pin rep
  local out rate env=()
  [ "$1" = pinned ] && env=(KP_SRV_CPU=$PIN_CPU KP_CLI_CPU=$PIN_CPU)
  out=$(env "${env[@]}" timeout --foreground $(( ${SECS%.*} + 60 )) "$RTT" 1 st "$SECS" 2>&1 | grep RESULT)
  rate=$(sed -n 's/.*: \([0-9]*\) stat\/s total.*/\1/p' <<<"$out")
  local errs; errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$rate" ] || { echo "rtt.sh: rtt failed: $out" >&2; return 1; }
  record rtt "$1" "$2" "$rate" "errors=$errs"
}

run_served() { # cfg pin rep mnt servercmd...
  local cfg=$1 pin=$2 rep=$3 mnt=$4; shift 4
  start_server "$pin" "$cfg" "$@" || return 1
  local out; out=$($(pin_cmd "$pin") timeout --foreground $(( ${SECS%.*} + 60 )) "$STATCLIENT" "$mnt/f" "$SECS" "$WARM" 2>&1)
  stop_server
  is_mounted "$mnt" && { echo "rtt.sh: $mnt still mounted after server exit; unmounting lazily" >&2; umount -l "$mnt"; }
  local rate ops errs srv wops
  rate=$(sed -n 's/^RESULT .*rate=\([0-9]*\).*/\1/p' <<<"$out")
  ops=$(sed -n 's/^RESULT ops=\([0-9]*\).*/\1/p' <<<"$out")
  errs=$(sed -n 's/^RESULT .*errors=\([0-9]*\).*/\1/p' <<<"$out")
  wops=$(sed -n 's/^RESULT .*warmup_ops=\([0-9]*\).*/\1/p' <<<"$out")
  srv=$(sed -n 's/^STATS getattr=\([0-9]*\).*/\1/p' "$W/srv.out")
  [ -n "$rate" ] || { echo "rtt.sh: $cfg client failed: $out" >&2; return 1; }
  record "$cfg" "$pin" "$rep" "$rate" "errors=$errs ops=$ops warmup_ops=${wops:-0} server_getattr=${srv:-?}"
}

run_cserver() { run_served cserver "$1" "$2" "$MNT_C" "$CSERVER" "$MNT_C"; }
run_tsfuse() { run_served tsfuse "$1" "$2" "$MNT_TS" "$NODE" "$SERVER_JS" "$MNT_TS"; }

run_native() { # pin rep
  local out rate
  out=$($(pin_cmd "$1") "$STATLOOP" "$NATIVE" "$SECS" 2>&1)
  rate=$(sed -n 's/.*: \([0-9]*\) stat\/s.*/\1/p' <<<"$out")
  [ -n "$rate" ] || { echo "rtt.sh: statloop failed: $out" >&2; return 1; }
  record native "$1" "$2" "$rate"
}

echo "# tsfuse stat() round-trip benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, node $($NODE --version)"
echo "# source: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (dist/ as compiled at start; 'dirty' = uncommitted src changes may be in it)"
echo "# REPS=$REPS SECS=$SECS WARM=$WARM pinned=taskset -c $PIN_CPU (rtt: KP_SRV_CPU=KP_CLI_CPU=$PIN_CPU); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
CFGS=(rtt cserver tsfuse native)
for rep in $(seq "$REPS"); do
  for pin in pinned unpinned; do
    for k in 0 1 2 3; do
      cfg=${CFGS[$(( (k + rep - 1) % 4 ))]}
      LOAD=$(cut -d' ' -f1 /proc/loadavg)
      run_"$cfg" "$pin" "$rep" || echo "rep=$rep $cfg $pin FAILED"
    done
  done
done

# ---- summary ----
median_g() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else if (NR) printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (!NR) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
values() { awk -v c="$1" -v p="$2" '$1 == c && $2 == p { print $4 }' "$RES"; }
echo
echo "# summary: median stat/s over $REPS rounds of ${SECS}s (min..max)"
for pin in pinned unpinned; do
  for cfg in rtt cserver tsfuse native; do
    m=$(values $cfg $pin | median)
    r=$(values $cfg $pin | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s..%s", lo, hi }')
    us=$(awk -v m="$m" 'BEGIN { if (m > 0) printf "%.2f", 1e6 / m }')
    printf '%-8s %-8s median %8s stat/s  (%s us/op)  range %s\n' "$cfg" "$pin" "${m:-n/a}" "${us:-n/a}" "${r:-n/a}"
    eval "MED_${cfg}_${pin}=${m:-0}"
  done
done
per_round() { # pin cfg: median over rounds of tsfuse/cfg
  awk -v p="$1" -v c="$2" '$2 == p { v[$1 " " $3] = $4; r[$3] = 1 }
    END { for (k in r) if (v[c " " k] > 0 && v["tsfuse " k] > 0) print v["tsfuse " k] / v[c " " k] }' "$RES" | median_g
}
echo
for pin in pinned unpinned; do
  ts=$(eval echo \$MED_tsfuse_$pin); rt=$(eval echo \$MED_rtt_$pin); cs=$(eval echo \$MED_cserver_$pin)
  # per-round ratios (same round, adjacent in time) are less sensitive to load drift
  per_rtt=$(per_round "$pin" rtt); per_cs=$(per_round "$pin" cserver)
  awk -v p="$pin" -v ts="$ts" -v rt="$rt" -v cs="$cs" -v pr="$per_rtt" -v pc="$per_cs" 'BEGIN {
    printf "ratio %-8s tsfuse/rtt = %s  tsfuse/cserver = %s   (medians of per-round ratios: %s, %s)\n", p,
      (rt > 0 ? sprintf("%.3f", ts / rt) : "n/a"), (cs > 0 ? sprintf("%.3f", ts / cs) : "n/a"),
      (pr == "" ? "n/a" : pr), (pc == "" ? "n/a" : pc) }'
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

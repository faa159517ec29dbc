#!/bin/bash
# tsfuse's passthrough against the native source and peer FUSE servers, same run, same workloads.
#
#   npx tsc -p . && bash bench/peers.sh              (root; full: REPS=3, ~20 min)
#   npx tsc -p . && QUICK=1 bash bench/peers.sh      (2,000 files, 128 MiB, 1 round, 2 s fio)
#
# Configurations (rows; each FUSE server gets its own fresh tmpfs source, entry/attr timeouts 1 s;
# the exact command lines are written to the results file):
#   native            the tmpfs source itself, no FUSE
#   pll, pll-nodp     libfuse 3 example passthrough_ll (Debian libfuse3-dev), multi-threaded
#                     (its default), -o timeout=1, with/without -o default_permissions
#   pll-st            passthrough_ll -s (single-threaded), default_permissions
#   gofuse, gofuse-nodp   go-fuse fs.NewLoopbackRoot (bench/peers/gofuse-loopback.go, Debian go-fuse)
#   fusenative, fusenative-nodp   npm fuse-native (libfuse 2), bench/peers/fuse-native-server.cjs
#   tsfuse            `tsfuse passthrough SRC MNT -f` (default_permissions is its default)
#   tsfuse-nodp       + -o nodefault_permissions
#   tsfuse-kpt        + -o kernel_passthrough      (these four: rows marked n/a while
#   tsfuse-wb         + -o writeback_cache          the option does not exist yet)
#   tsfuse-thr2       + -o threads=2
#   tsfuse-uring      + -o io_uring (enable_uring is set to Y for this row, then restored)
#   tsfuse-handles    + --handles prefer (opt-in: only when VARIANTS names it)
# A name without -nodp has default_permissions on. Ratios pair each tsfuse row with the peer
# of the same default_permissions setting.
#
# Workloads (each round runs every configuration; the order rotates per round):
#   create, stat_warm (1.1 s after the creates: timeouts expired, dentries cached), stat_cold
#   (after drop_caches), readdir (getdents64, READDIR_RUNS times,
#   median), unlink: FILES files in one directory, bench/peers/peerclient.c, ops/s
#   seq_write: SIZE_MB MiB in 1 MiB blocks + fsync; seq_read: the same file after drop_caches; MB/s
#   rand_{buf,direct}_{1,4}j: fio 4 KiB randread (psync), buffered / O_DIRECT, 1 and 4 jobs,
#     FIO_SECS s each, on a FIO_MB MiB file laid out on the source; IOPS
#   tree: TREE_DIRS × TREE_FILES empty files made on the source; after drop_caches,
#     `find MNT/tree -type f` then lstat() of each listed file; files/s (both together)
# For every phase: server CPU (utime+stime of the server and its descendants from
# /proc/PID/stat) per op, and the busy CPU of everything else (/proc/stat minus server,
# this script and its clients) as a percentage of all CPUs.
#
# Environment: QUICK=1, REPS (3), FILES (10000), SIZE_MB (1024), FIO_MB (1024), FIO_SECS (3),
#   TREE_DIRS (50), TREE_FILES (1000), READDIR_RUNS (3),
#   SERVERS (families: "native pll gofuse fusenative tsfuse"),
#   VARIANTS (configuration names, e.g. "tsfuse tsfuse-nodp pll"; default all of SERVERS),
#   WORKLOADS ("meta seq fio tree"), PHASE_TIMEOUT (900 s per client run), NODE (node),
#   PEERS_CACHE (${XDG_CACHE_HOME:-~/.cache}/tsfuse-bench: npm fuse-native, Go build cache),
#   OUT (bench/results), KEEP_TMP=1 (keep the work directory).
# Output: one line per run, then the tables; written to OUT/peers-<UTC date>.md and OUT/latest.md.
{ # the whole script is one compound command: bash parses it before running, so an edit or a
  # checkout of this file during a 20-minute run cannot change what runs
set -u
START_NS=$(date +%s%N)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODE=${NODE:-node}
QUICK=${QUICK:-0}
TREE_DIRS_SET=${TREE_DIRS:+1}
if [ "$QUICK" = 1 ]; then
  REPS=${REPS:-1}; FILES=${FILES:-2000}; SIZE_MB=${SIZE_MB:-128}; FIO_MB=${FIO_MB:-128}; FIO_SECS=${FIO_SECS:-2}
  TREE_DIRS=${TREE_DIRS:-20}; TREE_FILES=${TREE_FILES:-100}
else
  REPS=${REPS:-3}; FILES=${FILES:-10000}; SIZE_MB=${SIZE_MB:-1024}; FIO_MB=${FIO_MB:-1024}; FIO_SECS=${FIO_SECS:-3}
  TREE_DIRS=${TREE_DIRS:-50}; TREE_FILES=${TREE_FILES:-1000}
fi
READDIR_RUNS=${READDIR_RUNS:-3}
SERVERS=${SERVERS:-native pll gofuse fusenative tsfuse}
VARIANTS=${VARIANTS:-}
WORKLOADS=${WORKLOADS:-meta seq fio tree}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-900}
PEERS_CACHE=${PEERS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/tsfuse-bench}
OUT=${OUT:-$ROOT/bench/results}
CLI=$ROOT/dist/src/cli/main.js
FUSE_NATIVE_VERSION=2.2.6

say() { echo "peers.sh: $*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mount(2), tmpfs, drop_caches, apt-get)"
[ -e /dev/fuse ] || die "/dev/fuse missing"
[ -f "$CLI" ] || die "$CLI missing: run 'npx tsc -p .' in $ROOT first"
command -v "$NODE" >/dev/null || die "node ($NODE) missing"

# Passthrough servers hold an fd per inode they know (the tree alone has 50,000 files), and
# libfuse's passthrough_ll 3.14 does not raise its own limit: every server starts with this one.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
TREE_NOTE=
if [ -z "${TREE_DIRS_SET:-}" ] && [ "$NOFILE" != unlimited ] && [ $(( TREE_DIRS * TREE_FILES + 2000 )) -gt "$NOFILE" ]; then
  # Without CAP_SYS_RESOURCE the hard limit cannot be raised; a tree the fd-per-inode servers
  # (passthrough_ll, tsfuse) cannot hold would only measure EMFILE. TREE_DIRS=N overrides.
  TREE_NOTE="RLIMIT_NOFILE is $NOFILE and cannot be raised here: tree reduced from ${TREE_DIRS}x$TREE_FILES to $(( (NOFILE - 2000) / TREE_FILES ))x$TREE_FILES files (passthrough_ll and tsfuse hold an fd per inode the kernel knows)"
  TREE_DIRS=$(( (NOFILE - 2000) / TREE_FILES ))
fi

# ---- Debian packages (installed when missing) ----
need_pkgs=()
command -v gcc >/dev/null || need_pkgs+=(gcc libc6-dev)
command -v fio >/dev/null || need_pkgs+=(fio)
command -v find >/dev/null || need_pkgs+=(findutils)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
pkg-config --exists fuse3 2>/dev/null || need_pkgs+=(libfuse3-dev)
PLL_SRC_DIR=/usr/share/doc/libfuse3-dev/examples
GOFUSE_SRC=/usr/share/gocode/src/github.com/hanwen/go-fuse
case " $SERVERS " in *" gofuse "*)
  command -v go >/dev/null || need_pkgs+=(golang-go)
  [ -f "$GOFUSE_SRC/fs/loopback.go" ] || need_pkgs+=(golang-github-hanwen-go-fuse-dev) ;;
esac
case " $SERVERS " in *" fusenative "*)
  ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2 ' || need_pkgs+=(libfuse2)
  command -v npm >/dev/null || need_pkgs+=(npm) ;;
esac
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing missing Debian packages: ${need_pkgs[*]} (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"; } >&2 ||
    say "apt-get install failed; the configurations that need these packages will be marked failed"
fi

# ---- work directory, cleanup ----
W=$(mktemp -d "${TMPDIR:-/tmp}/tsfuse-peers.XXXXXX") || die "mktemp failed"
W=$(cd "$W" && pwd -P)
SRC=$W/src
MNT=$W/mnt
mkdir -p "$SRC" "$MNT" "$W/bin" "$W/log"
SRV_PID=
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_SAVED=
FUSECTL_MOUNTED=0

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
# Abort the FUSE connection mounted on $1 (a hung server): fusectl's abort file, found by
# the mount's device number in mountinfo (no stat(2) on the mount, which could hang).
abort_conn() {
  local dev minor
  dev=$(awk -v m="$1" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
  [ -n "$dev" ] || return 0
  minor=${dev#*:}
  if [ ! -e /sys/fs/fuse/connections/$minor ]; then
    mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null && FUSECTL_MOUNTED=1
  fi
  [ -e /sys/fs/fuse/connections/$minor/abort ] && echo 1 >/sys/fs/fuse/connections/$minor/abort
}
unmount_all() {
  local m
  for m in $(awk -v w="$W/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
  done
}
# descendants of a pid (children first found through /proc/*/stat's ppid), the pid included
tree_pids() {
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do tree_pids "$c"; done
}
stop_server() {
  [ -n "$SRV_PID" ] || return 0
  local i
  if kill -0 "$SRV_PID" 2>/dev/null; then
    kill -TERM "$SRV_PID" 2>/dev/null
    for i in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$SRV_PID" 2>/dev/null; then
      say "server $SRV_PID ignored SIGTERM for 5 s; unmounting $MNT and killing it"
      umount "$MNT" 2>/dev/null || { abort_conn "$MNT"; umount -l "$MNT" 2>/dev/null; }
      for i in $(seq 40); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
      local p; for p in $(tree_pids "$SRV_PID"); do kill -KILL "$p" 2>/dev/null; done
    fi
  fi
  wait "$SRV_PID" 2>/dev/null
  SRV_PID=
  # fuse-native (and a killed server) leave the mount behind
  if is_mounted "$MNT"; then umount "$MNT" 2>/dev/null || { abort_conn "$MNT"; umount -l "$MNT" 2>/dev/null; }; fi
}
restore_uring() {
  if [ -n "$URING_SAVED" ]; then echo "$URING_SAVED" >"$URING_PARAM" 2>/dev/null; URING_SAVED=; fi
}
cleanup() {
  stop_server
  unmount_all
  restore_uring
  [ "$FUSECTL_MOUNTED" = 1 ] && umount /sys/fs/fuse/connections 2>/dev/null
  if [ "${KEEP_TMP:-0}" = 1 ]; then say "work directory kept: $W"
  elif ! awk -v w="$W/" 'index($2, w) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
    rm -rf --one-file-system "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- builds ----
BUILD_LOG=$W/log/build.log
gcc -Wall -O2 -o "$W/bin/peerclient" "$ROOT/bench/peers/peerclient.c" 2>>"$BUILD_LOG" || { cat "$BUILD_LOG" >&2; die "building peerclient failed"; }
PC=$W/bin/peerclient
declare -A BROKEN   # family -> why it cannot run
if [[ " $SERVERS " == *" pll "* ]]; then
  mkdir -p "$W/pll"
  for f in passthrough_ll.c passthrough_helpers.h; do
    if [ -f "$PLL_SRC_DIR/$f" ]; then cp "$PLL_SRC_DIR/$f" "$W/pll/"
    elif [ -f "$PLL_SRC_DIR/$f.gz" ]; then gunzip -c "$PLL_SRC_DIR/$f.gz" >"$W/pll/$f"; fi
  done
  if ! gcc -Wall -O2 -o "$W/bin/passthrough_ll" "$W/pll/passthrough_ll.c" $(pkg-config --cflags --libs fuse3 2>/dev/null) >>"$BUILD_LOG" 2>&1; then
    BROKEN[pll]="build failed (gcc passthrough_ll.c, pkg-config fuse3): $(tail -1 "$BUILD_LOG")"
  fi
  PLL_VERSION=$(pkg-config --modversion fuse3 2>/dev/null)
fi
if [[ " $SERVERS " == *" gofuse "* ]]; then
  # GOPATH mode against Debian's source: go-fuse's import path is .../go-fuse/v2, so a
  # private GOPATH links it there (offline; no module download).
  G=$W/gopath
  mkdir -p "$G/src/github.com/hanwen/go-fuse" "$G/src/golang.org/x" "$G/src/gofusepeer"
  ln -s "$GOFUSE_SRC" "$G/src/github.com/hanwen/go-fuse/v2"
  ln -s /usr/share/gocode/src/golang.org/x/sys "$G/src/golang.org/x/sys"
  cp "$ROOT/bench/peers/gofuse-loopback.go" "$G/src/gofusepeer/main.go"
  mkdir -p "$PEERS_CACHE/go-build"
  if ! (cd "$G/src/gofusepeer" && GOPATH=$G GO111MODULE=off GOFLAGS= GOCACHE=$PEERS_CACHE/go-build go build -o "$W/bin/gofuse-loopback" .) >>"$BUILD_LOG" 2>&1; then
    BROKEN[gofuse]="build failed (go build against $GOFUSE_SRC): $(tail -1 "$BUILD_LOG")"
  fi
  GOFUSE_VERSION=$(dpkg-query -W -f '${Version}' golang-github-hanwen-go-fuse-dev 2>/dev/null)
  GO_VERSION=$(go version 2>/dev/null | awk '{ print $3 }')
fi
if [[ " $SERVERS " == *" fusenative "* ]]; then
  FN_DIR=$PEERS_CACHE/fuse-native
  if [ ! -f "$FN_DIR/node_modules/fuse-native/package.json" ]; then
    say "installing npm fuse-native@$FUSE_NATIVE_VERSION into $FN_DIR (outside the project)"
    mkdir -p "$FN_DIR"
    npm install --prefix "$FN_DIR" --no-save --no-audit --no-fund "fuse-native@$FUSE_NATIVE_VERSION" >>"$BUILD_LOG" 2>&1 ||
      BROKEN[fusenative]="npm install fuse-native failed: $(tail -1 "$BUILD_LOG")"
  fi
  if [ -z "${BROKEN[fusenative]:-}" ] && ! NODE_PATH=$FN_DIR/node_modules "$NODE" -e "require('fuse-native')" >>"$BUILD_LOG" 2>&1; then
    BROKEN[fusenative]="require('fuse-native') failed: $(grep -m1 -i error "$BUILD_LOG")"
  fi
  cp "$ROOT/bench/peers/fuse-native-server.cjs" "$W/bin/"
fi

# Snapshot the compiled tsfuse (others run tsc in this tree while we run).
SNAP=$W/pkg
mkdir -p "$SNAP/dist" "$SNAP/build/Release"
cp -r "$ROOT/dist/src" "$ROOT/dist/bench" "$ROOT/dist/examples" "$SNAP/dist/" && cp "$ROOT/package.json" "$SNAP/" &&
  cp "$ROOT/build/Release/tsfuse.node" "$SNAP/build/Release/" || die "cannot snapshot dist/ and build/Release/tsfuse.node"
ln -s "$ROOT/node_modules" "$SNAP/node_modules"
TSCLI=$SNAP/dist/src/cli/main.js

# Which -o words does this tsfuse know? (an unknown one fails before anything is mounted)
ts_knows() {
  local out
  out=$(timeout 20 "$NODE" "$TSCLI" passthrough "$W/nonexistent-src" "$W/nonexistent-mnt" -f -o "$1" 2>&1)
  ! grep -qi "unknown.*option\|invalid option ${1%%=*}" <<<"$out"
}
! ts_knows no_such_option_peers || die "cannot tell tsfuse's known options: $("$NODE" "$TSCLI" passthrough "$W/x" "$W/y" -f -o no_such_option_peers 2>&1 | grep -v '^ *at ' | tail -3)"
TS_TIMEOUTS=
if ts_knows entry_timeout=1 && ts_knows attr_timeout=1; then TS_TIMEOUTS=,entry_timeout=1,attr_timeout=1; fi

# ---- configurations ----
# name family dp description; the command is built in start_config
ALL_CONFIGS="native pll pll-nodp pll-st gofuse gofuse-nodp fusenative fusenative-nodp tsfuse tsfuse-nodp tsfuse-kpt tsfuse-wb tsfuse-thr2 tsfuse-uring tsfuse-handles"
OPT_IN=" tsfuse-handles "   # run only when VARIANTS names them
family() { case $1 in native) echo native ;; pll*) echo pll ;; gofuse*) echo gofuse ;; fusenative*) echo fusenative ;; tsfuse*) echo tsfuse ;; esac; }
ts_extra() { case $1 in tsfuse) echo "" ;; tsfuse-nodp) echo ",nodefault_permissions" ;; tsfuse-kpt) echo ",kernel_passthrough" ;;
  tsfuse-wb) echo ",writeback_cache" ;; tsfuse-thr2) echo ",threads=2" ;; tsfuse-uring) echo ",io_uring" ;; esac; }
CONFIGS=()
for c in $ALL_CONFIGS; do
  [[ " $SERVERS " == *" $(family "$c") "* ]] || continue
  if [ -n "$VARIANTS" ] && [[ " $VARIANTS " != *" $c "* ]]; then continue; fi
  if [ -z "$VARIANTS" ] && [[ "$OPT_IN" == *" $c "* ]]; then continue; fi
  CONFIGS+=("$c")
done
[ ${#CONFIGS[@]} -gt 0 ] || die "no configuration selected (SERVERS='$SERVERS' VARIANTS='$VARIANTS')"

# the server command line of a configuration (SRC and MNT as words)
config_cmd() {
  local c=$1 s=$2 m=$3
  case $c in
    pll) echo "$W/bin/passthrough_ll -f -o source=$s,timeout=1,fsname=pll-peer,default_permissions $m" ;;
    pll-nodp) echo "$W/bin/passthrough_ll -f -o source=$s,timeout=1,fsname=pll-peer $m" ;;
    pll-st) echo "$W/bin/passthrough_ll -f -s -o source=$s,timeout=1,fsname=pll-peer,default_permissions $m" ;;
    gofuse) echo "$W/bin/gofuse-loopback -default_permissions $s $m" ;;
    gofuse-nodp) echo "$W/bin/gofuse-loopback $s $m" ;;
    fusenative) echo "$NODE $W/bin/fuse-native-server.cjs $s $m default_permissions" ;;
    fusenative-nodp) echo "$NODE $W/bin/fuse-native-server.cjs $s $m" ;;
    tsfuse-handles) echo "$NODE $TSCLI passthrough $s $m -f --handles prefer -o fsname=tsfuse-peer$TS_TIMEOUTS" ;;
    tsfuse*) echo "$NODE $TSCLI passthrough $s $m -f -o fsname=tsfuse-peer$TS_TIMEOUTS$(ts_extra "$c")" ;;
  esac
}
config_note() {
  case $1 in
    native) echo "tmpfs (size=${TMPFS_MB}m), no FUSE" ;;
    pll|pll-nodp) echo "libfuse $PLL_VERSION example, multi-threaded (fuse_session_loop_mt, max_threads 10), entry/attr timeout 1 s (-o timeout=1), readdirplus, splice read" ;;
    pll-st) echo "libfuse $PLL_VERSION example, single-threaded (-s), timeout 1 s" ;;
    gofuse|gofuse-nodp) echo "go-fuse $GOFUSE_VERSION ($GO_VERSION), a goroutine per request, DirectMount, Entry/Attr/NegativeTimeout 1 s, MaxWrite 128 KiB" ;;
    fusenative|fusenative-nodp) echo "fuse-native $FUSE_NATIVE_VERSION (libfuse $(dpkg-query -W -f '${Version}' libfuse2 2>/dev/null) high-level, fuse_loop_mt → one JS thread), entry_timeout=1,attr_timeout=1,big_writes (128 KiB writes)" ;;
    tsfuse) echo "defaults: default_permissions, 1 s timeouts, max_write 1 MiB" ;;
    tsfuse-nodp) echo "the source checks permissions (as the caller)" ;;
    tsfuse-kpt) echo "FUSE_PASSTHROUGH: READ/WRITE go to the backing file in the kernel" ;;
    tsfuse-wb) echo "FUSE_WRITEBACK_CACHE" ;;
    tsfuse-thr2) echo "two worker threads" ;;
    tsfuse-handles) echo "--handles prefer: inodes keyed by file handles, not an fd each (opt-in row)" ;;
    tsfuse-uring) echo "FUSE over io_uring (/sys/module/fuse/parameters/enable_uring=Y during this row)" ;;
  esac
}

# ---- measurement helpers ----
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
now_ns() { date +%s%N; }
stat_ticks() { # utime+stime+cutime+cstime of a pid
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  set -- $s
  echo $(( ${12} + ${13} + ${14} + ${15} ))
}
# Server CPU in ns: the sum over the server's threads (and its descendants' threads) of the
# first field of /proc/PID/task/TID/schedstat (time on CPU, ns). A thread that exits within a
# phase takes its time with it; none of the servers here retires threads while serving
# (libfuse 3.14's max_idle_threads defaults to unlimited).
srv_ns() {
  local t=0 p f v rest
  [ -n "$SRV_PID" ] || { echo 0; return; }
  for p in $(tree_pids "$SRV_PID"); do
    for f in /proc/$p/task/*/schedstat; do
      read -r v rest <"$f" 2>/dev/null && t=$(( t + v ))
    done
  done
  echo $t
}
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

RAW=$W/raw.tsv     # round config metric value server_us_per_op others_pct
RUNS=$W/runs.tsv   # round config secs load1 others_pct status
RUN_LINES=$W/lines.txt
: >"$RAW"; : >"$RUNS"; : >"$RUN_LINES"
declare -A CUR     # metric -> value of this run, for the run line
declare -A CURCPU
RUN_BUSY=0 RUN_SRV=0 RUN_SELF=0 RUN_WALL=0

phase_begin() {
  P_T0=$(now_ns); P_SRV0=$(srv_ns); P_SELF0=$(stat_ticks $$); P_BUSY0=$(busy_ticks)
}
# phase_end ROUND CONFIG METRIC VALUE OPS  (VALUE empty or "err": failed)
phase_end() {
  local round=$1 cfg=$2 metric=$3 value=$4 ops=$5
  local t1 srv1 self1 busy1 dsrv dns dself dbusy wall cpu others
  t1=$(now_ns); srv1=$(srv_ns); self1=$(stat_ticks $$); busy1=$(busy_ticks)
  dsrv=$(( (srv1 - P_SRV0) * CLK_TCK / 1000000000 )); dns=$(( srv1 - P_SRV0 )); dself=$(( self1 - P_SELF0 )); dbusy=$(( busy1 - P_BUSY0 ))
  wall=$(( (t1 - P_T0) / 1000 ))   # µs
  RUN_BUSY=$(( RUN_BUSY + dbusy )); RUN_SRV=$(( RUN_SRV + dsrv )); RUN_SELF=$(( RUN_SELF + dself )); RUN_WALL=$(( RUN_WALL + wall ))
  others=$(awk -v b="$dbusy" -v s="$dsrv" -v c="$dself" -v w="$wall" -v n="$NCPU" -v hz="$CLK_TCK" \
    'BEGIN { o = (b - s - c) / hz * 1e6; if (o < 0) o = 0; printf "%.1f", (w > 0 ? 100 * o / (w * n) : 0) }')
  if [ -z "$value" ] || [ "$value" = err ]; then value=err; cpu=-
  elif [ "$cfg" = native ] || [ -z "$ops" ] || [ "$ops" = 0 ]; then cpu=-
  else cpu=$(awk -v t="$dns" -v n="$ops" 'BEGIN { printf "%.2f", t / 1e3 / n }')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$cfg" "$metric" "$value" "$cpu" "$others" >>"$RAW"
  CUR[$metric]=$value; CURCPU[$metric]=$cpu
}
field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" <<<" $2"; }
# run the client with a timeout; its RESULT line on stdout, errors logged
client() {
  local out
  out=$(timeout -k 10 "$PHASE_TIMEOUT" "$@" 2>>"$W/log/client.err")
  local rc=$?
  [ $rc = 124 ] && say "client timed out after ${PHASE_TIMEOUT}s: $*"
  [ $rc = 0 ] || { echo "client $* failed rc=$rc" >>"$W/log/client.err"; return 1; }
  grep '^RESULT' <<<"$out"
}

# ---- workloads ----
w_meta() { # round cfg dir
  local r=$1 c=$2 d=$3/meta out v i
  mkdir -p "$d" || { for m in create stat_warm stat_cold readdir unlink; do phase_begin; phase_end "$r" "$c" $m err 0; done; return; }
  phase_begin; out=$(client "$PC" create "$d" "$FILES"); phase_end "$r" "$c" create "$(field rate "$out")" "$FILES"
  # "Right after" the create pass is timing-dependent: 10,000 creates take about as long as the
  # 1 s timeouts, so some stats would hit the kernel's cache and some not. Waiting the timeouts
  # out makes every warm stat one revalidation (LOOKUP) with dentry and inode still cached.
  sleep 1.1
  phase_begin; out=$(client "$PC" stat "$d" "$FILES"); phase_end "$r" "$c" stat_warm "$(field rate "$out")" "$FILES"
  drop_caches
  phase_begin; out=$(client "$PC" stat "$d" "$FILES"); phase_end "$r" "$c" stat_cold "$(field rate "$out")" "$FILES"
  local rates=() n=0
  phase_begin
  for i in $(seq "$READDIR_RUNS"); do
    out=$(client "$PC" readdir "$d") || break
    rates+=("$(field rate "$out")"); n=$(( n + $(field ops "$out") ))
  done
  v=
  [ ${#rates[@]} = "$READDIR_RUNS" ] && v=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  phase_end "$r" "$c" readdir "$v" "$n"
  phase_begin; out=$(client "$PC" unlink "$d" "$FILES"); phase_end "$r" "$c" unlink "$(field rate "$out")" "$FILES"
  rm -rf "$d"
}
w_seq() {
  local r=$1 c=$2 f=$3/seq.dat out
  phase_begin; out=$(client "$PC" write "$f" "$SIZE_MB"); phase_end "$r" "$c" seq_write "$(field mbs "$out")" "$(field ops "$out")"
  drop_caches
  phase_begin; out=$(client "$PC" read "$f"); phase_end "$r" "$c" seq_read "$(field mbs "$out")" "$(field ops "$out")"
  rm -f "$f"
}
w_fio() {
  local r=$1 c=$2 dir=$3 out iops kb mode jobs direct
  # lay the file out on the source directly (not measured)
  dd if=/dev/zero of="$SRC/fio.dat" bs=1M count="$FIO_MB" status=none 2>>"$W/log/client.err"
  for mode in buf direct; do
    direct=0; [ $mode = direct ] && direct=1
    for jobs in 1 4; do
      drop_caches
      phase_begin
      out=$(timeout -k 10 "$PHASE_TIMEOUT" fio --name=rr --filename="$dir/fio.dat" --rw=randread --bs=4k --size="${FIO_MB}m" \
        --ioengine=psync --direct=$direct --numjobs=$jobs --time_based --runtime="$FIO_SECS" --group_reporting \
        --randrepeat=0 --norandommap --invalidate=1 --minimal 2>>"$W/log/client.err")
      iops=$(awk -F';' 'NR == 1 && $5 == 0 { print $8 }' <<<"$out")
      kb=$(awk -F';' 'NR == 1 { print $6 }' <<<"$out")
      [ -n "$iops" ] || { echo "fio $c $mode ${jobs}j: $out" >>"$W/log/client.err"; iops=err; }
      phase_end "$r" "$c" "rand_${mode}_${jobs}j" "$iops" "$(( ${kb:-0} / 4 ))"
    done
  done
  rm -f "$dir/fio.dat"
}
w_tree() {
  local r=$1 c=$2 dir=$3 t0 t1 n out ok=1
  mkdir -p "$SRC/tree"
  client "$PC" mktree "$SRC/tree" "$TREE_DIRS" "$TREE_FILES" >/dev/null || ok=0
  drop_caches
  phase_begin
  t0=$(now_ns)
  timeout -k 10 "$PHASE_TIMEOUT" find "$dir/tree" -type f >"$W/tree.list" 2>>"$W/log/client.err" || ok=0
  out=$(client "$PC" statlist "$W/tree.list") || ok=0
  t1=$(now_ns)
  n=$(wc -l <"$W/tree.list")
  [ "$n" = $(( TREE_DIRS * TREE_FILES )) ] || { echo "tree $c: find listed $n files" >>"$W/log/client.err"; ok=0; }
  local v=err; [ $ok = 1 ] && v=$(awk -v n="$n" -v t=$(( t1 - t0 )) 'BEGIN { printf "%.1f", n / (t / 1e9) }')
  phase_end "$r" "$c" tree "$v" "$n"
  rm -f "$W/tree.list"
}

METRICS="create stat_warm stat_cold readdir unlink seq_write seq_read rand_buf_1j rand_buf_4j rand_direct_1j rand_direct_4j tree"
declare -A NA  # config -> reason it did not run

TMPFS_MB=$(( SIZE_MB + FIO_MB + 512 ))
start_server() { # cfg; 0 = mounted, 1 = failed, 2 = option not available
  local c=$1 i cmd log=$W/log/$1.log
  cmd=$(config_cmd "$c" "$SRC" "$MNT")
  echo "\$ $cmd" >>"$log"
  if [ "$c" = tsfuse-uring ] && [ -w "$URING_PARAM" ]; then
    URING_SAVED=$(cat "$URING_PARAM"); echo Y >"$URING_PARAM"
  fi
  case $c in
    fusenative*) NODE_PATH=$FN_DIR/node_modules $cmd >>"$log" 2>&1 & ;;
    *) $cmd >>"$log" 2>&1 & ;;
  esac
  SRV_PID=$!
  for i in $(seq 300); do
    if awk -v m="$MNT" '$2 == m && $3 ~ /^fuse/ { f = 1 } END { exit !f }' /proc/mounts; then
      timeout 10 stat "$MNT" >/dev/null 2>&1 && return 0
    fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  wait "$SRV_PID" 2>/dev/null
  local dead=$?
  if grep -qi "unknown.*option\|invalid option" "$log"; then stop_server; return 2; fi
  say "$c did not mount (exit $dead): $(grep -v '^ *at \|^\$ ' "$log" | tail -3 | tr '\n' ' ')"
  stop_server
  return 1
}

run_config() { # round cfg
  local r=$1 c=$2 dir status=ok t0 load1 fam
  fam=$(family "$c")
  CUR=(); CURCPU=()
  RUN_BUSY=0 RUN_SRV=0 RUN_SELF=0 RUN_WALL=0
  if [ -n "${BROKEN[$fam]:-}" ]; then NA[$c]=${BROKEN[$fam]}; return; fi
  if [ -n "${NA[$c]:-}" ]; then return; fi
  t0=$(now_ns)
  load1=$(cut -d' ' -f1 /proc/loadavg)
  mount -t tmpfs -o size=${TMPFS_MB}m "peers-src-$c" "$SRC" || { say "tmpfs mount failed"; return; }
  if [ "$c" = native ]; then dir=$SRC
  else
    start_server "$c"
    case $? in
      0) dir=$MNT ;;
      2) NA[$c]="n/a (option not available: $(grep -m1 -i "unknown.*option\|invalid option" "$W/log/$c.log" | sed 's/ (known: .*//' | cut -c1-160))"
         umount "$SRC"; restore_uring; return ;;
      *) NA[$c]="failed to mount: $(grep -v '^ *at \|^\$ ' "$W/log/$c.log" | tail -2 | tr '\n' ' ' | cut -c1-200)"; umount "$SRC"; restore_uring; return ;;
    esac
  fi
  local w
  for w in $WORKLOADS; do
    "w_$w" "$r" "$c" "$dir"
    if [ -n "$SRV_PID" ] && ! kill -0 "$SRV_PID" 2>/dev/null; then
      say "$c: server died during $w (log: $(tail -2 "$W/log/$c.log" | tr '\n' ' '))"; status="server died in $w"; break
    fi
  done
  stop_server
  restore_uring
  umount "$SRC" 2>/dev/null || umount -l "$SRC"
  local secs others
  secs=$(( ($(now_ns) - t0) / 1000000000 ))
  others=$(awk -v b="$RUN_BUSY" -v s="$RUN_SRV" -v c="$RUN_SELF" -v w="$RUN_WALL" -v n="$NCPU" -v hz="$CLK_TCK" \
    'BEGIN { o = (b - s - c) / hz * 1e6; if (o < 0) o = 0; printf "%.1f", (w > 0 ? 100 * o / (w * n) : 0) }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$secs" "$load1" "$others" "$status" >>"$RUNS"
  local line m
  line=$(printf 'r%s %-15s' "$r" "$c")
  for m in $METRICS; do [ -n "${CUR[$m]:-}" ] && line+=" $m=${CUR[$m]%.*}"; done
  line+=" | load1=$load1 others=${others}% ${secs}s"
  [ "$status" = ok ] || line+=" [$status]"
  echo "$line" | tee -a "$RUN_LINES"
  if [ "$c" != native ]; then
    line="   server µs/op:"
    for m in $METRICS; do [ -n "${CURCPU[$m]:-}" ] && line+=" $m=${CURCPU[$m]}"; done
    echo "$line" | tee -a "$RUN_LINES"
  fi
}

REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)
if [ -n "$REV" ] && [ -n "$(cd "$ROOT" && git status --porcelain -- src native bench 2>/dev/null)" ]; then REV=$REV-dirty; fi
echo "# peers.sh $(date -u '+%F %T') UTC rev=$REV kernel=$(uname -r) cpus=$NCPU load=$(cut -d' ' -f1-3 /proc/loadavg)"
echo "# nofile=$NOFILE REPS=$REPS FILES=$FILES SIZE_MB=$SIZE_MB FIO_MB=$FIO_MB FIO_SECS=$FIO_SECS TREE=${TREE_DIRS}x$TREE_FILES WORKLOADS='$WORKLOADS'"
echo "# configurations: ${CONFIGS[*]}"
for f in "${!BROKEN[@]}"; do say "$f: ${BROKEN[$f]}"; done
[ -z "$TREE_NOTE" ] || say "$TREE_NOTE"
[ -n "$TS_TIMEOUTS" ] || say "tsfuse does not know entry_timeout/attr_timeout: its defaults (1 s) are used"

N=${#CONFIGS[@]}
for rep in $(seq "$REPS"); do
  for i in $(seq 0 $(( N - 1 ))); do
    run_config "$rep" "${CONFIGS[$(( (i + rep - 1) % N ))]}"
  done
done
for c in "${!NA[@]}"; do say "$c: ${NA[$c]}"; done

# ---- report ----
END_NS=$(now_ns)
TOTAL_S=$(( (END_NS - START_NS) / 1000000000 ))
META=$W/meta.tsv
{
  printf 'date\t%s\n' "$(date -u '+%F %T') UTC"
  printf 'command\t%s\n' "$(env | grep -E '^(QUICK|REPS|FILES|SIZE_MB|FIO_MB|FIO_SECS|TREE_DIRS|TREE_FILES|READDIR_RUNS|SERVERS|VARIANTS|WORKLOADS)=' | sed "s/=\(.*\)/='\1'/" | tr '\n' ' ')bash bench/peers.sh"
  printf 'rev\t%s\n' "$REV"
  printf 'kernel\t%s\n' "$(uname -r)"
  printf 'node\t%s\n' "$("$NODE" --version)"
  printf 'cpus\t%s\n' "$NCPU"
  printf 'params\tRLIMIT_NOFILE=%s REPS=%s FILES=%s SIZE_MB=%s FIO_MB=%s FIO_SECS=%s TREE=%sx%s READDIR_RUNS=%s\n' "$NOFILE" "$REPS" "$FILES" "$SIZE_MB" "$FIO_MB" "$FIO_SECS" "$TREE_DIRS" "$TREE_FILES" "$READDIR_RUNS"
  printf 'total_s\t%s\n' "$TOTAL_S"
  printf 'tree_note\t%s\n' "$TREE_NOTE"
  printf 'fio\t%s\n' "$(fio --version)"
  for c in "${CONFIGS[@]}"; do
    printf 'config\t%s\t%s\t%s\t%s\n' "$c" "$( [ "$c" = native ] && echo "(none: SRC itself)" || config_cmd "$c" SRC MNT | sed "s#$W/bin/##g; s#$SNAP/##g")" "$(config_note "$c")" "${NA[$c]:-}"
  done
} >"$META"
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%d-%H%M%S)
REPORT=$OUT/peers-$STAMP.md
"$NODE" "$ROOT/bench/peers/report.mjs" "$META" "$RAW" "$RUNS" "$RUN_LINES" >"$REPORT" || die "report failed (raw data kept in $W)"
cp "$REPORT" "$OUT/latest.md"
echo
sed -n '/^## Medians/,$p' "$REPORT" | sed '/^## Runs/,$d'
echo "written: $REPORT and $OUT/latest.md (total ${TOTAL_S}s)"
exit 0
}

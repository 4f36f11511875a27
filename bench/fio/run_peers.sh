#!/usr/bin/env bash
# fio (and a create/stat/unlink job) against lanefs and peer filesystems on
# this machine, interleaved; writes the "## fio against peer filesystems"
# section of docs/benchmarks.md (between its marker comments, leaving every
# other section alone) and the charts docs/img/fio-peers-*.png.
#
# Usage: bench/fio/run_peers.sh BUILD_DIR        (as root; `make bench-fio`)
# Knobs (environment; see bench/fio/README.md):
#   BACKING="tmpfs"      where every peer keeps its data: tmpfs, ext4, or
#                        "tmpfs ext4" (both, one after the other; `make bench-fio`)
#   ROUNDS=3 SEQ_SIZE=512M SEQ_RUNTIME=60 RUNTIME=8 RAMP=2 META_FILES=2000
#   PEERS="lanefs glusterfs passthrough tmpfs" (sshfs available)
#   TMPFS_SIZE=4g LANEFS_MOUNT_OPTS= PERF=1 WRITE_DOCS=1
#   FUSE_URING=1         turn the kernel's fuse.enable_uring on for the run
#                        (where it exists; put back at exit), so lanefs's
#                        default fuse_channel=auto takes FUSE over io_uring,
#                        as `lanefs local setup fuse-uring on` would; 0 leaves
#                        it as it is. libfuse peers (3.14) never use it.
#   PROFILE_JOBS="seq_read_direct rand_read rand_write" (extra lanefs runs under perf)
#   BENCH_WORK=/var/tmp/lanefs-bench  BENCH_RESULTS=/var/tmp/lanefs-bench-results/<stamp>
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(cd "$here/../.." && pwd)
BUILD_DIR=$1
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$src_dir/$BUILD_DIR
if [[ $(id -u) != 0 ]]; then
  echo "$0: must run as root (mounts, drop_caches, glusterd)" >&2
  exit 1
fi

BACKING=${BACKING:-tmpfs}
ROUNDS=${ROUNDS:-3}
export SEQ_SIZE=${SEQ_SIZE:-512M}
export SEQ_RUNTIME=${SEQ_RUNTIME:-60}
# Time-based jobs (seq read O_DIRECT, rand read, rand write): RAMP s of
# warm-up, then RUNTIME s measured. RAND_RUNTIME/RAND_RAMP are older names.
export RUNTIME=${RUNTIME:-${RAND_RUNTIME:-8}}
export RAMP=${RAMP:-${RAND_RAMP:-2}}
META_FILES=${META_FILES:-2000}
PEERS=${PEERS:-lanefs glusterfs passthrough tmpfs}
PERF=${PERF:-1}
WRITE_DOCS=${WRITE_DOCS:-1}
W=${BENCH_WORK:-/var/tmp/lanefs-bench}
RES_ROOT=${BENCH_RESULTS:-/var/tmp/lanefs-bench-results/$(date -u +%Y%m%d-%H%M%S)}
BIN_DIR=$W/bin
JOBS="seq_write seq_read seq_read_direct rand_read rand_write meta"
PROFILE_JOBS=${PROFILE_JOBS:-seq_read_direct rand_read rand_write}
JOB_TIMEOUT=600   # seconds; no single fio/metabench run may take longer

for b in $BACKING; do
  [[ $b = tmpfs || $b = ext4 ]] || { echo "$0: BACKING: '$b' is neither tmpfs nor ext4" >&2; exit 2; }
done
for j in $PROFILE_JOBS; do
  [[ " $JOBS " = *" $j "* ]] || { echo "$0: PROFILE_JOBS: '$j' is not one of: $JOBS" >&2; exit 2; }
done
((ROUNDS >= 1 && ROUNDS <= 20)) || { echo "$0: ROUNDS must be 1..20" >&2; exit 2; }
[[ $W = /* && $W != / ]] || { echo "$0: BENCH_WORK must be an absolute path" >&2; exit 2; }

# shellcheck source=peers.sh
source "$here/peers.sh"

# lanefs binaries: up to date already after `make build`; cheap when nothing changed.
cmake --build "$BUILD_DIR" --target lanefsd lanefs lanefs-frontend mount.lanefs >/dev/null
PEERS=$PEERS "$here/setup_peers.sh" "$BIN_DIR.new" >&2
reap_leftovers
rm -rf "$BIN_DIR"
mkdir -p "$W" "$RES_ROOT"
mv "$BIN_DIR.new" "$BIN_DIR"

clean_work() {  # everything but bin/: peer state, backing store, mount points
  findmnt -rn -o TARGET | grep -q "^$W/" && return 0  # something is still mounted: keep it
  local d
  for d in lanefs gluster ssh passthrough mnt backing; do rm -rf "${W:?}/$d"; done
}
clean_work

UP=""              # peers (and "backing") to take down, most recent first
PERF_PID=""
SAMPLER_PID=""
JOB_PID=""         # the running fio/metabench (under timeout)
teardown() {
  local - p
  set +e                # a failing stop must not end the teardown,
  trap '' INT TERM      # nor a second Ctrl-C
  [[ -z $JOB_PID ]] || { log "stopping the running job"; stop_pid "$JOB_PID" 20; JOB_PID=""; }
  [[ -z $SAMPLER_PID ]] || { kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""; }
  [[ -z $PERF_PID ]] || { kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; PERF_PID=""; }
  for p in $UP; do
    log "stopping $p"
    "down_$p" || true
  done
  UP=""
  trap 'exit 130' INT TERM
}
trap teardown EXIT
trap 'exit 130' INT TERM

# The FUSE channel lanefs gets (see FUSE_URING above).
URING_PARAM=/sys/module/fuse/parameters/enable_uring
FUSE_URING=${FUSE_URING:-1}
URING_BEFORE=""
if [[ $FUSE_URING = 1 && -w $URING_PARAM ]]; then
  URING_BEFORE=$(cat "$URING_PARAM")
  echo Y >"$URING_PARAM"
fi
restore_uring() { [[ -z $URING_BEFORE ]] || echo "$URING_BEFORE" >"$URING_PARAM"; URING_BEFORE=""; }
trap 'teardown; restore_uring' EXIT

# The backing store: a tmpfs the bench mounts, or a directory on the root fs.
BACKING_DIR=$W/backing
up_backing() {
  mkdir -p "$BACKING_DIR"
  if [[ $1 = tmpfs ]]; then
    mount -t tmpfs -o "size=$TMPFS_SIZE" lanefs-bench "$BACKING_DIR"
  fi
}
down_backing() {
  unmount_dir "$BACKING_DIR"
  is_mounted "$BACKING_DIR" || rm -rf "${BACKING_DIR:?}"
}

# ------------------------------------------------------------- helpers
drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# read_ticks PIDS...: TICKS = utime+stime (clock ticks) summed over the
# processes, with bash builtins only (the sampler below must not fork).
read_ticks() {
  local p s f
  TICKS=0
  for p in "$@"; do
    { read -r s <"/proc/$p/stat"; } 2>/dev/null || continue
    s=${s##*) }  # after "pid (comm) ": field 3 (state) is f[0]; utime f[11], stime f[12]
    read -r -a f <<<"$s"
    TICKS=$((TICKS + f[11] + f[12]))
  done
}

# cpu_sampler OUT PIDS...: "epoch-seconds ticks" every 0.25 s, for at most
# JOB_TIMEOUT + 60 s; report.py takes the CPU of a job's measured window
# (after fio's ramp) from these samples.
cpu_sampler() {
  local out=$1 i
  shift
  for ((i = 0; i < (JOB_TIMEOUT + 60) * 4; i++)); do
    read_ticks "$@"
    echo "$EPOCHREALTIME $TICKS"
    sleep 0.25
  done >"$out"
}

perf_check() {  # sets PERF_OK=1 when `perf record` works here; else says why
  PERF_OK=0
  [[ $PERF = 1 ]] || { echo "perf disabled (PERF=$PERF)" >"$RES_ROOT/perf-unavailable.txt"; return 0; }
  if ! command -v perf >/dev/null; then
    echo "perf not installed (Debian package linux-perf)" >"$RES_ROOT/perf-unavailable.txt"
    return 0
  fi
  local t=$RES_ROOT/perf-check.data
  if timeout 30 perf record -q -a -e cpu-clock -F 99 -o "$t" -- sleep 0.2 >/dev/null 2>"$t.err" && [[ -s $t ]]; then
    PERF_OK=1
  else
    echo "perf record failed: $(grep -v '^$' "$t.err" | head -3 | tr '\n' ' ')" >"$RES_ROOT/perf-unavailable.txt"
  fi
  rm -f "$t" "$t.err"
}

perf_start() {  # perf_start OUTFILE: system-wide cpu-clock samples
  [[ $PERF_OK = 1 ]] || return 0
  perf record -q -a -e cpu-clock -F 499 -o "$1" >/dev/null 2>"$1.err" &
  PERF_PID=$!
  sleep 0.3
}
perf_stop() {  # perf_stop OUTFILE PIDS...: summaries next to the data
  local out=$1
  shift
  [[ -n $PERF_PID ]] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
  [[ -s $out ]] || return 0
  timeout 120 perf report -q -i "$out" --stdio --sort comm --percent-limit 2 >"$out.by-comm.txt" 2>/dev/null || true
  local pidlist
  pidlist=$(echo "$@" | tr ' ' ',' | sed 's/,,*/,/g; s/^,//; s/,$//')
  if [[ -n $pidlist ]]; then
    timeout 120 perf report -q -i "$out" --stdio --pid="$pidlist" --percentage relative --sort comm,dso \
      --percent-limit 1 >"$out.by-dso.txt" 2>/dev/null || true
    timeout 120 perf report -q -i "$out" --stdio --pid="$pidlist" --percentage relative --sort comm,dso,sym \
      --percent-limit 1 >"$out.by-sym.txt" 2>/dev/null || true
  fi
  rm -f "$out"
}

# run_one OUTDIR JOB PEER [profile]: one fio (or metabench) run of JOB on PEER.
# Writes OUTDIR/PEER.{json,err,run,cpu} and, for lanefs, PEER.bytes (the
# backends' data byte and request counters before and after).
run_one() {
  local out=$1 job=$2 p=$3 profile=${4:-} dir pids t0 t1 rc=0 c0 c1 bytes0="" bytes1="" r0 w0 q0 r1 w1 q1
  dir=$(mnt_of "$p")
  mkdir -p "$out"
  if [[ $job = seq_write ]]; then rm -f "$dir/fio-seq.dat"; fi
  drop_caches
  pids=$("pids_$p" 2>/dev/null | xargs || true)
  [[ $p != lanefs ]] || bytes0=$(counters_lanefs)
  [[ -z $profile ]] || perf_start "$out/$p.perf"
  # shellcheck disable=SC2086 # pids: a list
  if [[ -n $pids ]]; then
    cpu_sampler "$out/$p.cpu" $pids &
    SAMPLER_PID=$!
  fi
  # shellcheck disable=SC2086
  read_ticks $pids
  c0=$TICKS
  t0=$EPOCHREALTIME
  # In the background, then `wait`: a Ctrl-C interrupts `wait` at once and
  # the trap tears down (bash defers it until a foreground job ends).
  if [[ $job = meta ]]; then
    timeout -k 30 "$JOB_TIMEOUT" "$BIN_DIR/metabench" "$dir" "$META_FILES" --drop-caches \
      >"$out/$p.json" 2>"$out/$p.err" &
  else
    FIO_DIR=$dir timeout -k 30 "$JOB_TIMEOUT" fio --output-format=json --output="$out/$p.json" \
      "$here/jobs/$job.fio" >/dev/null 2>"$out/$p.err" &
  fi
  JOB_PID=$!
  wait "$JOB_PID" || rc=$?
  JOB_PID=""
  t1=$EPOCHREALTIME
  # shellcheck disable=SC2086
  read_ticks $pids
  c1=$TICKS
  if [[ -n $SAMPLER_PID ]]; then
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    echo "$t1 $c1" >>"$out/$p.cpu"
  fi
  # shellcheck disable=SC2086
  [[ -z $profile ]] || perf_stop "$out/$p.perf" $pids
  [[ -z $bytes0 ]] || bytes1=$(counters_lanefs)
  echo "rc=$rc t0=$t0 t1=$t1 cpu_ticks=$((c1 - c0)) clk_tck=$(getconf CLK_TCK) pids=${pids// /,}" >"$out/$p.run"
  if [[ -n $bytes0 ]]; then
    read -r r0 w0 q0 <<<"$bytes0"
    read -r r1 w1 q1 <<<"$bytes1"
    echo "read_before=$r0 written_before=$w0 requests_before=$q0" \
      "read_after=$r1 written_after=$w1 requests_after=$q1" >"$out/$p.bytes"
    [[ $job = meta ]] || python3 "$here/report.py" --check-bytes "$out/$p" >&2 || true
  fi
  local what=${out#"$RES_ROOT/"}
  if ((rc != 0)); then
    log "$what $p: exit $rc: $(head -c 300 "$out/$p.err" | tr '\n' ' ')"
  else
    log "$what $p: done"
  fi
}

# rotate N WORDS...: the words starting at index N mod count (peer order
# changes every round, so no peer always runs right after the same one).
rotate() {
  local n=$1
  shift
  local a=("$@") i
  for ((i = 0; i < ${#a[@]}; i++)); do echo -n "${a[(i + n) % ${#a[@]}]} "; done
}

# run_backing BACKING: bring every peer up on that backing store, run the
# rounds and the lanefs profile runs, take everything down.
run_backing() {
  local backing=$1 RES=$RES_ROOT/$1 p r job ok_peers=""
  mkdir -p "$RES"
  log "=== backing store: $backing ==="
  UP="backing $UP"
  up_backing "$backing"
  {
    echo "backing=$backing"
    echo "backing_fs=$(findmnt -rn -o FSTYPE,SOURCE --target "$BACKING_DIR" | head -1)"
    echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "start_utc=$(date -u '+%Y-%m-%d %H:%M UTC')"
  } >"$RES/meta.env"

  for p in $PEERS; do
    log "starting $p (data in $(data_of "$p"))"
    UP="$p $UP"
    if "up_$p" >"$RES/up-$p.log" 2>&1; then
      ok_peers="$ok_peers $p"
      log "$p mounted on $(mnt_of "$p")"
    else
      log "$p unavailable: $(tail -3 "$RES/up-$p.log" | tr '\n' ' ')"
      cp "$RES/up-$p.log" "$RES/unavailable-$p.txt"
      "down_$p" || true
      UP=${UP#"$p "}
    fi
  done
  echo "peers_up=${ok_peers# }" >>"$RES/meta.env"
  if [[ -z $ok_peers ]]; then
    log "no filesystem came up on $backing"
    return 0
  fi

  # Round r of every job runs on every peer before round r+1; within a
  # round, each job runs on all peers before the next job (seq_write first:
  # the other fio jobs use the file it wrote).
  for ((r = 1; r <= ROUNDS; r++)); do
    for job in $JOBS; do
      # shellcheck disable=SC2086
      for p in $(rotate $((r - 1)) $ok_peers); do
        run_one "$RES/r$r/$job" "$job" "$p"
      done
    done
  done
  # Profiles: extra lanefs runs after the rounds (perf's own cost never
  # touches a measured number).
  if [[ $PERF_OK = 1 && " $ok_peers " = *" lanefs "* ]]; then
    for job in $PROFILE_JOBS; do run_one "$RES/profile/$job" "$job" lanefs profile; done
  fi
  echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/meta.env"
  echo "end_utc=$(date -u '+%Y-%m-%d %H:%M UTC')" >>"$RES/meta.env"
  teardown
  save_logs "$RES/logs"
  clean_work
}

# save_logs DIR: the last MiB of each peer's own logs, before clean_work
# deletes the work directories (an interrupted run leaves them in place).
save_logs() {
  local f
  mkdir -p "$1"
  for f in "$W"/lanefs/lanefsd.log "$W"/lanefs/lanefsd.err "$W"/lanefs/run/frontend.log \
    "$W"/gluster/glusterd.log "$W"/gluster/client.log "$W"/passthrough/passthrough.log "$W"/ssh/sshd.log; do
    [[ -s $f ]] && tail -c 1M "$f" >"$1/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  return 0
}

# ------------------------------------------------------------- run
{
  echo "date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host=$(hostname)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
  echo "nproc=$(nproc)"
  echo "mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "kernel=$(uname -r)"
  echo "root_fs=$(findmnt -rn -o FSTYPE,SOURCE --target "$W" | head -1)"
  echo "backings=$BACKING"
  echo "peers=$PEERS"
  echo "rounds=$ROUNDS"
  echo "seq_size=$SEQ_SIZE"
  echo "seq_runtime=$SEQ_RUNTIME"
  echo "runtime=$RUNTIME"
  echo "ramp=$RAMP"
  echo "meta_files=$META_FILES"
  echo "profile_jobs=$PROFILE_JOBS"
  echo "tmpfs_size=$TMPFS_SIZE"
  echo "lanefs_mount_opts=$LANEFS_MOUNT_OPTS"
  echo "fuse_enable_uring=$(cat "$URING_PARAM" 2>/dev/null || echo absent)"
  echo "fio=$(fio --version)"
  echo "glusterfs=$(glusterfs --version 2>/dev/null | head -1)"
  echo "sshfs=$(sshfs --version 2>&1 | grep -i '^sshfs' | head -1)"
  echo "libfuse=$(pkg-config --modversion fuse3)"
  echo "lanefs=$(git -C "$src_dir" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$src_dir" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD_DIR/CMakeCache.txt")"
} >"$RES_ROOT/meta.env"
perf_check
bench_t0=$SECONDS
for b in $BACKING; do run_backing "$b"; done
echo "elapsed_s=$((SECONDS - bench_t0))" >>"$RES_ROOT/meta.env"
trap - EXIT
restore_uring

# ------------------------------------------------------------- report
img_dir=$src_dir/docs/img
python3 "$here/report.py" --results "$RES_ROOT" --img-rel img --plot-dir "$RES_ROOT/plot" \
  --analysis "$here/analysis.md" >"$RES_ROOT/section.md"
if command -v gnuplot >/dev/null; then
  for b in $BACKING; do
    [[ -s $RES_ROOT/plot/$b/npeers.txt ]] || continue
    prefix=fio-peers
    [[ $b = tmpfs ]] || prefix=fio-peers-$b
    gnuplot -e "datadir='$RES_ROOT/plot/$b'; imgdir='$RES_ROOT/plot'; prefix='$prefix'" "$here/plot.gp"
  done
fi
log "results in $RES_ROOT (bench took $((SECONDS - bench_t0)) s)"
if [[ $WRITE_DOCS = 1 ]]; then
  mkdir -p "$img_dir"
  cp "$RES_ROOT"/plot/fio-peers*.png "$img_dir/" 2>/dev/null || true
  python3 "$here/report.py" --splice "$src_dir/docs/benchmarks.md" --section-file "$RES_ROOT/section.md"
  log "updated $src_dir/docs/benchmarks.md and $img_dir/fio-peers*.png"
fi
python3 "$here/report.py" --results "$RES_ROOT" --summary >&2
cat "$RES_ROOT/section.md"

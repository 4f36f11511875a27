#!/usr/bin/env bash
# fio (and a create/stat/unlink job) against lanefs and peer filesystems on
# this machine, interleaved; writes the "## fio against peer filesystems"
# section of docs/benchmarks.md (between its marker comments, leaving every
# other section alone) and the charts docs/img/fio-peers-*.png.
#
# Usage: bench/fio/run_peers.sh BUILD_DIR        (as root; `make bench-fio`)
# Knobs (environment): ROUNDS=3 SEQ_SIZE=512M SEQ_QD=1 RAND_RUNTIME=8
#   RAND_RAMP=2 META_FILES=2000 PEERS="lanefs glusterfs sshfs passthrough tmpfs"
#   BENCH_WORK=/var/tmp/lanefs-bench  BENCH_RESULTS=/var/tmp/lanefs-bench-results/<stamp>
#   PERF=1 (profile lanefs processes in the last round)  WRITE_DOCS=1
# See bench/fio/README.md.
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
  echo "$0: must run as root (mounts, drop_caches, glusterd, sshd)" >&2
  exit 1
fi

ROUNDS=${ROUNDS:-3}
export SEQ_SIZE=${SEQ_SIZE:-512M}
export SEQ_RUNTIME=${SEQ_RUNTIME:-60}
export SEQ_QD=${SEQ_QD:-1}
export RAND_RUNTIME=${RAND_RUNTIME:-8}
export RAND_RAMP=${RAND_RAMP:-2}
META_FILES=${META_FILES:-2000}
PEERS=${PEERS:-lanefs glusterfs sshfs passthrough tmpfs}
PERF=${PERF:-1}
WRITE_DOCS=${WRITE_DOCS:-1}
W=${BENCH_WORK:-/var/tmp/lanefs-bench}
RES=${BENCH_RESULTS:-/var/tmp/lanefs-bench-results/$(date -u +%Y%m%d-%H%M%S)}
BIN_DIR=$W/bin
JOBS="seq_write seq_read seq_read_direct rand_read rand_write meta"

# shellcheck source=peers.sh
source "$here/peers.sh"

# lanefs binaries: up to date already after `make build`; cheap when nothing changed.
cmake --build "$BUILD_DIR" --target lanefsd lanefs lanefs-frontend mount.lanefs >/dev/null
"$here/setup_peers.sh" "$BIN_DIR.new" >&2
# Leftovers of an interrupted run: unmount anything under the work root.
if findmnt -rn -o TARGET | grep -q "^$W/"; then
  findmnt -rn -o TARGET | grep "^$W/" | sort -r | while read -r m; do unmount_dir "$m"; done
fi
rm -rf "$BIN_DIR"
mkdir -p "$W" "$RES"
mv "$BIN_DIR.new" "$BIN_DIR"
for d in lanefs gluster ssh passthrough mnt; do rm -rf "${W:?}/$d"; done

UP=""
teardown() {
  local p
  for p in $UP; do
    log "stopping $p"
    "down_$p" || true
  done
  UP=""
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- bring up
{
  echo "date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host=$(hostname)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
  echo "nproc=$(nproc)"
  echo "mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "kernel=$(uname -r)"
  echo "root_fs=$(findmnt -rn -o FSTYPE,SOURCE --target "$W" | head -1)"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rounds=$ROUNDS"
  echo "seq_size=$SEQ_SIZE"
  echo "seq_qd=$SEQ_QD"
  echo "rand_runtime=$RAND_RUNTIME"
  echo "rand_ramp=$RAND_RAMP"
  echo "meta_files=$META_FILES"
  echo "fio=$(fio --version)"
  echo "glusterfs=$(glusterfs --version 2>/dev/null | head -1)"
  echo "sshfs=$(sshfs --version 2>&1 | grep -i '^sshfs' | head -1)"
  echo "libfuse=$(pkg-config --modversion fuse3)"
  echo "lanefs=$(git -C "$src_dir" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$src_dir" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD_DIR/CMakeCache.txt")"
} >"$RES/meta.env"

ok_peers=""
for p in $PEERS; do
  log "starting $p"
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
[[ -n $ok_peers ]] || { log "no filesystem came up"; exit 1; }

# ------------------------------------------------------------- helpers
drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# cpu_ticks PIDS...: utime+stime (clock ticks) summed over the processes.
cpu_ticks() {
  local t=0 p s
  for p in "$@"; do
    s=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + s))
  done
  echo "$t"
}

perf_start() {  # perf_start OUTFILE: system-wide cpu-clock samples
  PERF_PID=""
  [[ $PERF = 1 ]] && command -v perf >/dev/null || return 0
  perf record -q -a -e cpu-clock -F 499 -o "$1" >/dev/null 2>"$1.err" &
  PERF_PID=$!
  sleep 0.3
}
perf_stop() {  # perf_stop OUTFILE PIDS...: summaries next to the data
  local out=$1
  shift
  [[ -n ${PERF_PID:-} ]] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
  [[ -s $out ]] || return 0
  perf report -q -i "$out" --stdio --sort comm --percent-limit 2 >"$out.by-comm.txt" 2>/dev/null || true
  local pidlist
  pidlist=$(echo "$@" | tr ' ' ',' | sed 's/,,*/,/g; s/^,//; s/,$//')
  if [[ -n $pidlist ]]; then
    perf report -q -i "$out" --stdio --pid="$pidlist" --percentage relative --sort comm,dso,sym --percent-limit 1.5 \
      >"$out.by-sym.txt" 2>/dev/null || true
  fi
  rm -f "$out"
}

# run_one ROUND JOB PEER
run_one() {
  local r=$1 job=$2 p=$3 dir out pids t0 t1 c0 c1 rc=0
  dir=$(mnt_of "$p")
  out=$RES/r$r/$job
  mkdir -p "$out"
  if [[ $job = seq_write ]]; then rm -f "$dir/fio-seq.dat"; fi
  drop_caches
  # shellcheck disable=SC2046
  pids=$("pids_$p" 2>/dev/null | xargs || true)
  local profile=""
  if ((r == ROUNDS)) && [[ $p = lanefs ]] && [[ $job = seq_read_direct || $job = rand_read ]]; then
    profile=$RES/perf-$p-$job.data
    perf_start "$profile"
  fi
  # shellcheck disable=SC2086 # pids: a list
  c0=$(cpu_ticks $pids)
  t0=$EPOCHREALTIME
  if [[ $job = meta ]]; then
    timeout 600 "$BIN_DIR/metabench" "$dir" "$META_FILES" --drop-caches >"$out/$p.json" 2>"$out/$p.err" || rc=$?
  else
    FIO_DIR=$dir timeout 600 fio --output-format=json --output="$out/$p.json" "$here/jobs/$job.fio" \
      >/dev/null 2>"$out/$p.err" || rc=$?
  fi
  t1=$EPOCHREALTIME
  # shellcheck disable=SC2086
  c1=$(cpu_ticks $pids)
  # shellcheck disable=SC2086
  if [[ -n $profile ]]; then perf_stop "$profile" $pids; fi
  echo "rc=$rc t0=$t0 t1=$t1 cpu_ticks=$((c1 - c0)) clk_tck=$(getconf CLK_TCK) pids=$pids" >"$out/$p.run"
  if ((rc != 0)); then
    log "round $r $job $p: exit $rc: $(head -c 300 "$out/$p.err" | tr '\n' ' ')"
  else
    log "round $r $job $p: done"
  fi
}

# ------------------------------------------------------------- rounds
# Round r of every job runs on every peer before round r+1; within a round,
# each job runs on all peers before the next job (seq_write first: the read
# and random jobs use the file it wrote).
for ((r = 1; r <= ROUNDS; r++)); do
  for job in $JOBS; do
    for p in $ok_peers; do
      run_one "$r" "$job" "$p"
    done
  done
done
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/meta.env"

teardown
trap - EXIT
# Free the disk (lanefs chunks, the brick): keep only the results.
if ! findmnt -rn -o TARGET | grep -q "^$W/"; then
  for d in lanefs gluster ssh passthrough mnt; do rm -rf "${W:?}/$d"; done
fi

# ------------------------------------------------------------- report
img_dir=$src_dir/docs/img
mkdir -p "$RES/plot"
python3 "$here/report.py" --results "$RES" --peers "$PEERS" --img-rel img \
  --plot-dir "$RES/plot" --analysis "$here/analysis.md" >"$RES/section.md"
if command -v gnuplot >/dev/null; then
  gnuplot -e "datadir='$RES/plot'; imgdir='$RES/plot'" "$here/plot.gp"
fi
log "results in $RES"
if [[ $WRITE_DOCS = 1 ]]; then
  mkdir -p "$img_dir"
  cp "$RES"/plot/fio-peers-*.png "$img_dir/"
  python3 "$here/report.py" --splice "$src_dir/docs/benchmarks.md" --section-file "$RES/section.md"
  log "updated $src_dir/docs/benchmarks.md and $img_dir/fio-peers-*.png"
fi
cat "$RES/section.md"

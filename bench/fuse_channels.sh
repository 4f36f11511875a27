#!/bin/bash
# fuse_channels.sh BUILD [ROUNDS]: the two FUSE channels side by side
# (issue 14): one lanefsd on a tmpfs, one frontend, two mounts of the same
# filesystem — fuse_channel=classic and fuse_channel=uring (the kernel's
# fuse.enable_uring is turned on for the run and restored). Rounds are
# interleaved (each job on both mounts before the next job, the order
# alternating per round): fio 4 KiB random read O_DIRECT at 1 and 16 in
# flight, 1 MiB sequential read O_DIRECT at 1 in flight, and
# bench/fio/metabench creates. Per job and mount it also counts the
# frontend's system calls (perf, raw_syscalls:sys_enter) and context
# switches (/proc/PID/status) per FUSE request (lanefs stats: the
# channel's request counter), and the CPU time per request (run_job).
# Prints one JSON line per run, then a summary of medians and ratios
# (uring / classic) by bench/fuse_channels.py; with
# DOCS=FILE (make bench-fio: docs/benchmarks.md) the summary replaces the
# fuse-channels section there. Root; RUNTIME (s, default 5) per fio job.
# CHANNELS="BASE CANDIDATE" compares two others of classic, uring and
# kernel (lanefs.ko, client=kernel; bench/kmod_bench.sh runs "classic
# kernel" in a qemu guest); RESULTS=FILE keeps the JSON lines.
set -eu
B=${1:?usage: fuse_channels.sh BUILD [ROUNDS]} R=${2:-3} RUNTIME=${RUNTIME:-5}
CHANNELS=${CHANNELS:-classic uring}
here=$(cd "$(dirname "$0")" && pwd)
param=/sys/module/fuse/parameters/enable_uring
before=""
case " $CHANNELS " in
  *" uring "*)
    [ -e $param ] || { echo "no $param: this kernel has no FUSE over io_uring" >&2; exit 1; }
    before=$(cat $param) ;;
esac
opts_of() {  # channel -> mount options
  case $1 in
    kernel) echo client=kernel ;;
    *) echo client=fuse,fuse_channel=$1 ;;
  esac
}
W=$(mktemp -d /tmp/lanefs-channels.XXXXXX)
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$W/data/admin.token"
mount -t tmpfs -o size=3g lanefs-channels "$W"
port=15600
export LANEFS_RUN_DIR=$W/run LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
cleanup() {
  set +e
  for m in $CHANNELS; do umount "$W/m-$m" 2>/dev/null || umount -l "$W/m-$m"; done
  [ -f "$W/lanefsd.pid" ] && kill "$(cat "$W/lanefsd.pid")"
  [ -z "$before" ] || echo "$before" > $param
  sleep 2
  umount -l "$W"; rmdir "$W"
}
trap cleanup EXIT
[ -z "$before" ] || echo Y > $param
gcc -O2 -o "$W/metabench" "$here/fio/metabench.c"
"$B/userspace/backend/lanefsd" --data-dir "$W/data" --listen 127.0.0.1:$port --rdma off \
  --log-file "$W/lanefsd.log" &
echo $! > "$W/lanefsd.pid"
for i in $(seq 1 50); do "$B/userspace/cli/lanefs" --backend 127.0.0.1:$port --connect-timeout 1 fs list >/dev/null 2>&1 && break; sleep 0.1; done
"$B/userspace/cli/lanefs" --backend 127.0.0.1:$port fs create ch >/dev/null
for m in $CHANNELS; do
  mkdir -p "$W/m-$m"
  "$B/userspace/frontend/mount.lanefs" 127.0.0.1:$port/ch "$W/m-$m" -o "$(opts_of $m)"
  mkdir -p "$W/m-$m/$m"
done
fe=$(cat "$W/run/frontend.pid")
# One 256 MiB file per mount for the fio jobs.
for m in $CHANNELS; do
  fio --name=fill --filename="$W/m-$m/$m/f" --rw=write --bs=1M --size=${FILE_MB:-256}M --end_fsync=1 --output-format=json >/dev/null
done

reqs() {  # the mount's request count on its channel
  "$B/userspace/cli/lanefs" --json stats | python3 -c 'import json, sys
t, ch = sys.argv[1], sys.argv[2]
for m in json.load(sys.stdin):
    if m["target"] == t: print(m["kernel_requests" if ch == "kernel" else "fuse_requests_" + ch])' "$W/m-$1" "$1"
}
ctxt() { cat /proc/$fe/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'; }  # every thread
fe_cpu() { awk '{print $14 + $15}' /proc/$fe/stat; }  # the frontend's user + system clock ticks

# The frontend's system calls during a command (perf; without it, none counted).
if command -v perf >/dev/null; then
  sc_run() { perf stat -x, -e raw_syscalls:sys_enter -p "$fe" -o "$W/perf.txt" -- "$@"; }
else
  echo "perf not installed (Debian package linux-perf): no system call counts" >&2
  sc_run() { : >"$W/perf.txt"; "$@"; }
fi

# CPU per request: the frontend's (user + system, its kernel work on the
# caller's behalf included) plus the job process's own (fio or metabench,
# whose system time holds the kernel client's and FUSE's work in the
# caller's context), over the channel's requests. perf's counting
# (sc_run) is in both; the backend's CPU is not (the same for both mounts).
TIMEFORMAT='%U %S'
run_job() {  # mount job
  local m=$1 job=$2 out r0 c0 r1 c1 sc val u0 u1
  r0=$(reqs $m) c0=$(ctxt) u0=$(fe_cpu)
  {
  case $job in
    randread_qd1|randread_qd16)
      local qd=${job#randread_qd}
      time out=$(sc_run fio --name=j --filename="$W/m-$m/$m/f" --rw=randread --bs=4k --direct=1 --ioengine=libaio \
          --iodepth=$qd --runtime=$RUNTIME --time_based --output-format=json)
      val=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"][0]["read"]["iops"])') ;;
    seqread_1m)
      time out=$(sc_run fio --name=j --filename="$W/m-$m/$m/f" --rw=read --bs=1M --direct=1 --ioengine=psync \
          --runtime=$RUNTIME --time_based --output-format=json)
      val=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"] / 1048576)') ;;
    creates)
      mkdir -p "$W/m-$m/$m/meta"
      time out=$(sc_run "$W/metabench" "$W/m-$m/$m/meta" 2000)
      val=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["create"]["ops_per_s"])')
      rm -rf "$W/m-$m/$m/meta" ;;
  esac
  } 2>"$W/time.txt"
  r1=$(reqs $m) c1=$(ctxt) u1=$(fe_cpu)
  sc=$(awk -F, '/raw_syscalls/ {print $1}' "$W/perf.txt")
  python3 -c 'import json, os, sys
m, job, val, r, c, sc, fe_ticks, times = sys.argv[1:]
r, c = int(r), int(c)
job_s = sum(float(x) for x in times.split()[-2:]) if len(times.split()) >= 2 else None
cpu_s = int(fe_ticks) / os.sysconf("SC_CLK_TCK") + job_s if job_s is not None else None
print(json.dumps({"mount": m, "job": job, "value": float(val), "requests": r,
                  "syscalls_per_req": (int(sc) / r) if sc.isdigit() and r else None,
                  "ctxsw_per_req": c / r if r else None,
                  "cpu_us_per_req": cpu_s * 1e6 / r if cpu_s is not None and r else None}))' \
    "$m" "$job" "$val" $((r1 - r0)) $((c1 - c0)) "${sc:-}" $((u1 - u0)) "$(tail -n 1 "$W/time.txt")"
}

{
  for r in $(seq 1 "$R"); do
    set -- $CHANNELS
    order="$1 $2"; [ $((r % 2)) = 0 ] && order="$2 $1"
    for job in randread_qd1 randread_qd16 seqread_1m creates; do
      for m in $order; do run_job $m $job; done
    done
  done
} | tee "$W/results.jsonl"
[ -z "${RESULTS:-}" ] || cp "$W/results.jsonl" "$RESULTS"
about="Run $(date -u '+%Y-%m-%d %H:%M') UTC on $(hostname) (nproc $(nproc), kernel $(uname -r)): $R rounds, \
RUNTIME=$RUNTIME s per fio job, \`bench/fuse_channels.sh $B $R\`."
set -- $CHANNELS
python3 "$here/fuse_channels.py" "$W/results.jsonl" --pair "$1,$2" --about "$about" ${DOCS:+--splice "$DOCS"}

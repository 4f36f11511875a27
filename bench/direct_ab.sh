#!/bin/bash
# direct_ab.sh BUILD [ROUNDS]: the direct API (liblanefs-direct, driven by
# bench/direct_bench) against fio O_DIRECT through the same FUSE mount, on
# the same lane (UDP on loopback here), one lanefsd on tmpfs (issue 17).
# Jobs: 1 MiB sequential reads at 1 and 16 in flight (MiB/s), 4 KiB random
# reads at 16 in flight (IOPS). Rounds are interleaved (each job on both
# paths before the next, the order alternating per round). CPU per GiB
# read counts the client side: the reader process (fio or direct_bench)
# plus lanefs-frontend (utime + stime from /proc), not the backend.
# Prints one JSON line per run and a summary (bench/direct_ab.py); with
# DOCS=FILE the summary replaces the direct-api section there. Root;
# RUNTIME (s, default 5) per run; JOBS picks jobs; FILE_MB (512) the file.
# The RDMA lane (bench/direct_rdma_guest.sh, in a qemu guest): BACKEND_IP
# (default 127.0.0.1) for lanefsd, RDMA=on, LOCAL_IP for the mount's
# source address; the summary is then the direct-api-rdma section.
set -eu
B=${1:?usage: direct_ab.sh BUILD [ROUNDS]} R=${2:-3} RUNTIME=${RUNTIME:-5}
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/lanefs-directab.XXXXXX)
mount -t tmpfs -o size=3g lanefs-directab "$W"
export LANEFS_RUN_DIR=$W/run LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
port=15650 IP=${BACKEND_IP:-127.0.0.1} RDMA=${RDMA:-off}
cleanup() {
  set +e
  umount "$W/m" 2>/dev/null || umount -l "$W/m"
  [ -f "$W/be.pid" ] && kill "$(cat "$W/be.pid")"
  sleep 2
  umount -l "$W"; rmdir "$W"
}
trap cleanup EXIT
"$B/userspace/backend/lanefsd" --data-dir "$W/data" --listen $IP:$port --rdma $RDMA \
  --secret-file "$W/secret" --admin-token-file "$W/admin.token" --log-file "$W/lanefsd.log" &
echo $! > "$W/be.pid"
export LANEFS_TOKEN_FILE=$W/data/admin.token
for i in $(seq 1 50); do
  "$B/userspace/cli/lanefs" --backend $IP:$port --connect-timeout 1 fs list >/dev/null 2>&1 && break
  sleep 0.1
done
"$B/userspace/cli/lanefs" --backend $IP:$port fs create ab >/dev/null
mkdir -p "$W/m"
"$B/userspace/frontend/mount.lanefs" $IP:$port/ab "$W/m" \
  -o forcedirect,auth_token_path="$W/data/admin.token"${LOCAL_IP:+,local_ip=$LOCAL_IP}
MB=${FILE_MB:-512}
fio --name=fill --filename="$W/m/f" --rw=write --bs=1M --size=${MB}M --end_fsync=1 --output-format=json >/dev/null
fe=$(cat "$W/run/frontend.pid")
fe_cpu() { awk '{print $14 + $15}' "/proc/$fe/stat"; }
hz=$(getconf CLK_TCK)

run_job() {  # path job
  local p=$1 job=$2 bs depth rw c0 c1 out
  case $job in
    read_1m_qd1) bs=1048576 depth=1 rw=read ;;
    read_1m_qd16) bs=1048576 depth=16 rw=read ;;
    randread_4k_qd16) bs=4096 depth=16 rw=randread ;;
  esac
  c0=$(fe_cpu)
  if [ "$p" = fuse ]; then
    out=$(fio --name=j --filename="$W/m/f" --rw=$rw --bs=$bs --iodepth=$depth --ioengine=libaio --direct=1 \
          --size=${MB}M --runtime=$RUNTIME --time_based --output-format=json | python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]; d = j["read"]
cpu = (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["elapsed"]
print(d["bw_bytes"] / 1048576, d["iops"], cpu, d["io_bytes"])')
  else
    out=$("$B/bench/direct_bench" --mount "$W/m" --file "$W/m/f" --rw $rw --bs $bs --depth $depth \
          --seconds "$RUNTIME" | python3 -c 'import json, sys
d = json.loads(sys.stdin.read())
print(d["mib_s"], d["iops"], d["cpu_s"], d["mib_s"] * 1048576 * d["seconds"])')
  fi
  c1=$(fe_cpu)
  python3 -c 'import json, sys
p, job, mib, iops, cpu, nbytes, dfe, hz = sys.argv[1:]
gib = float(nbytes) / 2**30
total = float(cpu) + int(dfe) / int(hz)
print(json.dumps({"path": p, "job": job, "value": float(iops if job.startswith("rand") else mib),
                  "cpu_s_per_gib": total / gib if gib else 0}))' "$p" "$job" $out $((c1 - c0)) "$hz"
}

{
  for r in $(seq 1 "$R"); do
    order="fuse direct"; [ $((r % 2)) = 0 ] && order="direct fuse"
    for job in ${JOBS:-read_1m_qd1 read_1m_qd16 randread_4k_qd16}; do
      for p in $order; do run_job $p $job; done
    done
  done
} | tee "$W/results.jsonl"
[ -z "${RESULTS:-}" ] || cp "$W/results.jsonl" "$RESULTS"
about="Run $(date -u '+%Y-%m-%d %H:%M') UTC on $(hostname) (nproc $(nproc), kernel $(uname -r), git \
$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')): $R rounds, RUNTIME=$RUNTIME s per run, \
mount forcedirect, $([ "$RDMA" = on ] && echo "RDMA lane (rxe) for IOs of 32 KiB and more" || echo "UDP lane on loopback"), \
\`bench/direct_ab.sh\`."
python3 "$here/direct_ab.py" "$W/results.jsonl" --about "$about" ${DOCS:+--splice "$DOCS"} \
  $([ "$RDMA" = on ] && echo --rdma)

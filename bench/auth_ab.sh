#!/bin/bash
# auth_ab.sh BUILD [ROUNDS]: what packet MACs cost (issue 16), side by
# side on one machine: two lanefsd on one tmpfs, one with its sessions
# keyed (the default) and one started with LANEFS_PACKET_MAC=off (no MACs:
# the same build, auth off for the bench only), one frontend (which accepts
# the unkeyed one only because it too runs with LANEFS_PACKET_MAC=off; it
# keys every session the server keys), a mount of each. Both backends still
# check tokens; only the per-datagram MAC differs. Rounds are interleaved
# (each job on both mounts before the next, the order alternating per
# round): fio 1 MiB sequential read and write O_DIRECT at 1 and 8 in
# flight (MiB/s), 4 KiB random read and write O_DIRECT at 16 in flight
# (IOPS).
# Prints one JSON line per run and a summary of medians and ratios
# (mac / nomac) by bench/auth_ab.py; with DOCS=FILE the summary replaces
# the packet-MAC section there. Root; RUNTIME (s, default 5) per fio job;
# JOBS (default all four) picks jobs; PERF_DIR=DIR records a perf profile
# of each process per run there.
#
# BASE_BUILD=DIR: compare backends instead (what a backend change costs,
# e.g. the block CRCs of data at rest): the "nomac" side runs lanefsd from
# DIR (an older build of the same protocol) with MACs on like the other;
# the summary calls the sides "base" and "this build" and, with DOCS,
# replaces the backend-ab section.
set -eu
B=${1:?usage: auth_ab.sh BUILD [ROUNDS]} R=${2:-3} RUNTIME=${RUNTIME:-5}
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/lanefs-authab.XXXXXX)
mount -t tmpfs -o size=3g lanefs-authab "$W"
export LANEFS_RUN_DIR=$W/run LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
port_mac=15640 port_nomac=15641
cleanup() {
  set +e
  for m in mac nomac; do umount "$W/m-$m" 2>/dev/null || umount -l "$W/m-$m"; done
  for m in mac nomac; do [ -f "$W/$m.pid" ] && kill "$(cat "$W/$m.pid")"; done
  sleep 2
  umount -l "$W"; rmdir "$W"
}
trap cleanup EXIT
start() {  # name port [env...]
  local name=$1 port=$2 sb=$B
  [ "$name" = nomac ] && [ -n "${BASE_BUILD:-}" ] && sb=$BASE_BUILD
  shift 2
  env "$@" "$sb/userspace/backend/lanefsd" --data-dir "$W/data-$name" --listen 127.0.0.1:$port --rdma off \
    --secret-file "$W/secret" --admin-token-file "$W/admin-$name.token" --log-file "$W/lanefsd-$name.log" &
  echo $! > "$W/$name.pid"
  for i in $(seq 1 50); do
    env "$@" LANEFS_TOKEN_FILE="$W/data-$name/admin.token" "$B/userspace/cli/lanefs" --backend 127.0.0.1:$port \
      --connect-timeout 1 fs list >/dev/null 2>&1 && break
    sleep 0.1
  done
  env "$@" LANEFS_TOKEN_FILE="$W/data-$name/admin.token" "$B/userspace/cli/lanefs" --backend 127.0.0.1:$port \
    fs create ab >/dev/null
}
start mac $port_mac
if [ -n "${BASE_BUILD:-}" ]; then
  start nomac $port_nomac
else
  start nomac $port_nomac LANEFS_PACKET_MAC=off
  # One frontend serves both mounts (the first mount starts it, with this
  # environment): it keys what the server keys and accepts the unkeyed one.
  export LANEFS_PACKET_MAC=off
fi
for m in mac nomac; do
  port=$port_mac; [ $m = nomac ] && port=$port_nomac
  mkdir -p "$W/m-$m"
  "$B/userspace/frontend/mount.lanefs" 127.0.0.1:$port/ab "$W/m-$m" -o auth_token_path="$W/data-$m/admin.token"
  fio --name=fill --filename="$W/m-$m/f" --rw=write --bs=1M --size=${FILE_MB:-256}M --end_fsync=1 \
    --output-format=json >/dev/null
done

run_job() {  # mount job
  local m=$1 job=$2 args val
  case $job in
    seqread_1m) args="--rw=read --bs=1M --iodepth=1 --ioengine=psync" ;;
    seqwrite_1m) args="--rw=write --bs=1M --iodepth=1 --ioengine=psync" ;;
    seqread_1m_qd8) args="--rw=read --bs=1M --iodepth=8 --ioengine=libaio" ;;
    seqwrite_1m_qd8) args="--rw=write --bs=1M --iodepth=8 --ioengine=libaio" ;;
    randread_4k_qd16) args="--rw=randread --bs=4k --iodepth=16 --ioengine=libaio" ;;
    randwrite_4k_qd16) args="--rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio" ;;
  esac
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -a -g -o "$PERF_DIR/$m-$job.data" -- sleep "$RUNTIME" >/dev/null 2>&1 &
  fi
  # shellcheck disable=SC2086
  val=$(fio --name=j --filename="$W/m-$m/f" $args --direct=1 --size=${FILE_MB:-256}M --runtime=$RUNTIME \
        --time_based --output-format=json | python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] else j["write"]
print(d["bw_bytes"] / 1048576 if "_1m" in sys.argv[1] else d["iops"])' "$job")
  wait
  echo "{\"mount\": \"$m\", \"job\": \"$job\", \"value\": $val}"
}

{
  for r in $(seq 1 "$R"); do
    order="nomac mac"; [ $((r % 2)) = 0 ] && order="mac nomac"
    for job in ${JOBS:-seqread_1m seqwrite_1m seqread_1m_qd8 seqwrite_1m_qd8 randread_4k_qd16 randwrite_4k_qd16}; do
      for m in $order; do run_job $m $job; done
    done
  done
} | tee "$W/results.jsonl"
[ -z "${RESULTS:-}" ] || cp "$W/results.jsonl" "$RESULTS"
# Loss recovery and dropped packets per mount (a MAC that failed would show here).
"$B/userspace/cli/lanefs" --json stats 2>/dev/null | python3 -c 'import json, sys
for m in json.load(sys.stdin):
    print(m.get("target"), json.dumps(m.get("rpc_health")))' >&2 || true
bad=$(LANEFS_TOKEN_FILE="$W/data-mac/admin.token" "$B/userspace/cli/lanefs" --backend 127.0.0.1:$port_mac --json \
      cluster status 2>/dev/null | python3 -c 'import json, sys
try:
    print(sum(b.get("rx_invalid", 0) for b in json.load(sys.stdin)["backends"]))
except Exception:
    print("?")' || echo "?")
about="Run $(date -u '+%Y-%m-%d %H:%M') UTC on $(hostname) (nproc $(nproc), kernel $(uname -r), git \
$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')): $R rounds, RUNTIME=$RUNTIME s per fio job, \
\`${BASE_BUILD:+BASE_BUILD=$BASE_BUILD }bench/auth_ab.sh $B $R\`; invalid packets at the keyed backend afterwards: $bad."
python3 "$here/auth_ab.py" "$W/results.jsonl" --about "$about" ${BASE_BUILD:+--backends} ${DOCS:+--splice "$DOCS"}

#!/bin/sh
# guest_bench.sh (runs inside a vm_run.sh guest): 1 MiB read and write
# bandwidth of a lanefs mount whose data moves over RDMA (rxe1 -> rxe0), next
# to perftest's ib_read_bw / ib_write_bw on the same two rxe devices and to
# the same mount with RDMA disabled (UDP lane), in interleaved rounds.
# lanefs side: fio, 1 MiB O_DIRECT, 8 IOs in flight (dd if fio is missing).
# Writes $VM_OUT/rdma_bench.tsv (round, test, MB/s) and prints it.
# Env: LANEFS_BUILD_DIR (required), BENCH_ROUNDS (3), BENCH_MB (64).
set -eu
HERE=$(dirname "$(readlink -f "$0")")
SRC_DIR=$(readlink -f "$HERE/../..")
A=192.0.2.1
B=192.0.2.2
PORT=14000
ROUNDS=${BENCH_ROUNDS:-3}
MB=${BENCH_MB:-64}
OUT=${VM_OUT:-/tmp}/rdma_bench.tsv
fail() { echo "rdma_bench: FAILED: $*" >&2; exit 1; }
BLD=${LANEFS_BUILD_DIR:?LANEFS_BUILD_DIR is not set}
export LANEFS_FRONTEND=$BLD/userspace/frontend/lanefs-frontend
export LANEFS_RUN_DIR=/tmp/lanefs-run
for t in ib_read_bw ib_write_bw; do command -v $t >/dev/null || fail "$t not installed (perftest)"; done

"$SRC_DIR/tests/vm/guest/rdma_setup.sh" >/dev/null
modprobe fuse
DATA=/tmp/lanefsd
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$DATA/admin.token"
MNT=/tmp/mnt/bench
mkdir -p "$DATA" "$LANEFS_RUN_DIR" "$MNT"
pid=""
cleanup() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
}
trap cleanup EXIT
cli() { timeout 60 "$BLD/userspace/cli/lanefs" --backend "$A:$PORT" "$@"; }
"$BLD/userspace/backend/lanefsd" --data-dir "$DATA" --listen "$A:$PORT" --name bench --rdma on \
  --log-file "$DATA/lanefsd.log" </dev/null >/dev/null 2>&1 &
pid=$!
i=0
until cli --connect-timeout 2 fs list >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 40 ] || fail "lanefsd not answering"; sleep 1
done
cli fs create bench >/dev/null
"$BLD/userspace/frontend/mount.lanefs" "$A:$PORT/bench" "$MNT" -o "forcedirect,local_ip=$B" || fail "mount"
head -c $((MB * 1024 * 1024)) /dev/urandom >/tmp/bench_src.bin

# MB/s of `dd` (its own summary line: "... copied, 1.23 s, 54.5 MB/s").
dd_mbs() {
  dd "$@" bs=1M 2>&1 | awk '/copied/ { v = $(NF-1); u = $NF;
    if (u == "GB/s") v *= 1000; else if (u == "kB/s") v /= 1000; print v }'
}
# perftest bandwidth in MB/s (BW average column, MB/sec with -F).
perf_mbs() {
  tool=$1
  size=${2:-1048576}
  timeout 60 "$tool" -d rxe0 -s "$size" -D 4 -u 18 -x 1 -F >/tmp/perf_srv.log 2>&1 &
  srv=$!
  sleep 1
  n=0
  until timeout 60 "$tool" -d rxe1 -s "$size" -D 4 -u 18 -x 1 -F "$A" >/tmp/perf_cli.log 2>&1; do
    n=$((n + 1)); [ $n -lt 5 ] || { cat /tmp/perf_cli.log >&2; fail "$tool"; }; sleep 1
  done
  wait "$srv" || true
  awk -v s="$size" '$1 == s { print $4 }' /tmp/perf_cli.log | tail -1
}
# lanefs bandwidth: fio with 8 IOs in flight (perftest keeps many in flight
# too); dd (one IO at a time) where fio is missing.
FIO=$(command -v fio || true)
lanefs_mbs() {
  rw=$1
  if [ -n "$FIO" ]; then
    "$FIO" --name=b --filename="$MNT/f" --rw="$rw" --bs=1M --direct=1 --ioengine=libaio --iodepth=8 \
      --size=${MB}M --output-format=json 2>/dev/null |
      python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(round((j["read"]["bw"]+j["write"]["bw"])*1024/1e6, 1))'
  elif [ "$rw" = write ]; then
    dd_mbs if=/tmp/bench_src.bin of="$MNT/f" oflag=direct
  else
    dd_mbs if="$MNT/f" of=/dev/null iflag=direct
  fi
}
lanefs_rdma_on() { cli cluster rdma "$1" >/dev/null; sleep 2; }  # the frontend sees it within ~1 s

: >"$OUT"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  lanefs_rdma_on enable
  echo "$r	lanefs_write_rdma	$(lanefs_mbs write)" >>"$OUT"
  echo "$r	ib_read_bw	$(perf_mbs ib_read_bw)" >>"$OUT"
  echo "$r	lanefs_read_rdma	$(lanefs_mbs read)" >>"$OUT"
  echo "$r	ib_write_bw	$(perf_mbs ib_write_bw)" >>"$OUT"
  echo "$r	ib_read_bw_256k	$(perf_mbs ib_read_bw 262144)" >>"$OUT"
  lanefs_rdma_on disable
  echo "$r	lanefs_write_udp	$(lanefs_mbs write)" >>"$OUT"
  echo "$r	lanefs_read_udp	$(lanefs_mbs read)" >>"$OUT"
  r=$((r + 1))
done
lanefs_rdma_on enable
timeout 30 "$BLD/userspace/cli/lanefs" stats
cat "$OUT"

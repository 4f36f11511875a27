#!/bin/sh
# run_dpdk_bench.sh BUILD_DIR [ROUNDS]: a mount on the DPDK lane (net_tap,
# dedicated_mode=full) next to the same mount on the kernel UDP lane, against
# one kernel-UDP backend, in a private network namespace; interleaved rounds
# of fio (1 MiB sequential write and read, iodepth 8; 4 KiB random reads,
# iodepth 1) plus the frontend's idle CPU in polling and interrupt mode.
# Prints the markdown section "DPDK lane" of docs/benchmarks.md. Root.
set -eu
B=$(readlink -f "${1:?usage: run_dpdk_bench.sh BUILD_DIR [ROUNDS]}")
ROUNDS=${2:-3}
if [ "${LANEFS_IN_NETNS:-}" != 1 ]; then
  LANEFS_IN_NETNS=1 exec unshare -n "$0" "$B" "$ROUNDS"
fi
W=$(mktemp -d /tmp/lanefs-dpdkb.XXXXXX)
export LANEFS_RUN_DIR=$W/run LANEFS_FRONTEND=$B/fuse/lanefs-frontend
MNT=$W/mnt
mkdir -p "$W/run" "$MNT"
bp=""
cleanup() { umount "$MNT" 2>/dev/null || true; [ -z "$bp" ] || kill "$bp" 2>/dev/null || true; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
ip link set lo up
ip tuntap add dtap0 mode tap multi_queue
ip addr add 192.0.2.1/24 dev dtap0
ip link set dtap0 up
"$B/userspace/backend/lanefsd" --data-dir "$W/data" --listen 192.0.2.1:14123 --rdma off \
  --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
bp=$!
i=0
until "$B/userspace/cli/lanefs" --backend 192.0.2.1:14123 --connect-timeout 1 fs create f >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 30 ] || { echo "lanefsd did not answer" >&2; exit 1; }; sleep 0.5
done
fio_run() {  # name rw bs iodepth -> "MB/s p50_us"
  fio --name="$1" --filename="$MNT/bench" --rw="$2" --bs="$3" --iodepth="$4" --direct=1 --ioengine=libaio \
    --size=64M --runtime=5 --time_based=0 --output-format=json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] else j["write"]
print(round(d["bw"] * 1024 / 1e6, 1), round(d["clat_ns"]["percentile"]["50.000000"] / 1000, 1))'
}
idle_cpu() {
  p=$(cat "$W/run/frontend.pid")
  t0=$(awk '{print $14 + $15}' "/proc/$p/stat"); sleep 5; t1=$(awk '{print $14 + $15}' "/proc/$p/stat")
  echo "$(( (t1 - t0) * 100 / $(getconf CLK_TCK) / 5 ))"  # percent of one core
}
OUT=$W/results.tsv
: >"$OUT"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for lane in udp dpdk; do
    opts=forcedirect
    [ $lane = dpdk ] && opts="$opts,net=tap:dtap0/192.0.2.2/24,dedicated_mode=full"
    "$B/fuse/mount.lanefs" 192.0.2.1:14123/f "$MNT" -o "$opts"
    set -- $(fio_run w write 1M 8); echo "$r	$lane	seq_write_MBps	$1" >>"$OUT"
    set -- $(fio_run r read 1M 8); echo "$r	$lane	seq_read_MBps	$1" >>"$OUT"
    set -- $(fio_run rr randread 4k 1); echo "$r	$lane	randread4k_p50_us	$2" >>"$OUT"
    [ $lane = dpdk ] && echo "$r	dpdk	idle_cpu_pct_polling	$(idle_cpu)" >>"$OUT"
    umount "$MNT"; sleep 1
  done
  "$B/fuse/mount.lanefs" 192.0.2.1:14123/f "$MNT" -o "forcedirect,net=tap:dtap0/192.0.2.2/24,dedicated_mode=none"
  echo "$r	dpdk	idle_cpu_pct_interrupts	$(idle_cpu)" >>"$OUT"
  umount "$MNT"; sleep 1
  r=$((r + 1))
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import collections, datetime, os, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, lane, k, x = line.split()
    v[(lane, k)].append(float(x))
med = {k: statistics.median(x) for k, x in v.items()}
print(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, kernel {os.uname().release}; "
      f"{sys.argv[2]} interleaved rounds, medians; backend lanefsd (kernel UDP) on the tap's kernel side, "
      "frontend on net_tap (DPDK) or kernel UDP, fio --direct=1 on a forcedirect mount:\n")
print("| measure | UDP lane | DPDK lane | DPDK / UDP |\n|---|---:|---:|---:|")
for k, name in [("seq_write_MBps", "1 MiB write, iodepth 8 (MB/s)"), ("seq_read_MBps", "1 MiB read, iodepth 8 (MB/s)"),
                ("randread4k_p50_us", "4 KiB random read, iodepth 1, p50 latency (µs)")]:
    u, d = med.get(("udp", k)), med.get(("dpdk", k))
    print(f"| {name} | {u} | {d} | {d / u:.2f}× |")
print(f"\nFrontend CPU while idle (5 s): polling (`dedicated_mode=full`) {med[('dpdk', 'idle_cpu_pct_polling')]:.0f}% "
      f"of a core, RX interrupts (`dedicated_mode=none`) {med[('dpdk', 'idle_cpu_pct_interrupts')]:.0f}% of a core.")
PY

#!/bin/sh
# run_dpdk_bench.sh BUILD_DIR [ROUNDS]: a forcedirect mount on each lane, in
# a private network namespace, interleaved rounds, medians:
#   udp    kernel UDP client -> kernel UDP backend (the baseline);
#   memif  DPDK client -> DPDK backend over net_memif, both polling
#          (dedicated_mode=full / --dedicated-mode full), no kernel on the path;
#   tap    DPDK client on net_tap (polling) -> kernel UDP backend.
# fio: 1 MiB sequential write and read (iodepth 8), 4 KiB random reads
# (iodepth 1, p50 latency), each 4 s after 1 s of ramp-up (time based, a
# 256 MiB file); plus the frontend's idle CPU in polling and
# RX-interrupt mode. Only one backend polls at a time (the memif backend
# runs during its own measurements only). Prints the markdown section
# "DPDK lane" of docs/benchmarks.md. Root.
set -eu
B=$(readlink -f "${1:?usage: run_dpdk_bench.sh BUILD_DIR [ROUNDS]}")
ROUNDS=${2:-3}
if [ "${LANEFS_IN_NETNS:-}" != 1 ]; then
  LANEFS_IN_NETNS=1 exec unshare -n "$0" "$B" "$ROUNDS"
fi
W=$(mktemp -d /tmp/lanefs-dpdkbench.XXXXXX)
# lanefsd writes its admin token there; the CLI and the mounts present it (both backends share the host secret).
export LANEFS_TOKEN_FILE="$W/data-udp/admin.token"
export LANEFS_RUN_DIR=$W/run LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
MNT=$W/mnt
mkdir -p "$W/run" "$MNT"
bp="" mp=""
stop_memif() { [ -z "$mp" ] || { kill "$mp" 2>/dev/null || true; wait "$mp" 2>/dev/null || true; }; mp=""; }
cleanup() {
  umount "$MNT" 2>/dev/null || true
  stop_memif
  [ -z "$bp" ] || kill "$bp" 2>/dev/null || true
  sleep 0.5
  rm -rf "$W"
}
trap cleanup EXIT
LANEFSD=$B/userspace/backend/lanefsd
cli() { timeout 30 "$B/userspace/cli/lanefs" --connect-timeout 1 "$@"; }
wait_for() {  # command...: retry for 15 s
  i=0
  until "$@" >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 30 ] || { echo "timed out: $*" >&2; exit 1; }; sleep 0.5; done
}
ip link set lo up
ip tuntap add dtap0 mode tap multi_queue
ip addr add 192.0.2.1/24 dev dtap0
ip link set dtap0 up
# The kernel-UDP backend (udp and tap rows).
"$LANEFSD" --data-dir "$W/data-udp" --listen 192.0.2.1:14123 --rdma off --log-file "$W/lanefsd-udp.log" \
  </dev/null >/dev/null 2>&1 &
bp=$!
wait_for cli --backend 192.0.2.1:14123 fs create f
# The memif backend's data directory gets its filesystem over kernel UDP
# first (on an address given to lo for the moment), then serves it on DPDK.
ip addr add 198.51.100.1/32 dev lo
"$LANEFSD" --data-dir "$W/data-memif" --listen 198.51.100.1:14123 --rdma off --log-file "$W/lanefsd-m.log" \
  </dev/null >/dev/null 2>&1 &
mp=$!
wait_for cli --backend 198.51.100.1:14123 fs create f
stop_memif
ip addr del 198.51.100.1/32 dev lo
start_memif() {
  : >"$W/lanefsd-m.log"
  "$LANEFSD" --data-dir "$W/data-memif" --listen 198.51.100.1:14123 --rdma off \
    --net "memif:$W/memif.sock:server/198.51.100.1/24" --log-file "$W/lanefsd-m.log" </dev/null >/dev/null 2>&1 &
  mp=$!
  wait_for grep -q "serving on 198.51.100.1:14123 (DPDK)" "$W/lanefsd-m.log"
}
fio_run() {  # name rw bs iodepth -> "MB/s p50_us"
  fio --name="$1" --filename="$MNT/bench" --rw="$2" --bs="$3" --iodepth="$4" --direct=1 --ioengine=libaio \
    --size=256M --ramp_time=1 --runtime=4 --time_based=1 --output-format=json 2>/dev/null | python3 -c '
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
  for lane in udp memif tap; do
    src=192.0.2.1:14123/f opts=forcedirect
    case $lane in
      memif) start_memif; src=198.51.100.1:14123/f
             opts="$opts,net=memif:$W/memif.sock/198.51.100.2/24,dedicated_mode=full" ;;
      tap) opts="$opts,net=tap:dtap0/192.0.2.2/24,dedicated_mode=full" ;;
    esac
    "$B/userspace/frontend/mount.lanefs" "$src" "$MNT" -o "$opts"
    set -- $(fio_run w write 1M 8); echo "$r	$lane	seq_write_MBps	$1" >>"$OUT"
    set -- $(fio_run r read 1M 8); echo "$r	$lane	seq_read_MBps	$1" >>"$OUT"
    set -- $(fio_run rr randread 4k 1); echo "$r	$lane	randread4k_p50_us	$2" >>"$OUT"
    [ $lane = tap ] && echo "$r	tap	idle_cpu_pct_polling	$(idle_cpu)" >>"$OUT"
    umount "$MNT"; sleep 1
    [ $lane = memif ] && stop_memif
  done
  "$B/userspace/frontend/mount.lanefs" 192.0.2.1:14123/f "$MNT" -o "forcedirect,net=tap:dtap0/192.0.2.2/24,dedicated_mode=none"
  echo "$r	tap	idle_cpu_pct_interrupts	$(idle_cpu)" >>"$OUT"
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
      f"{sys.argv[2]} interleaved rounds, medians; fio --direct=1 on a forcedirect mount, 4 s after 1 s ramp-up. "
      "UDP: kernel UDP client and backend; memif: DPDK client and DPDK backend over net_memif, both polling; "
      "tap: DPDK client on net_tap (polling), kernel-UDP backend.\n")
print("| measure | UDP lane | DPDK memif | memif / UDP | DPDK tap | tap / UDP |\n|---|---:|---:|---:|---:|---:|")
for k, name in [("seq_write_MBps", "1 MiB write, iodepth 8 (MB/s)"), ("seq_read_MBps", "1 MiB read, iodepth 8 (MB/s)"),
                ("randread4k_p50_us", "4 KiB random read, iodepth 1, p50 latency (µs)")]:
    u, m, t = med.get(("udp", k)), med.get(("memif", k)), med.get(("tap", k))
    print(f"| {name} | {u} | {m} | {m / u:.2f}× | {t} | {t / u:.2f}× |")
# Per round, memif against the UDP lane of the same round: the spread.
spread = []
for k, name in [("seq_write_MBps", "write"), ("seq_read_MBps", "read")]:
    rs = sorted(m / u for m, u in zip(v[("memif", k)], v[("udp", k)]))
    spread.append(f"{name} {rs[0]:.2f}–{rs[-1]:.2f}× ({sum(r >= 1 for r in rs)} of {len(rs)} rounds ≥ 1)")
print("\nmemif / UDP per round: " + ", ".join(spread) + ".")
print(f"\nFrontend CPU while idle (5 s, net_tap): polling (`dedicated_mode=full`) "
      f"{med[('tap', 'idle_cpu_pct_polling')]:.0f}% of a core, RX interrupts (`dedicated_mode=none`) "
      f"{med[('tap', 'idle_cpu_pct_interrupts')]:.0f}% of a core.")
PY

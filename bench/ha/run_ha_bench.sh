#!/bin/sh
# run_ha_bench.sh BUILD_DIR [ROUNDS]: HA on the UDP lane, two veth legs
# between this network namespace and a backend's (as tests/ha/ha_mount.sh),
# each leg rate-limited with tc tbf (RATE, default 200mbit, both directions).
# Interleaved rounds, medians:
#   - throughput of a forcedirect mount on one leg (net:ha=ca) and on two
#     (net:ha=ca,net:ha=cb): fio 1 MiB sequential write and read, iodepth 8;
#   - failover: 4 KiB O_DIRECT writes in a loop while leg A goes down; the
#     longest gap between two completed writes (the stall an application
#     sees: the last IO that made it on the failed leg to the first on the
#     other);
#   - failback: from `ip link set ca up` to the first bytes on path A again.
# Prints the markdown section "HA" of docs/benchmarks.md. Root.
set -eu
B=$(readlink -f "${1:?usage: run_ha_bench.sh BUILD_DIR [ROUNDS]}")
ROUNDS=${2:-3}
RATE=${RATE:-200mbit}
if [ "${LANEFS_IN_NETNS:-}" != 1 ]; then
  LANEFS_IN_NETNS=1 exec unshare -n "$0" "$B" "$ROUNDS"
fi
W=$(mktemp -d /tmp/lanefs-habench.XXXXXX)
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$W/data/admin.token"
NS=lanefs-habench-$$
export LANEFS_RUN_DIR=$W/run LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend LANEFS_RESOURCES=$W/resources.json
MNT=$W/mnt
mkdir -p "$W/run" "$MNT"
bp=""
cleanup() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  # `ip netns exec` runs lanefsd as its child: stop lanefsd itself.
  p=$(cat "$W/data/lanefsd.pid" 2>/dev/null || true)
  [ -z "$p" ] || kill "$p" 2>/dev/null || true
  [ -z "$bp" ] || kill "$bp" 2>/dev/null || true
  sleep 1
  [ -z "$p" ] || kill -9 "$p" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
LANEFS=$B/userspace/cli/lanefs
ip link set lo up
ip netns add "$NS"
nsx ip link set lo up
ip link add ca type veth peer name sa
ip link add cb type veth peer name sb
ip link set sa netns "$NS"
ip link set sb netns "$NS"
ip addr add 192.0.2.1/24 dev ca
ip addr add 198.51.100.1/24 dev cb
nsx ip addr add 192.0.2.2/24 dev sa
nsx ip addr add 198.51.100.2/24 dev sb
for d in ca cb; do ip link set "$d" up; tc qdisc add dev "$d" root tbf rate "$RATE" burst 256kb latency 50ms; done
for d in sa sb; do nsx ip link set "$d" up; nsx tc qdisc add dev "$d" root tbf rate "$RATE" burst 256kb latency 50ms; done
nsx "$B/userspace/backend/lanefsd" --data-dir "$W/data" --listen 192.0.2.2:14123 --label A \
  --data-addr 198.51.100.2/B --rdma off --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
bp=$!
i=0
until timeout 5 "$LANEFS" --backend 192.0.2.2:14123 --connect-timeout 1 fs create f >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 30 ] || { echo "lanefsd did not answer" >&2; exit 1; }; sleep 0.5
done
"$LANEFS" local resources net add ca --label A >/dev/null
"$LANEFS" local resources net add cb --label B >/dev/null
fio_mbps() {  # rw
  fio --name=ha --filename="$MNT/bench" --rw="$1" --bs=1M --iodepth=8 --direct=1 --ioengine=libaio \
    --size=48M --runtime=5 --time_based=0 --output-format=json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] else j["write"]
print(round(d["bw"] * 1024 / 1e6, 1))'
}
path_tx() {  # local leg -> tx_bytes of its path
  timeout 10 "$LANEFS" --json stats --paths | python3 -c '
import json, sys
rows = [p for m in json.load(sys.stdin) for p in m.get("paths", []) if p["local"] == sys.argv[1]]
print(rows[0]["tx_bytes"] if rows else 0)' "$1"
}
mount_legs() { "$B/userspace/frontend/mount.lanefs" 192.0.2.2:14123/f "$MNT" -o "forcedirect,$1"; }
OUT=$W/results.tsv
: >"$OUT"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for legs in one two; do
    opts=net:ha=ca
    [ $legs = two ] && opts=net:ha=ca,net:ha=cb
    mount_legs "$opts"
    echo "$r	$legs	write_MBps	$(fio_mbps write)" >>"$OUT"
    echo "$r	$legs	read_MBps	$(fio_mbps read)" >>"$OUT"
    umount "$MNT"; sleep 1
  done
  # Failover stall and failback time on a two-leg mount.
  mount_legs net:ha=ca,net:ha=cb
  python3 - "$MNT/stall" "$W/stall.out" <<'PY' &
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 4096)
buf.write(b"x" * 4096)
last, worst, n, end = time.monotonic(), 0.0, 0, time.monotonic() + 8
while time.monotonic() < end:
    os.pwritev(fd, [buf], (n % 256) * 4096)
    now = time.monotonic()
    if n > 0:
        worst = max(worst, now - last)
    last, n = now, n + 1
open(sys.argv[2], "w").write(f"{worst * 1000:.1f} {n}\n")
PY
  wp=$!
  sleep 2
  ip link set ca down
  sleep 3
  a0=$(path_tx 192.0.2.1)
  t0=$(date +%s%3N)
  ip link set ca up
  i=0
  while [ "$(path_tx 192.0.2.1)" -le "$a0" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  t1=$(date +%s%3N)
  wait "$wp"
  set -- $(cat "$W/stall.out")
  echo "$r	two	failover_stall_ms	$1" >>"$OUT"
  echo "$r	two	failback_ms	$((t1 - t0))" >>"$OUT"
  umount "$MNT"; sleep 1
  r=$((r + 1))
done
python3 - "$OUT" "$ROUNDS" "$RATE" <<'PY'
import collections, datetime, os, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, legs, k, x = line.split()
    v[(legs, k)].append(float(x))
med = {k: statistics.median(x) for k, x in v.items()}
print(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, kernel {os.uname().release}; "
      f"{sys.argv[2]} interleaved rounds, medians; two veth legs, each limited to {sys.argv[3]} per direction "
      "(tc tbf), forcedirect mount, fio 1 MiB iodepth 8:\n")
print("| measure | one leg | two legs | two / one |\n|---|---:|---:|---:|")
for k, name in [("write_MBps", "1 MiB write (MB/s)"), ("read_MBps", "1 MiB read (MB/s)")]:
    a, b = med[("one", k)], med[("two", k)]
    print(f"| {name} | {a} | {b} | {b / a:.2f}× |")
print(f"\nFailover (leg A set down under 4 KiB O_DIRECT writes): longest gap between two completed writes "
      f"{med[('two', 'failover_stall_ms')]:.0f} ms. Failback (leg A set up): first bytes on path A again after "
      f"{med[('two', 'failback_ms')]:.0f} ms (polled every 50 ms; stats are published every 100 ms).")
PY

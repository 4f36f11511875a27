#!/bin/sh
# UDP GSO/GRO micro-benchmark (root): udp_gso_bench over loopback and over a
# veth pair (MTU 1500) between two network namespaces this script makes and
# deletes (addresses from 192.0.2.0/24). For 64 B and 1472 B datagrams in
# bursts of 32, offloads on and off, ROUNDS interleaved rounds of SECONDS
# each; prints every run and a markdown table of medians.
#   bench/run_udp_gso_bench.sh BUILD_DIR [SECONDS] [ROUNDS]
set -eu
BUILD=${1:?usage: run_udp_gso_bench.sh BUILD_DIR [SECONDS] [ROUNDS]}
SECS=${2:-2}
ROUNDS=${3:-3}
BIN="$BUILD/bench/udp_gso_bench"
[ -x "$BIN" ] || { echo "no $BIN (build first)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 77; }

A=lgb-a-$$ B=lgb-b-$$ VA=lgba$$ VB=lgbb$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link add "$VA" type veth peer name "$VB" netns "$B"
ip -n "$A" addr add 192.0.2.1/24 dev "$VA"
ip -n "$B" addr add 192.0.2.2/24 dev "$VB"
ip -n "$A" link set "$VA" mtu 1500 up
ip -n "$B" link set "$VB" mtu 1500 up

OUT=$(mktemp)
trap 'cleanup; rm -f "$OUT"' EXIT INT TERM
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for link in loopback veth; do
    for size in 64 1472; do
      for off in on off; do
        if [ "$link" = loopback ]; then
          args="--tx-ip 127.0.0.1 --rx-ip 127.0.0.1"
        else
          args="--tx-ip 192.0.2.1 --rx-ip 192.0.2.2 --rx-netns $B"
        fi
        # shellcheck disable=SC2086
        line=$(timeout $((SECS + 20)) ip netns exec "$A" "$BIN" --size "$size" --burst 32 \
          --offload "$off" --seconds "$SECS" $args)
        echo "link=$link round=$r $line" | tee -a "$OUT"
      done
    done
  done
  r=$((r + 1))
done

# Medians per (link, size, offload).
python3 - "$OUT" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    rows.setdefault((kv["link"], int(kv["size"]), kv["offload"]), []).append(kv)
def med(rs, k): return statistics.median(float(r[k]) for r in rs)
print("| link | datagram | offloads | tx datagrams/s | rx datagrams/s | rx MB/s | loss % | CPU µs/datagram |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for (link, size, off) in sorted(rows, key=lambda k: (k[0], k[1], k[2] == "off")):
    rs = rows[(link, size, off)]
    print(f"| {link} | {size} B | {off} | {med(rs,'tx_pps'):,.0f} | {med(rs,'rx_pps'):,.0f} | "
          f"{med(rs,'rx_MBps'):,.1f} | {med(rs,'loss_pct'):.1f} | {med(rs,'cpu_us_per_dgram'):.3f} |")
EOF

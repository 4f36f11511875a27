#!/bin/sh
# smoke_rdma.sh (guest): rping and ib_write_bw between rxe0 (192.0.2.1) and
# rxe1 (192.0.2.2); checks that the traffic went over the veth.
set -eu
HERE=$(dirname "$(readlink -f "$0")")
A=192.0.2.1
B=192.0.2.2
for t in rping ib_write_bw ibv_devinfo timeout; do
  command -v "$t" >/dev/null || { echo "smoke_rdma: SKIPPED: $t not installed on the host"; exit 77; }
done
"$HERE/rdma_setup.sh"
ibv_devinfo -d rxe0 | grep -E 'hca_id|state|link_layer'

pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "smoke_rdma: FAILED: $*" >&2; exit 1; }
tx_packets() { cat "/sys/class/net/$1/statistics/tx_packets"; }

# Retry a client until its server listens (TCG is slow to start processes).
retry() {
  n=0
  until "$@"; do
    n=$((n + 1))
    [ $n -lt 10 ] || return 1
    sleep 1
  done
}

# ---- rping: rdma_cm connect + a few validated SEND/RDMA READ/WRITE rounds --
before=$(tx_packets vb)
timeout 90 rping -s -a "$A" -C 5 -S 64 -V >/tmp/rping_server.log 2>&1 &
srv=$!; pids="$pids $srv"
retry timeout 30 rping -c -a "$A" -I "$B" -C 5 -S 64 -V -v >/tmp/rping_client.log 2>&1 ||
  { cat /tmp/rping_client.log /tmp/rping_server.log; fail "rping client"; }
wait "$srv" || { cat /tmp/rping_server.log; fail "rping server"; }
cat /tmp/rping_client.log
n=$(grep -c 'ping data' /tmp/rping_client.log || true)
[ "$n" -ge 5 ] || fail "rping: $n of 5 pings"
sent=$(($(tx_packets vb) - before))
echo "smoke_rdma: rping ok ($n pings, $sent packets sent on vb)"
[ "$sent" -ge 10 ] || fail "rping traffic did not cross the veth ($sent packets on vb)"

# ---- ib_write_bw: RC RDMA WRITE, small sizes, long QP timeout under load --
before=$(tx_packets vb)
PERF="-u 18 -s 4096 -n 200 -F -x 1"
# shellcheck disable=SC2086
timeout 120 ib_write_bw -d rxe0 $PERF >/tmp/bw_server.log 2>&1 &
srv=$!; pids="$pids $srv"
sleep 1
# shellcheck disable=SC2086
retry timeout 60 ib_write_bw -d rxe1 $PERF "$A" >/tmp/bw_client.log 2>&1 ||
  { cat /tmp/bw_client.log /tmp/bw_server.log; fail "ib_write_bw client"; }
wait "$srv" || { cat /tmp/bw_server.log; fail "ib_write_bw server"; }
cat /tmp/bw_client.log
grep -qE '^ *4096 +200 ' /tmp/bw_client.log || fail "ib_write_bw printed no result line"
sent=$(($(tx_packets vb) - before))
echo "smoke_rdma: ib_write_bw ok ($sent packets sent on vb)"
[ "$sent" -ge 200 ] || fail "ib_write_bw traffic did not cross the veth ($sent packets on vb)"
echo "smoke_rdma: PASS"

#!/bin/sh
# bond_mount.sh (guest): a kernel bond in UDP mode survives losing a slave.
#
#   bond0 192.0.2.1/24 (active-backup, miimon 50)       netns "srv":
#     slave b1a <-- veth --> b1b \
#     slave b2a <-- veth --> b2b  > bridge brs 192.0.2.2/24, lanefsd
#
# A FUSE mount on bond0 (no net=, no net:ha=: the bond is one interface to
# lanefs) writes and verifies data in a loop; the active slave's peer is set
# down: the bond fails over to the other slave and the IO goes on with zero
# errors; the slave comes back; the other one is set down; IO still goes on.
# Needs LANEFS_BUILD_DIR (ctest sets it; vm_run.sh passes it through).
set -eu
A=192.0.2.2
PORT=14000
say() { echo "bond_mount: $*"; }
fail() {
  echo "bond_mount: FAILED: $*" >&2
  for f in /tmp/lanefsd/lanefsd.log /tmp/lanefs-run/frontend.log; do
    [ -f "$f" ] && { echo "---- tail of $f" >&2; tail -n 20 "$f" >&2; }
  done
  cat /proc/net/bonding/bond0 >&2 2>/dev/null || true
  exit 1
}
[ -n "${LANEFS_BUILD_DIR:-}" ] || fail "LANEFS_BUILD_DIR is not set"
BLD=$LANEFS_BUILD_DIR
LANEFSD=$BLD/userspace/backend/lanefsd
LANEFS=$BLD/userspace/cli/lanefs
export LANEFS_FRONTEND=$BLD/userspace/frontend/lanefs-frontend LANEFS_RUN_DIR=/tmp/lanefs-run
for b in "$LANEFSD" "$LANEFS" "$BLD/userspace/frontend/mount.lanefs" "$LANEFS_FRONTEND"; do
  [ -x "$b" ] || fail "$b not built (build the tree first)"
done
for m in veth bonding bridge fuse; do modprobe "$m" || fail "modprobe $m"; done

ip link set lo up
ip netns add srv
S="ip netns exec srv"
$S ip link set lo up
$S ip link add brs type bridge
for i in 1 2; do
  ip link add "b${i}a" type veth peer name "b${i}b"
  ip link set "b${i}b" netns srv
  $S ip link set "b${i}b" master brs
  $S ip link set "b${i}b" up
done
$S ip addr add "$A/24" dev brs
$S ip link set brs up
ip link add bond0 type bond mode active-backup miimon 50
for i in 1 2; do ip link set "b${i}a" master bond0; done
ip addr add 192.0.2.1/24 dev bond0
ip link set bond0 up
active() { sed -n 's/^Currently Active Slave: //p' /proc/net/bonding/bond0; }
i=0
until [ -n "$(active)" ] && [ "$(active)" != None ]; do
  i=$((i + 1)); [ $i -lt 50 ] || fail "bond0 has no active slave"; sleep 0.1
done
say "bond0 up, active slave $(active)"

mkdir -p /tmp/lanefsd "$LANEFS_RUN_DIR" /tmp/mnt/b
# lanefsd writes its admin token there; the CLI and the mount present it.
export LANEFS_TOKEN_FILE=/tmp/lanefsd/admin.token
pid=""
cleanup() {
  touch /tmp/stop-io
  umount /tmp/mnt/b 2>/dev/null || umount -l /tmp/mnt/b 2>/dev/null || true
  # `ip netns exec` runs lanefsd as its child: stop lanefsd itself.
  p=$(cat /tmp/lanefsd/lanefsd.pid 2>/dev/null || true)
  [ -z "$p" ] || kill "$p" 2>/dev/null || true
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  sleep 1
  [ -z "$p" ] || kill -9 "$p" 2>/dev/null || true
  ip netns del srv 2>/dev/null || true
}
trap cleanup EXIT
$S "$LANEFSD" --data-dir /tmp/lanefsd --listen "$A:$PORT" --rdma off \
  --log-file /tmp/lanefsd/lanefsd.log </dev/null >/tmp/lanefsd/out 2>&1 &
pid=$!
cli() { timeout 60 "$LANEFS" --backend "$A:$PORT" "$@"; }
i=0
until cli --connect-timeout 2 fs list >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 40 ] || fail "lanefsd not answering on $A:$PORT through bond0"; sleep 1
done
cli fs create b >/dev/null || fail "fs create"
"$BLD/userspace/frontend/mount.lanefs" "$A:$PORT/b" /tmp/mnt/b -o forcedirect || fail "mount over bond0"
head -c 524288 /dev/urandom >/tmp/src
(
  end=$(($(date +%s) + 150)); n=0
  while [ ! -f /tmp/stop-io ] && [ "$(date +%s)" -lt "$end" ] && [ $n -lt 100000 ]; do
    dd if=/tmp/src of=/tmp/mnt/b/io bs=128k status=none || { echo "write failed at round $n"; exit 1; }
    cmp /tmp/src /tmp/mnt/b/io || { echo "data differs at round $n"; exit 2; }
    n=$((n + 1))
  done
  echo "bond_mount: $n verified rounds"
) >/tmp/io.out 2>&1 &
iop=$!
sleep 3
rounds_now() { stat -c %Y /tmp/mnt/b/io; }
for step in 1 2; do
  act=$(active)
  peer="${act%a}b"
  before=$(cat "/sys/class/net/bond0/statistics/tx_packets")
  $S ip link set "$peer" down
  i=0
  until [ "$(active)" != "$act" ] && [ "$(active)" != None ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "bond0 did not fail over from $act"; sleep 0.1
  done
  new=$(active)
  say "step $step: $peer down: bond0 moved from $act to $new after ~$((i * 100)) ms"
  t0=$(cat "/sys/class/net/$new/statistics/tx_packets")
  sleep 4
  t1=$(cat "/sys/class/net/$new/statistics/tx_packets")
  kill -0 "$iop" 2>/dev/null || fail "IO stopped after losing $act: $(cat /tmp/io.out)"
  [ $((t1 - t0)) -gt 100 ] || fail "no traffic on $new after the failover ($t0 -> $t1 packets)"
  say "step $step: $new carried $((t1 - t0)) packets in 4 s (bond0 tx before: $before)"
  $S ip link set "$peer" up
  sleep 1
done
touch /tmp/stop-io
wait "$iop" || fail "IO failed: $(cat /tmp/io.out)"
cat /tmp/io.out
errs=$(timeout 10 "$LANEFS" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["errors"])')
[ "$errs" = 0 ] || fail "the mount counted $errs IO errors"
umount /tmp/mnt/b
say "PASS"

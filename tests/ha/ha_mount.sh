#!/bin/sh
# ha_mount.sh BUILD_DIR: a FUSE mount with two legs (net:ha=ca,net:ha=cb) to
# a backend with two legs (lanefsd --label A, and `lanefs cluster container
# net add be0 sb --ips ... --label B` applied by a restart), each leg a
# veth pair between this network namespace (ctest runs the script under
# `unshare -n`) and the backend's namespace (made here, deleted on exit);
# leg A on 192.0.2.0/24, leg B on 198.51.100.0/24. While IO with data
# verification runs:
#   1. both legs carry load (lanefs stats --paths);
#   2. leg A goes down: IO goes on with zero errors, the path is reported
#      down (a failover) and leg B carries the traffic;
#   3. leg A comes back: the path is up again (a failback) and carries load;
#   4. 30% loss on leg B (nftables): its health drops and most traffic moves
#      to leg A;
#   5. steps 1-3 again on the DPDK lane: a mount with one net_af_packet port
#      per leg (net=afpacket:ca/...,net=afpacket:cb/...);
#   6. steps 1-3 against a backend on the DPDK lane with one net_af_packet
#      port per leg (lanefsd --net ... --net ...).
# Prints how long detection took (not asserted: benchmarks measure).
# Exit 77 (skipped) without root, /dev/fuse or nft.
set -eu
B=${1:?usage: ha_mount.sh BUILD_DIR}
skip() { echo "ha_mount: SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v nft >/dev/null || skip "no nft (package nftables)"
W=$(mktemp -d /tmp/lanefs-ha.XXXXXX)
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$W/data/admin.token"
NS=lanefs-ha-$$
RUN=$W/run
export LANEFS_RUN_DIR=$RUN LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend LANEFS_RESOURCES=$W/resources.json
MNT=$W/mnt
mkdir -p "$RUN" "$MNT"
bp="" iop=""
fail() {
  echo "ha_mount: FAILED: $*" >&2
  tail -20 "$RUN/frontend.log" >&2 2>/dev/null || true
  tail -10 "$W/lanefsd.log" >&2 2>/dev/null || true
  exit 1
}
# `ip netns exec` runs lanefsd as its child: stop lanefsd itself (its pid
# file), and wait until it is gone (bounded).
stop_backend() {
  p=$(cat "$W/data/lanefsd.pid" 2>/dev/null || true)
  [ -z "$p" ] || kill "$p" 2>/dev/null || true
  i=0
  while [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -z "$p" ] || kill -9 "$p" 2>/dev/null || true
  [ -z "$bp" ] || wait "$bp" 2>/dev/null || true
  bp=""
}
cleanup() {
  [ -z "$iop" ] || kill "$iop" 2>/dev/null || true
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  stop_backend
  ip netns del "$NS" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
cli() { timeout 30 "$B/userspace/cli/lanefs" --backend 192.0.2.2:14123 "$@"; }
# One path's field from `lanefs stats --paths --json`: path LEG FIELD
path() {
  timeout 10 "$B/userspace/cli/lanefs" --json stats --paths | python3 -c '
import json, sys
leg, field = sys.argv[1], sys.argv[2]
rows = [p for m in json.load(sys.stdin) for p in m.get("paths", []) if p["local"] == leg]
print(rows[0][field] if rows else "none")' "$1" "$2"
}
now_ms() { date +%s%3N; }
wait_for() {  # description, max tenths of a second, command...
  what=$1 max=$2; shift 2
  i=0
  until "$@"; do i=$((i + 1)); [ $i -lt "$max" ] || fail "$what"; sleep 0.1; done
}
path_is() { [ "$(path "$1" state)" = "$2" ]; }
has_path() { [ "$(path "$1" state)" != none ]; }
# Whether path $1 has sent more than 1 MB beyond $2 bytes (a shared, loaded
# machine may pause the IO for a moment: callers wait for it, bounded).
grew() { local v; v=$(path "$1" tx_bytes); [ "$v" != none ] && [ "$v" -gt $(($2 + 1000000)) ]; }
# After an unmount the frontend exits (it was the last mount): wait for it.
frontend_gone() {
  i=0
  while [ -f "$RUN/frontend.pid" ] && kill -0 "$(cat "$RUN/frontend.pid")" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 80 ] || fail "the frontend did not exit within 20 s of the last unmount"; sleep 0.25
  done
}

ip link set lo up
ip netns add "$NS"
nsx ip link set lo up
ip link add ca type veth peer name sa
ip link add cb type veth peer name sb
ip link set sa netns "$NS"
ip link set sb netns "$NS"
ip addr add 192.0.2.1/24 dev ca
ip addr add 198.51.100.1/24 dev cb
ip link set ca up
ip link set cb up
nsx ip addr add 192.0.2.2/24 dev sa
nsx ip addr add 198.51.100.2/24 dev sb
nsx ip link set sa up
nsx ip link set sb up

start_backend() {
  nsx "$B/userspace/backend/lanefsd" --data-dir "$W/data" --listen 192.0.2.2:14123 --name be0 --label A \
    --rdma off --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
  bp=$!
  wait_for "lanefsd did not answer" 300 cli --connect-timeout 1 fs list >/dev/null 2>&1
}
start_backend
cli fs create f >/dev/null
# The backend's second leg is staged with the CLI and applied at restart.
cli cluster container net add be0 sb --ips 198.51.100.2 --netmask 24 --label B >/dev/null ||
  fail "cluster container net add"
set +e
cli cluster container net add nosuch sb >/dev/null 2>&1; [ $? = 4 ] || fail "net add to an unknown container is not exit 4"
cli cluster container net add be0 sb --ips 198.51.100.300 >/dev/null 2>&1; [ $? = 2 ] || fail "a bad IP is not exit 2"
set -e
cli --json cluster container net list be0 | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert [n["dev"] for n in j["staged"]] == ["sb"] and j["staged"][0]["label"] == "B", j
assert len(j["active"]) == 1, j' || fail "container net list before the restart"
stop_backend
start_backend
cli --json cluster container net list be0 | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert sorted((a["addr"], a["label"]) for a in j["active"]) == [("192.0.2.2:14123", "A"), ("198.51.100.2:14123", "B")], j' ||
  fail "the staged leg is not active after the restart"
cli --json cluster status | grep -q "198.51.100.2" || fail "the cluster map does not advertise the second leg"
"$B/userspace/cli/lanefs" local resources net add ca --label A >/dev/null
"$B/userspace/cli/lanefs" local resources net add cb --label B >/dev/null
"$B/userspace/frontend/mount.lanefs" 192.0.2.2:14123/f "$MNT" -o net:ha=ca,net:ha=cb,forcedirect || fail "mount with net:ha"
head -c 1048576 /dev/urandom >"$W/src"

# IO with verification until told to stop (bounded: 120 s, 100000 rounds).
start_io() {
  rm -f "$W/stop"
  (
    end=$(($(date +%s) + 120)); n=0
    while [ ! -f "$W/stop" ] && [ "$(date +%s)" -lt "$end" ] && [ $n -lt 100000 ]; do
      dd if="$W/src" of="$MNT/io" bs=256k status=none || { echo "write failed at round $n"; exit 1; }
      cmp "$W/src" "$MNT/io" || { echo "data differs at round $n"; exit 2; }
      n=$((n + 1))
    done
    echo "ha_mount: $n verified 1 MiB write+read rounds"
  ) >"$W/io.out" 2>&1 &
  iop=$!
}
stop_io() {
  touch "$W/stop"
  wait "$iop" || fail "IO failed: $(cat "$W/io.out")"
  iop=""
  cat "$W/io.out"
}

# Steps 1-3 on the legs whose local addresses are $1 (label A) and $2 (B).
failover_failback() {
  LA=$1 LB=$2
  wait_for "lanefs stats --paths lists no path from $LA" 100 has_path "$LA"
  sleep 2
  # ---- 1. both legs carry load
  a0=$(path "$LA" tx_bytes); b0=$(path "$LB" tx_bytes)
  [ "$a0" != none ] && [ "$b0" != none ] || fail "lanefs stats --paths lists no paths for $LA and $LB"
  [ "$a0" -gt 1000000 ] && [ "$b0" -gt 1000000 ] || fail "both legs should carry load: A $a0 B $b0 bytes"
  [ "$(path "$LA" label)" = A ] && [ "$(path "$LB" label)" = B ] || fail "path labels are not A and B"
  # ---- 2. leg A down: failover
  t0=$(now_ms)
  ip link set ca down
  wait_for "path A was not reported down within 10 s" 100 path_is "$LA" down
  t1=$(now_ms)
  b1=$(path "$LB" tx_bytes)
  wait_for "leg B did not carry 1 MB within 10 s while A was down (from $b1 bytes)" 100 grew "$LB" "$b1"
  kill -0 "$iop" 2>/dev/null || fail "IO stopped while leg A was down: $(cat "$W/io.out")"
  [ "$(path "$LA" failovers)" -ge 1 ] || fail "no failover counted on path A"
  echo "ha_mount: $3: leg A down: path reported down after $((t1 - t0)) ms"
  # ---- 3. leg A back: failback
  t2=$(now_ms)
  ip link set ca up
  wait_for "path A did not come back within 15 s" 150 path_is "$LA" up
  t3=$(now_ms)
  a1=$(path "$LA" tx_bytes)
  wait_for "leg A did not get 1 MB of traffic back within 10 s of failback (from $a1 bytes)" 100 grew "$LA" "$a1"
  [ "$(path "$LA" failbacks)" -ge 1 ] || fail "no failback counted on path A"
  echo "ha_mount: $3: leg A up: path back after $((t3 - t2)) ms"
}

start_io
failover_failback 192.0.2.1 198.51.100.1 udp

# ---- 4. 30% loss on leg B
nft add table inet lfha
nft add chain inet lfha out '{ type filter hook output priority 0; }'
nft add rule inet lfha out ip saddr 198.51.100.1 numgen random mod 100 '<' 30 drop
a3=$(path 192.0.2.1 tx_bytes); b3=$(path 198.51.100.1 tx_bytes)
sleep 4
a4=$(path 192.0.2.1 tx_bytes); b4=$(path 198.51.100.1 tx_bytes)
da=$((a4 - a3)); db=$((b4 - b3))
echo "ha_mount: 30% loss on leg B: A carried $da bytes, B $db bytes in 4 s; B health $(path 198.51.100.1 health)"
[ $((db * 10)) -lt $(((da + db) * 3)) ] || fail "most traffic should move off the lossy leg (A $da, B $db)"
[ "$(path 198.51.100.1 timeouts)" -gt 0 ] || fail "no timeouts counted on the lossy leg"
nft delete table inet lfha
stop_io
errs=$(timeout 10 "$B/userspace/cli/lanefs" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["errors"])')
[ "$errs" = 0 ] || fail "the mount counted $errs IO errors"
grep -q "failed (health" "$RUN/frontend.log" || fail "no failover line in the frontend log"
grep -q "recovered (health .*failback" "$RUN/frontend.log" || fail "no failback line in the frontend log"
umount "$MNT"
frontend_gone

# ---- 5. the same on the DPDK lane: one net_af_packet port per leg (own
# addresses .11, the kernel keeps .1), polling.
"$B/userspace/frontend/mount.lanefs" 192.0.2.2:14123/f "$MNT" \
  -o net=afpacket:ca/192.0.2.11/24,net=afpacket:cb/198.51.100.11/24,forcedirect || fail "mount with two DPDK legs"
start_io
failover_failback 192.0.2.11 198.51.100.11 dpdk
stop_io
errs=$(timeout 10 "$B/userspace/cli/lanefs" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["errors"])')
[ "$errs" = 0 ] || fail "the DPDK mount counted $errs IO errors"
umount "$MNT"
frontend_gone

# ---- 6. a backend on the DPDK lane with two legs: one net_af_packet port
# per NIC (own addresses .12; the staged UDP leg goes first), a UDP client.
cli cluster container net remove be0 sb >/dev/null || fail "cluster container net remove"
stop_backend
nsx "$B/userspace/backend/lanefsd" --data-dir "$W/data" --name be0 --listen 192.0.2.12:14123 \
  --net afpacket:sa/192.0.2.12/24 --net afpacket:sb/198.51.100.12/24 --label A --label B \
  --rdma off --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
bp=$!
wait_for "the DPDK backend did not answer" 300 timeout 30 "$B/userspace/cli/lanefs" --backend 192.0.2.12:14123 \
  --connect-timeout 1 fs list >/dev/null 2>&1
timeout 30 "$B/userspace/cli/lanefs" --backend 192.0.2.12:14123 --json cluster status | python3 -c '
import json, sys
legs = json.load(sys.stdin)["backends"][0]["legs"]
assert sorted((l["addr"], l["label"]) for l in legs) == [("192.0.2.12:14123", "A"), ("198.51.100.12:14123", "B")], legs' ||
  fail "the DPDK backend does not advertise its two legs"
"$B/userspace/frontend/mount.lanefs" 192.0.2.12:14123/f "$MNT" -o net:ha=ca,net:ha=cb,forcedirect || fail "mount against the DPDK backend"
cmp "$W/src" "$MNT/io" || fail "data written earlier reads back different from the DPDK backend"
start_io
failover_failback 192.0.2.1 198.51.100.1 dpdk-backend
stop_io
umount "$MNT"
echo "ha_mount: PASS"

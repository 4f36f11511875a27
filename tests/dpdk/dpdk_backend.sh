#!/bin/sh
# dpdk_backend.sh BUILD_DIR: backends on the DPDK lane (lanefsd --net), in a
# private network namespace (ctest runs it under `unshare -n`; addresses
# 192.0.2.0/24; everything goes when the namespace does). Checks:
#   1. bridge: lanefsd on net_af_packet (veth bv0, polling, --core 0) and a
#      FUSE mount on net_af_packet (veth cv0, two frontend cores pinned to
#      CPUs 0 and 1, one shared IP), the veth peers joined by a kernel
#      bridge that also holds the CLI's address (kernel UDP to the DPDK
#      backend: its software UDP checksums must be right): both ends resolve
#      each other with their own ARP tables;
#      write, read back, verify; `cluster processes` shows the backend's
#      three processes on DPDK with core 0 and two FRONTEND rows on DPDK with
#      cores 0 and 1; a kernel-UDP mount (no net=) reads the same file from
#      the DPDK backend (the datagrams are the same);
#   2. memif, DPDK client to DPDK backend (two processes, shared memory, no
#      kernel on the path): the filesystem made in step 1 is served by a
#      lanefsd restarted on net_memif (server role); a mount on the memif
#      client role writes, reads back, verifies; `lanefs stats` counts the IO
#      on the dpdk lane; the backend log says it serves on DPDK.
# Exit 77 (skipped) without root, /dev/fuse or the DPDK lane.
set -eu
B=${1:?usage: dpdk_backend.sh BUILD_DIR}
skip() { echo "dpdk_backend: SKIPPED: $*"; exit 77; }
fail() {
  echo "dpdk_backend: FAILED: $*" >&2
  tail -15 "$RUN/frontend.log" >&2 2>/dev/null || true
  tail -15 "$W/lanefsd.log" >&2 2>/dev/null || true
  exit 1
}
[ "$(id -u)" = 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
grep -q "LANEFS_HAVE_DPDK 1" "$B/generated/lanefs/config.h" || skip "lanefs built without the DPDK lane"
W=$(mktemp -d /tmp/lanefs-dpdkb.XXXXXX)
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$W/data/admin.token"
RUN=$W/run
export LANEFS_RUN_DIR=$RUN LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
MNT=$W/mnt
mkdir -p "$RUN" "$MNT"
bp=""
stop_backend() {
  [ -z "$bp" ] || { kill "$bp" 2>/dev/null || true; wait "$bp" 2>/dev/null || true; }
  bp=""
}
cleanup() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  # No frontend of this run may outlive it (a polling one keeps a CPU busy
  # and slows whatever test runs next): 10 s to exit, then SIGKILL.
  fp=$(cat "$RUN/frontend.pid" 2>/dev/null || true)
  if [ -n "$fp" ]; then
    i=0; while kill -0 "$fp" 2>/dev/null && [ $i -lt 40 ]; do i=$((i + 1)); sleep 0.25; done
    kill -9 "$fp" 2>/dev/null || true
  fi
  stop_backend
  sleep 0.5
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
cli() { timeout 30 "$B/userspace/cli/lanefs" --backend 192.0.2.1:14123 "$@"; }
frontend_pid() { cat "$RUN/frontend.pid" 2>/dev/null; }
wait_gone() {
  i=0
  while [ -f "$RUN/frontend.pid" ] && kill -0 "$(frontend_pid)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 40 ] || fail "frontend did not exit after unmount"; sleep 0.25
  done
}
wait_backend() {
  i=0
  until cli --connect-timeout 1 fs list >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 40 ] || fail "lanefsd did not answer"; sleep 0.5
  done
}
io_check() {
  dd if="$W/src" of="$MNT/$2" bs=1M status=none || fail "write on $1"
  cmp "$W/src" "$MNT/$2" || fail "data read back on $1 differs"
}
ncpu=$(nproc)
c1=$(( ncpu > 1 ? 1 : 0 ))

ip link set lo up
head -c 3000000 /dev/urandom >"$W/src"

# ---- 1. bridge: DPDK backend, DPDK client, kernel CLI in between
ip link add br0 type bridge
ip addr add 192.0.2.3/24 dev br0
ip link set br0 up
for v in bv cv; do
  ip link add "${v}0" type veth peer name "${v}1"
  ip link set "${v}1" master br0
  ip link set "${v}1" up
  ip link set "${v}0" up
done
"$B/userspace/backend/lanefsd" --data-dir "$W/data" --net afpacket:bv0/192.0.2.1/24 --listen 192.0.2.1:14123 \
  --core 0 --rdma off --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
bp=$!
wait_backend
grep -q "serving on 192.0.2.1:14123 (DPDK)" "$W/lanefsd.log" || fail "lanefsd log does not say it serves on DPDK"
cli fs create f >/dev/null
"$B/userspace/frontend/mount.lanefs" 192.0.2.1:14123/f "$MNT" -o "net=afpacket:cv0/192.0.2.2/24,core=0,core=$c1,forcedirect" ||
  fail "mount with net=afpacket:cv0 against a DPDK backend"
io_check bridge a
sleep 2
cli --json cluster processes >"$W/ps.json" || fail "cluster processes"
python3 - "$W/ps.json" "$c1" <<'EOF' || fail "cluster processes does not show the DPDK lanes and cores: $(cat "$W/ps.json")"
import json, sys
ps = json.load(open(sys.argv[1]))
c1 = int(sys.argv[2])
back = [p for p in ps if "FRONTEND" not in p["roles"]]
front = [p for p in ps if "FRONTEND" in p["roles"]]
assert len(back) == 3 and all(p["network"] == "DPDK" and p["core"] == 0 for p in back), back
assert sorted(p["core"] for p in front) == sorted([0, c1]), front
assert all(p["network"] == "DPDK" and p["ips"] == ["192.0.2.2"] for p in front), front
assert len({p["id"] for p in ps}) == len(ps), "process ids repeat"
EOF
cli cluster processes
# Both DPDK ends answered ARP for themselves: the bridge's kernel learned them.
ip neigh show dev br0 | grep -q "192.0.2.1 .*lladdr" || fail "the kernel never got an ARP answer from the DPDK backend"
umount "$MNT"
wait_gone
# A kernel-UDP client of the same DPDK backend.
"$B/userspace/frontend/mount.lanefs" 192.0.2.1:14123/f "$MNT" -o forcedirect || fail "UDP mount against a DPDK backend"
cmp "$W/src" "$MNT/a" || fail "UDP client reads different data from the DPDK backend"
umount "$MNT"
wait_gone
stop_backend

# ---- 2. memif: DPDK client <-> DPDK backend over shared memory
: >"$W/lanefsd.log"
"$B/userspace/backend/lanefsd" --data-dir "$W/data" --net "memif:$W/memif.sock:server/192.0.2.1/24" \
  --listen 192.0.2.1:14123 --rdma off --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
bp=$!
i=0
until grep -q "serving on 192.0.2.1:14123 (DPDK)" "$W/lanefsd.log" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 40 ] || fail "lanefsd on memif did not start"; sleep 0.25
done
"$B/userspace/frontend/mount.lanefs" 192.0.2.1:14123/f "$MNT" -o "net=memif:$W/memif.sock/192.0.2.2/24,forcedirect" ||
  fail "mount over memif"
cmp "$W/src" "$MNT/a" || fail "memif: the file written in step 1 reads back different"
io_check memif b
timeout 10 "$B/userspace/cli/lanefs" --json stats | python3 -c '
import json, sys
m = json.load(sys.stdin)[0]
assert m["per_lane"]["dpdk"]["ios"] >= 6 and m["per_lane"]["udp"]["ios"] == 0, m' ||
  fail "lanefs stats does not count the memif IO on the dpdk lane"
grep -q "net_memif" "$RUN/frontend.log" || fail "frontend log does not name the memif port"
umount "$MNT"
wait_gone
echo "dpdk_backend: PASS"

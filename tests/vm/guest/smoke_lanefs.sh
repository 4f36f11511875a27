#!/bin/sh
# smoke_lanefs.sh (guest): lanefsd from the build tree on 192.0.2.1; the lanefs
# CLI in network namespace "peer" (192.0.2.2, the other end of the veth)
# creates a filesystem and lists the cluster's processes.
# Needs LANEFS_BUILD_DIR (set by ctest; passed through by vm_run.sh).
set -eu
HERE=$(dirname "$(readlink -f "$0")")
A=192.0.2.1
PORT=14000
fail() { echo "smoke_lanefs: FAILED: $*" >&2; exit 1; }
[ -n "${LANEFS_BUILD_DIR:-}" ] || fail "LANEFS_BUILD_DIR is not set"
LANEFSD=$LANEFS_BUILD_DIR/userspace/backend/lanefsd
LANEFS=$LANEFS_BUILD_DIR/userspace/cli/lanefs
if [ ! -x "$LANEFSD" ] || [ ! -x "$LANEFS" ]; then
  fail "lanefsd/lanefs not built in $LANEFS_BUILD_DIR (build them first; a build tree under /run is not visible in the guest)"
fi
command -v python3 >/dev/null || fail "python3 not found (checks the JSON)"

"$HERE/rdma_setup.sh" --peer-netns peer
DATA=/tmp/lanefsd
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$DATA/admin.token"
mkdir -p "$DATA"
pid=""
cleanup() {
  [ -z "$pid" ] && return
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  cp "$DATA/lanefsd.log" "${VM_OUT:-/tmp}/" 2>/dev/null || true
}
trap cleanup EXIT
# Everything the CLI does runs in the peer namespace: 192.0.2.2 -> .1.
cli() { ip netns exec peer timeout 60 "$LANEFS" --backend "$A:$PORT" "$@"; }

"$LANEFSD" --data-dir "$DATA" --listen "$A:$PORT" --name vm-a \
  --log-file "$DATA/lanefsd.log" </dev/null >"$DATA/lanefsd.out" 2>&1 &
pid=$!
i=0
until cli --connect-timeout 2 fs list >/dev/null 2>&1; do
  i=$((i + 1))
  kill -0 "$pid" 2>/dev/null || { cat "$DATA/lanefsd.out"; fail "lanefsd exited"; }
  [ $i -lt 30 ] || { cat "$DATA/lanefsd.out"; fail "lanefsd not answering on $A:$PORT"; }
  sleep 1
done
echo "smoke_lanefs: lanefsd (pid $pid) answers on $A:$PORT after $i retries"

before=$(cat /sys/class/net/va/statistics/rx_packets)
cli fs create vmfs || fail "lanefs fs create vmfs"
cli fs list
cli --json fs list | grep -q '"name": "vmfs"' || fail "vmfs not in fs list --json"
cli cluster processes || fail "lanefs cluster processes"
cli --json cluster processes >/tmp/processes.json || fail "lanefs cluster processes --json"
cp /tmp/processes.json "${VM_OUT:-/tmp}/" 2>/dev/null || true
python3 - "$A" /tmp/processes.json <<'PY' || fail "cluster processes --json is not what was expected"
import json, sys
addr, path = sys.argv[1], sys.argv[2]
ps = json.load(open(path))
backend = [p for p in ps if p.get("container") == "vm-a"]
roles = sorted(r for p in backend for r in p["roles"])
assert roles == ["COMPUTE", "DRIVES", "MANAGEMENT"], roles
for p in backend:
    assert p["status"] == "UP", p
    assert p["hostname"] == "lanefs-vm", p
    assert any(ip.startswith(addr) for ip in p["ips"]), p
    assert p["network"].startswith("UDP"), p
    assert p["memory_bytes"] > 0 and p["uptime_s"] >= 0, p
print("smoke_lanefs: %d processes, backend roles %s" % (len(ps), ",".join(roles)))
PY
rx=$(($(cat /sys/class/net/va/statistics/rx_packets) - before))
echo "smoke_lanefs: $rx packets from the peer namespace arrived on va"
[ "$rx" -ge 4 ] || fail "CLI traffic did not cross the veth ($rx packets on va)"
echo "smoke_lanefs: PASS"

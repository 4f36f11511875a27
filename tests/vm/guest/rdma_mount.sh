#!/bin/sh
# rdma_mount.sh (guest): lanefsd with its RDMA lane on rxe0 (192.0.2.1) and a
# FUSE mount whose frontend talks from 192.0.2.2 (rxe1). Checks, from the
# frontend's own counters (`lanefs stats --json`):
#   1. plain filesystem: reads >= 32 KiB and writes >= 256 KiB went over RDMA,
#      smaller ones over UDP (reason below_threshold); data verified;
#   2. `lanefs cluster processes` shows "UDP / RDMA" for backend and frontend;
#      `cluster rdma disable --client HOST` moves this client off RDMA;
#   3. encrypted filesystem: nothing over RDMA (reason encrypted), data verified;
#   4. the client's rxe link is deleted while IO runs: IO continues over UDP
#      with zero errors, verified data, and the fallback counter rises.
# Needs LANEFS_BUILD_DIR (ctest sets it; vm_run.sh passes it through).
set -eu
HERE=$(dirname "$(readlink -f "$0")")
A=192.0.2.1
B=192.0.2.2
PORT=14000
say() { echo "rdma_mount: $*"; }
fail() { echo "rdma_mount: FAILED: $*" >&2; dump_logs; exit 1; }
dump_logs() {
  for f in /tmp/lanefsd/lanefsd.log /tmp/lanefs-run/frontend.log; do
    [ -f "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 30 "$f" >&2
    cp "$f" "${VM_OUT:-/tmp}/" 2>/dev/null || true
  done
}
[ -n "${LANEFS_BUILD_DIR:-}" ] || fail "LANEFS_BUILD_DIR is not set"
BLD=$LANEFS_BUILD_DIR
LANEFSD=$BLD/userspace/backend/lanefsd
LANEFS=$BLD/userspace/cli/lanefs
MOUNT_HELPER=$BLD/userspace/frontend/mount.lanefs
export LANEFS_FRONTEND=$BLD/userspace/frontend/lanefs-frontend
export LANEFS_RUN_DIR=/tmp/lanefs-run
for b in "$LANEFSD" "$LANEFS" "$MOUNT_HELPER" "$LANEFS_FRONTEND"; do
  [ -x "$b" ] || fail "$b not built (build the tree first)"
done
command -v python3 >/dev/null || fail "python3 not found (checks the JSON)"

"$HERE/rdma_setup.sh"
modprobe fuse || fail "modprobe fuse"
[ -c /dev/fuse ] || fail "/dev/fuse missing after modprobe fuse"

DATA=/tmp/lanefsd
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$DATA/admin.token"
mkdir -p "$DATA" "$LANEFS_RUN_DIR" /tmp/mnt/plain /tmp/mnt/enc
pid=""
cleanup() {
  for m in /tmp/mnt/plain /tmp/mnt/enc; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  dump_logs 2>/dev/null || true
}
trap cleanup EXIT
cli() { timeout 60 "$LANEFS" --backend "$A:$PORT" "$@"; }

"$LANEFSD" --data-dir "$DATA" --listen "$A:$PORT" --name vm-a --rdma on \
  --log-file "$DATA/lanefsd.log" </dev/null >"$DATA/lanefsd.out" 2>&1 &
pid=$!
i=0
until cli --connect-timeout 2 fs list >/dev/null 2>&1; do
  i=$((i + 1))
  kill -0 "$pid" 2>/dev/null || { cat "$DATA/lanefsd.out" >&2; fail "lanefsd exited"; }
  [ $i -lt 40 ] || fail "lanefsd not answering on $A:$PORT"
  sleep 1
done

cli --json cluster status | grep -q '"rdma": "ethernet"' || fail "the cluster map does not advertise RDMA"

cli fs create plain || fail "fs create plain"
KEY=/tmp/lanefs.key
head -c 32 /dev/urandom >"$KEY"
chmod 600 "$KEY"
cli fs create enc --encrypted --key-file "$KEY" || fail "fs create enc"

# forcedirect: the application's IO sizes reach the client unchanged.
"$MOUNT_HELPER" "$A:$PORT/plain" /tmp/mnt/plain -o "forcedirect,local_ip=$B" || fail "mount plain"
"$MOUNT_HELPER" "$A:$PORT/enc" /tmp/mnt/enc -o "forcedirect,local_ip=$B,key_file=$KEY" || fail "mount enc"
# Frontend log for dump_logs.
ls "$LANEFS_RUN_DIR" >/dev/null

stats() { timeout 30 "$LANEFS" --json stats; }
# lane counter of one mount: lane_count TARGET LANE ios|bytes
lane_count() {
  stats | python3 -c '
import json, sys
t, lane, key = sys.argv[1:4]
for m in json.load(sys.stdin):
    if m["target"] == t:
        print(m["per_lane"][lane][key]); break
else:
    sys.exit("no mount " + t)' "$1" "$2" "$3"
}
reason_count() {
  stats | python3 -c '
import json, sys
t, why = sys.argv[1:3]
for m in json.load(sys.stdin):
    if m["target"] == t:
        print(m["not_rdma"].get(why, 0)); break' "$1" "$2"
}
field() {
  stats | python3 -c '
import json, sys
t, k = sys.argv[1:3]
for m in json.load(sys.stdin):
    if m["target"] == t:
        print(m[k]); break' "$1" "$2"
}

# ---- 1. thresholds on the plain filesystem
SRC=/tmp/src.bin
head -c $((8 * 1024 * 1024)) /dev/urandom >"$SRC"
say "RDMA now: $(field /tmp/mnt/plain rdma_now); device $(field /tmp/mnt/plain rdma_device)"
[ "$(field /tmp/mnt/plain rdma_now)" = yes ] || fail "large IO would not take RDMA: $(field /tmp/mnt/plain rdma_now)"
r0=$(lane_count /tmp/mnt/plain rdma ios)
dd if="$SRC" of=/tmp/mnt/plain/big bs=1M count=8 oflag=direct status=none || fail "dd 1 MiB writes"
r1=$(lane_count /tmp/mnt/plain rdma ios)
[ $((r1 - r0)) -ge 8 ] || fail "8 writes of 1 MiB: only $((r1 - r0)) IOs on RDMA"
u0=$(lane_count /tmp/mnt/plain udp ios)
dd if="$SRC" of=/tmp/mnt/plain/small bs=64K count=4 oflag=direct status=none || fail "dd 64 KiB writes"
u1=$(lane_count /tmp/mnt/plain udp ios)
r2=$(lane_count /tmp/mnt/plain rdma ios)
[ "$r2" = "$r1" ] || fail "64 KiB writes (below 256 KiB) went over RDMA"
[ $((u1 - u0)) -ge 4 ] || fail "64 KiB writes: only $((u1 - u0)) IOs on UDP"
dd if=/tmp/mnt/plain/big of=/tmp/back.bin bs=1M iflag=direct status=none || fail "dd 1 MiB reads"
cmp "$SRC" /tmp/back.bin || fail "data read back over RDMA differs"
r3=$(lane_count /tmp/mnt/plain rdma ios)
[ $((r3 - r2)) -ge 8 ] || fail "8 reads of 1 MiB: only $((r3 - r2)) IOs on RDMA"
dd if=/tmp/mnt/plain/big of=/tmp/back32.bin bs=32K count=16 iflag=direct status=none || fail "dd 32 KiB reads"
r4=$(lane_count /tmp/mnt/plain rdma ios)
[ $((r4 - r3)) -ge 16 ] || fail "32 KiB reads (at the threshold): only $((r4 - r3)) on RDMA"
u2=$(lane_count /tmp/mnt/plain udp ios)
dd if=/tmp/mnt/plain/big of=/tmp/back4.bin bs=4K count=16 iflag=direct status=none || fail "dd 4 KiB reads"
u3=$(lane_count /tmp/mnt/plain udp ios)
[ "$(lane_count /tmp/mnt/plain rdma ios)" = "$r4" ] || fail "4 KiB reads went over RDMA"
[ $((u3 - u2)) -ge 16 ] || fail "4 KiB reads: only $((u3 - u2)) on UDP"
head -c $((512 * 1024)) "$SRC" | cmp - /tmp/back32.bin || fail "32 KiB reads: data differs"
head -c $((64 * 1024)) "$SRC" | cmp - /tmp/back4.bin || fail "4 KiB reads: data differs"
[ "$(reason_count /tmp/mnt/plain below_threshold)" -ge 20 ] || fail "below_threshold not counted"
say "plain: RDMA IOs $(lane_count /tmp/mnt/plain rdma ios) ($(lane_count /tmp/mnt/plain rdma bytes) bytes), UDP IOs $(lane_count /tmp/mnt/plain udp ios)"
timeout 30 "$LANEFS" stats

# ---- 2. processes and per-client disable
cli --json cluster processes >/tmp/ps.json || fail "cluster processes"
python3 - /tmp/ps.json <<'PY' || fail "cluster processes does not show UDP / RDMA"
import json, sys
ps = json.load(open(sys.argv[1]))
roles = {r: p["network"] for p in ps for r in p["roles"]}
assert roles.get("COMPUTE") == "UDP / RDMA", ps
assert roles.get("FRONTEND") == "UDP / RDMA", ps
PY
cli cluster processes
HOST=$(hostname)
cli cluster rdma disable --client "$HOST" || fail "cluster rdma disable --client"
i=0
until [ "$(field /tmp/mnt/plain rdma_now)" != yes ]; do
  i=$((i + 1)); [ $i -lt 20 ] || fail "the frontend did not see RDMA disabled for $HOST"; sleep 0.5
done
r5=$(lane_count /tmp/mnt/plain rdma ios)
dd if=/tmp/mnt/plain/big of=/dev/null bs=1M count=2 iflag=direct status=none || fail "read with RDMA disabled"
[ "$(lane_count /tmp/mnt/plain rdma ios)" = "$r5" ] || fail "RDMA used although disabled for this client"
[ "$(reason_count /tmp/mnt/plain disabled_client)" -ge 2 ] || fail "disabled_client not counted"
cli cluster rdma enable --client "$HOST" || fail "cluster rdma enable --client"
i=0
until [ "$(field /tmp/mnt/plain rdma_now)" = yes ]; do
  i=$((i + 1)); [ $i -lt 20 ] || fail "the frontend did not see RDMA enabled again"; sleep 0.5
done

# ---- 3. encrypted: never RDMA
dd if="$SRC" of=/tmp/mnt/enc/big bs=1M count=4 oflag=direct status=none || fail "dd to encrypted"
dd if=/tmp/mnt/enc/big of=/tmp/enc_back.bin bs=1M iflag=direct status=none || fail "dd from encrypted"
head -c $((4 * 1024 * 1024)) "$SRC" | cmp - /tmp/enc_back.bin || fail "encrypted data differs"
[ "$(lane_count /tmp/mnt/enc rdma ios)" = 0 ] || fail "encrypted filesystem IO went over RDMA"
[ "$(reason_count /tmp/mnt/enc encrypted)" -ge 8 ] || fail "encrypted reason not counted"
say "encrypted: RDMA IOs 0, UDP IOs $(lane_count /tmp/mnt/enc udp ios)"

# ---- 4. the client's RDMA link disappears mid-run
errors0=$(field /tmp/mnt/plain errors)
off_rdma() {  # IOs kept off RDMA because of the lost device (or redone on UDP)
  echo $(($(reason_count /tmp/mnt/plain fallback) + $(reason_count /tmp/mnt/plain unavailable) +
          $(reason_count /tmp/mnt/plain no_local_device)))
}
off0=$(off_rdma)
(
  n=0
  while [ $n -lt 12 ]; do
    dd if="$SRC" of=/tmp/mnt/plain/loop bs=1M oflag=direct status=none || exit 10
    dd if=/tmp/mnt/plain/loop of=/tmp/loop_back.bin bs=1M iflag=direct status=none || exit 11
    cmp -s "$SRC" /tmp/loop_back.bin || exit 12
    n=$((n + 1))
  done
) &
io=$!
sleep 3
say "deleting rxe1 while IO runs"
timeout 60 rdma link delete rxe1 || fail "rdma link delete rxe1 (did the client keep the device busy?)"
wait "$io" || fail "IO failed after the RDMA link was deleted (status $?)"
say "after link delete: fallbacks $(field /tmp/mnt/plain fallbacks), IOs kept off RDMA $off0 -> $(off_rdma), errors $(field /tmp/mnt/plain errors)"
[ "$(field /tmp/mnt/plain errors)" = "$errors0" ] || fail "IO errors after the link was deleted"
[ "$(off_rdma)" -gt "$off0" ] || fail "no IO moved to UDP after the link was deleted"
# From now on large IO takes UDP, and says why.
r_before=$(lane_count /tmp/mnt/plain rdma ios)
nl_before=$(reason_count /tmp/mnt/plain no_local_device)
dd if=/tmp/mnt/plain/big of=/tmp/back_after.bin bs=1M iflag=direct status=none || fail "read after link delete"
cmp "$SRC" /tmp/back_after.bin || fail "data after link delete differs"
[ "$(lane_count /tmp/mnt/plain rdma ios)" = "$r_before" ] || fail "RDMA used after its device was deleted"
[ "$(reason_count /tmp/mnt/plain no_local_device)" -ge $((nl_before + 8)) ] ||
  fail "large reads after the link delete not counted as no_local_device"
timeout 30 "$LANEFS" stats
say "PASS"

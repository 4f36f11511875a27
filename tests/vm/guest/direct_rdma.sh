#!/bin/sh
# direct_rdma.sh (guest): liblanefs-direct on an RDMA mount (issue 17).
# lanefsd's RDMA lane on rxe0 (192.0.2.1), a forcedirect mount whose
# frontend talks from 192.0.2.2 (rxe1); direct_check.py (the Python
# binding) reads and writes 1 MiB IOs through a host buffer and reads into
# a udmabuf dma-buf standing in for GPU memory. Checks:
#   1. host buffer: the IOs took RDMA in place, `rdma_zero_copy_ios` counts
#      them (no user-space copy), data verified;
#   2. device memory: GPUDirect when rxe registers the dma-buf, otherwise
#      the bounce path with reason no_dmabuf_support, data verified either
#      way; an unaligned IO bounces with reason unaligned (or
#      no_dmabuf_support); the counters in `lanefs stats --json` agree.
# Needs LANEFS_BUILD_DIR (ctest sets it; vm_run.sh passes it through).
set -eu
HERE=$(dirname "$(readlink -f "$0")")
A=192.0.2.1
B=192.0.2.2
PORT=14000
say() { echo "direct_rdma: $*"; }
fail() { echo "direct_rdma: FAILED: $*" >&2; dump_logs; exit 1; }
dump_logs() {
  for f in /tmp/lanefsd/lanefsd.log /tmp/lanefs-run/frontend.log; do
    [ -f "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 30 "$f" >&2
  done
}
[ -n "${LANEFS_BUILD_DIR:-}" ] || fail "LANEFS_BUILD_DIR is not set"
BLD=$LANEFS_BUILD_DIR
SRCDIR=$(readlink -f "$HERE/../../..")
LANEFSD=$BLD/userspace/backend/lanefsd
LANEFS=$BLD/userspace/cli/lanefs
MOUNT_HELPER=$BLD/userspace/frontend/mount.lanefs
export LANEFS_FRONTEND=$BLD/userspace/frontend/lanefs-frontend
export LANEFS_RUN_DIR=/tmp/lanefs-run
export LANEFS_DIRECT_LIB=$BLD/userspace/direct/liblanefs-direct.so.1
export PYTHONPATH=$SRCDIR/userspace/direct/python
for b in "$LANEFSD" "$LANEFS" "$MOUNT_HELPER" "$LANEFS_FRONTEND" "$LANEFS_DIRECT_LIB"; do
  [ -e "$b" ] || fail "$b not built (build the tree first)"
done
python3 -c 'import cffi' || fail "python3-cffi missing (scripts/deps.sh installs it)"

"$HERE/rdma_setup.sh"
modprobe fuse || fail "modprobe fuse"
modprobe udmabuf 2>/dev/null || true  # built in on Debian's 6.12, absent from its 6.1
[ -c /dev/udmabuf ] || say "no udmabuf in this kernel ($(uname -r)): device memory is not checked"

DATA=/tmp/lanefsd
export LANEFS_TOKEN_FILE="$DATA/admin.token"
MNT=/tmp/mnt/direct
mkdir -p "$DATA" "$LANEFS_RUN_DIR" "$MNT"
pid=""
cleanup() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
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
cli fs create d || fail "fs create d"
"$MOUNT_HELPER" "$A:$PORT/d" "$MNT" -o "forcedirect,local_ip=$B" || fail "mount"

SRC=/tmp/src.bin
head -c $((8 * 1024 * 1024)) /dev/urandom >"$SRC"
cp "$SRC" "$MNT/direct.bin" || fail "copy into the mount"
stats() { timeout 30 "$LANEFS" --json stats; }
[ "$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["rdma_now"])')" = yes ] ||
  fail "large IO would not take RDMA: $(stats)"

OUT=$(timeout 120 python3 "$HERE/direct_check.py" "$MNT" "$SRC") || fail "direct_check.py failed"
say "IOs took: $OUT"
grep -h "registering a" "$LANEFS_RUN_DIR"/*.log /var/log/lanefs/frontend.log 2>/dev/null | tail -n 2 || true
ST=$(stats)
say "stats: $(echo "$ST" | python3 -c 'import json,sys
m = json.load(sys.stdin)[0]
print(json.dumps({k: m[k] for k in ("direct_ios", "rdma_zero_copy_ios", "gpudirect_ios", "gpudirect_bounced",
                                      "gpudirect_bounce_reasons")}))')"
echo "$OUT" "$ST" | python3 -c '
import json, sys
dec = json.JSONDecoder()
text = sys.stdin.read()
out, end = dec.raw_decode(text)
st = json.loads(text[end:])[0]
errs = []
if out["host_read_paths"] != ["rdma"] or out["host_write_path"] != "rdma":
    errs.append("host-buffer IO did not take RDMA: %s" % out)
if st["rdma_zero_copy_ios"] < 5:
    errs.append("rdma_zero_copy_ios %d < 5 (4 reads + 1 write in place)" % st["rdma_zero_copy_ios"])
if "device_read_path" in out:
    p, why = out["device_read_path"], out["device_read_reason"]
    if p == "gpudirect":
        if st["gpudirect_ios"] < 1: errs.append("gpudirect_ios not counted")
    elif p != "bounced" or why != "no_dmabuf_support":
        errs.append("device read took %s (%s), want gpudirect or bounced/no_dmabuf_support" % (p, why))
    up, uwhy = out["device_unaligned"]
    if up != "bounced" or uwhy not in ("unaligned", "no_dmabuf_support"):
        errs.append("unaligned device read took %s (%s)" % (up, uwhy))
    if p == "bounced" and st["gpudirect_bounce_reasons"].get("no_dmabuf_support", 0) < 1:
        errs.append("bounce reason not counted: %s" % st["gpudirect_bounce_reasons"])
    print("device memory:", p, why or "")
else:
    print("device memory not checked:", out.get("udmabuf"))
if errs:
    sys.exit("; ".join(errs))
' || fail "checks"

# 3. Encrypted filesystem: direct-API IO sealed in the frontend, never RDMA.
KEY=/tmp/lanefs.key
head -c 32 /dev/urandom >"$KEY"
chmod 600 "$KEY"
cli fs create enc --encrypted --key-file "$KEY" || fail "fs create enc"
ENC=/tmp/mnt/enc
mkdir -p "$ENC"
"$MOUNT_HELPER" "$A:$PORT/enc" "$ENC" -o "forcedirect,local_ip=$B,key_file=$KEY" || fail "mount enc"
cp "$SRC" "$ENC/direct.bin" || fail "copy into the encrypted mount"
timeout 60 python3 - "$ENC" "$SRC" <<'PY' || { umount "$ENC"; fail "encrypted direct IO"; }
import os, sys
import lanefs_direct as ld
mnt, src = sys.argv[1:3]
want = open(src, "rb").read()
fd = os.open(mnt + "/direct.bin", os.O_RDWR)
with ld.Ring(mnt, 4) as ring, ld.Buffer(mnt, 2 << 20) as buf:
    ring.prep_read(buf, 0, fd, 1 << 20, 1 << 20, 1)
    ring.submit()
    (res, _, path, _), = ring.wait(1)
    assert res == 1 << 20 and path == "host", (res, path)
    assert bytes(buf.view()[:1 << 20]) == want[1 << 20:2 << 20], "encrypted direct read differs"
    buf.view()[:4096] = b"E" * 4096
    assert ring.write(buf, 0, fd, 12345, 4096) == 4096
    assert os.pread(fd, 4096, 12345) == b"E" * 4096
print("encrypted: direct IO correct, path host")
PY
RD=$(stats | python3 -c 'import json, sys
for m in json.load(sys.stdin):
    if m["target"] == sys.argv[1]: print(m["per_lane"]["rdma"]["ios"], m["direct_ios"])' "$ENC")
set -- $RD
[ "$1" = 0 ] || fail "the encrypted mount moved $1 IOs over RDMA"
[ "$2" -ge 2 ] || fail "the encrypted mount counted $2 direct IOs"
umount "$ENC" || umount -l "$ENC"
say "PASS"

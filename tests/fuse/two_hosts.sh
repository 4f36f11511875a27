#!/bin/bash
# two_hosts.sh BUILD_DIR: issue 13 items 1-3 between two hosts. Host A is
# this network namespace (ctest runs the script under `unshare -n`), host B
# another one made here (its frontend is started through `nsenter --net`,
# so its FUSE mounts stay visible here), the backend a third; a bridge in
# the backend's namespace joins them on 192.0.2.0/24. Each host has its
# own frontend (own run directory) and one mount per cache mode
# (dentry_max_age_positive=300). For every mode:
#   1. B holds a file open, A appends 4 bytes and closes: B's stat shows
#      the new size within the attribute age, a fresh open+read at once,
#      B's descriptor reads the new bytes, and it stays right after B's close;
#   2. B holds a file open, A unlinks it: B reads all of it through the
#      descriptor, then the name is gone everywhere;
#   3. B renames s3 over t3 while A has t3 cached: A's opens of t3 never
#      fail and soon read the new content.
# Every wait is bounded; namespaces, mounts and processes go away on exit.
# Exit 77 (skipped) without root, /dev/fuse or nsenter.
set -eu
B=${1:?usage: two_hosts.sh BUILD_DIR}
skip() { echo "two_hosts: SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v nsenter >/dev/null || skip "no nsenter (util-linux)"
W=$(mktemp -d /tmp/lanefs-2h.XXXXXX)
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$W/data/admin.token"
NSB=lanefs-2h-b-$$ NSS=lanefs-2h-s-$$
PORT=14321
SRC=192.0.2.3:$PORT/two
export LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
MODES="writecache readcache forcedirect"
bp=""
fail() {
  echo "two_hosts: FAILED: $*" >&2
  for h in A B; do echo "--- frontend $h" >&2; tail -15 "$W/run$h/frontend.log" >&2 2>/dev/null || true; done
  echo "--- backend" >&2; tail -10 "$W/lanefsd.log" >&2 2>/dev/null || true
  exit 1
}
cleanup() {
  set +e
  exec 3<&- 4<&- 2>/dev/null
  for m in "$W"/a-* "$W"/b-*; do [ -d "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }; done
  # Frontends (they exit after their last unmount) and the backend: asked,
  # waited for (bounded), then killed.
  pids=""
  for f in "$W/runA/frontend.pid" "$W/runB/frontend.pid" "$W/data/lanefsd.pid"; do
    p=$(cat "$f" 2>/dev/null) && [ -n "$p" ] && kill "$p" 2>/dev/null && pids="$pids $p"
  done
  for p in $pids; do
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$p" 2>/dev/null
  done
  [ -z "$bp" ] || wait "$bp" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
  ip netns del "$NSS" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
wait_for() {  # description, max tenths of a second, command...
  what=$1 max=$2; shift 2
  i=0
  until "$@"; do i=$((i + 1)); [ $i -lt "$max" ] || fail "$what"; sleep 0.1; done
}
cli() { timeout 30 "$B/userspace/cli/lanefs" --backend "${SRC%/*}" "$@"; }
on_b() { nsenter --net="/run/netns/$NSB" "$@"; }

# Network: backend namespace with a bridge; host A (here) .1, B .2, backend .3.
ip link set lo up
ip netns add "$NSB"
ip netns add "$NSS"
ip -n "$NSS" link set lo up
ip -n "$NSB" link set lo up
ip -n "$NSS" link add br0 type bridge
ip -n "$NSS" addr add 192.0.2.3/24 dev br0
ip -n "$NSS" link set br0 up
ip link add ha type veth peer name pa
ip link set pa netns "$NSS"
ip netns exec "$NSB" ip link add hb type veth peer name pb
ip -n "$NSB" link set pb netns "$NSS"
for p in pa pb; do ip -n "$NSS" link set "$p" master br0 up; done
ip addr add 192.0.2.1/24 dev ha
ip link set ha up
ip -n "$NSB" addr add 192.0.2.2/24 dev hb
ip -n "$NSB" link set hb up

ip netns exec "$NSS" "$B/userspace/backend/lanefsd" --data-dir "$W/data" --listen "${SRC%/*}" --name be0 \
  --rdma off --log-file "$W/lanefsd.log" </dev/null >/dev/null 2>&1 &
bp=$!
wait_for "lanefsd did not answer" 300 cli --connect-timeout 1 fs list >/dev/null 2>&1
cli fs create two >/dev/null || fail "fs create"

for mode in $MODES; do
  mkdir -p "$W/a-$mode" "$W/b-$mode"
  LANEFS_RUN_DIR=$W/runA "$B/userspace/frontend/mount.lanefs" "$SRC" "$W/a-$mode" -o "$mode,dentry_max_age_positive=300" ||
    fail "mount on host A ($mode)"
  LANEFS_RUN_DIR=$W/runB on_b "$B/userspace/frontend/mount.lanefs" "$SRC" "$W/b-$mode" -o "$mode,dentry_max_age_positive=300" ||
    fail "mount on host B ($mode)"
done
fa=$(cat "$W/runA/frontend.pid") fb=$(cat "$W/runB/frontend.pid")
[ "$fa" != "$fb" ] || fail "both hosts share one frontend"
[ "$(readlink /proc/"$fa"/ns/net)" != "$(readlink /proc/"$fb"/ns/net)" ] || fail "both frontends in one network namespace"

size_is() { [ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ]; }
content_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
head -c 1500000 /dev/urandom > "$W/big"

for mode in $MODES; do
  A=$W/a-$mode/$mode B2=$W/b-$mode/$mode
  mkdir "$A"
  wait_for "$mode: B never saw the directory" 50 test -d "$B2"

  # 1. Append seen by a holder, by a fresh open, and after the holder closes.
  printf 'abcdefgh' > "$A/f1"
  wait_for "$mode: B never saw f1" 50 content_is "$B2/f1" abcdefgh
  exec 3< "$B2/f1"
  printf 'WXYZ' >> "$A/f1"
  content_is "$B2/f1" abcdefghWXYZ || fail "$mode: B's open right after A's close read '$(cat "$B2/f1")'"
  wait_for "$mode: B's stat stayed at $(stat -c %s "$B2/f1")" 33 size_is "$B2/f1" 12
  [ "$(cat <&3)" = abcdefghWXYZ ] || fail "$mode: B's open descriptor missed the appended bytes"
  exec 3<&-
  size_is "$B2/f1" 12 || fail "$mode: B's size after its close is $(stat -c %s "$B2/f1")"
  content_is "$B2/f1" abcdefghWXYZ || fail "$mode: B's read after its close"

  # 2. Unlinked on A while open on B.
  cp "$W/big" "$A/f2"
  wait_for "$mode: B never saw f2" 50 size_is "$B2/f2" 1500000
  exec 4< "$B2/f2"
  rm "$A/f2"
  wait_for "$mode: B still sees f2" 50 test ! -e "$B2/f2"
  cmp -s <(cat <&4) "$W/big" || fail "$mode: B's descriptor did not read the unlinked file's bytes"
  exec 4<&-
  [ ! -e "$A/f2" ] || fail "$mode: f2 came back"

  # 3. s3 renamed over t3 on B while A has t3 cached.
  printf before > "$A/t3"
  content_is "$A/t3" before || fail "$mode: A's t3"
  wait_for "$mode: B never saw t3" 50 test -e "$B2/t3"
  printf after > "$B2/s3"
  mv "$B2/s3" "$B2/t3"
  failures=0 seen_after=0
  for i in $(seq 1 40); do
    if out=$(cat "$A/t3" 2>/dev/null); then
      [ "$out" != after ] || seen_after=1
    else
      failures=$((failures + 1))
    fi
    sleep 0.025
  done
  [ "$failures" = 0 ] || fail "$mode: A's open of t3 failed $failures times after B renamed s3 over it"
  [ "$seen_after" = 1 ] || fail "$mode: A never read the file renamed over t3"
  echo "two_hosts: $mode: append, unlink-while-open and rename-over between hosts: ok"
done
echo "two_hosts: 3 passed, 0 failed"

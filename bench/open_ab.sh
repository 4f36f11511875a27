#!/bin/bash
# open_ab.sh OLD_BUILD NEW_BUILD [ROUNDS]: two lanefs builds side by side
# (each its own lanefsd on a tmpfs and its own frontend, loopback), rounds
# interleaved: bench/fio/metabench (2000 creates, stats, unlinks) and
# bench/fio/openbench (2000 x open + read 4 KiB + close, files written just
# before, then again after 2 s so the kernel's dentries have expired) on a
# writecache and a readcache mount. Prints one line per run; compare
# medians. Root; the binaries of both builds must exist.
set -eu
OLD=${1:?usage: open_ab.sh OLD_BUILD NEW_BUILD [ROUNDS]} NEW=${2:?} R=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/lanefs-open-ab.XXXXXX)
mount -t tmpfs -o size=2g lanefs-open-ab "$W"
cleanup() {
  set +e
  for m in "$W"/m-*; do umount "$m" 2>/dev/null || umount -l "$m"; done
  for f in "$W"/d-*/lanefsd.pid; do kill "$(cat "$f")" 2>/dev/null; done
  sleep 2
  umount -l "$W"; rmdir "$W"
}
trap cleanup EXIT
gcc -O2 -o "$W/metabench" "$here/fio/metabench.c"
gcc -O2 -o "$W/openbench" "$here/fio/openbench.c"
port=15500
for v in old new; do
  b=$OLD; [ $v = new ] && b=$NEW
  port=$((port + 1))
  "$b/userspace/backend/lanefsd" --data-dir "$W/d-$v" --listen 127.0.0.1:$port --log-file "$W/$v.log" &
  for i in $(seq 1 50); do "$b/userspace/cli/lanefs" --backend 127.0.0.1:$port --connect-timeout 1 fs list >/dev/null 2>&1 && break; sleep 0.1; done
  "$b/userspace/cli/lanefs" --backend 127.0.0.1:$port fs create ab >/dev/null
  for mode in writecache readcache; do
    mkdir -p "$W/m-$v-$mode"
    fe=$b/userspace/frontend; [ -x "$fe/mount.lanefs" ] || fe=$b/fuse  # builds before the frontend left fuse/
    LANEFS_RUN_DIR=$W/run-$v LANEFS_FRONTEND=$fe/lanefs-frontend \
      "$fe/mount.lanefs" 127.0.0.1:$port/ab "$W/m-$v-$mode" -o $mode
    mkdir -p "$W/m-$v-$mode/d"
  done
done
for r in $(seq 1 "$R"); do
  for v in old new; do
    for mode in writecache readcache; do
      d=$W/m-$v-$mode/d
      m=$("$W/metabench" "$d" 2000 --drop-caches | python3 -c 'import json, sys
j = json.load(sys.stdin)
print(" ".join("%s=%.0f" % (k, j[k]["ops_per_s"]) for k in ("create", "stat", "unlink")))')
      "$W/openbench" "$d" 2000 1
      hot=$("$W/openbench" "$d" 2000 2)
      sleep 2
      cold=$("$W/openbench" "$d" 2000 2)
      rm -f "$d"/o*
      echo "round $r $v $mode $m open+read+close=$hot open+read+close-after-2s=$cold"
    done
  done
done

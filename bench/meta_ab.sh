#!/bin/bash
# meta_ab.sh BUILD [ROUNDS]: what a backend change costs on metadata
# operations, side by side on one machine. BASE_BUILD=DIR (required) is a
# build of an older revision; each side runs its own lanefsd, frontend and
# mount.lanefs (the two may speak different protocol versions), both on one
# tmpfs. In each round, on both mounts (order alternating per round), as
# root and as uid 1000 (setpriv): create, stat, open+close and unlink of N
# files (default 2000) in a fresh directory, timed by bench/meta_ab.py
# (Debian's /usr/bin/python3 for uid 1000, which may not reach root's).
# Prints a markdown table of medians and ratios (this / base); with
# DOCS=FILE it replaces the meta-ab section there. Root.
set -eu
B=${1:?usage: BASE_BUILD=DIR meta_ab.sh BUILD [ROUNDS]} R=${2:-5} N=${N:-2000}
BASE=${BASE_BUILD:?BASE_BUILD=DIR: a build of the revision to compare with}
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/lanefs-metaab.XXXXXX)
mount -t tmpfs -o size=2g lanefs-metaab "$W"
cleanup() {
  set +e
  for s in this base; do umount "$W/m-$s" 2>/dev/null || umount -l "$W/m-$s"; done
  for s in this base; do [ -f "$W/$s.pid" ] && kill "$(cat "$W/$s.pid")"; done
  for s in this base; do [ -f "$W/run-$s/frontend.pid" ] && kill "$(cat "$W/run-$s/frontend.pid")"; done
  sleep 2
  umount -l "$W"; rmdir "$W"
}
trap cleanup EXIT
declare -A build=([this]=$B [base]=$BASE) port=([this]=15650 [base]=15651)
for s in this base; do
  sb=${build[$s]}
  "$sb/userspace/backend/lanefsd" --data-dir "$W/data-$s" --listen 127.0.0.1:${port[$s]} --rdma off \
    --secret-file "$W/secret-$s" --admin-token-file "$W/admin-$s.token" --log-file "$W/lanefsd-$s.log" &
  echo $! > "$W/$s.pid"
  cli=(env LANEFS_TOKEN_FILE="$W/data-$s/admin.token" "$sb/userspace/cli/lanefs" --backend 127.0.0.1:${port[$s]})
  for i in $(seq 1 50); do "${cli[@]}" --connect-timeout 1 fs list >/dev/null 2>&1 && break; sleep 0.1; done
  "${cli[@]}" fs create ab >/dev/null
  mkdir -p "$W/m-$s"
  LANEFS_RUN_DIR=$W/run-$s LANEFS_FRONTEND=$sb/userspace/frontend/lanefs-frontend \
    "$sb/userspace/frontend/mount.lanefs" 127.0.0.1:${port[$s]}/ab "$W/m-$s" -o auth_token_path="$W/data-$s/admin.token"
  mkdir -p "$W/m-$s/work" && chmod 1777 "$W/m-$s/work"
done
{
  for r in $(seq 1 "$R"); do
    order="base this"; [ $((r % 2)) = 0 ] && order="this base"
    for who in root user; do
      for s in $order; do
        d="$W/m-$s/work/$who-$r"
        if [ $who = root ]; then
          ops=$(python3 "$here/meta_ab.py" run "$d" "$N")
        else
          ops=$(setpriv --reuid 1000 --regid 1000 --clear-groups /usr/bin/python3 "$here/meta_ab.py" run "$d" "$N")
        fi
        echo "{\"side\": \"$s\", \"as\": \"$([ $who = root ] && echo root || echo 'uid 1000')\", \"ops\": $ops}"
      done
    done
  done
} | tee "$W/results.jsonl"
about="Run $(date -u '+%Y-%m-%d %H:%M') UTC on $(hostname) (nproc $(nproc), kernel $(uname -r), git \
$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')): $R rounds of $N files, \
\`BASE_BUILD=$BASE bench/meta_ab.sh $B $R\` (base: git $(git -C "$BASE/.." rev-parse --short HEAD 2>/dev/null || echo '?'))."
python3 "$here/meta_ab.py" summary "$W/results.jsonl" --about "$about" ${DOCS:+--splice "$DOCS"}

#!/bin/sh
# make stop: unmount what make run mounted and stop its lanefsd.
set -eu
DATA=$1 MNT=$2
if mountpoint -q "$MNT" 2>/dev/null; then
  umount "$MNT" && echo "unmounted $MNT"
fi
if [ -f "$DATA/lanefsd.pid" ] && kill -0 "$(cat "$DATA/lanefsd.pid")" 2>/dev/null; then
  pid=$(cat "$DATA/lanefsd.pid")
  kill "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  echo "lanefsd (pid $pid) stopped"
else
  echo "no lanefsd running for $DATA"
fi

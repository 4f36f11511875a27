#!/bin/sh
# make run: install lanefs, start a single-node lanefsd (if not already
# running), make sure filesystem "default" exists and mount it with
# `mount -t lanefs` on $MNT with a client token it made. lanefsd writes the
# built-in admin's token to /etc/lanefs/admin.token, where the CLI (root)
# finds it; the mount presents /etc/lanefs/client.token (user lanefs-run,
# role client, filesystem "default"), the mount's default token.
set -eu
BUILD=$1 DATA=$2 LISTEN=$3 MNT=$4
cmake --install "$BUILD" >/dev/null
mkdir -p "$DATA"
if [ -f "$DATA/lanefsd.pid" ] && kill -0 "$(cat "$DATA/lanefsd.pid")" 2>/dev/null; then
  echo "lanefsd already running (pid $(cat "$DATA/lanefsd.pid"))"
else
  setsid lanefsd --data-dir "$DATA" --listen "$LISTEN" \
    --log-file "$DATA/lanefsd.log" </dev/null >>"$DATA/lanefsd.out" 2>&1 &
  # Wait (bounded) until it answers.
  i=0
  until lanefs --backend "$LISTEN" --connect-timeout 1 fs list >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 30 ]; then
      echo "lanefsd did not come up; see $DATA/lanefsd.log and $DATA/lanefsd.out" >&2
      exit 1
    fi
    sleep 0.5
  done
  # The pid file is written right after the server is bound.
  i=0
  while [ ! -s "$DATA/lanefsd.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  echo "lanefsd started (pid $(cat "$DATA/lanefsd.pid" 2>/dev/null)), listening on $LISTEN, data in $DATA"
fi
if ! lanefs --backend "$LISTEN" fs list --json | grep -q '"name": "default"'; then
  lanefs --backend "$LISTEN" fs create default
fi
if ! lanefs --backend "$LISTEN" user list --json | grep -q '"name": "lanefs-run"'; then
  lanefs --backend "$LISTEN" user add lanefs-run --role client --fs default
fi
# Written each time: a token of an earlier cluster would not work here.
lanefs --backend "$LISTEN" user login lanefs-run --token-file /etc/lanefs/client.token
mkdir -p "$MNT"
if ! mountpoint -q "$MNT"; then
  mount -t lanefs "$LISTEN/default" "$MNT"
fi
lanefs --backend "$LISTEN" fs list
lanefs --backend "$LISTEN" cluster processes
lanefs local ps
echo
echo "filesystem 'default' is mounted on $MNT"
echo "stop everything with: make stop"

# shellcheck shell=bash
# Bring-up and tear-down of the filesystems bench/fio compares. Sourced by
# run_peers.sh, which sets:
#   W            work root (default /var/tmp/lanefs-bench, on the root filesystem)
#   BACKING_DIR  where every peer keeps its data: a tmpfs run_peers.sh mounts
#                (BACKING=tmpfs) or a directory on the root ext4 (BACKING=ext4)
#   BUILD_DIR    lanefs build directory (lanefsd, lanefs, lanefs-frontend, mount.lanefs)
#   BIN_DIR      helpers built by setup_peers.sh (passthrough_ll, metabench)
# Every peer NAME has:
#   up_NAME     start it and mount it on $(mnt_of NAME); non-zero exit = unavailable
#   down_NAME   unmount and stop only what up_NAME started (by pid); never fails
#   pids_NAME   pids of the peer's own user-space processes (for CPU accounting)
#   data_of NAME  where the peer's data lives (lanefsd --data-dir, the brick, ...)
# Only loopback addresses are used.

TMPFS_SIZE=${TMPFS_SIZE:-4g}
LANEFS_PORT=${LANEFS_PORT:-14790}
LANEFS_MOUNT_OPTS=${LANEFS_MOUNT_OPTS:-}
SSHD_PORT=${SSHD_PORT:-22790}
GLUSTER_IP=127.0.0.2   # the gluster CLI refuses 127.0.0.1/localhost as a brick host
GLUSTER_VOL=lanefsbench

mnt_of() { echo "$W/mnt/$1"; }

data_of() {
  case $1 in
    lanefs) echo "$BACKING_DIR/lanefs" ;;
    glusterfs) echo "$BACKING_DIR/gluster-brick" ;;
    sshfs) echo "$BACKING_DIR/sshfs" ;;
    passthrough) echo "$BACKING_DIR/passthrough" ;;
    tmpfs) mnt_of tmpfs ;;
  esac
}

label_of() {
  case $1 in
    lanefs) echo "lanefs" ;;
    glusterfs) echo "GlusterFS" ;;
    sshfs) echo "sshfs" ;;
    passthrough) echo "passthrough_ll" ;;
    tmpfs) echo "tmpfs" ;;
  esac
}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_for() {
  local secs=$1
  shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# unmount_dir DIR: umount, then lazily if busy. Never fails.
unmount_dir() {
  local d=$1
  for _ in 1 2 3 4 5; do
    is_mounted "$d" || return 0
    umount "$d" 2>/dev/null || sleep 0.5
  done
  is_mounted "$d" && umount -l "$d" 2>/dev/null
  return 0
}

# stop_pid PID [SECONDS]: SIGTERM, wait, SIGKILL. Only for pids we started.
stop_pid() {
  local pid=$1 secs=${2:-10} end
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  end=$((SECONDS + secs))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  return 0
}

# reap_leftovers: a bench killed before its teardown (kill -9) leaves its
# mounts and daemons behind. Unmounts everything under $W and stops, by pid,
# the bench's own kinds of process whose command line names $W (lanefsd
# --data-dir, the frontend's --run-dir, glusterd -f, the brick, the FUSE
# clients, passthrough_ll, sshd/sshfs, fio); nothing else.
reap_leftovers() {
  local m p comm
  for m in $(findmnt -rn -o TARGET | grep "^$W/" | sort -r); do
    log "unmounting leftover $m"
    unmount_dir "$m"
  done
  for p in $(pgrep -f -- "$W/"); do
    [[ $p != "$$" && $p != "$PPID" ]] || continue
    comm=$(ps -o comm= -p "$p" 2>/dev/null) || continue
    [[ " lanefsd lanefs-frontend glusterd glusterfsd glusterfs passthrough_ll sshd sshfs fio metabench " = \
      *" $comm "* ]] || continue
    log "stopping leftover $comm (pid $p)"
    stop_pid "$p" 10
  done
  rm -rf "/var/run/gluster/vols/$GLUSTER_VOL"
}

udp_port_free() { ! ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }
tcp_port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# ---------------------------------------------------------------- lanefs
LANEFSD_PID=""
# started_pid PID NAME: waits (at most 5 s) until the background job PID has
# become NAME and prints PID. `setsid CMD &` keeps the pid: setsid forks only
# when it leads a process group, which a job of this script (no job control)
# never does.
started_pid() {
  local i
  for ((i = 0; i < 50; i++)); do
    [[ $(ps -o comm= -p "$1" 2>/dev/null) != "${2:0:15}" ]] || break
    sleep 0.1
  done
  echo "$1"
}
up_lanefs() {
  local d=$W/lanefs tries=0
  mkdir -p "$(data_of lanefs)" "$d/run" "$(mnt_of lanefs)"
  export LANEFS_TOKEN_FILE="$(data_of lanefs)/admin.token"  # lanefsd writes it; the CLI and mount present it
  while ! udp_port_free "$LANEFS_PORT" && ((tries++ < 100)); do LANEFS_PORT=$((LANEFS_PORT + 1)); done
  # setsid: a Ctrl-C on the bench must not kill the daemons before teardown
  # unmounts in order (a FUSE client whose server died makes umount wait).
  setsid "$BUILD_DIR/userspace/backend/lanefsd" --data-dir "$(data_of lanefs)" --listen "127.0.0.1:$LANEFS_PORT" \
    --name bench --log-file "$d/lanefsd.log" </dev/null >/dev/null 2>>"$d/lanefsd.err" &
  LANEFSD_PID=$(started_pid $! lanefsd)
  wait_for 30 lanefs_cli fs list || { log "lanefsd did not answer (see $d/lanefsd.log)"; return 1; }
  lanefs_cli fs create bench || return 1
  local opts=()
  [[ -z $LANEFS_MOUNT_OPTS ]] || opts=(-o "$LANEFS_MOUNT_OPTS")
  LANEFS_RUN_DIR=$d/run "$BUILD_DIR/userspace/frontend/mount.lanefs" "127.0.0.1:$LANEFS_PORT/bench" "$(mnt_of lanefs)" \
    "${opts[@]}" || return 1
  is_mounted "$(mnt_of lanefs)"
}
lanefs_cli() { timeout 30 "$BUILD_DIR/userspace/cli/lanefs" --backend "127.0.0.1:$LANEFS_PORT" --connect-timeout 2 "$@"; }
# counters_lanefs: "READ WRITTEN REQUESTS", the data byte counters and the
# requests executed, summed over every backend (`lanefs --json cluster
# status`); "-" for a counter lanefs does not report.
counters_lanefs() {
  { lanefs_cli --json cluster status 2>/dev/null || true; } | awk '
    /"data_read_bytes":/ { gsub(/[^0-9]/, "", $2); r += $2; n++ }
    /"data_written_bytes":/ { gsub(/[^0-9]/, "", $2); w += $2 }
    /"requests":/ { gsub(/[^0-9]/, "", $2); q += $2; m++ }
    END { printf "%s %s %s\n", n ? sprintf("%.0f", r) : "-", n ? sprintf("%.0f", w) : "-", m ? sprintf("%.0f", q) : "-" }'
}
lanefs_frontend_pid() { cat "$W/lanefs/run/frontend.pid" 2>/dev/null || true; }
pids_lanefs() { echo "$LANEFSD_PID $(lanefs_frontend_pid)"; }
down_lanefs() {
  local fe
  fe=$(lanefs_frontend_pid)
  unmount_dir "$(mnt_of lanefs)"
  # The frontend leaves by itself after its last unmount; make sure.
  if [[ -n $fe ]]; then
    local end=$((SECONDS + 10))
    while kill -0 "$fe" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
    stop_pid "$fe" 5
  fi
  stop_pid "$LANEFSD_PID" 15
  LANEFSD_PID=""
}

# ------------------------------------------------------------- GlusterFS
GLUSTERD_PID=""
gluster_cli() { timeout 60 gluster --mode=script "$@"; }
up_glusterfs() {
  local d=$W/gluster
  if pgrep -x glusterd >/dev/null; then
    log "a glusterd is already running on this host; not starting a second one"
    return 1
  fi
  if ! tcp_port_free 24007; then
    log "TCP port 24007 (glusterd) is taken"
    return 1
  fi
  mkdir -p "$d/glusterd" "$(data_of glusterfs)" "$(mnt_of glusterfs)"
  cat >"$d/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $d/glusterd
    option transport-type socket
    option transport.socket.listen-port 24007
    option transport.socket.bind-address $GLUSTER_IP
    option transport.socket.read-fail-log off
    option transport.address-family inet
    option ping-timeout 0
    option event-threads 1
end-volume
EOF
  glusterd -f "$d/glusterd.vol" -p "$d/glusterd.pid" -l "$d/glusterd.log" || return 1
  wait_for 10 test -s "$d/glusterd.pid" || return 1
  GLUSTERD_PID=$(cat "$d/glusterd.pid")
  wait_for 30 gluster_cli volume list || { log "glusterd does not answer (see $d/glusterd.log)"; return 1; }
  # A brick on tmpfs works: it needs trusted.* xattrs, which tmpfs has.
  gluster_cli volume create "$GLUSTER_VOL" "$GLUSTER_IP:$(data_of glusterfs)" force || return 1
  gluster_cli volume start "$GLUSTER_VOL" || { log "volume start failed (see $d/glusterd.log, /var/log/glusterfs/bricks/)"; return 1; }
  mount -t glusterfs -o "log-file=$d/client.log" "$GLUSTER_IP:/$GLUSTER_VOL" "$(mnt_of glusterfs)" || return 1
  is_mounted "$(mnt_of glusterfs)"
}
pids_glusterfs() {
  # brick (glusterfsd) and FUSE client (glusterfs) of our volume; glusterd itself is idle during IO
  pgrep -f -- "glusterfsd.*--volfile-id $GLUSTER_VOL\." 2>/dev/null | tr '\n' ' '
  pgrep -f -- "glusterfs.*--volfile-id=/?$GLUSTER_VOL .*$(mnt_of glusterfs)" 2>/dev/null | tr '\n' ' '
}
down_glusterfs() {
  local d=$W/gluster brick
  unmount_dir "$(mnt_of glusterfs)"
  brick=$(pgrep -f -- "glusterfsd.*--volfile-id $GLUSTER_VOL\." 2>/dev/null | tr '\n' ' ')
  if [[ -n $GLUSTERD_PID ]] && kill -0 "$GLUSTERD_PID" 2>/dev/null; then
    gluster_cli volume stop "$GLUSTER_VOL" force >/dev/null 2>&1 || true
    gluster_cli volume delete "$GLUSTER_VOL" >/dev/null 2>&1 || true
  fi
  local p
  for p in $brick; do stop_pid "$p" 10; done
  if [[ -n $GLUSTERD_PID ]]; then
    stop_pid "$GLUSTERD_PID" 10
    # ours: up_glusterfs refuses to run beside another glusterd
    rm -rf /var/run/glusterd.socket "/var/run/gluster/vols/$GLUSTER_VOL"
  fi
  GLUSTERD_PID=""
}

# ------------------------------------------------------------------ sshfs
SSHD_PID=""
up_sshfs() {
  local d=$W/ssh tries=0
  mkdir -p "$d" "$(data_of sshfs)" "$(mnt_of sshfs)" /run/sshd
  rm -f "$d/host_key" "$d/client_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" || return 1
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" || return 1
  cp "$d/client_key.pub" "$d/authorized_keys"
  chmod 600 "$d/authorized_keys"
  while ! tcp_port_free "$SSHD_PORT" && ((tries++ < 100)); do SSHD_PORT=$((SSHD_PORT + 1)); done
  cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $d/sshd.pid
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || return 1
  wait_for 10 test -s "$d/sshd.pid" || return 1
  SSHD_PID=$(cat "$d/sshd.pid")
  sshfs -o "IdentityFile=$d/client_key,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,port=$SSHD_PORT" \
    "root@127.0.0.1:$(data_of sshfs)" "$(mnt_of sshfs)" || return 1
  is_mounted "$(mnt_of sshfs)"
}
pids_sshfs() {
  # the sshfs client and the per-connection sshd processes (children of our listener)
  pgrep -f -- "^sshfs .*$(mnt_of sshfs)" 2>/dev/null | tr '\n' ' '
  [[ -n $SSHD_PID ]] && pgrep -P "$SSHD_PID" 2>/dev/null | tr '\n' ' '
  local c
  for c in $([[ -n $SSHD_PID ]] && pgrep -P "$SSHD_PID"); do pgrep -P "$c" 2>/dev/null | tr '\n' ' '; done
}
down_sshfs() {
  unmount_dir "$(mnt_of sshfs)"
  stop_pid "$SSHD_PID" 5
  SSHD_PID=""
}

# ----------------------------------------------------------- passthrough_ll
PT_PID=""
up_passthrough() {
  local d=$W/passthrough
  mkdir -p "$d" "$(data_of passthrough)" "$(mnt_of passthrough)"
  # libfuse's example with its defaults (multithreaded, cache=auto, no writeback cache)
  setsid "$BIN_DIR/passthrough_ll" -f -o "source=$(data_of passthrough)" "$(mnt_of passthrough)" \
    </dev/null >"$d/passthrough.log" 2>&1 &
  PT_PID=$(started_pid $! passthrough_ll)
  wait_for 10 is_mounted "$(mnt_of passthrough)"
}
pids_passthrough() { echo "$PT_PID"; }
down_passthrough() {
  unmount_dir "$(mnt_of passthrough)"
  stop_pid "$PT_PID" 5
  PT_PID=""
}

# ------------------------------------------------------------------ tmpfs
up_tmpfs() {
  mkdir -p "$(mnt_of tmpfs)"
  mount -t tmpfs -o "size=$TMPFS_SIZE" tmpfs "$(mnt_of tmpfs)"
}
pids_tmpfs() { :; }
down_tmpfs() { unmount_dir "$(mnt_of tmpfs)"; }

#!/usr/bin/env bash
# Installs what bench/fio needs (Debian 12 packages only, nothing fetched
# from elsewhere) and builds its two helpers into BIN_DIR:
#   passthrough_ll  libfuse's low-level passthrough example, compiled from the
#                   source Debian ships in libfuse3-dev
#                   (/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c)
#   metabench       bench/fio/metabench.c (create/stat/unlink timing)
#
# Usage: bench/fio/setup_peers.sh BIN_DIR
# Idempotent: installs only missing packages; run as root.
set -euo pipefail

bin_dir=${1:?usage: $0 BIN_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# fio               the load generator
# gnuplot-nox       PNG bar charts (pngcairo terminal)
# glusterfs-server  glusterd + brick process (glusterfsd)
# glusterfs-client  FUSE client (mount -t glusterfs)
# fuse3, libfuse3-dev, pkg-config, gcc, libc6-dev   passthrough_ll and metabench
# linux-perf        profile of lanefsd / lanefs-frontend
# procps, util-linux, iproute2, python3   pgrep/ps, mount/findmnt, ss, the report
# sshfs, openssh-server, openssh-client   only when PEERS names sshfs
PKGS="fio gnuplot-nox glusterfs-server glusterfs-client fuse3 libfuse3-dev pkg-config gcc libc6-dev
  linux-perf procps util-linux iproute2 python3"
if [[ " ${PEERS:-} " = *" sshfs "* ]]; then PKGS="$PKGS sshfs openssh-server openssh-client"; fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [[ -n $missing ]]; then
  if [[ $(id -u) != 0 ]]; then
    echo "setup_peers: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "setup_peers: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi

mkdir -p "$bin_dir"
examples=/usr/share/doc/libfuse3-dev/examples
src=$examples/passthrough_ll.c
if [[ ! -f $src && -f $src.gz ]]; then
  gunzip -c "$src.gz" >"$bin_dir/passthrough_ll.c"
  src=$bin_dir/passthrough_ll.c
fi
if [[ ! -f $src ]]; then
  echo "setup_peers: $examples/passthrough_ll.c missing (libfuse3-dev without examples?)" >&2
  exit 1
fi
# shellcheck disable=SC2046
cc -O2 -Wall -o "$bin_dir/passthrough_ll" "$src" $(pkg-config fuse3 --cflags --libs)
cc -O2 -Wall -Wextra -o "$bin_dir/metabench" "$here/metabench.c"
echo "setup_peers: built $bin_dir/passthrough_ll (from $src) and $bin_dir/metabench"

#!/bin/sh
# Installs every Debian 12 package lanefs needs to build, test and run.
# Idempotent; run as root (make run / make test call it).
set -eu
PKGS="build-essential g++ cmake ninja-build pkg-config git
  librocksdb-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  liburing-dev libboost-context-dev libisal-dev libssl-dev nettle-dev libfuse3-dev fuse3
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  procps iproute2 psmisc util-linux python3 python3-cffi python3-numpy ethtool
  qemu-system-x86 busybox-static kmod rdma-core ibverbs-utils perftest rdmacm-utils
  libibverbs-dev librdmacm-dev libdpdk-dev nftables fio
  debhelper dh-dkms dkms"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi

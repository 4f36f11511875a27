#!/bin/sh
# direct_rdma_guest.sh (inside a vm_run.sh guest, run by
# run_direct_rdma_bench.sh): bench/direct_ab.sh on the RDMA lane, lanefsd
# on rxe0 (192.0.2.1), the mount talking from rxe1 (192.0.2.2). Writes
# $VM_OUT/direct_rdma.jsonl. Env: LANEFS_BUILD_DIR, BENCH_ROUNDS (3),
# RUNTIME (5), FILE_MB (128).
set -eu
HERE=$(dirname "$(readlink -f "$0")")
"$HERE/../tests/vm/guest/rdma_setup.sh" >/dev/null
modprobe fuse
BACKEND_IP=192.0.2.1 LOCAL_IP=192.0.2.2 RDMA=on FILE_MB=${FILE_MB:-128} RESULTS=${VM_OUT:-/tmp}/direct_rdma.jsonl \
  "$HERE/direct_ab.sh" "${LANEFS_BUILD_DIR:?}" "${BENCH_ROUNDS:-3}"

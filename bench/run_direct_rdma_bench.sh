#!/bin/sh
# run_direct_rdma_bench.sh BUILD_DIR: the direct API against fio O_DIRECT
# on the RDMA lane (soft-RoCE) in a qemu guest (tests/vm/vm_run.sh, Debian
# 6.12), bench/direct_rdma_guest.sh inside; prints the summary, and with
# DOCS=FILE replaces the direct-api-rdma section there.
set -eu
HERE=$(dirname "$(readlink -f "$0")")
BLD=$(readlink -f "${1:?usage: run_direct_rdma_bench.sh BUILD_DIR}")
OUT=$(mktemp -d)
LANEFS_BUILD_DIR=$BLD "$HERE/../tests/vm/vm_run.sh" --kernel "${LANEFS_VM_KERNEL:-6.12}" --timeout 900 \
  --out "$OUT" -- "$HERE/direct_rdma_guest.sh" >"$OUT/console.log" 2>&1 || {
  tail -40 "$OUT/console.log"; echo "run_direct_rdma_bench: guest run failed" >&2; exit 1; }
about="Run $(date -u '+%Y-%m-%d %H:%M') UTC in a qemu TCG guest (Debian ${LANEFS_VM_KERNEL:-6.12} kernel, 2 vCPUs) \
on $(hostname), rxe0/rxe1 on a veth: RDMA lane for IOs of 32 KiB and more, mount forcedirect, \
\`bench/run_direct_rdma_bench.sh\`; TCG makes absolute numbers small: read the ratios."
python3 "$HERE/direct_ab.py" "$OUT/direct_rdma.jsonl" --rdma --about "$about" ${DOCS:+--splice "$DOCS"}

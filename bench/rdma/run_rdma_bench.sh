#!/bin/sh
# run_rdma_bench.sh BUILD_DIR: boots the qemu guest (tests/vm/vm_run.sh),
# runs guest_bench.sh there and prints the medians and ratios as the
# markdown section for docs/benchmarks.md ("RDMA lane (soft-RoCE under qemu)").
set -eu
HERE=$(dirname "$(readlink -f "$0")")
BLD=$(readlink -f "${1:?usage: run_rdma_bench.sh BUILD_DIR}")
OUT=$(mktemp -d)
LANEFS_BUILD_DIR=$BLD "$HERE/../../tests/vm/vm_run.sh" --kernel "${LANEFS_VM_KERNEL:-6.1}" --timeout 900 \
  --out "$OUT" -- "$HERE/guest_bench.sh" >"$OUT/console.log" 2>&1 || {
  tail -40 "$OUT/console.log"; echo "run_rdma_bench: guest run failed" >&2; exit 1; }
python3 - "$OUT/rdma_bench.tsv" <<'PY'
import statistics, sys, collections, datetime
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 3 and p[2] not in ("", "nan"):
        rows[p[1]].append(float(p[2]))
med = {k: statistics.median(v) for k, v in rows.items() if v}
n = max((len(v) for v in rows.values()), default=0)
print(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, qemu TCG guest (Debian 6.1 kernel, 2 vCPUs), "
      f"rxe0/rxe1 on a veth, 1 MiB IOs (lanefs: fio O_DIRECT, iodepth 8, forcedirect mount), {n} interleaved rounds, medians (MB/s):\n")
print("| test | MB/s | ratios |")
print("|---|---|---|")
def ratio(a, b):
    return f"{med[a] / med[b]:.2f}× {b}" if a in med and b in med and med[b] > 0 else "-"
for k, bases in [("ib_read_bw", []), ("ib_read_bw_256k", []), ("ib_write_bw", []),
                 ("lanefs_read_rdma", ["ib_read_bw", "ib_write_bw", "lanefs_read_udp"]),
                 ("lanefs_write_rdma", ["ib_write_bw", "ib_read_bw_256k", "lanefs_write_udp"]),
                 ("lanefs_read_udp", []), ("lanefs_write_udp", [])]:
    if k in med:
        print(f"| {k} | {med[k]:.1f} | {'; '.join(ratio(k, b) for b in bases) if bases else 'baseline'} |")
PY

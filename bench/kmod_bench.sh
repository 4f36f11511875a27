#!/bin/bash
# kmod_bench.sh BUILD [ROUNDS] [SERIES]: the kernel client (lanefs.ko) vs
# FUSE classic (issue 15), in a qemu TCG guest of Debian's SERIES kernel
# (6.1 default; FUSE over io_uring needs 6.14+, so it is compared on the
# host by bench/fuse_channels.sh). Builds the module for the guest kernel,
# runs bench/kmod_bench_guest.sh there, and prints the medians and ratios
# (kernel / classic) against the targets; DOCS=FILE replaces the
# kmod-vs-fuse section there. Absolute numbers are a TCG guest's; the
# ratios are what the run measures. Root.
set -eu
B=$(readlink -f "${1:?usage: kmod_bench.sh BUILD [ROUNDS] [SERIES]}") R=${2:-3} S=${3:-6.1}
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
"$src/tests/kmod/kmod_build.sh" "$S" "$B" "$src"
OUT=$(mktemp -d /var/tmp/lanefs-kmod-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
LANEFS_BUILD_DIR=$B LANEFS_BENCH_ROUNDS=$R "$src/tests/vm/vm_run.sh" --kernel "$S" --timeout 2400 --mem 3072 \
  --out "$OUT" -- "$here/kmod_bench_guest.sh"
kver=$(cat "$OUT/kernel" 2>/dev/null || "$src/tests/vm/vm_run.sh" --kernel "$S" --print-release)
about="Run $(date -u '+%Y-%m-%d %H:%M') UTC in a qemu TCG guest (2 vCPUs, kernel $kver) on $(hostname) \
(nproc $(nproc)): $R rounds, RUNTIME=5 s per fio job, 64 MiB files, \`bench/kmod_bench.sh $1 $R $S\`. \
TCG emulates every instruction: absolute numbers are far below the host's; compare the ratios."
python3 "$here/fuse_channels.py" "$OUT/results.jsonl" --pair classic,kernel --about "$about" ${DOCS:+--splice "$DOCS"}

#!/bin/sh
# kmod_bench_guest.sh (run by bench/kmod_bench.sh in a qemu guest): loads
# lanefs.ko and fuse, then bench/fuse_channels.sh with CHANNELS="classic
# kernel": the same jobs on a FUSE classic mount and a kernel-client mount
# of one filesystem, interleaved rounds; the JSON lines go to
# $VM_OUT/results.jsonl.
set -eu
B=${LANEFS_BUILD_DIR:?}
here=$(dirname "$(readlink -f "$0")")
ip link set lo up
insmod "$B/kmod/$(uname -r)/lanefs.ko"
modprobe fuse
i=0
while { [ ! -c /dev/lanefs ] || [ ! -c /dev/fuse ]; } && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
CHANNELS="classic kernel" RESULTS=$VM_OUT/results.jsonl RUNTIME=${LANEFS_BENCH_RUNTIME:-5} \
  FILE_MB=${LANEFS_BENCH_FILE_MB:-64} "$here/fuse_channels.sh" "$B" "${LANEFS_BENCH_ROUNDS:-3}"

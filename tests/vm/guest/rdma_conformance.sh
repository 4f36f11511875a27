#!/bin/sh
# rdma_conformance.sh (guest): the RDMA seam's gtest binaries from the build
# tree against soft-RoCE (rxe0 on va 192.0.2.1, rxe1 on vb 192.0.2.2):
# rdma_device_test, rdma_lane_test and the transport conformance suite's
# RDMA instantiation. Each must run (no skips) and pass.
# Needs LANEFS_BUILD_DIR (set by ctest; passed through by vm_run.sh) with
# those three targets built.
set -eu
HERE=$(dirname "$(readlink -f "$0")")
fail() { echo "rdma_conformance: FAILED: $*" >&2; exit 1; }
[ -n "${LANEFS_BUILD_DIR:-}" ] || fail "LANEFS_BUILD_DIR is not set"
B=$LANEFS_BUILD_DIR
DEV=$B/tests/rdma/rdma_device_test
LANE=$B/tests/rdma/rdma_lane_test
CONF=$B/tests/userspace/transport/transport_conformance_test
for t in "$DEV" "$LANE" "$CONF"; do
  [ -x "$t" ] || fail "$t not built (ninja rdma_device_test rdma_lane_test transport_conformance_test)"
done

"$HERE/rdma_setup.sh"
export LANEFS_TEST_RDMA_IPS=192.0.2.1,192.0.2.2
export LANEFS_TEST_RDMA_DEVICES=rxe0,rxe1
before=$(cat /sys/class/net/vb/statistics/tx_packets)

# run NAME TIMEOUT BINARY [ARGS]: passes, and nothing was skipped.
failed=""
run() {
  name=$1; secs=$2; shift 2
  log=/tmp/$name.log
  echo "rdma_conformance: --- $name"
  rc=0
  timeout "$secs" "$@" >"$log" 2>&1 || rc=$?
  cat "$log"
  cp "$log" "${VM_OUT:-/tmp}/" 2>/dev/null || true
  if [ $rc -ne 0 ]; then failed="$failed $name(exit $rc)"; return; fi
  if grep -q '^\[  SKIPPED \]' "$log"; then failed="$failed $name(skips)"; return; fi
  grep -q '^\[  PASSED  \]' "$log" || failed="$failed $name(no PASSED line)"
}
run rdma_device_test 60 "$DEV"
run rdma_lane_test 240 "$LANE"
run transport_conformance_rdma 240 "$CONF" --gtest_filter='*/rdma:TransportFactory.Rdma*'
[ -z "$failed" ] || fail "$failed"
sent=$(($(cat /sys/class/net/vb/statistics/tx_packets) - before))
echo "rdma_conformance: $sent packets sent on vb"
[ "$sent" -ge 100 ] || fail "the RDMA traffic did not cross the veth ($sent packets on vb)"
echo "rdma_conformance: PASS"

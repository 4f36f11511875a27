#!/bin/sh
# kmod_build.sh SERIES BUILD_DIR SOURCE_DIR: builds lanefs.ko with W=1 for
# the Debian kernel of SERIES (6.1 or 6.12) that the vm tests boot, into
# BUILD_DIR/kmod/<release>/ (a copy of kmod/: the source tree stays clean).
# Fails on any compiler warning; installs the kernel's headers package when
# missing (root); exit 77 with one line when they cannot be had.
set -eu
SERIES=$1
BUILD=$2
SRC=$3
fail() { echo "kmod_build: FAILED: $*" >&2; exit 1; }
skip() { echo "kmod_build: SKIPPED: $*"; exit 77; }

rc=0
KVER=$("$SRC/tests/vm/vm_run.sh" --kernel "$SERIES" --print-release) || rc=$?
[ "$rc" = 0 ] || skip "no $SERIES guest kernel: $KVER"
HDR=/usr/src/linux-headers-$KVER
if [ ! -f "$HDR/Makefile" ]; then
  [ "$(id -u)" = 0 ] || skip "linux-headers-$KVER is not installed and installing it needs root"
  echo "kmod_build: installing linux-headers-$KVER"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "linux-headers-$KVER" \
    >"$BUILD/kmod-headers-$KVER.log" 2>&1 ||
    skip "linux-headers-$KVER could not be installed (see $BUILD/kmod-headers-$KVER.log)"
fi
OUT=$BUILD/kmod/$KVER
rm -rf "$OUT"
mkdir -p "$OUT"
cp -r "$SRC/kmod/." "$OUT/"
rm -f "$OUT"/*.o "$OUT"/*.ko "$OUT"/.*.cmd "$OUT"/*.mod* "$OUT"/Module.symvers "$OUT"/modules.order
echo "kmod_build: lanefs.ko for $KVER (W=1)"
make -C "$OUT" KVER="$KVER" W=1 >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; fail "make for $KVER"; }
if grep -E "warning:|error:" "$OUT/build.log"; then
  fail "compiler warnings for $KVER (kmod/ builds warning-free with W=1)"
fi
[ -f "$OUT/lanefs.ko" ] || fail "no lanefs.ko after make for $KVER"
vermagic=$(modinfo -F vermagic "$OUT/lanefs.ko")
case "$vermagic" in
  "$KVER "*) ;;
  *) fail "lanefs.ko says vermagic '$vermagic', not $KVER" ;;
esac
echo "kmod_build: $OUT/lanefs.ko ($(stat -c %s "$OUT/lanefs.ko") bytes, vermagic $vermagic)"
echo "kmod_build: PASS"

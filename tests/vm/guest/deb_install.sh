#!/bin/sh
# deb_install.sh (guest, vm_run.sh --overlay-root): installs the three
# packages deb_test built (lanefs-dkms, lanefs-client, lanefs-server) with
# dpkg -i; DKMS builds and installs lanefs.ko for this guest's kernel;
# modprobe lanefs; lanefsd started by hand with the packaged
# /etc/lanefs/lanefsd.conf (no systemd in the guest); `mount -t lanefs`
# (mount(8) -> the packaged mount.lanefs) must pick the kernel client.
set -eu
B=${LANEFS_BUILD_DIR:?}
DEBS=$B/deb-test
KVER=$(uname -r)
fail() { echo "deb_install: FAILED: $*" >&2; dmesg | tail -n 30 >&2; exit 1; }
step() { echo "deb_install: $*"; }
touch /.overlay-probe 2>/dev/null || fail "the root is read-only: run with vm_run.sh --overlay-root"
ls "$DEBS"/lanefs-dkms_*.deb "$DEBS"/lanefs-client_*.deb "$DEBS"/lanefs-server_*.deb >/dev/null ||
  fail "no packages in $DEBS (deb_test makes them)"
[ -f "/usr/src/linux-headers-$KVER/Makefile" ] || fail "no linux-headers-$KVER on the host root (kmod_build installs them)"
ln -sfn "/usr/src/linux-headers-$KVER" "/lib/modules/$KVER/build"
# What udev would make: dkms uses <(...) process substitution (/dev/fd).
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
export DEBIAN_FRONTEND=noninteractive
# man-db's index rebuild takes minutes under TCG and checks nothing here
rm -f /var/lib/man-db/auto-update
ip link set lo up
# A host that ran `make install` has unpackaged copies; the packages own these paths.
rm -f /usr/local/sbin/mount.lanefs /usr/local/sbin/lanefs-frontend /usr/local/bin/lanefs /sbin/mount.lanefs 2>/dev/null || true

# The shared root has headers for the other test kernel too, and dh-dkms's
# postinst builds for the running and the newest kernel: under TCG that is
# a second build of minutes that checks nothing new here (deb_test builds
# with DKMS on the host for every kernel with headers). An empty directory
# over the other kernels' module trees makes this guest a one-kernel host.
for d in /lib/modules/*; do
  [ "${d##*/}" = "$KVER" ] || mount -t tmpfs -o size=1m,mode=0755 none "$d" || fail "hiding $d"
done
step "dpkg -i (DKMS builds lanefs.ko for $KVER; minutes under TCG)"
s=$(date +%s)
dpkg -i "$DEBS"/lanefs-dkms_*.deb "$DEBS"/lanefs-client_*.deb "$DEBS"/lanefs-server_*.deb >/tmp/dpkg.log 2>&1 ||
  { cat /tmp/dpkg.log; fail "dpkg -i"; }
step "installed in $(( $(date +%s) - s )) s"
dkms status lanefs | tee /tmp/dkms.status
grep -q "$KVER.*installed" /tmp/dkms.status || { cat /tmp/dpkg.log; fail "DKMS did not install lanefs for $KVER"; }
modprobe lanefs || fail "modprobe lanefs"
[ -c /dev/lanefs ] || { sleep 1; [ -c /dev/lanefs ] || fail "/dev/lanefs missing after modprobe"; }
step "modprobe lanefs: $(modinfo -F filename lanefs)"

[ -f /etc/lanefs/lanefsd.conf ] || fail "no /etc/lanefs/lanefsd.conf"
LANEFSD_ARGS=""
. /etc/lanefs/lanefsd.conf
mkdir -p /var/lib/lanefs
# shellcheck disable=SC2086
/usr/sbin/lanefsd $LANEFSD_ARGS --log-file /tmp/lanefsd.log </dev/null >/tmp/lanefsd.out 2>&1 &
pid=$!
cleanup() {
  umount -l /mnt/pkg 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  cp /tmp/lanefsd.log "${VM_OUT:-/tmp}/" 2>/dev/null || true
}
trap cleanup EXIT
i=0
until timeout 20 lanefs fs list >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 30 ] || { cat /tmp/lanefsd.out; fail "the packaged lanefsd does not answer"; }
  sleep 1
done
step "lanefsd ($LANEFSD_ARGS) answers"
# As an admin on the backend's host: lanefsd wrote the admin token to
# /etc/lanefs/admin.token, where the CLI looks; mounts present
# /etc/lanefs/client.token.
lanefs fs create pkgfs >/dev/null || fail "lanefs fs create"
lanefs user add pkg --role client --fs pkgfs >/dev/null || fail "lanefs user add"
lanefs user login pkg --token-file /etc/lanefs/client.token || fail "lanefs user login"
mkdir -p /mnt/pkg
out=$(mount -t lanefs 127.0.0.1:14000/pkgfs /mnt/pkg 2>&1) || fail "mount -t lanefs: $out"
echo "$out"
case "$out" in *"kernel client"*) ;; *) fail "mount -t lanefs did not pick the kernel client: $out" ;; esac
awk '$2 == "/mnt/pkg" {print $3}' /proc/mounts | grep -qx lanefs || fail "/mnt/pkg is not a lanefs kernel mount"
echo packaged >/mnt/pkg/f && [ "$(cat /mnt/pkg/f)" = packaged ] || fail "write and read back"
lanefs local ps
umount /mnt/pkg || fail "umount"
echo "deb_install: PASS"
exit 0

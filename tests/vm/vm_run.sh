#!/bin/bash
# vm_run.sh: boot a Debian kernel under qemu (TCG) with the host's root
# filesystem as the guest's root (read-only 9p) and run one script in it.
#
#   vm_run.sh [--kernel 6.1|6.12] [--timeout S] [--mem MB] [--smp N]
#             [--out DIR] [--env NAME=VALUE]... -- GUEST_SCRIPT [ARGS...]
#   vm_run.sh [--kernel 6.1|6.12] --print-release
#
# --overlay-root gives the guest a writable root: an overlay with the host
# root (9p, read-only) below and a tmpfs above, and the same over the guest
# kernel's /lib/modules/<release>, so a script can dpkg -i packages and
# DKMS can build and install modules; nothing reaches the host.
#
# --print-release resolves (and caches) the kernel as a run would and only
# prints its release (e.g. 6.1.0-57-amd64): what modules for the guest are
# built against (tests/kmod).
# GUEST_SCRIPT is a host path; it runs as root inside the guest (chroot into
# the host root, own /proc /sys /dev, tmpfs /tmp and /run, the guest kernel's
# modules on /lib/modules). It may write files to $VM_OUT; they come back in
# --out DIR. Every LANEFS_* variable of the caller is passed through.
# Exit status: the guest script's; 77 with a one-line reason when qemu or the
# kernel cannot be had (ctest SKIP_RETURN_CODE); 124 on the hard timeout.
#
# Kernel cache: $LANEFS_VM_CACHE, else /var/cache/lanefs-vm when writable,
# else ${XDG_CACHE_HOME:-~/.cache}/lanefs-vm. One directory per kernel
# release (unpacked linux-image package + depmod), reused across runs.
set -euo pipefail

KSERIES=6.1
TIMEOUT=480
MEM=2048
SMP=2
OUT_KEEP=""
EXTRA_ENV=()
PRINT_RELEASE=""
OVERLAY_ROOT=""
die() { echo "vm_run: $*" >&2; exit 1; }
skip() { echo "vm_run: SKIPPED: $*"; exit 77; }

while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KSERIES=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --out) OUT_KEEP=$2; shift 2 ;;
    --env) EXTRA_ENV+=("$2"); shift 2 ;;
    --print-release) PRINT_RELEASE=1; shift ;;
    --overlay-root) OVERLAY_ROOT=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [ -z "$PRINT_RELEASE" ]; then
[ $# -ge 1 ] || die "usage: vm_run.sh [options] -- GUEST_SCRIPT [ARGS...]"
GUEST_SCRIPT=$(readlink -f "$1"); shift
[ -f "$GUEST_SCRIPT" ] || die "guest script $GUEST_SCRIPT not found"
else
GUEST_SCRIPT=/nonexistent
fi
case "$GUEST_SCRIPT" in
  /run/*|/dev/*|/proc/*|/sys/*)
    die "guest script $GUEST_SCRIPT is under a directory the guest replaces; put it elsewhere" ;;
esac
# The guest has its own tmpfs /tmp; the host's /tmp stays visible at
# /tmp/.host (a checkout or build tree under /tmp keeps working).
guest_path() {
  case "$1" in
    /tmp/*) printf '%s' "/tmp/.host/${1#/tmp/}" ;;
    *) printf '%s' "$1" ;;
  esac
}
case "$KSERIES" in 6.1|6.12) ;; *) die "--kernel must be 6.1 or 6.12" ;; esac

QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || skip "qemu-system-x86_64 not installed (Debian package qemu-system-x86)"
BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  skip "no static busybox for the initramfs (Debian package busybox-static)"
fi
for t in apt-get apt-cache dpkg depmod modprobe flock; do
  command -v "$t" >/dev/null || skip "$t not found (needed to fetch the guest kernel)"
done

# ---- kernel cache ------------------------------------------------------
if [ -n "${LANEFS_VM_CACHE:-}" ]; then
  CACHE=$LANEFS_VM_CACHE
elif mkdir -p /var/cache/lanefs-vm 2>/dev/null && [ -w /var/cache/lanefs-vm ]; then
  CACHE=/var/cache/lanefs-vm
else
  CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/lanefs-vm
fi
mkdir -p "$CACHE" || skip "cannot create kernel cache $CACHE"

# Newest linux-image package of the series that apt knows about.
resolve_package() {
  local p=""
  if [ "$KSERIES" = 6.12 ]; then
    p=$(apt-cache depends linux-image-6.12-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.12\.[0-9]*+deb[0-9]*-amd64\)$/\1/p' | sort -V | tail -n1)
    [ -n "$p" ] || p=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64$' 2>/dev/null |
                       cut -d' ' -f1 | sort -V | tail -n1)
  else
    p=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
        cut -d' ' -f1 | sort -V | tail -n1)
  fi
  echo "$p"
}

# Newest complete cache entry of the series (used when apt cannot help).
cached_release() {
  local pat='6.1.0-*-amd64'
  [ "$KSERIES" = 6.12 ] && pat='6.12.*-amd64'
  local d best=""
  for d in "$CACHE"/$pat; do
    [ -f "$d/.complete" ] && best="$best${best:+$'\n'}$(basename "$d")"
  done
  [ -n "$best" ] && printf '%s\n' "$best" | sort -V | tail -n1
  return 0
}

# Download + unpack + depmod one release into $CACHE/$KVER (atomic rename).
fetch_kernel() {
  local pkg=$1 kver=$2 tmp
  tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
  chmod 755 "$tmp"   # apt-get download runs as _apt when it can
  echo "vm_run: fetching $pkg into $CACHE (once)" >&2
  if ! (cd "$tmp" && timeout 600 apt-get download -q "$pkg") >"$tmp/apt.log" 2>&1; then
    echo "vm_run: apt-get download $pkg failed: $(tail -n1 "$tmp/apt.log")" >&2
    rm -rf "$tmp"; return 1
  fi
  local deb
  deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
  if [ -z "$deb" ] || ! dpkg -x "$deb" "$tmp/root"; then
    echo "vm_run: unpacking $pkg failed" >&2; rm -rf "$tmp"; return 1
  fi
  rm -f "$deb"
  # Newer packages put modules under usr/lib; depmod -b wants lib/modules.
  if [ ! -d "$tmp/root/lib/modules/$kver" ] && [ -d "$tmp/root/usr/lib/modules/$kver" ]; then
    ln -s usr/lib "$tmp/root/lib"
  fi
  if [ ! -f "$tmp/root/boot/vmlinuz-$kver" ] || [ ! -d "$tmp/root/lib/modules/$kver" ] ||
     ! depmod -b "$tmp/root" "$kver" 2>"$tmp/depmod.log"; then
    echo "vm_run: $pkg has no usable kernel/modules for $kver" >&2; rm -rf "$tmp"; return 1
  fi
  touch "$tmp/.complete"
  rm -rf "${CACHE:?}/$kver"
  mv "$tmp" "$CACHE/$kver"
}

exec 9>"$CACHE/.lock"
flock -w 900 9 || skip "timed out waiting for the kernel cache lock $CACHE/.lock"
PKG=$(resolve_package)
KVER=""
if [ -n "$PKG" ]; then
  KVER=${PKG#linux-image-}
  if [ ! -f "$CACHE/$KVER/.complete" ] && ! fetch_kernel "$PKG" "$KVER"; then
    KVER=""
  fi
fi
[ -n "$KVER" ] || KVER=$(cached_release)
[ -n "$KVER" ] || skip "no linux-image-$KSERIES amd64 kernel: not in apt's lists (apt-get update?) and not downloadable"
flock -u 9
if [ -n "$PRINT_RELEASE" ]; then
  echo "$KVER"
  exit 0
fi
KROOT="$CACHE/$KVER/root"
VMLINUZ="$KROOT/boot/vmlinuz-$KVER"
MODDIR=$(readlink -f "$KROOT/lib/modules/$KVER")

# ---- per-run state -------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lanefs-vm.XXXXXX")
QEMU_PID=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill -TERM "$QEMU_PID" 2>/dev/null || true
    sleep 1
    kill -KILL "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
OUT="$WORK/out"          # the guest's read-write 9p share
INITRD_DIR="$WORK/initrd"
CONSOLE="$WORK/console.log"
mkdir -p "$OUT" "$INITRD_DIR"/{bin,modules,proc,sys,dev,newroot}
chmod 777 "$OUT"

# initramfs: static busybox + the modules that 9p needs, in load order.
cp "$BUSYBOX" "$INITRD_DIR/bin/busybox"
: >"$INITRD_DIR/modules.list"
modprobe -d "$KROOT" -S "$KVER" -a --show-depends virtio_pci 9pnet_virtio 9p overlay >"$WORK/deps" 2>&1 ||
  die "modprobe --show-depends failed for $KVER: $(cat "$WORK/deps")"
while read -r kind path _; do
  [ "$kind" = insmod ] || continue
  name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
  grep -qx "$name" "$INITRD_DIR/modules.list" && continue
  case "$path" in
    *.xz) xz -dc "$path" ;;
    *.zst) zstd -qdc "$path" ;;
    *.gz) gzip -dc "$path" ;;
    *) cat "$path" ;;
  esac >"$INITRD_DIR/modules/$name"
  echo "$name" >>"$INITRD_DIR/modules.list"
done <"$WORK/deps"
echo "$MODDIR" >"$INITRD_DIR/moddir"

cat >"$INITRD_DIR/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "vm-init: $*"; poweroff -f; sleep 5; exit 1; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
  insmod "/modules/$m" || fail "insmod $m failed"
done
P9="trans=virtio,version=9p2000.L,msize=262144"
R=/newroot
if [ -f /overlay_root ]; then
  mkdir -p /lower /ovr
  mount -t 9p -o "$P9,ro,cache=loose" hostroot /lower || fail "mount hostroot failed"
  mount -t tmpfs -o mode=755 tmpfs /ovr && mkdir -p /ovr/u /ovr/w /ovr/mu /ovr/mw
  mount -t overlay -o "lowerdir=/lower,upperdir=/ovr/u,workdir=/ovr/w" overlay $R || fail "overlay root failed"
else
  mount -t 9p -o "$P9,ro,cache=loose" hostroot $R || fail "mount hostroot failed"
fi
mount -t tmpfs -o mode=755 tmpfs $R/run
mkdir -p $R/run/vm-out
mount -t 9p -o "$P9" vmout $R/run/vm-out || fail "mount vmout failed"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mkdir -p /hosttmp && mount --bind $R/tmp /hosttmp
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mkdir -p $R/tmp/.host && mount --move /hosttmp $R/tmp/.host
# /lib/modules := the unpacked guest kernel's modules. /lib is usually a
# symlink (merged /usr); resolve it by hand, we are outside the new root.
LIB=lib
if [ -L $R/lib ]; then LIB=$(readlink $R/lib); LIB=${LIB#/}; fi
if [ ! -d $R/$LIB/modules ]; then
  # A host without /lib/modules (containers): give its parent a writable
  # overlay (tmpfs upper) so the mount point can exist.
  mkdir -p /ovl && mount -t tmpfs tmpfs /ovl && mkdir -p /ovl/u /ovl/w
  mount -t overlay -o "lowerdir=$R/$LIB,upperdir=/ovl/u,workdir=/ovl/w" overlay $R/$LIB ||
    fail "overlay on /$LIB failed"
  mkdir -p $R/$LIB/modules
fi
mount -t tmpfs tmpfs $R/$LIB/modules || fail "tmpfs on /lib/modules failed"
KVER=$(uname -r)
mkdir -p $R/$LIB/modules/$KVER
if [ -f /overlay_root ]; then
  mount -t overlay -o "lowerdir=$R$(cat /moddir),upperdir=/ovr/mu,workdir=/ovr/mw" overlay $R/$LIB/modules/$KVER ||
    fail "overlay on the modules failed"
else
  mount --bind "$R$(cat /moddir)" $R/$LIB/modules/$KVER || fail "bind of modules failed"
fi
# exec (not fork): PID 1 shares its fs root with kernel threads, so the
# kernel's module autoloader finds /sbin/modprobe in the new root.
exec chroot $R /bin/sh /run/vm-out/run.sh
EOF
chmod 755 "$INITRD_DIR/init"
[ -z "$OVERLAY_ROOT" ] || : >"$INITRD_DIR/overlay_root"
(cd "$INITRD_DIR" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) >"$WORK/initrd.cpio"

# The guest side: environment, the script under a timeout, status back.
# Leave room for boot (up to ~15 s) and copying back before the hard kill.
MARGIN=$((TIMEOUT / 4 > 30 ? TIMEOUT / 4 : 30))
GUEST_TIMEOUT=$((TIMEOUT > 2 * MARGIN ? TIMEOUT - MARGIN : TIMEOUT / 2))
{
  echo '#!/bin/sh'
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  echo 'export HOME=/tmp VM_OUT=/run/vm-out LANG=C.UTF-8'
  echo "export VM_KERNEL=$(printf %q "$KVER")"
  for name in $(compgen -e); do
    case "$name" in LANEFS_*) printf 'export %s=%q\n' "$name" "$(guest_path "${!name}")" ;; esac
  done
  for kv in "${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}"; do
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
  done
  printf 'set -- %s\n' "$(printf '%q ' "$(guest_path "$GUEST_SCRIPT")" "$@")"
  cat <<EOF
cut -d' ' -f1 /proc/uptime >/run/vm-out/boot_seconds
echo lanefs-vm >/proc/sys/kernel/hostname
echo "vm-guest: kernel \$(uname -r), running \$*"
cd /tmp
{
  if [ -x "\$1" ]; then timeout -k 10 $GUEST_TIMEOUT "\$@"; else timeout -k 10 $GUEST_TIMEOUT sh "\$@"; fi
  echo \$? >/run/vm-out/status.tmp
} 2>&1 | tee /run/vm-out/guest.log
mv /run/vm-out/status.tmp /run/vm-out/status
sync
echo "vm-guest: done, status \$(cat /run/vm-out/status)"
echo o >/proc/sysrq-trigger
sleep 10
EOF
} >"$OUT/run.sh"
# The script is read by a shell started by init, so bash's %q quoting must
# stay POSIX-sh compatible: plain words and '...' only ($'..' is rejected).
if grep -q "\$'" "$OUT/run.sh"; then die "arguments or environment contain control characters"; fi

case "${LANEFS_BUILD_DIR:-}" in
  /run/*) echo "vm_run: warning: LANEFS_BUILD_DIR=$LANEFS_BUILD_DIR is hidden in the guest (tmpfs there)" >&2 ;;
esac

# ---- boot ----------------------------------------------------------------
START=$(date +%s)
"$QEMU" -accel tcg -cpu max -m "$MEM" -smp "$SMP" -nographic -no-reboot -nic none \
  -kernel "$VMLINUZ" -initrd "$WORK/initrd.cpio" \
  -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$OUT,mount_tag=vmout,security_model=none,multidevs=remap" \
  </dev/null >"$CONSOLE" 2>&1 &
QEMU_PID=$!
TIMED_OUT=0
while kill -0 "$QEMU_PID" 2>/dev/null; do
  if [ $(($(date +%s) - START)) -ge "$TIMEOUT" ]; then
    TIMED_OUT=1
    kill -KILL "$QEMU_PID" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
QRC=0
wait "$QEMU_PID" 2>/dev/null || QRC=$?
QEMU_PID=""
ELAPSED=$(($(date +%s) - START))

if [ -n "$OUT_KEEP" ]; then
  mkdir -p "$OUT_KEEP"
  cp -r "$OUT/." "$OUT_KEEP/"
  cp "$CONSOLE" "$OUT_KEEP/console.log"
fi
BOOT=$(cat "$OUT/boot_seconds" 2>/dev/null || echo "?")
show_console() {
  echo "---- guest console ($KVER) ----"
  tail -n 200 "$CONSOLE"
  echo "---- end of guest console ----"
}
if [ "$TIMED_OUT" = 1 ]; then
  show_console
  echo "vm_run: FAILED: hard timeout of ${TIMEOUT}s reached, qemu killed ($KVER, boot ${BOOT}s)"
  exit 124
fi
if [ ! -f "$OUT/status" ]; then
  show_console
  echo "vm_run: FAILED: guest reported no status (qemu exit $QRC after ${ELAPSED}s, $KVER)"
  exit 1
fi
STATUS=$(cat "$OUT/status")
echo "---- guest output ----"
cat "$OUT/guest.log" 2>/dev/null || true
echo "---- end of guest output ----"
echo "vm_run: $KVER booted to the test in ${BOOT}s (guest uptime), whole run ${ELAPSED}s, guest status $STATUS"
if [ "$STATUS" != 0 ] && [ "$STATUS" != 77 ]; then
  show_console
fi
exit "$STATUS"

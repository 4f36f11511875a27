#!/bin/sh
# deb_test BUILD: builds the Debian packages of `make deb` (scripts/deb.sh)
# from BUILD's binaries into a temporary directory and checks them: the three
# .debs, what each holds (module source + dkms.conf; binaries + man pages;
# lanefsd + unit + conffile), their control fields and maintainer scripts,
# the shipped binaries, man pages, unit and configuration, and a DKMS build of
# the module source as lanefs-dkms installs it, for each kernel with headers.
# Exit 77 (skipped) with one line when it cannot run here.
set -eu
build=${1:-${LANEFS_BUILD_DIR:-}}
src=$(cd "$(dirname "$0")/../.." && pwd)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[ -n "$build" ] || skip "no build directory (argument or LANEFS_BUILD_DIR)"
[ "$(id -u)" = 0 ] || skip "needs root (dkms)"
for t in dpkg-deb dpkg-buildpackage dh dh_dkms; do
  command -v "$t" >/dev/null || skip "$t not installed (scripts/deps.sh)"
done
for b in backend/lanefsd cli/lanefs frontend/lanefs-frontend frontend/mount.lanefs; do
  [ -x "$build/userspace/$b" ] || skip "$build/userspace/$b not built"
done
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || fail "no project version in $build/CMakeCache.txt"
arch=$(dpkg --print-architecture)

tmp=$(mktemp -d /tmp/lanefs-deb-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$src/scripts/deb.sh" "$build" "$tmp/deb" || fail "scripts/deb.sh failed"

dkms_deb=$tmp/deb/lanefs-dkms_${version}_all.deb
client_deb=$tmp/deb/lanefs-client_${version}_${arch}.deb
server_deb=$tmp/deb/lanefs-server_${version}_${arch}.deb
for d in "$dkms_deb" "$client_deb" "$server_deb"; do
  [ -f "$d" ] || fail "$(basename "$d") was not built (have: $(ls "$tmp/deb"))"
done
ok "three packages built"

# --- contents --------------------------------------------------------------
# list DEB: every path in the package, as ./path (directories end in /).
list() { dpkg-deb -c "$1" | awk '{print $6}'; }
has() {  # has DEB PATH...
  deb=$1
  shift
  list "$deb" >"$tmp/list"
  for p in "$@"; do
    grep -qxF "$p" "$tmp/list" || fail "$(basename "$deb") lacks $p"
  done
}

usrc=./usr/src/lanefs-$version
has "$dkms_deb" "$usrc/dkms.conf"
n=0
for f in $(cd "$src/kmod" && find . -type f ! -name '.*' ! -name '*.o' ! -name '*.ko' ! -name '*.ko.*' \
             ! -name '*.mod*' ! -name Module.symvers ! -name modules.order | sed 's,^\./,,'); do
  has "$dkms_deb" "$usrc/$f"
  n=$((n + 1))
done
list "$dkms_deb" | grep -qxE "$usrc/(Kbuild|Makefile)" || fail "lanefs-dkms has no Kbuild or Makefile"
if list "$dkms_deb" | grep -E '\.(o|ko|cmd)$|\.mod|Module\.symvers|modules\.order'; then
  fail "lanefs-dkms ships build artefacts (above)"
fi
ok "lanefs-dkms: dkms.conf and all $n files of kmod/, no build artefacts"

has "$client_deb" ./usr/bin/lanefs ./usr/sbin/lanefs-frontend ./usr/sbin/mount.lanefs \
  ./usr/share/man/man1/lanefs.1.gz ./usr/share/man/man8/mount.lanefs.8.gz \
  ./usr/share/man/man8/lanefs-frontend.8.gz ./usr/share/doc/lanefs-client/copyright \
  ./usr/share/doc/lanefs-client/changelog.gz ./usr/lib/liblanefs-direct.so.1 ./usr/lib/liblanefs-direct.so \
  ./usr/include/lanefs/direct.h ./usr/lib/python3/dist-packages/lanefs_direct.py
# /sbin is /usr/sbin on Debian 12: a /sbin/mount.lanefs entry would alias
# (and clobber) /usr/sbin/mount.lanefs.
if list "$client_deb" | grep -E '^\./sbin/'; then fail "lanefs-client ships files under /sbin (above)"; fi
ok "lanefs-client: lanefs, lanefs-frontend, mount.lanefs, man pages, liblanefs-direct (library, header, Python)"

has "$server_deb" ./usr/sbin/lanefsd ./lib/systemd/system/lanefsd.service ./etc/lanefs/lanefsd.conf \
  ./usr/share/man/man8/lanefsd.8.gz ./usr/share/doc/lanefs-server/copyright
ok "lanefs-server: lanefsd, lanefsd.service, lanefsd.conf, man page"

# --- control fields and maintainer scripts ---------------------------------
field() { dpkg-deb -f "$1" "$2"; }
for d in "$dkms_deb" "$client_deb" "$server_deb"; do
  dpkg-deb -I "$d" >/dev/null || fail "dpkg-deb -I $(basename "$d")"
  [ "$(field "$d" Version)" = "$version" ] || fail "$(basename "$d"): Version $(field "$d" Version), want $version"
  field "$d" Maintainer | grep -qE '^[^<]+ <[^@ ]+@[^> ]+>$' || fail "$(basename "$d"): Maintainer '$(field "$d" Maintainer)'"
  [ -n "$(field "$d" Description)" ] || fail "$(basename "$d"): no Description"
  [ -n "$(field "$d" Section)" ] || fail "$(basename "$d"): no Section"
  [ -n "$(field "$d" Priority)" ] || fail "$(basename "$d"): no Priority"
done
[ "$(field "$dkms_deb" Architecture)" = all ] || fail "lanefs-dkms: Architecture $(field "$dkms_deb" Architecture)"
for d in "$client_deb" "$server_deb"; do
  [ "$(field "$d" Architecture)" = "$arch" ] || fail "$(basename "$d"): Architecture $(field "$d" Architecture)"
  field "$d" Depends | grep -q 'libc6' || fail "$(basename "$d"): no shared-library Depends: $(field "$d" Depends)"
done
field "$dkms_deb" Depends | grep -qE '(^|, )dkms' || fail "lanefs-dkms: Depends $(field "$dkms_deb" Depends)"
field "$client_deb" Depends | grep -qE '(^|, )fuse3' || fail "lanefs-client: Depends $(field "$client_deb" Depends)"

dpkg-deb -e "$dkms_deb" "$tmp/ctl-dkms"
grep -q 'common.postinst' "$tmp/ctl-dkms/postinst" || fail "lanefs-dkms postinst does not run DKMS"
grep -q 'dkms remove' "$tmp/ctl-dkms/prerm" || fail "lanefs-dkms prerm does not remove the module"
dpkg-deb -e "$server_deb" "$tmp/ctl-server"
grep -qxF /etc/lanefs/lanefsd.conf "$tmp/ctl-server/conffiles" || fail "lanefsd.conf is not a conffile"
grep -q 'lanefsd.service' "$tmp/ctl-server/postinst" || fail "lanefs-server postinst does not handle lanefsd.service"
# dh_installsystemd --no-enable: only a unit the administrator had enabled
# before is enabled again (guarded by debian-installed); a fresh install
# leaves it disabled, and deb-systemd-invoke starts no disabled unit.
grep -q "deb-systemd-helper debian-installed 'lanefsd.service'" "$tmp/ctl-server/postinst" ||
  fail "lanefs-server postinst enables lanefsd on install (the administrator does: systemctl enable --now lanefsd)"
ok "control fields (Version $version, Architecture, Maintainer, Depends) and maintainer scripts"

# --- what is inside --------------------------------------------------------
for d in "$dkms_deb" "$client_deb" "$server_deb"; do dpkg-deb -x "$d" "$tmp/root"; done
root=$tmp/root
conf=$root/usr/src/lanefs-$version/dkms.conf
for want in 'PACKAGE_NAME="lanefs"' "PACKAGE_VERSION=\"$version\"" 'BUILT_MODULE_NAME[0]="lanefs"' \
            'DEST_MODULE_LOCATION[0]="/updates/dkms"' 'AUTOINSTALL="yes"' \
            'MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build modules"'; do
  grep -qxF "$want" "$conf" || fail "dkms.conf lacks $want"
done
grep -q '^CLEAN=' "$conf" || fail "dkms.conf has no CLEAN"
ok "dkms.conf: name, version $version, MAKE, CLEAN, module, location, AUTOINSTALL"

for b in usr/bin/lanefs usr/sbin/lanefsd usr/sbin/lanefs-frontend; do
  v=$("$root/$b" --version) || fail "$b --version"
  [ "$v" = "$version" ] || fail "$b --version says '$v', want $version"
done
ok "packaged binaries run and say version $version"

if command -v groff >/dev/null; then
  for m in "$root"/usr/share/man/man*/*.gz; do
    w=$(zcat "$m" | groff -man -Tutf8 -ww -z 2>&1) || fail "groff $m: $w"
    [ -z "$w" ] || fail "groff warns on $(basename "$m"): $w"
  done
  ok "man pages render without warnings"
else
  echo "skip: groff not installed, man pages not rendered"
fi

# Every lanefsd flag the shipped configuration uses (its examples too) exists.
unit=$root/lib/systemd/system/lanefsd.service
grep -qxF 'EnvironmentFile=/etc/lanefs/lanefsd.conf' "$unit" || fail "lanefsd.service does not read /etc/lanefs/lanefsd.conf"
grep -qxF 'ExecStart=/usr/sbin/lanefsd $LANEFSD_ARGS' "$unit" || fail "lanefsd.service ExecStart"
help=$("$root/usr/sbin/lanefsd" --help)
for flag in $(grep -o -- '--[a-z][a-z-]*' "$root/etc/lanefs/lanefsd.conf" | sort -u); do
  echo "$help" | grep -q -- "$flag" || fail "lanefsd.conf uses $flag, which lanefsd does not have"
done
(. "$root/etc/lanefs/lanefsd.conf" && echo "$LANEFSD_ARGS" | grep -q -- '--data-dir /var/lib/lanefs') ||
  fail "lanefsd.conf: LANEFSD_ARGS has no --data-dir /var/lib/lanefs"
ok "lanefsd.conf: LANEFSD_ARGS set, every flag known to lanefsd"

if command -v systemd-analyze >/dev/null; then
  # ExecStart pointed at the unpacked binary (verify checks that it exists);
  # any message, even a warning on an unknown key, fails.
  sed "s,=/usr/sbin/lanefsd ,=$root/usr/sbin/lanefsd ," "$unit" >"$tmp/lanefsd.service"
  if ! systemd-analyze verify --man=no "$tmp/lanefsd.service" >"$tmp/verify" 2>&1 || [ -s "$tmp/verify" ]; then
    cat "$tmp/verify"
    fail "systemd-analyze verify lanefsd.service"
  fi
  ok "systemd-analyze verify lanefsd.service"
else
  echo "skip: systemd-analyze not installed, lanefsd.service not verified"
fi

# --- DKMS builds the module from the installed source ----------------------
# A private DKMS tree and signing key: nothing under /var/lib/dkms changes.
if ! command -v dkms >/dev/null; then
  echo "skip: dkms not installed, module not built"
  exit 0
fi
kvers=$(for m in /lib/modules/*/build/Makefile; do [ -f "$m" ] && basename "$(dirname "$(dirname "$m")")"; done)
if [ -z "$kvers" ]; then
  echo "skip: no kernel headers under /lib/modules/*/build, module not built"
  exit 0
fi
export mok_signing_key="$tmp/mok.key" mok_certificate="$tmp/mok.pub"
mkdir "$tmp/dkms"
tree="--dkmstree $tmp/dkms --sourcetree $root/usr/src"
# shellcheck disable=SC2086
dkms add $tree -m lanefs -v "$version" >"$tmp/dkms.log" 2>&1 || { cat "$tmp/dkms.log"; fail "dkms add"; }
for k in $kvers; do
  # shellcheck disable=SC2086
  if ! dkms build $tree -m lanefs -v "$version" -k "$k" >>"$tmp/dkms.log" 2>&1; then
    cat "$tmp/dkms.log"
    cat "$tmp/dkms/lanefs/$version/build/make.log" 2>/dev/null || true
    fail "dkms build for $k"
  fi
  ko=$(find "$tmp/dkms/lanefs/$version/$k" -name 'lanefs.ko*' | head -n 1)
  [ -n "$ko" ] || fail "dkms build for $k left no lanefs.ko"
  ok "dkms build for $k: $(basename "$ko")"
done
# Kept for the guest that installs them (vm_deb_install_*, tests/vm/guest/deb_install.sh).
rm -rf "$build/deb-test" && mkdir -p "$build/deb-test"
cp "$dkms_deb" "$client_deb" "$server_deb" "$build/deb-test/"
echo "deb_test: passed (packages kept in $build/deb-test)"

#!/bin/sh
# make deb: the Debian packages lanefs-dkms, lanefs-client and lanefs-server,
# built with debhelper (dpkg-buildpackage -b) from a finished CMake build.
#   scripts/deb.sh BUILD [OUTDIR]      (OUTDIR defaults to BUILD/deb)
# Lays out a staging tree OUTDIR/lanefs-VERSION/ (dkms/debian/ as debian/,
# kmod/ without build artefacts, dkms/dkms.conf, docs/man/, the binaries
# the debian/*.install files name under build/ and the source files they
# name under src/), builds there, and leaves the
# .deb files in OUTDIR. The version is project(VERSION) of CMakeLists.txt, as
# the build recorded it. Needs no network and writes nothing in the source tree.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BUILD [OUTDIR]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
out=${2:-$build/deb}

die() { echo "deb: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh dh_dkms; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh as root)"
done
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt" 2>/dev/null)
[ -n "$version" ] || die "$build is not a configured lanefs build (make build)"
[ -f "$src/kmod/Kbuild" ] || [ -f "$src/kmod/Makefile" ] ||
  die "kmod/ has no Kbuild or Makefile: nothing for DKMS to build"

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/lanefs-$version
rm -rf "$stage"
rm -f "$out"/lanefs*.deb "$out"/lanefs*.ddeb "$out"/lanefs_*.changes "$out"/lanefs_*.buildinfo
mkdir -p "$stage/kmod" "$stage/dkms" "$stage/docs"

cp -R "$src/dkms/debian" "$stage/debian"
cp "$src/dkms/dkms.conf" "$stage/dkms/"
cp -R "$src/docs/man" "$stage/docs/man"
# The module source as a whole: whatever kmod/ holds, less what a build
# of it leaves behind.
tar -C "$src/kmod" \
  --exclude='*.o' --exclude='*.ko' --exclude='*.ko.*' --exclude='*.mod*' --exclude='.*.cmd' \
  --exclude='Module.symvers' --exclude='modules.order' --exclude='.tmp_versions' --exclude='.cache.mk' \
  -cf - . | tar -C "$stage/kmod" -xf -
# The binaries, as the .install files name them (build/<path in the build tree>).
for f in $(sed -n 's,^\(build/[^ ]*\) .*,\1,p' "$src"/dkms/debian/*.install); do
  bin=$build/${f#build/}
  [ -x "$bin" ] || die "$bin is missing (make build)"
  install -D -m 0755 "$bin" "$stage/$f"
done
# Source files the .install files name (headers, the Python binding): src/<path>.
for f in $(sed -n 's,^\(src/[^ ]*\) .*,\1,p' "$src"/dkms/debian/*.install); do
  [ -f "$src/${f#src/}" ] || die "$src/${f#src/} is missing"
  install -D -m 0644 "$src/${f#src/}" "$stage/$f"
done

# debian/changelog: the one version, the maintainer of debian/control and the
# date of the commit the tree is at (reproducible; the current time outside a
# git checkout).
maint=$(sed -n 's/^Maintainer: //p' "$stage/debian/control")
when=$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)
cat >"$stage/debian/changelog" <<EOF
lanefs ($version) unstable; urgency=medium

  * lanefs $version, packaged from the source tree by make deb.

 -- $maint  $(LC_ALL=C date -R -u -d "@$when")
EOF

log=$out/lanefs-build.log
# debian/rules is a makefile of its own: not a sub-make of `make deb`.
unset MAKEFLAGS MFLAGS MAKELEVEL
# No -dbgsym packages unless asked for (DEB_BUILD_OPTIONS= make deb): the
# debug symbols of the RelWithDebInfo binaries take dwz and xz about a minute
# more and 60 MB, and the build tree keeps the unstripped binaries anyway.
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS-noautodbgsym}"
echo "deb: building lanefs $version packages in $out (log: $log)"
if ! (cd "$stage" && dpkg-buildpackage -b -us -uc) >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  die "dpkg-buildpackage failed (staging tree kept in $stage)"
fi
rm -rf "$stage"
ls -l "$out"/lanefs*.deb

#!/bin/sh
# kmod_mount.sh (guest): the kernel client. Loads lanefs.ko built for this
# guest kernel (tests/kmod/kmod_build.sh put it in
# $LANEFS_BUILD_DIR/kmod/<release>/), runs lanefsd on 127.0.0.1, mounts
# with mount.lanefs (client=auto must pick the kernel), checks the mount,
# `lanefs local ps`, then runs the FUSE suites' POSIX, large-file,
# concurrency and random-ops tests on kernel mounts
# (LANEFS_TEST_FUSE_CHANNEL=kernel), kill -9 of the frontend mid-IO, a new
# frontend taking over the dead mount, umount and rmmod under load, and
# dmesg for WARN/BUG/Oops/lockdep.
# LANEFS_KMOD_SUITES: which gtest binaries (default: all four);
# LANEFS_RANDOM_OPS: operations per cache mode of random_ops (default 600).
set -eu
B=${LANEFS_BUILD_DIR:?LANEFS_BUILD_DIR is not set}
KVER=$(uname -r)
KO=$B/kmod/$KVER/lanefs.ko
fail() {
  echo "kmod_mount: FAILED: $*" >&2
  dmesg | tail -n 60 >&2
  exit 1
}
step() { echo "kmod_mount: $*"; }
[ -f "$KO" ] || fail "no lanefs.ko for $KVER at $KO (the kmod_build test builds it)"
LANEFSD=$B/userspace/backend/lanefsd
LANEFS=$B/userspace/cli/lanefs
HELPER=$B/userspace/frontend/mount.lanefs
export LANEFS_FRONTEND=$B/userspace/frontend/lanefs-frontend
export LANEFS_RUN_DIR=/tmp/lanefs-run
mkdir -p "$LANEFS_RUN_DIR"

# Hang watch: every 30 s, a task in uninterruptible sleep at two ticks in a
# row is shown with its kernel stack (a hang must be diagnosable from
# guest.log; a single tick is a request in flight).
(
  seen=""
  while sleep 30; do
    now=""
    for d in /proc/[0-9]*; do
      st=$(awk '{print $3}' "$d/stat" 2>/dev/null || true)
      [ "$st" = D ] || continue
      p=${d#/proc/}
      now="$now $p"
      case " $seen " in *" $p "*) ;; *) continue ;; esac
      echo "kmod_mount: [hang watch] $(cat "$d/comm" 2>/dev/null) pid $p in D state for 30+ s:"
      sed 's/^/    /' "$d/stack" 2>/dev/null || true
    done
    seen=$now
  done
) &
watch_pid=$!

if [ -e /proc/lockdep ]; then
  step "lockdep is on in $KVER"
else
  step "lockdep: $KVER is built without CONFIG_PROVE_LOCKING (Debian's kernels are); not checked"
fi
dmesg -C
insmod "$KO" || fail "insmod $KO"
i=0
while [ ! -c /dev/lanefs ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -c /dev/lanefs ] || fail "/dev/lanefs did not appear"
step "lanefs.ko loaded: $(dmesg | grep 'lanefs:' | tail -n 1)"

ip link set lo up
DATA=/tmp/lanefsd
# lanefsd writes its admin token there; the CLI and the mounts present it.
export LANEFS_TOKEN_FILE="$DATA/admin.token"
mkdir -p "$DATA"
pid=""
cleanup() {
  kill "$watch_pid" 2>/dev/null || true
  for m in $(awk '$3 == "lanefs" {print $2}' /proc/mounts); do umount -l "$m" 2>/dev/null || true; done
  pkill -KILL -f lanefs-frontend 2>/dev/null || true
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  cp "$DATA/lanefsd.log" "$LANEFS_RUN_DIR"/*.log "${VM_OUT:-/tmp}/" 2>/dev/null || true
}
trap cleanup EXIT
step "starting lanefsd"
"$LANEFSD" --data-dir "$DATA" --listen 127.0.0.1:14000 --name kvm --log-file "$DATA/lanefsd.log" \
  </dev/null >"$DATA/lanefsd.out" 2>&1 &
pid=$!
cli() { timeout 20 "$LANEFS" --backend 127.0.0.1:14000 "$@"; }
i=0
until cli --connect-timeout 2 fs list >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 30 ] || { cat "$DATA/lanefsd.out"; fail "lanefsd not answering on 127.0.0.1:14000"; }
  sleep 1
done
cli fs create kfs >/dev/null || fail "fs create"
step "lanefsd up; mounting"

# ---- mount: client=auto picks the kernel client
MNT=/tmp/kmnt
mkdir -p $MNT
out=$(timeout 60 "$HELPER" 127.0.0.1:14000/kfs $MNT) || fail "mount.lanefs: $out"
echo "$out"
case "$out" in *"kernel client"*) ;; *) fail "mount.lanefs did not say it used the kernel client: $out" ;; esac
awk -v m=$MNT '$2 == m {print $3}' /proc/mounts | grep -qx lanefs || fail "$MNT is not a lanefs (kernel) mount"
"$LANEFS" local ps
"$LANEFS" --json local ps | grep -q '"client": "kernel"' || fail "local ps --json shows no client kernel"
"$LANEFS" local ps | grep -q "kernel" || fail "local ps shows no CLIENT kernel"

step "mounted; basic operations"
echo hello >$MNT/a || fail "write"
[ "$(cat $MNT/a)" = hello ] || fail "read back"
mkdir -p $MNT/d/e || fail "mkdir -p"
ln -s ../a $MNT/d/l && [ "$(cat $MNT/d/l)" = hello ] || fail "symlink"
mv $MNT/a $MNT/d/b && [ "$(cat $MNT/d/b)" = hello ] || fail "rename"
dd if=/dev/urandom of=/tmp/src bs=1M count=8 2>/dev/null
cp /tmp/src $MNT/big && cmp /tmp/src $MNT/big || fail "8 MiB copy"
ls -la $MNT $MNT/d
df -h $MNT
rm -rf $MNT/d $MNT/big || fail "rm -rf"
[ -z "$(ls $MNT)" ] || fail "not empty after rm: $(ls $MNT)"
step "basic operations PASS"

# ---- a file shrunk through another mount (another client, writecache): the
# frontend answers the open here ESTALE (its view is stale), the kernel
# redoes the walk (LOOKUP_REVAL asks the frontend) and gets a fresh inode
# (a new generation); the open succeeds with the new contents
MNT2=/tmp/kmnt2
mkdir -p $MNT2
out=$(timeout 60 "$HELPER" 127.0.0.1:14000/kfs $MNT2 -o client=kernel) || fail "second mount: $out"
printf 'a long first version of the file\n' >$MNT/shrink
[ "$(cat $MNT/shrink)" = "a long first version of the file" ] || fail "shrink: first read"
printf 'short\n' >$MNT2/shrink  # O_TRUNC through the other mount
i=0
while [ $i -lt 3 ]; do
  got=$(cat $MNT/shrink 2>&1) || fail "open after a shrink elsewhere: $got"
  [ "$got" = short ] && break
  sleep 1  # attribute and entry timeouts of the first mount
  i=$((i + 1))
done
[ "$got" = short ] || fail "the first mount still reads '$got' after a shrink through the second"
rm -f $MNT/shrink
umount $MNT2 || fail "umount $MNT2"
step "a file shrunk through another mount opens fresh here (ESTALE, LOOKUP_REVAL, new generation): PASS"

# ---- asynchronous direct IO (libaio, 16 in flight; dio.c): random writes of
# 4 KiB to 2 MiB (up to max_write asynchronous, larger ones synchronous),
# then every block read back the same way and verified
fio --name=aio --filename=$MNT/aio --size=16M --bsrange=4k-2m --rw=randwrite --ioengine=libaio \
    --iodepth=16 --direct=1 --verify=crc32c --verify_fatal=1 --do_verify=1 --output=/tmp/fio-aio.log ||
  { cat /tmp/fio-aio.log; fail "fio libaio randwrite + verify"; }
fio --name=aio4k --filename=$MNT/aio --size=16M --bs=4k --rw=randrw --ioengine=libaio --iodepth=16 \
    --direct=1 --number_ios=2000 --verify=crc32c --verify_fatal=1 --output=/tmp/fio-aio4k.log ||
  { cat /tmp/fio-aio4k.log; fail "fio libaio 4 KiB randrw + verify"; }
[ "$(stat -c %s $MNT/aio)" = $((16 << 20)) ] || fail "size after async writes: $(stat -c %s $MNT/aio)"
# io_uring issues inline with IOCB_NOWAIT (FMODE_NOWAIT): what would wait
# says -EAGAIN and io_uring's worker retries; direct and buffered, verified
fio --name=uring --filename=$MNT/aio --size=16M --bsrange=4k-256k --rw=randrw --ioengine=io_uring \
    --iodepth=16 --direct=1 --number_ios=1500 --verify=crc32c --verify_fatal=1 --output=/tmp/fio-uring.log ||
  { cat /tmp/fio-uring.log; fail "fio io_uring O_DIRECT randrw + verify"; }
fio --name=uringb --filename=$MNT/aio --size=16M --bs=16k --rw=randrw --ioengine=io_uring --iodepth=16 \
    --number_ios=1500 --verify=crc32c --verify_fatal=1 --output=/tmp/fio-uringb.log ||
  { cat /tmp/fio-uringb.log; fail "fio io_uring buffered randrw + verify"; }
dd if=$MNT/aio of=/tmp/aio.direct bs=1M iflag=direct 2>/dev/null && dd if=$MNT/aio of=/tmp/aio.cached bs=1M 2>/dev/null &&
  cmp /tmp/aio.direct /tmp/aio.cached || fail "O_DIRECT and page-cache reads of the same file differ"
rm -f /tmp/aio.direct /tmp/aio.cached
rm -f $MNT/aio
step "asynchronous direct IO (libaio and io_uring, iodepth 16, verified): PASS"

# ---- IO whose user buffer is a lanefs mapping not yet in memory: the copy
# faults, and the fault needs a request of its own (req.c gives the entry
# back, faults in, retries). O_DIRECT write from a read-only mapping of one
# file, O_DIRECT read into a shared writable mapping of another.
dd if=/dev/urandom of=$MNT/msrc bs=1M count=4 2>/dev/null && dd if=/dev/zero of=$MNT/mdst2 bs=1M count=4 2>/dev/null ||
  fail "dd for the mapping test"
echo 3 >/proc/sys/vm/drop_caches
timeout 300 python3 - "$MNT" <<'PY' || fail "IO from and into lanefs mappings"
import mmap, os, sys
m = sys.argv[1]
n = 4 << 20
src = os.open(m + "/msrc", os.O_RDONLY)
ms = mmap.mmap(src, n, prot=mmap.PROT_READ)
dst = os.open(m + "/mdst", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
assert os.write(dst, ms) == n, "short O_DIRECT write from a mapping"
os.close(dst)
d2 = os.open(m + "/mdst2", os.O_RDWR)
md = mmap.mmap(d2, n)
rd = os.open(m + "/mdst", os.O_RDONLY | os.O_DIRECT)
assert os.readv(rd, [md]) == n, "short O_DIRECT read into a mapping"
md.flush()
assert md[:] == ms[:], "data read into the mapping differs"
PY
cmp $MNT/msrc $MNT/mdst && cmp $MNT/msrc $MNT/mdst2 || fail "files written through mappings differ"
rm -f $MNT/msrc $MNT/mdst $MNT/mdst2
step "O_DIRECT from and into lanefs mappings (faults with no entry held): PASS"

# ---- rmmod refuses while mounted, never hangs
if timeout 20 rmmod lanefs 2>/dev/null; then fail "rmmod succeeded with a mount on it"; fi
umount $MNT || fail "umount"
step "umount, rmmod refused while mounted: PASS"

# ---- kill -9 of the frontend mid-IO: EIO/ENOTCONN, no hang; remount works
out=$(timeout 60 "$HELPER" 127.0.0.1:14000/kfs $MNT -o client=kernel,forcedirect) || fail "mount: $out"
dd if=/dev/zero of=$MNT/aiofile bs=1M count=4 2>/dev/null || fail "dd aiofile"
# asynchronous reads in flight too: the abort ends them (dio.c's end with ENOTCONN)
( set +e; fio --name=k --filename=$MNT/aiofile --rw=randread --bs=4k --ioengine=libaio --iodepth=16 --direct=1 \
      --time_based --runtime=300 --output=/tmp/fio-kill.log >/dev/null 2>/tmp/fio-kill.err; echo $? >/tmp/fio-kill.rc ) &
fiop=$!
( set +e; dd if=/dev/zero of=$MNT/stream bs=64k count=100000 2>/tmp/dd.err; echo $? >/tmp/dd.rc ) &
ddp=$!
sleep 3
fe=$(pgrep -f lanefs-frontend | head -n 1)
[ -n "$fe" ] || fail "no frontend running"
kill -9 "$fe"
i=0
while kill -0 $ddp 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
kill -0 $ddp 2>/dev/null && fail "dd still hangs 30 s after kill -9 of the frontend"
grep -qE "Transport endpoint is not connected|Input/output error" /tmp/dd.err ||
  fail "dd ended without ENOTCONN/EIO: rc $(cat /tmp/dd.rc), $(cat /tmp/dd.err)"
step "kill -9 mid-IO: dd got '$(grep -oE 'Transport endpoint is not connected|Input/output error' /tmp/dd.err | head -n1)'"
i=0
while kill -0 $fiop 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
kill -0 $fiop 2>/dev/null && fail "fio (libaio, 16 in flight) still hangs 30 s after kill -9 of the frontend"
rc=$(cat /tmp/fio-kill.rc 2>/dev/null || true)
[ -n "$rc" ] && [ "$rc" != 0 ] || fail "fio with its frontend killed ended with rc '$rc': $(cat /tmp/fio-kill.err /tmp/fio-kill.log)"
step "kill -9 mid-IO: fio with 16 asynchronous reads in flight ended (rc $rc: $(head -n 1 /tmp/fio-kill.err))"
timeout 20 stat $MNT >/dev/null 2>&1 || true
umount -l $MNT || fail "umount -l of the dead mount"
out=$(timeout 60 "$HELPER" 127.0.0.1:14000/kfs $MNT -o client=kernel) || fail "remount after kill -9: $out"
ls $MNT >/dev/null || fail "ls after remount"

# ---- a new frontend takes over the mount a dead one left: the mount, the
# working directory and the open files in it carry on (LANEFS_IOC_ATTACH),
# reopened as their opener (root's 0600 files, held by a process that has
# become nobody since)
mkdir -p $MNT/keep
echo before >$MNT/keep/f
dd if=/dev/urandom of=$MNT/keep/big bs=64k count=16 2>/dev/null || fail "dd keep/big"
chmod 600 $MNT/keep/big
want=$(sha256sum <$MNT/keep/big | cut -d' ' -f1)
rm -f /tmp/holder.ready /tmp/holder.go /tmp/holder.out
MNT=$MNT python3 - >/tmp/holder.out 2>&1 <<'PY' &
import hashlib, os, time
os.chdir(os.environ["MNT"] + "/keep")
r = os.open("big", os.O_RDONLY)
w = os.open("log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.write(w, b"one\n")
os.fsync(w)
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
open("/tmp/holder.ready", "w").close()
for _ in range(1200):
    if os.path.exists("/tmp/holder.go"):
        break
    time.sleep(0.1)
data = os.pread(r, 1 << 20, 0)                  # a file opened under the dead frontend
os.write(w, b"two\n")
os.fsync(w)
print("sha", hashlib.sha256(data).hexdigest())
print("ls", " ".join(sorted(os.listdir("."))))  # the working directory
print("cwd", open("f").read().strip())
PY
hp=$!
i=0
while [ ! -e /tmp/holder.ready ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /tmp/holder.ready ] || fail "the holder did not start: $(cat /tmp/holder.out)"
# a live mount cannot be taken over (EBUSY), and only by root
MNT=$MNT python3 - <<'PY' || fail "attach to a live mount was not refused with EBUSY"
import errno, fcntl, os, struct
dev = os.open("/dev/lanefs", os.O_RDWR)
setup = struct.pack("8I4Q", 1, 1, 1, 1 << 20, 1 << 20, 128 << 10, 1, 0, 0, 0, 0, 0)
fcntl.ioctl(dev, (1 << 30) | (len(setup) << 16) | (0xE6 << 8) | 1, setup)
root = os.open(os.environ["MNT"], os.O_PATH | os.O_DIRECTORY)
at = struct.pack("iI3Q", root, 0, 0, 0, 0)
try:
    fcntl.ioctl(dev, (1 << 30) | (len(at) << 16) | (0xE6 << 8) | 3, at)
    raise SystemExit("attach to a live mount succeeded")
except OSError as e:
    assert e.errno == errno.EBUSY, e
PY
fe=$(pgrep -f lanefs-frontend | head -n 1)
kill -9 "$fe"
i=0
while timeout 10 stat $MNT >/dev/null 2>&1 && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
timeout 10 stat $MNT 2>&1 | grep -q "not connected" || fail "the mount is not dead after kill -9 of its frontend"
n0=$(grep -c " $MNT lanefs " /proc/mounts)
out=$(timeout 60 "$HELPER" 127.0.0.1:14000/kfs $MNT -o client=kernel) || fail "mount over the dead mount: $out"
echo "$out"
echo "$out" | grep -q "kernel client (re-attached" || fail "the mount was not taken over: $out"
[ "$(grep -c " $MNT lanefs " /proc/mounts)" = "$n0" ] || fail "taking over added a mount: $(grep " $MNT " /proc/mounts)"
touch /tmp/holder.go
i=0
while kill -0 $hp 2>/dev/null && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
kill -0 $hp 2>/dev/null && fail "the holder hangs after the take-over"
wait $hp || fail "the holder failed after the take-over: $(cat /tmp/holder.out)"
grep -qx "sha $want" /tmp/holder.out || fail "a file open across the take-over read other data: $(cat /tmp/holder.out)"
grep -qx "ls big f log" /tmp/holder.out || fail "the working directory across the take-over: $(cat /tmp/holder.out)"
grep -qx "cwd before" /tmp/holder.out || fail "a relative open across the take-over: $(cat /tmp/holder.out)"
[ "$(cat $MNT/keep/log)" = "$(printf 'one\ntwo')" ] || fail "writes across the take-over: '$(cat $MNT/keep/log)'"
"$LANEFS" --json local ps | grep -q "re-attached" || fail "lanefs local ps after the take-over: $("$LANEFS" --json local ps)"
dmesg | grep -q "lanefs: a new frontend" || fail "the take-over is not in the kernel log"
rm -rf $MNT/keep
step "a new frontend took over the mount after kill -9: open files, working directory, writes carry on: PASS"

# ---- unmount under load, then rmmod
# The writer stops at the first dd after the lazy unmount: past it, $MNT is
# the directory underneath (tmpfs), and 400 more dd's on it under TCG can
# outlast the wait below without any hang (seen in CI). What must end is
# the dd that was in flight on lanefs when the mount went away.
( i=0; while [ $i -lt 400 ] && mountpoint -q $MNT; do
    dd if=/dev/zero of=$MNT/load$((i % 4)) bs=256k count=4 2>/dev/null || break; i=$((i + 1)); done ) &
lp=$!
sleep 2
umount -l $MNT || fail "umount -l under load"
i=0
while kill -0 $lp 2>/dev/null && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
if kill -0 $lp 2>/dev/null; then
  for p in $lp $(pgrep -P $lp); do
    echo "kmod_mount: writer task $p: $(cat /proc/$p/cmdline 2>/dev/null | tr '\0' ' ')state $(awk '{print $3}' /proc/$p/stat 2>/dev/null)"
    sed 's/^/    /' /proc/$p/stack 2>/dev/null || true
  done
  fail "the writer hangs 60 s after umount -l"
fi
i=0
while pgrep -f lanefs-frontend >/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
pgrep -f lanefs-frontend >/dev/null && fail "the frontend did not exit after the last unmount"
timeout 30 rmmod lanefs || fail "rmmod after unmount"
insmod "$KO" || fail "insmod again"
step "umount under load, rmmod, insmod again: PASS"

# ---- the FUSE suites on the kernel client
export LANEFS_TEST_FUSE_CHANNEL=kernel
export LANEFS_RANDOM_OPS=${LANEFS_RANDOM_OPS:-600}  # TCG: every op is slow
for t in ${LANEFS_KMOD_SUITES:-posix_ops_test large_test concurrency_test random_ops_test}; do
  bin=$B/tests/fuse/fuse_$t
  [ -x "$bin" ] || fail "$bin not built"
  step "running fuse_$t on the kernel client"
  s=$(date +%s)
  timeout 900 "$bin" --gtest_brief=1 >"/tmp/$t.log" 2>&1 || { tail -n 80 "/tmp/$t.log"; cp "/tmp/$t.log" "${VM_OUT:-/tmp}/" 2>/dev/null; fail "fuse_$t on the kernel client"; }
  tail -n 3 "/tmp/$t.log"
  step "fuse_$t PASS ($(( $(date +%s) - s )) s)"
done

if dmesg | grep -E "WARNING:|BUG:|Oops|general protection|possible circular locking|INFO: task .* blocked"; then
  fail "the kernel log has a warning or a bug"
fi
step "dmesg clean"
echo "kmod_mount: PASS"

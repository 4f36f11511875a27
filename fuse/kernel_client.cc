// The kernel client's connection (lanefs.ko, kmod/uapi/lanefs.h) as a
// Session: /dev/lanefs opened and set up, mount(2) of type lanefs, the
// rings served by UringChannel exactly as FUSE's (same layout, same
// dispatcher), notifications as LANEFS_IOC_NOTIFY.
#include <fcntl.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "common/log.h"
#include "fuse/session.h"
#include "kmod/uapi/lanefs.h"

extern char** environ;

namespace lanefs::fuse {
namespace {

static_assert(sizeof(lanefs_ring_header) == sizeof(abi::UringReqHeader));
static_assert(sizeof(lanefs_ring_ent) == sizeof(abi::UringEntInOut));
static_assert(sizeof(lanefs_ring_cmd) <= 80, "the cmd area of a 128-byte SQE");
static_assert(LANEFS_RING_REGISTER == abi::kUringCmdRegister &&
              LANEFS_RING_COMMIT_AND_FETCH == abi::kUringCmdCommitAndFetch);

Error sys(const std::string& what, int err) { return make_error(Errc::kSystem, what + ": " + std::strerror(err)); }

// `modprobe -q lanefs`; true when it exited 0.
bool modprobe_lanefs() {
  const char* argv[] = {"modprobe", "-q", "lanefs", nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, "modprobe", &fa, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "?";
}

}  // namespace

bool Session::kernel_client_available(std::string* why) {
  if (::access(LANEFS_DEVICE, F_OK) == 0) return true;
  if (::geteuid() != 0) {
    *why = "lanefs.ko is not loaded (no " LANEFS_DEVICE ") and loading it needs root";
    return false;
  }
  if (modprobe_lanefs()) {
    // devtmpfs makes the node as the module registers it; udev may rename.
    for (uint64_t until = mono_ns() + 1'000'000'000; mono_ns() < until; ::usleep(10'000))
      if (::access(LANEFS_DEVICE, F_OK) == 0) return true;
    *why = "modprobe lanefs loaded the module but " LANEFS_DEVICE " did not appear";
    return false;
  }
  *why = "lanefs.ko is not loaded and `modprobe lanefs` found none for kernel " + kernel_release() +
         " (install lanefs-dkms)";
  return false;
}

// /dev/lanefs opened and set up for this mount's options.
Status Session::open_kernel() {
  kernel_ = true;
  fd_ = ::open(LANEFS_DEVICE, O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return sys("open " LANEFS_DEVICE, errno);
  const client::MountOptions& mo = opts_.fs->options();
  lanefs_setup su{};
  su.abi_version = LANEFS_ABI_VERSION;
  su.queues = possible_cpus();
  su.depth = mo.fuse_queue_depth;
  su.payload_size = static_cast<uint32_t>(ring_payload_size());
  su.max_write = kMaxWrite;
  su.max_readahead = mo.readahead_kb * 1024u;
  su.flags = mo.cache == client::CacheMode::kWriteCache ? LANEFS_SETUP_WRITEBACK_CACHE : 0;
  if (::ioctl(fd_, LANEFS_IOC_SETUP, &su) != 0) {
    if (errno == EPROTO)
      return make_error(Errc::kNotSupported, "the loaded lanefs.ko speaks another ABI than this frontend (" +
                                                 std::to_string(LANEFS_ABI_VERSION) +
                                                 "): install the lanefs-dkms of the same version");
    return sys("setting up " LANEFS_DEVICE, errno);
  }
  return ok_status();
}

Result<std::unique_ptr<Session>> Session::mount_kernel(const Options& o) {
  std::unique_ptr<Session> s(new Session(o));
  struct stat st {};
  if (::stat(o.target.c_str(), &st) != 0) return sys("mount point " + o.target, errno);
  if (!S_ISDIR(st.st_mode)) return make_error(Errc::kNotDir, "mount point " + o.target + " is not a directory");
  LANEFS_TRY(s->open_kernel());
  // The kernel checks permissions itself, for every user (as the FUSE mount's
  // default_permissions,allow_other).
  const std::string data = "fd=" + std::to_string(s->fd_) + ",rootmode=40000,user_id=0,group_id=0";
  unsigned long flags = MS_NOSUID | MS_NODEV | (o.read_only ? MS_RDONLY : 0);
  if (::mount(o.source.c_str(), o.target.c_str(), LANEFS_FSTYPE, flags, data.c_str()) != 0)
    return sys("mount(2) of " + o.source + " on " + o.target + " (lanefs.ko)", errno);
  s->mounted_ = true;
  return s;
}

Result<std::unique_ptr<Session>> Session::attach_kernel(const Options& o) {
  std::unique_ptr<Session> s(new Session(o));
  LANEFS_TRY(s->open_kernel());
  // O_PATH: reaching the root asks nothing of the dead connection (stat would).
  const int root = ::open(o.target.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return sys("mount point " + o.target, errno);
  lanefs_attach at{};
  at.mount_fd = root;
  const int rc = ::ioctl(s->fd_, LANEFS_IOC_ATTACH, &at);
  const int err = errno;
  ::close(root);
  if (rc != 0) {
    switch (err) {
      case ENOTTY:
        return make_error(Errc::kNotSupported, "the loaded lanefs.ko cannot attach a new frontend to a mount");
      case EBUSY:
        return make_error(Errc::kBusy, "the lanefs mount on " + o.target + " is served by a live frontend");
      case EINVAL:
        return make_error(Errc::kInvalid, o.target + " is not the root of a lanefs kernel mount, or it was mounted " +
                                              "with another cache mode (writecache or not)");
      default:
        return sys("attaching to the lanefs mount on " + o.target, err);
    }
  }
  s->mounted_ = true;
  s->attached_ = true;
  return s;
}

Status Session::start_kernel() {
  const client::MountOptions& mo = opts_.fs->options();
  Status st;
  uring_ = UringChannel::start(*this, opts_.fs->cluster().rpc(), fd_, mo.fuse_queue_depth, ring_payload_size(), &st);
  if (!st.ok()) return st;
  reason_ = "lanefs.ko: " + std::to_string(uring_->queues()) + " CPU queues x " +
            std::to_string(mo.fuse_queue_depth) +
            (mo.client == client::ClientKind::kKernel ? " (client=kernel)" : " (client=auto, lanefs.ko is loaded)") +
            (attached_ ? "; re-attached to the mount its dead frontend left" : "");
  LOG_INFO("kernel client on {}: {}", opts_.target, reason_);
  return ok_status();
}

int Session::notify_kernel(abi::NotifyCode code, const iovec* parts, int n) noexcept {
  lanefs_notify msg{};
  if (code == abi::kNotifyInvalInode && n >= 1 && parts[0].iov_len >= sizeof(abi::NotifyInvalInodeOut)) {
    abi::NotifyInvalInodeOut in;
    std::memcpy(&in, parts[0].iov_base, sizeof in);
    msg = {LANEFS_NOTIFY_INVAL_INODE, 0, in.ino, in.off, in.len, 0};
  } else if (code == abi::kNotifyStore && n >= 1 && parts[0].iov_len >= sizeof(abi::NotifyStoreOut)) {
    abi::NotifyStoreOut in;
    std::memcpy(&in, parts[0].iov_base, sizeof in);
    msg = {LANEFS_NOTIFY_SIZE, 0, in.nodeid, 0, 0, in.offset + in.size};
  } else {
    return -EINVAL;
  }
  struct Call {
    int fd;
    lanefs_notify* m;
    int rc;
  } c{fd_, &msg, 0};
  // As FUSE's notifications: dropping pages waits for their locks, which a
  // request parked on this ring thread may hold (channel_uring.h).
  auto run = [](void* p) {
    auto* k = static_cast<Call*>(p);
    k->rc = ::ioctl(k->fd, LANEFS_IOC_NOTIFY, k->m) == 0 ? 0 : -errno;
  };
  if (!run_off_ring(run, &c)) run(&c);
  return c.rc;
}

}  // namespace lanefs::fuse

// The classic FUSE channel and the mount itself (fuse/session.h).
#include "fuse/session.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/errors.h"
#include "common/log.h"

namespace lanefs::fuse {
namespace {

constexpr uint16_t kMaxPagesWanted = kMaxWrite / 4096;

int write_msg(int fd, int32_t error, uint64_t unique, const iovec* parts, int n) noexcept {
  // One writev: the header, then at most 7 pieces.
  abi::OutHeader oh{};
  iovec v[8];
  size_t len = sizeof oh;
  int k = 1;
  for (int i = 0; i < n && k < 8; ++i) {
    v[k++] = parts[i];
    len += parts[i].iov_len;
  }
  oh.len = static_cast<uint32_t>(len);
  oh.error = error;
  oh.unique = unique;
  v[0] = {&oh, sizeof oh};
  if (::writev(fd, v, k) < 0) return -errno;
  return 0;
}

Error sys(const std::string& what, int err) { return make_error(Errc::kSystem, what + ": " + std::strerror(err)); }

}  // namespace

Result<std::unique_ptr<Session>> Session::mount(const Options& o) {
  std::unique_ptr<Session> s(new Session(o));
  s->fd_ = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (s->fd_ < 0) return sys("open /dev/fuse", errno);
  struct stat st {};
  if (::stat(o.target.c_str(), &st) != 0) return sys("mount point " + o.target, errno);
  // The kernel checks permissions itself (default_permissions); every user
  // may use the mount (allow_other), as with any system filesystem.
  if (!S_ISDIR(st.st_mode)) return make_error(Errc::kNotDir, "mount point " + o.target + " is not a directory");
  // rootmode is octal: the root is a directory.
  const std::string data =
      "fd=" + std::to_string(s->fd_) + ",rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other";
  unsigned long flags = MS_NOSUID | MS_NODEV | (o.read_only ? MS_RDONLY : 0);
  if (::mount(o.source.c_str(), o.target.c_str(), "fuse.lanefs", flags, data.c_str()) != 0)
    return sys("mount(2) of " + o.source + " on " + o.target, errno);
  s->mounted_ = true;
  s->buf_size_ = std::max<size_t>(abi::kMinReadBuffer, sizeof(abi::InHeader) + sizeof(abi::WriteIn) + kMaxWrite) + 4096;
  return s;
}

Session::~Session() {
  if (fd_ >= 0) ::close(fd_);
}

void Session::unmount() {
  // After the connection ended the kernel has unmounted already, and the
  // mount point may hold something else by now.
  if (!mounted_ || ended_.load()) return;
  if (::umount2(opts_.target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    LOG_WARN("unmounting {}: {}", opts_.target, std::strerror(errno));
  mounted_ = false;
}

Status Session::init() {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[buf_size_]);
  for (;;) {
    ssize_t n = ::read(fd_, buf.get(), buf_size_);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT)) continue;
    if (n < 0) return sys("reading FUSE_INIT", errno);
    abi::InHeader h;
    if (static_cast<size_t>(n) < sizeof h + 16) continue;
    std::memcpy(&h, buf.get(), sizeof h);
    Req r{this, fd_, h.unique, h.uid, h.gid, h.pid};
    if (h.opcode != abi::kInit) {
      reply(r, EIO, nullptr, 0);  // nothing else may come before INIT
      continue;
    }
    abi::InitIn in{};
    std::memcpy(&in, buf.get() + sizeof h, std::min(sizeof in, static_cast<size_t>(n) - sizeof h));
    if (in.major != abi::kKernelVersion || in.minor < abi::kMinorNeeded) {
      reply(r, EPROTO, nullptr, 0);
      return make_error(Errc::kNotSupported, "the kernel speaks FUSE " + std::to_string(in.major) + "." +
                                                 std::to_string(in.minor) + "; lanefs needs 7." +
                                                 std::to_string(abi::kMinorNeeded) + " or newer");
    }
    minor_ = std::min(in.minor, abi::kMinorWanted);
    kernel_flags_ = in.flags | ((in.flags & abi::kInitExt) ? uint64_t{in.flags2} << 32 : 0);
    granted_ = init_flags(*opts_.fs, opts_.channel, kernel_flags_) & kernel_flags_;
    abi::InitOut out{};
    out.major = abi::kKernelVersion;
    out.minor = minor_;
    // The kernel takes the smaller of this and its own readahead.
    out.max_readahead = opts_.fs->options().readahead_kb * 1024u;
    out.flags = static_cast<uint32_t>(granted_) | static_cast<uint32_t>(abi::kInitExt & kernel_flags_);
    out.flags2 = static_cast<uint32_t>(granted_ >> 32);
    // Enough background requests for readahead and async direct IO at depth.
    out.max_background = 64;
    out.congestion_threshold = 48;
    out.max_write = kMaxWrite;
    out.time_gran = 1;
    out.max_pages = kMaxPagesWanted;
    iovec v{&out, sizeof out};
    if (int rc = reply(r, 0, &v, 1); rc != 0) return sys("answering FUSE_INIT", -rc);
    LOG_INFO("FUSE {}.{} on {}: kernel offers {:#x}, lanefs uses {:#x}", in.major, minor_, opts_.target,
             kernel_flags_, granted_);
    return ok_status();
  }
}

Status Session::start() {
  if (kernel_) return start_kernel();
  LANEFS_TRY(init());
  const client::FuseChannel want = opts_.channel;
  if (uring_negotiated()) {
    // Registered after the INIT reply, never before (the kernel answers
    // EAGAIN until it has processed it).
    const size_t payload = ring_payload_size();
    Status st;
    uring_ = UringChannel::start(*this, opts_.fs->cluster().rpc(), fd_, opts_.fs->options().fuse_queue_depth, payload, &st);
    if (!st.ok()) return st;
    reason_ = "io_uring: " + std::to_string(uring_->queues()) + " CPU queues x " +
              std::to_string(opts_.fs->options().fuse_queue_depth) + (want == client::FuseChannel::kUring
                                                                          ? " (fuse_channel=uring)"
                                                                          : " (fuse_channel=auto, offered by the kernel)");
    max_threads_ = 1;  // the classic reader left for FORGET and INTERRUPT
  } else if (want == client::FuseChannel::kUring) {
    return make_error(Errc::kNotSupported, "fuse_channel=uring: " + uring_unavailable_reason());
  } else {
    reason_ = !opts_.classic_because.empty()              ? "fuse_channel=auto: " + opts_.classic_because
              : want == client::FuseChannel::kClassic ? "fuse_channel=classic"
                                                      : "fuse_channel=auto: " + uring_unavailable_reason();
  }
  LOG_INFO("FUSE channel of {}: {}", opts_.target, reason_.empty() ? "classic" : reason_);
  running_.fetch_add(1);
  {
    std::lock_guard lk(mu_);
    threads_.emplace_back([this] { reader(fd_); });
  }
  for (int i = 1; i < std::min(kMinThreads, max_threads_); ++i) maybe_grow();
  return ok_status();
}

void Session::wait() {
  // Every reader stops once the connection ended; threads started
  // meanwhile are collected too.
  for (;;) {
    std::vector<std::thread> ts;
    {
      std::lock_guard lk(mu_);
      ts.swap(threads_);
    }
    if (ts.empty()) break;
    for (auto& t : ts) t.join();
  }
  if (uring_) uring_->join();
  ended_.store(true);
}

void Session::abort() {
  if (!mounted_) return;
  // MNT_FORCE aborts the FUSE connection (every waiter gets ENOTCONN, the
  // rings' parked entries complete), MNT_DETACH takes the mount away.
  if (::umount2(opts_.target.c_str(), MNT_FORCE | MNT_DETACH) != 0)
    LOG_WARN("aborting the mount on {}: {}", opts_.target, std::strerror(errno));
  mounted_ = false;
  ended_.store(true);
}

void Session::maybe_grow() {
  if (ended_.load(std::memory_order_relaxed) || running_.load() >= max_threads_) return;
  std::lock_guard lk(mu_);
  if (ended_.load() || running_.load() >= max_threads_) return;
  // Its own fd on the same connection: its own processing queue in the
  // kernel, so readers do not contend on one.
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  uint32_t master = static_cast<uint32_t>(fd_);
  if (::ioctl(fd, abi::kDevIocClone, &master) != 0) {
    ::close(fd);
    fd = fd_;  // a kernel without cloning: share the main fd
  }
  running_.fetch_add(1);
  threads_.emplace_back([this, fd] {
    reader(fd);
    if (fd != fd_) ::close(fd);
  });
}

void Session::reader(int fd) {
  // The request lands here and the handler works from it; the buffer is
  // this thread's for the session (no allocation per request).
  std::unique_ptr<uint8_t[]> buf(new uint8_t[buf_size_]);
  for (;;) {
    idle_.fetch_add(1, std::memory_order_relaxed);
    ssize_t n = ::read(fd, buf.get(), buf_size_);
    const int err = errno;
    if (idle_.fetch_sub(1, std::memory_order_relaxed) == 1 && n > 0) maybe_grow();  // the last idle reader got work
    if (n < 0) {
      if (err == EINTR || err == EAGAIN || err == ENOENT) continue;  // ENOENT: interrupted before we read it
      if (err != ENODEV) LOG_WARN("reading /dev/fuse for {}: {}", opts_.target, std::strerror(err));
      break;
    }
    abi::InHeader h;
    if (static_cast<size_t>(n) < sizeof h) continue;
    std::memcpy(&h, buf.get(), sizeof h);
    if (h.len != static_cast<uint32_t>(n)) {
      LOG_WARN("FUSE request of {} bytes says {}; dropped", n, h.len);
      continue;
    }
    // What the rings could have carried (FORGET and INTERRUPT always come here).
    if (h.opcode != abi::kForget && h.opcode != abi::kBatchForget && h.opcode != abi::kInterrupt)
      requests_classic_.fetch_add(1, std::memory_order_relaxed);
    Req r{this, fd, h.unique, h.uid, h.gid, h.pid};
    const uint8_t* arg = buf.get() + sizeof h;
    const size_t arglen = static_cast<size_t>(n) - sizeof h;
    const size_t k = std::min(op_in_size(h.opcode), arglen);
    dispatch(r, h, {arg, k}, {arg + k, arglen - k});
  }
  ended_.store(true);  // the connection is gone (ENODEV)
  running_.fetch_sub(1);
}

int Session::reply(const Req& r, int error, const iovec* parts, int n) noexcept {
  if (r.ring != nullptr) {
    UringChannel::set_reply(*r.ring, r.unique, error, parts, n);  // committed by the ring's thread
    return 0;
  }
  // An error reply is the header alone.
  return write_msg(r.fd, -error, r.unique, parts, error != 0 ? 0 : n);
}

int Session::notify(abi::NotifyCode code, const iovec* parts, int n) noexcept {
  struct Call {
    int fd;
    abi::NotifyCode code;
    const iovec* parts;
    int n;
    int rc;
  } c{fd_, code, parts, n, 0};
  // From a ring queue's fiber the write goes to the queue's helper thread
  // (fuse/channel_uring.h: run_off_ring); elsewhere it is made here.
  if (kernel_) return notify_kernel(code, parts, n);
  auto run = [](void* p) {
    auto* k = static_cast<Call*>(p);
    k->rc = write_msg(k->fd, k->code, 0, k->parts, k->n);
  };
  if (!run_off_ring(run, &c)) run(&c);
  return c.rc;
}


}  // namespace lanefs::fuse

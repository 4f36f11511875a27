// lanefs-frontend's direct-API door (direct_server.h).
#include "direct/direct_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/errors.h"
#include "common/log.h"

namespace lanefs::direct {

namespace {
// Rings: each is a thread and holds one of the RPC client's endpoints
// (256 per frontend, shared with the FUSE io_uring queues).
constexpr size_t kMaxRings = 64;           // per application
constexpr size_t kMaxRingsPerUser = 64;    // per uid other than root
constexpr size_t kMaxRingsTotal = 128;     // per frontend
constexpr int kMaxFds = 3;         // per request (a ring's memory and two eventfds)

Reply fail(int err, const std::string& why) {
  Reply r;
  r.err = -err;
  std::snprintf(r.msg, sizeof r.msg, "%s", why.c_str());
  return r;
}

Reply fail(const Error& e) { return fail(to_errno(e.code), e.message); }

Reply not_served(const char* path) {
  return fail(ENOENT, std::string(path) + " is not a lanefs mount served by this host's frontend");
}

Reply with_id(uint32_t id) {
  Reply r;
  r.a = id;
  return r;
}

std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(in, s);
  return s;
}

// What /proc says the descriptor is ("/dmabuf:..." for a dma-buf).
std::string fd_link(int fd) {
  char buf[256];
  const std::string p = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}
}  // namespace

Buffer::~Buffer() {
  rdma.region.reset();  // deregistered before its lane and before the memory goes
  rdma.lane.reset();
  if (addr) ::munmap(addr - map_skew, map_len);
  if (fd >= 0) ::close(fd);
}

File::~File() {
  if (fd >= 0) ::close(fd);
}

struct DirectServer::Session {
  int fd = -1;
  pid_t pid = 0;
  uid_t uid = 0;
  std::string command;
  Table<Buffer> bufs;
  Table<File> files;
  std::map<uint32_t, std::unique_ptr<RingServer>> rings;  // under DirectServer::mu_
  uint32_t next_ring = 1;
  ~Session() {
    rings.clear();  // drain first: their IOs use the buffers and files
    if (fd >= 0) ::close(fd);
  }
};

std::string direct_socket_path(const std::string& run_dir) { return run_dir + "/" + kSocketName; }

bool lanefs_fs_type(unsigned long f_type) {
  constexpr unsigned long kFuseMagic = 0x65735546, kLanefsKoMagic = 0x4c414e45;  // "LANE" (kmod/super.c)
  return f_type == kFuseMagic || f_type == kLanefsKoMagic;
}

void DirectServer::mount_gone(const client::MountFs* fs) {
  // Under mu_ (the rings cannot go meanwhile); bounded by the IOs' RPC
  // deadlines, and rare.
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (auto& s : sessions_)
    for (auto& [id, r] : s->rings)
      if (&r->fs() == fs) {
        r->retire();
        ++n;
      }
  if (n) LOG_INFO("direct API: {} ring(s) of an unmounted filesystem now answer ENOTCONN", n);
}

Result<std::unique_ptr<DirectServer>> DirectServer::start(const std::string& run_dir, FindMount find) {
  std::unique_ptr<DirectServer> d(new DirectServer());
  d->find_ = std::move(find);
  d->path_ = direct_socket_path(run_dir);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (d->path_.size() >= sizeof a.sun_path) return make_error(Errc::kInvalid, "run directory path too long");
  std::strcpy(a.sun_path, d->path_.c_str());
  d->listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (d->listen_fd_ < 0) return sys_error("socket", errno);
  ::unlink(d->path_.c_str());  // the frontend's control socket already proved no other frontend serves here
  if (::bind(d->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return sys_error("bind " + d->path_, errno);
  ::chmod(d->path_.c_str(), 0666);
  if (::listen(d->listen_fd_, 64) != 0) return sys_error("listen " + d->path_, errno);
  d->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->stop_fd_ < 0) return sys_error("eventfd", errno);
  DirectServer* self = d.get();
  d->thread_ = std::thread([self] { self->loop(); });
  return d;
}

DirectServer::~DirectServer() {
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(stop_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  std::vector<std::unique_ptr<Session>> gone;
  {
    std::lock_guard lk(mu_);
    gone.swap(sessions_);
  }
  gone.clear();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

std::vector<ClientInfo> DirectServer::clients() const {
  std::vector<ClientInfo> out;
  std::lock_guard lk(mu_);
  for (const auto& s : sessions_) {
    ClientInfo c;
    c.pid = s->pid;
    c.uid = s->uid;
    c.command = s->command;
    c.rings = s->rings.size();
    c.buffers = s->bufs.count();
    c.files = s->files.count();
    s->bufs.for_each([&](const Buffer& b) { c.buffer_bytes += b.size; });
    for (const auto& [id, r] : s->rings) c.ios += r->ios();
    for (const auto& [id, r] : s->rings)
      if (std::find(c.mounts.begin(), c.mounts.end(), r->target()) == c.mounts.end()) c.mounts.push_back(r->target());
    out.push_back(std::move(c));
  }
  return out;
}

void DirectServer::loop() {
  std::vector<pollfd> p;
  std::vector<Session*> who;
  for (;;) {
    p.assign({{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
    who.assign(2, nullptr);
    {
      std::lock_guard lk(mu_);
      for (auto& s : sessions_) {
        p.push_back({s->fd, POLLIN, 0});
        who.push_back(s.get());
      }
    }
    if (::poll(p.data(), p.size(), -1) < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("direct API: poll: {}", std::strerror(errno));
      return;
    }
    if (p[0].revents) return;
    if (p[1].revents & POLLIN) accept_one();
    for (size_t i = 2; i < p.size(); ++i) {
      if (!p[i].revents) continue;
      if (serve_one(*who[i])) continue;
      // Under mu_ while its rings drain (bounded by the IOs' RPC deadlines):
      // mount_gone() must not miss a ring whose IO is still in a client core.
      std::lock_guard lk(mu_);
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
        if (it->get() == who[i]) {
          LOG_INFO("direct API: {} (pid {}) detached", (*it)->command, (*it)->pid);
          sessions_.erase(it);  // its rings drain and stop; buffers and files go
          break;
        }
    }
  }
}

void DirectServer::accept_one() {
  const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
  auto s = std::make_unique<Session>();
  s->fd = c;
  ucred cr{};
  socklen_t len = sizeof cr;
  if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
    s->pid = cr.pid;
    s->uid = cr.uid;
  }
  s->command = comm_of(s->pid);
  LOG_INFO("direct API: {} (pid {}, uid {}) attached", s->command, s->pid, s->uid);
  std::lock_guard lk(mu_);
  sessions_.push_back(std::move(s));
}

bool DirectServer::serve_one(Session& s) {
  Request q;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec v{&q, sizeof q};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  const ssize_t n = ::recvmsg(s.fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
  Reply r;
  bool keep = true;
  if (n <= 0) {
    keep = false;  // hang-up: the application is gone
  } else if (n != sizeof q || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    r = fail(EPROTO, "malformed direct-API request (liblanefs-direct of another version?)");
  } else {
    q.path[sizeof q.path - 1] = 0;
    r = handle(s, q, fds);
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);  // what a handler did not take
  if (keep && ::send(s.fd, &r, sizeof r, MSG_NOSIGNAL) != sizeof r) keep = false;
  return keep;
}

Reply DirectServer::handle(Session& s, const Request& q, std::vector<int>& fds) {
  switch (static_cast<Op>(q.op)) {
    case Op::kHello: {
      if (!find_(q.path, 0)) return not_served(q.path);
      return Reply{};
    }
    case Op::kBufCreate: return buf_create(s, q, fds);
    case Op::kBufImportDmabuf: return buf_import(s, q, fds);
    case Op::kBufFree: {
      auto b = s.bufs.get(static_cast<uint32_t>(q.a));
      if (!b) return fail(EINVAL, "no such buffer");
      if (b->inflight.load() > 0) return fail(EBUSY, "an IO on the buffer is in flight");
      s.bufs.remove(static_cast<uint32_t>(q.a));
      let_go(s);
      return Reply{};
    }
    case Op::kRingCreate: return ring_create(s, q, fds);
    case Op::kRingDestroy: {
      // Drains under mu_, for the reason loop() gives.
      std::lock_guard lk(mu_);
      auto it = s.rings.find(static_cast<uint32_t>(q.a));
      if (it == s.rings.end()) return fail(EINVAL, "no such ring");
      s.rings.erase(it);
      return Reply{};
    }
    case Op::kFileRegister: return file_register(s, fds);
    case Op::kFileForget:
      if (!s.files.remove(static_cast<uint32_t>(q.a))) return fail(EBADF, "no such registered file");
      let_go(s);  // the file is closed here when this answers
      return Reply{};
  }
  return fail(EPROTO, "unknown direct-API request " + std::to_string(q.op));
}

void DirectServer::let_go(Session& s) {
  const uint64_t bv = s.bufs.version(), fv = s.files.version();
  std::lock_guard lk(mu_);
  for (auto& [id, r] : s.rings) r->poke();
  // Bounded: a ring thread answers a poke within one turn of its loop.
  for (int i = 0; i < 1000; ++i) {
    bool all = true;
    for (auto& [id, r] : s.rings) all = all && r->caught_up(bv, fv);
    if (all) return;
    ::usleep(1000);
  }
  LOG_WARN("direct API: a ring of pid {} did not drop a removed buffer or file within 1 s", s.pid);
}

Reply DirectServer::buf_create(Session& s, const Request& q, std::vector<int>& fds) {
  if (fds.size() != 1) return fail(EPROTO, "a buffer comes with its memfd");
  const int fd = fds[0];
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(errno, std::string("fstat of the buffer's memfd: ") + std::strerror(errno));
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK))
    return fail(EINVAL, "a buffer must be a memfd sealed against shrinking");
  if (q.a == 0 || q.a > static_cast<uint64_t>(st.st_size)) return fail(EINVAL, "the buffer's size is wrong");
  void* p = ::mmap(nullptr, q.a, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail(errno, std::string("mapping the buffer: ") + std::strerror(errno));
  auto b = std::make_shared<Buffer>();
  b->addr = static_cast<uint8_t*>(p);
  b->size = b->map_len = q.a;
  return add_buffer(s, std::move(b));
}

Reply DirectServer::add_buffer(Session& s, std::shared_ptr<Buffer> b) {
  const uint32_t id = s.bufs.add(std::move(b));
  if (id == 0) return fail(EMFILE, "too many buffers for one application");
  return with_id(id);
}

Reply DirectServer::buf_import(Session& s, const Request& q, std::vector<int>& fds) {
  if (fds.size() != 1) return fail(EPROTO, "a dma-buf import comes with its descriptor");
  const std::string link = fd_link(fds[0]);
  if (link.rfind("/dmabuf:", 0) != 0) return fail(EINVAL, "the descriptor is not a dma-buf (" + link + ")");
  if (q.b == 0) return fail(EINVAL, "the import's size is 0");
  // Within the dma-buf (its size is what seeking to its end says).
  const off_t dsize = ::lseek(fds[0], 0, SEEK_END);
  if (dsize < 0 || q.a > static_cast<uint64_t>(dsize) || q.b > static_cast<uint64_t>(dsize) - q.a)
    return fail(EINVAL, "the import runs past the dma-buf's end (" + std::to_string(q.a) + " + " +
                            std::to_string(q.b) + " > " + std::to_string(dsize < 0 ? 0 : dsize) + ")");
  // Mapped for the bounce path (and as the address backends write to when
  // the RDMA lane registers it, at the first IO that plans RDMA).
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = q.a / page * page, skew = q.a - start;
  void* p = ::mmap(nullptr, q.b + skew, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], static_cast<off_t>(start));
  if (p == MAP_FAILED)
    return fail(ENOTSUP, std::string("the frontend cannot map this dma-buf (mmap: ") + std::strerror(errno) +
                             "): it needs a mapping for its address and for the bounce path");
  auto b = std::make_shared<Buffer>();
  b->addr = static_cast<uint8_t*>(p) + skew;
  b->map_skew = skew;
  b->size = q.b;
  b->map_len = q.b + skew;
  b->device = true;
  b->dmabuf_offset = q.a;
  b->fd = fds[0];
  fds[0] = -1;
  return add_buffer(s, std::move(b));
}

Reply DirectServer::ring_create(Session& s, const Request& q, std::vector<int>& fds) {
  if (fds.size() != 3) return fail(EPROTO, "a ring comes with its memory and two eventfds");
  auto m = find_(q.path, 0);
  if (!m) return not_served(q.path);
  {
    std::lock_guard lk(mu_);
    size_t total = 0, user = 0;
    for (const auto& o : sessions_) {
      total += o->rings.size();
      if (o->uid == s.uid) user += o->rings.size();
    }
    if (s.rings.size() >= kMaxRings) return fail(EMFILE, "too many rings for one application (" + std::to_string(kMaxRings) + ")");
    if (s.uid != 0 && user >= kMaxRingsPerUser)
      return fail(EMFILE, "too many rings for uid " + std::to_string(s.uid) + " (" + std::to_string(kMaxRingsPerUser) + ")");
    if (total >= kMaxRingsTotal)
      return fail(EMFILE, "too many rings on this frontend (" + std::to_string(kMaxRingsTotal) + ")");
  }
  RingServer::Setup st;
  st.fs = m->fs;
  st.target = m->target;
  st.dev = m->dev;
  st.memfd = fds[0];
  st.doorbell = fds[1];
  st.completion = fds[2];
  st.entries = static_cast<uint32_t>(q.a);
  st.bufs = &s.bufs;
  st.files = &s.files;
  fds.assign(3, -1);  // the server owns them now
  auto r = RingServer::start(std::move(st));
  if (!r.ok()) return fail(r.error());
  std::lock_guard lk(mu_);
  const uint32_t id = s.next_ring++;
  s.rings.emplace(id, std::move(*r));
  return with_id(id);
}

Reply DirectServer::file_register(Session& s, std::vector<int>& fds) {
  if (fds.size() != 1) return fail(EPROTO, "a file registration comes with its descriptor");
  struct stat st {};
  if (::fstat(fds[0], &st) != 0) return fail(EBADF, std::string("fstat: ") + std::strerror(errno));
  const int fl = ::fcntl(fds[0], F_GETFL);
  if (fl < 0 || (fl & O_PATH)) return fail(EBADF, "the descriptor is not open for IO (O_PATH)");
  if (S_ISDIR(st.st_mode)) return fail(EISDIR, "the descriptor is a directory");
  if (!S_ISREG(st.st_mode)) return fail(EINVAL, "the descriptor is not a regular file");
  struct statfs sf {};
  auto m = ::fstatfs(fds[0], &sf) == 0 && lanefs_fs_type(static_cast<unsigned long>(sf.f_type))
               ? find_("", st.st_dev)
               : std::nullopt;
  if (!m) return fail(EXDEV, "the file is not on a lanefs mount served by this host's frontend");
  auto f = std::make_shared<File>();
  f->fd = fds[0];
  fds[0] = -1;
  f->nodeid = st.st_ino;
  f->dev = st.st_dev;
  f->readable = (fl & O_ACCMODE) != O_WRONLY;
  f->writable = (fl & O_ACCMODE) != O_RDONLY;
  f->append = (fl & O_APPEND) != 0;
  // As write(2) by a process without CAP_FSETID (root keeps the bits).
  f->kill_privs = s.uid != 0;
  f->fs = m->fs;
  const bool rd = f->readable, wr = f->writable;
  const uint32_t id = s.files.add(std::move(f));
  if (id == 0) return fail(EMFILE, "too many registered files for one application");
  Reply r = with_id(id);
  r.b = (rd ? 1u : 0u) | (wr ? 2u : 0u);
  return r;
}

}  // namespace lanefs::direct

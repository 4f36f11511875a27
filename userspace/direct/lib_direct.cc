// liblanefs-direct (include/lanefs/direct.h): the application's side.
// Plain C++ behind a C ABI; it links nothing of lanefs but direct_wire.h.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "direct/direct_wire.h"
#include "lanefs/config.h"
#include "lanefs/direct.h"
#if LANEFS_HAVE_CUDA
#include "direct/cuda_import.h"
#endif

#define LANEFS_API extern "C" __attribute__((visibility("default")))

using namespace lanefs::direct;

struct lanefs_buf {
  uint32_t id = 0;
  void* addr = nullptr;  // the application's mapping (null: device memory it cannot map)
  size_t size = 0;
  size_t map_len = 0, map_skew = 0;
  uint64_t session = 0;  // the connection it was made on (Conn::gen)
};

namespace {

thread_local std::string t_error;

int fail(int err, const std::string& why) {
  t_error = why;
  return -err;
}
template <class T>
T* fail_null(int err, const std::string& why) {
  t_error = why;
  errno = err;
  return nullptr;
}

// A descriptor handed to the frontend: the file it named then.
struct FileReg {
  uint32_t id = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  uint32_t access = 0;  // 1 read, 2 write
};

// The process's session with its frontend: one connection, one request at
// a time, and the descriptors it registered. gen counts connections (and
// forks): buffers and rings of an earlier one are refused, never sent to a
// session that does not know them.
struct Conn {
  std::mutex mu;
  int fd = -1;
  std::atomic<uint64_t> gen{1};
  std::unordered_map<int, FileReg> files;
};
Conn g_conn;

// A forked child has no session: the parent's connection stays the
// parent's (closed here), and the lock may have been held by a thread
// that does not exist in the child.
void child_after_fork() {
  new (&g_conn.mu) std::mutex();
  if (g_conn.fd >= 0) ::close(g_conn.fd);
  g_conn.fd = -1;
  g_conn.files.clear();
  g_conn.gen.fetch_add(1);
}
[[maybe_unused]] const int g_atfork = ::pthread_atfork(nullptr, nullptr, child_after_fork);

bool current(uint64_t session) { return session == g_conn.gen.load(std::memory_order_relaxed); }

std::string run_dir() {
  const char* rd = std::getenv("LANEFS_RUN_DIR");
  return rd && *rd ? rd : "/run/lanefs";
}

// Under g_conn.mu: connected (a new connection is a new session).
int connect_locked() {
  if (g_conn.fd >= 0) return 0;
  g_conn.files.clear();
  const std::string path = run_dir() + "/" + kSocketName;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return fail(EINVAL, "LANEFS_RUN_DIR is too long");
  std::strcpy(a.sun_path, path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(errno, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(ENOTCONN, "no lanefs-frontend answers at " + path + " (" + std::strerror(e) +
                              "); is a lanefs mount up, and is LANEFS_RUN_DIR right?");
  }
  g_conn.fd = fd;
  g_conn.gen.fetch_add(1);
  return 0;
}

// Under g_conn.mu: one request and its reply. Returns reply.err (and sets
// the thread's error text when it is not 0).
int call_locked(const Request& q, const int* fds, int nfds, Reply* r) {
  if (int rc = connect_locked(); rc != 0) return rc;
  iovec v{const_cast<Request*>(&q), sizeof q};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 3)] = {};
  if (nfds > 0) {
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  while ((n = ::sendmsg(g_conn.fd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n == sizeof q) {
    while ((n = ::recv(g_conn.fd, r, sizeof *r, 0)) < 0 && errno == EINTR) {
    }
  }
  if (n != static_cast<ssize_t>(sizeof *r)) {
    ::close(g_conn.fd);
    g_conn.fd = -1;
    g_conn.files.clear();
    g_conn.gen.fetch_add(1);  // what was made on it is gone with it
    return fail(ENOTCONN, "the lanefs-frontend went away");
  }
  if (r->err != 0) t_error = r->msg;
  return r->err;
}

// `session` (optional): the connection the call ran on.
int call(const Request& q, const int* fds, int nfds, Reply* r, uint64_t* session = nullptr) {
  std::lock_guard lk(g_conn.mu);
  const int rc = call_locked(q, fds, nfds, r);
  if (session) *session = g_conn.gen.load();
  return rc;
}

bool resolve(const char* mountpoint, Request* q) {
  char real[PATH_MAX];
  if (mountpoint == nullptr || ::realpath(mountpoint, real) == nullptr) return false;
  const size_t n = std::strlen(real);
  if (n >= sizeof q->path) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memcpy(q->path, real, n + 1);
  return true;
}

}  // namespace

// ---- buffers

LANEFS_API lanefs_buf* lanefs_buf_create(const char* mountpoint, size_t size) {
  if (size == 0 || size > (size_t{1} << 40)) return fail_null<lanefs_buf>(EINVAL, "buffer size must be 1 B..1 TiB");
  Request q;
  if (!resolve(mountpoint, &q))
    return fail_null<lanefs_buf>(ENOENT, std::string("mount point ") + (mountpoint ? mountpoint : "(null)") +
                                             ": " + std::strerror(errno));
  q.op = static_cast<uint32_t>(Op::kHello);
  Reply r;
  if (int rc = call(q, nullptr, 0, &r); rc != 0) return fail_null<lanefs_buf>(-rc, t_error);
  const size_t len = (size + 4095) / 4096 * 4096;
  const int fd = ::memfd_create("lanefs-direct-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return fail_null<lanefs_buf>(errno, std::string("memfd_create: ") + std::strerror(errno));
  void* p = MAP_FAILED;
  if (::ftruncate(fd, static_cast<off_t>(len)) == 0 && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0)
    p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    ::close(fd);
    return fail_null<lanefs_buf>(e, std::string("making the buffer's memory: ") + std::strerror(e));
  }
  q = Request{};
  q.op = static_cast<uint32_t>(Op::kBufCreate);
  q.a = len;
  uint64_t r_session = 0;
  const int rc = call(q, &fd, 1, &r, &r_session);
  ::close(fd);  // the mappings hold the memory
  if (rc != 0) {
    ::munmap(p, len);
    return fail_null<lanefs_buf>(-rc, t_error);
  }
  auto* b = new lanefs_buf;
  b->id = static_cast<uint32_t>(r.a);
  b->addr = p;
  b->size = b->map_len = len;
  b->session = r_session;
  return b;
}

LANEFS_API lanefs_buf* lanefs_buf_import_dmabuf(int dmabuf_fd, uint64_t offset, size_t size) {
  if (size == 0) return fail_null<lanefs_buf>(EINVAL, "import size is 0");
  Request q;
  q.op = static_cast<uint32_t>(Op::kBufImportDmabuf);
  q.a = offset;
  q.b = size;
  Reply r;
  uint64_t r_session = 0;
  if (int rc = call(q, &dmabuf_fd, 1, &r, &r_session); rc != 0) return fail_null<lanefs_buf>(-rc, t_error);
  auto* b = new lanefs_buf;
  b->id = static_cast<uint32_t>(r.a);
  b->size = size;
  b->session = r_session;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  void* p = ::mmap(nullptr, size + (offset - start), PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf_fd,
                   static_cast<off_t>(start));
  if (p != MAP_FAILED) {
    b->map_skew = offset - start;
    b->map_len = size + b->map_skew;
    b->addr = static_cast<uint8_t*>(p) + b->map_skew;
  }
  return b;
}

LANEFS_API void* lanefs_buf_addr(const lanefs_buf* buf) { return buf ? buf->addr : nullptr; }
LANEFS_API size_t lanefs_buf_size(const lanefs_buf* buf) { return buf ? buf->size : 0; }

LANEFS_API int lanefs_buf_destroy(lanefs_buf* buf) {
  if (buf == nullptr) return fail(EINVAL, "no buffer");
  if (current(buf->session)) {
    Request q;
    q.op = static_cast<uint32_t>(Op::kBufFree);
    q.a = buf->id;
    Reply r;
    const int rc = call(q, nullptr, 0, &r);
    if (rc == -EBUSY) return rc;
  }
  if (buf->addr) ::munmap(static_cast<uint8_t*>(buf->addr) - buf->map_skew, buf->map_len);
  delete buf;
  return 0;
}

// ---- descriptors

namespace {
// Moves (under g_conn.mu) whenever the session lets go of a registration:
// rings then drop their copies.
std::atomic<uint64_t> g_files_epoch{0};

// A ring's own copy of the registrations it used, so a prep finds its file
// without the session's lock; dropped whole when g_files_epoch moved.
struct FileCache {
  uint64_t epoch = 0;
  std::unordered_map<int, FileReg> files;
};

int check_access(const FileReg& f, int fd, uint32_t access, uint32_t* id) {
  if (!(f.access & access))
    return fail(EBADF, "descriptor " + std::to_string(fd) + " is not open for " + (access == 1 ? "reading" : "writing"));
  *id = f.id;
  return 0;
}

// The file id of `fd` for IO in direction `access` (1 read, 2 write):
// registered at first use, and again when the descriptor now names
// another file (closed and reused). statx with AT_STATX_DONT_SYNC reads
// the kernel's cached attributes: no request to the frontend.
int file_id(int fd, uint32_t access, dev_t ring_dev, uint64_t session, FileCache& cache, uint32_t* id) {
  struct statx sx {};
  if (::statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_INO, &sx) != 0)
    return fail(EBADF, "descriptor " + std::to_string(fd) + ": " + std::strerror(errno));
  struct {
    dev_t st_dev;
    ino_t st_ino;
  } st{makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino};
  if (st.st_dev != ring_dev) return fail(EXDEV, "descriptor " + std::to_string(fd) + " is not on the ring's mount");
  if (cache.epoch != g_files_epoch.load(std::memory_order_acquire)) cache.files.clear();
  else if (auto c = cache.files.find(fd); c != cache.files.end() && c->second.dev == st.st_dev &&
                                          c->second.ino == st.st_ino)
    return check_access(c->second, fd, access, id);
  std::lock_guard lk(g_conn.mu);
  if (!current(session) || g_conn.fd < 0)
    return fail(ENOTCONN, "the ring's session with the lanefs-frontend is gone (the frontend restarted, or this "
                          "is a forked child): make a new ring");
  auto it = g_conn.files.find(fd);
  if (it != g_conn.files.end() && (it->second.dev != st.st_dev || it->second.ino != st.st_ino)) {
    Request q;
    q.op = static_cast<uint32_t>(Op::kFileForget);
    q.a = it->second.id;
    Reply r;
    (void)call_locked(q, nullptr, 0, &r);
    g_conn.files.erase(it);
    g_files_epoch.fetch_add(1, std::memory_order_release);
    it = g_conn.files.end();
  }
  if (it == g_conn.files.end()) {
    Request q;
    q.op = static_cast<uint32_t>(Op::kFileRegister);
    Reply r;
    if (int rc = call_locked(q, &fd, 1, &r); rc != 0) return rc;
    it = g_conn.files.insert_or_assign(fd, FileReg{static_cast<uint32_t>(r.a), st.st_dev, st.st_ino,
                                                   static_cast<uint32_t>(r.b)})
             .first;
  }
  // The epoch as of this registration (a later forget moves it past).
  const uint64_t epoch = g_files_epoch.load(std::memory_order_relaxed);
  if (cache.epoch != epoch) {
    cache.files.clear();
    cache.epoch = epoch;
  }
  cache.files[fd] = it->second;
  return check_access(it->second, fd, access, id);
}
}  // namespace

LANEFS_API int lanefs_fd_forget(int fd) {
  std::lock_guard lk(g_conn.mu);
  auto it = g_conn.files.find(fd);
  if (it == g_conn.files.end()) return fail(EBADF, "descriptor not registered");
  Request q;
  q.op = static_cast<uint32_t>(Op::kFileForget);
  q.a = it->second.id;
  g_conn.files.erase(it);
  g_files_epoch.fetch_add(1, std::memory_order_release);
  Reply r;
  return call_locked(q, nullptr, 0, &r);
}

LANEFS_API const char* lanefs_direct_error(void) { return t_error.c_str(); }

// ---- rings

struct lanefs_ring {
  uint32_t id = 0;
  RingShared* sh = nullptr;
  size_t map_len = 0;
  Sqe* sq = nullptr;
  lanefs_cqe* cq = nullptr;
  uint32_t entries = 0, mask = 0;
  uint32_t sq_tail = 0;       // prepared (published by submit)
  uint32_t published = 0;     // handed to the frontend
  uint32_t cq_head = 0;
  uint32_t outstanding = 0;   // prepared and not reaped
  int doorbell = -1, completion = -1;
  int session_fd = -1;  // a copy of the session's socket: its hang-up says the frontend went away
  dev_t dev = 0;
  FileCache files;  // the registrations this ring used (no lock per prep)
  uint64_t session = 0;
};

LANEFS_API lanefs_ring* lanefs_ring_create(const char* mountpoint, unsigned entries) {
  if (entries == 0 || entries > LANEFS_DIRECT_MAX_ENTRIES)
    return fail_null<lanefs_ring>(EINVAL, "ring entries must be 1.." + std::to_string(LANEFS_DIRECT_MAX_ENTRIES));
  uint32_t n = 1;
  while (n < entries) n <<= 1;
  Request q;
  if (!resolve(mountpoint, &q))
    return fail_null<lanefs_ring>(ENOENT, std::string("mount point ") + (mountpoint ? mountpoint : "(null)") +
                                              ": " + std::strerror(errno));
  struct stat st {};
  if (::stat(q.path, &st) != 0) return fail_null<lanefs_ring>(errno, std::string("stat ") + q.path);
  const size_t len = (ring_bytes(n) + 4095) / 4096 * 4096;
  const int memfd = ::memfd_create("lanefs-direct-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0) return fail_null<lanefs_ring>(errno, std::string("memfd_create: ") + std::strerror(errno));
  void* p = MAP_FAILED;
  if (::ftruncate(memfd, static_cast<off_t>(len)) == 0 &&
      ::fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0)
    p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  const int db = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), cf = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  auto cleanup = [&] {
    if (p != MAP_FAILED) ::munmap(p, len);
    for (int fd : {memfd, db, cf})
      if (fd >= 0) ::close(fd);
  };
  if (p == MAP_FAILED || db < 0 || cf < 0) {
    const int e = errno;
    cleanup();
    return fail_null<lanefs_ring>(e, std::string("making the ring: ") + std::strerror(e));
  }
  auto* sh = new (p) RingShared();
  sh->entries = n;
  q.op = static_cast<uint32_t>(Op::kRingCreate);
  q.a = n;
  const int fds[3] = {memfd, db, cf};
  Reply r;
  uint64_t session = 0;
  int session_fd = -1;
  {
    std::lock_guard lk(g_conn.mu);
    const int rc = call_locked(q, fds, 3, &r);
    if (rc != 0) {
      cleanup();
      return fail_null<lanefs_ring>(-rc, t_error);
    }
    session = g_conn.gen.load();
    session_fd = ::fcntl(g_conn.fd, F_DUPFD_CLOEXEC, 3);
  }
  ::close(memfd);
  auto* ring = new lanefs_ring;
  ring->id = static_cast<uint32_t>(r.a);
  ring->sh = sh;
  ring->map_len = len;
  ring->sq = ring_sqes(sh);
  ring->cq = ring_cqes(sh, n);
  ring->entries = n;
  ring->mask = n - 1;
  ring->doorbell = db;
  ring->completion = cf;
  ring->dev = st.st_dev;
  ring->session = session;
  ring->session_fd = session_fd;
  return ring;
}

LANEFS_API int lanefs_ring_destroy(lanefs_ring* ring) {
  if (ring == nullptr) return fail(EINVAL, "no ring");
  int rc = 0;
  if (current(ring->session)) {
    Request q;
    q.op = static_cast<uint32_t>(Op::kRingDestroy);
    q.a = ring->id;
    Reply r;
    rc = call(q, nullptr, 0, &r);  // the frontend drains the ring first
    if (rc == -ENOTCONN) rc = 0;   // gone with the frontend
  }
  ::munmap(ring->sh, ring->map_len);
  ::close(ring->doorbell);
  ::close(ring->completion);
  if (ring->session_fd >= 0) ::close(ring->session_fd);
  delete ring;
  return rc;
}

namespace {
int prep(lanefs_ring* ring, uint8_t op, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off, size_t len,
         uint64_t user_data) {
  if (ring == nullptr || buf == nullptr) return fail(EINVAL, "no ring or no buffer");
  if (!current(ring->session) || buf->session != ring->session)
    return fail(ENOTCONN, "the ring or buffer belongs to a session with the frontend that is gone (the frontend "
                          "restarted, or this is a forked child): make new ones");
  if (len == 0 || len > LANEFS_DIRECT_MAX_IO)
    return fail(EINVAL, "IO length must be 1.." + std::to_string(LANEFS_DIRECT_MAX_IO));
  if (off_in_buf > buf->size || len > buf->size - off_in_buf)
    return fail(ERANGE, "the IO runs past the buffer's end (" + std::to_string(off_in_buf) + " + " +
                            std::to_string(len) + " > " + std::to_string(buf->size) + ")");
  if (ring->outstanding >= ring->entries)
    return fail(EBUSY, "the ring holds " + std::to_string(ring->entries) + " IOs not yet reaped");
  uint32_t file = 0;
  if (int rc = file_id(fd, op == kOpRead ? 1 : 2, ring->dev, ring->session, ring->files, &file); rc != 0) return rc;
  Sqe& s = ring->sq[ring->sq_tail & ring->mask];
  s.op = op;
  s.buf = buf->id;
  s.file = file;
  s.len = static_cast<uint32_t>(len);
  s.buf_off = off_in_buf;
  s.file_off = file_off;
  s.user_data = user_data;
  ++ring->sq_tail;
  ++ring->outstanding;
  return 0;
}
}  // namespace

LANEFS_API int lanefs_prep_read(lanefs_ring* ring, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off,
                                size_t len, uint64_t user_data) {
  return prep(ring, kOpRead, buf, off_in_buf, fd, file_off, len, user_data);
}

LANEFS_API int lanefs_prep_write(lanefs_ring* ring, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off,
                                 size_t len, uint64_t user_data) {
  return prep(ring, kOpWrite, buf, off_in_buf, fd, file_off, len, user_data);
}

LANEFS_API int lanefs_submit(lanefs_ring* ring) {
  if (ring == nullptr) return fail(EINVAL, "no ring");
  if (!current(ring->session)) return fail(ENOTCONN, "the ring's session with the lanefs-frontend is gone");
  const uint32_t n = ring->sq_tail - ring->published;
  if (n == 0) return 0;
  ring->sh->sq_tail.store(ring->sq_tail, std::memory_order_release);
  ring->published = ring->sq_tail;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // One ring per sleep: the flag is taken (the frontend sets it again
  // before it next sleeps).
  if (ring->sh->server_sleeping.load(std::memory_order_relaxed) && ring->sh->server_sleeping.exchange(0)) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(ring->doorbell, &one, sizeof one);
  }
  return static_cast<int>(n);
}

namespace {
unsigned reap(lanefs_ring* ring, lanefs_cqe* out, unsigned max) {
  const uint32_t tail = ring->sh->cq_tail.load(std::memory_order_acquire);
  unsigned n = 0;
  while (ring->cq_head != tail && n < max) out[n++] = ring->cq[ring->cq_head++ & ring->mask];
  if (n) {
    ring->sh->cq_head.store(ring->cq_head, std::memory_order_release);
    ring->outstanding -= n;
  }
  return n;
}

int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}
}  // namespace

LANEFS_API int lanefs_wait(lanefs_ring* ring, lanefs_cqe* cqes, unsigned max, unsigned min, int timeout_ms) {
  if (ring == nullptr || (cqes == nullptr && max > 0)) return fail(EINVAL, "no ring or no completion array");
  if (!current(ring->session)) return fail(ENOTCONN, "the ring's session with the lanefs-frontend is gone");
  if (min > max) min = max;
  unsigned got = reap(ring, cqes, max);
  if (got >= min || timeout_ms == 0) return static_cast<int>(got);
  const int64_t until = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
  const int conn = ring->session_fd;
  for (;;) {
    ring->sh->app_waiting.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    got += reap(ring, cqes + got, max - got);
    if (got >= min) break;
    const int64_t left = until - now_ms();
    if (left <= 0) break;
    // The frontend's end of the session hangs up when it goes away.
    pollfd p[2] = {{ring->completion, POLLIN, 0}, {conn, 0, 0}};
    const int rc = ::poll(p, 2, left > INT32_MAX ? -1 : static_cast<int>(left));
    if (rc > 0 && (p[0].revents & POLLIN)) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(ring->completion, &v, sizeof v);
    }
    if (rc > 0 && (p[1].revents & (POLLHUP | POLLERR))) {
      got += reap(ring, cqes + got, max - got);
      ring->sh->app_waiting.store(0, std::memory_order_relaxed);
      if (got > 0) return static_cast<int>(got);
      return fail(ENOTCONN, "the lanefs-frontend went away; IOs in flight are lost");
    }
  }
  ring->sh->app_waiting.store(0, std::memory_order_relaxed);
  return static_cast<int>(got);
}

LANEFS_API lanefs_buf* lanefs_buf_import_cuda(void* dev_ptr, size_t size) {
#if LANEFS_HAVE_CUDA
  int fd = -1;
  std::string why;
  if (int rc = cuda_dmabuf(dev_ptr, size, &fd, &why); rc != 0) return fail_null<lanefs_buf>(-rc, why);
  lanefs_buf* b = lanefs_buf_import_dmabuf(fd, 0, size);
  const int e = errno;
  ::close(fd);
  errno = e;
  return b;
#else
  (void)dev_ptr;
  (void)size;
  return fail_null<lanefs_buf>(ENOTSUP, "liblanefs-direct was built without CUDA (LANEFS_CUDA=OFF or no toolkit)");
#endif
}

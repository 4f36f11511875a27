// The frontend's side of one direct-API ring (ring_server.h).
#include "direct/ring_server.h"

#include <fcntl.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "client/rdma_path.h"

namespace lanefs::direct {

static_assert(static_cast<uint32_t>(client::BounceReason::kNotRdma) == LANEFS_BOUNCE_NOT_RDMA &&
              static_cast<uint32_t>(client::BounceReason::kEncrypted) == LANEFS_BOUNCE_ENCRYPTED &&
              static_cast<uint32_t>(client::BounceReason::kUnaligned) == LANEFS_BOUNCE_UNALIGNED &&
              static_cast<uint32_t>(client::BounceReason::kNoDmabufSupport) == LANEFS_BOUNCE_NO_DMABUF_SUPPORT &&
              static_cast<uint32_t>(client::BounceReason::kDeviceUnregistered) == LANEFS_BOUNCE_DEVICE_UNREGISTERED);

namespace {
// Handlers, the RPC layer and log formatting run on a fiber's stack
// (mapped with a guard page; pages touched only as used), as on the FUSE
// io_uring channel.
constexpr size_t kFiberStack = 512 * 1024;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// CPU access to a dma-buf's mapping is bracketed (the exporter flushes or
// invalidates caches). Failing that, the access still happens: udmabuf
// and most exporters are coherent.
void dmabuf_sync(const Buffer& b, uint64_t flags) {
  if (!b.device || b.fd < 0) return;
  dma_buf_sync s{flags};
  while (::ioctl(b.fd, DMA_BUF_IOCTL_SYNC, &s) != 0 && errno == EINTR) {
  }
}
}  // namespace

struct RingServer::Slot {
  Sqe sqe;
  boost::context::fiber fiber, loop;
  bool busy = false;    // holds an IO
  bool queued = false;  // on the ready list
  std::vector<uint8_t> bounce;  // device memory that does not take GPUDirect
};

Result<std::unique_ptr<RingServer>> RingServer::start(Setup s) {
  std::unique_ptr<RingServer> r(new RingServer());
  r->fs_ = std::move(s.fs);
  r->target_ = std::move(s.target);
  r->dev_ = s.dev;
  r->bufs_ = s.bufs;
  r->files_ = s.files;
  r->memfd_ = s.memfd;
  r->doorbell_ = s.doorbell;
  r->completion_ = s.completion;
  const uint32_t n = s.entries;
  if (n == 0 || n > LANEFS_DIRECT_MAX_ENTRIES || (n & (n - 1)) != 0)
    return make_error(Errc::kInvalid, "ring entries must be a power of two up to " +
                                          std::to_string(LANEFS_DIRECT_MAX_ENTRIES));
  struct stat st {};
  if (::fstat(r->memfd_, &st) != 0) return sys_error("fstat of the ring memory", errno);
  const size_t len = ring_bytes(n);
  // A region the application could shrink later would fault the frontend.
  const int seals = ::fcntl(r->memfd_, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK))
    return make_error(Errc::kInvalid, "the ring memory must be a memfd sealed against shrinking");
  if (static_cast<size_t>(st.st_size) < len) return make_error(Errc::kInvalid, "the ring memory is too small");
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd_, 0);
  if (p == MAP_FAILED) return sys_error("mmap of the ring memory", errno);
  r->sh_ = static_cast<RingShared*>(p);
  r->map_len_ = len;
  if (r->sh_->magic != kRingMagic || r->sh_->abi != LANEFS_DIRECT_ABI || r->sh_->entries != n)
    return make_error(Errc::kInvalid, "the ring memory has another layout (liblanefs-direct of another version?)");
  r->entries_ = n;
  r->mask_ = n - 1;
  r->sqes_ = ring_sqes(r->sh_);
  r->cqes_ = ring_cqes(r->sh_, n);
  r->sq_head_ = r->sh_->sq_head.load(std::memory_order_relaxed);
  r->cq_tail_ = r->sh_->cq_tail.load(std::memory_order_relaxed);
  r->stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->stop_fd_ < 0) return sys_error("eventfd", errno);
  RingServer* self = r.get();
  r->thread_ = std::thread([self] { self->run(); });
  return r;
}

RingServer::~RingServer() {
  stop_.store(true);
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(stop_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (sh_) ::munmap(sh_, map_len_);
  close_fd(memfd_);
  close_fd(doorbell_);
  close_fd(completion_);
  close_fd(stop_fd_);
}

void RingServer::park() noexcept {
  Slot* s = current_;
  s->loop = std::move(s->loop).resume();
}

void RingServer::resume(void* fiber) noexcept {
  auto* s = static_cast<Slot*>(fiber);
  if (s->queued || !s->busy) return;
  s->queued = true;
  ready_.push_back(s);
}

// New SQEs, while their completions have room: in flight plus unreaped
// completions never exceed the ring (a slow reaper slows the frontend).
void RingServer::take() {
  const uint32_t tail = sh_->sq_tail.load(std::memory_order_acquire);
  const uint32_t cq_head = sh_->cq_head.load(std::memory_order_acquire);
  uint32_t taken = 0;
  while (sq_head_ != tail && inflight_ + (cq_tail_ - cq_head) < entries_) {
    if (free_.empty()) {
      if (slots_.size() >= entries_) break;
      slots_.push_back(std::make_unique<Slot>());
      free_.push_back(slots_.back().get());
    }
    Slot* s = free_.back();
    free_.pop_back();
    // A copy: the application may reuse the entry once the head passes it.
    s->sqe = sqes_[sq_head_ & mask_];
    ++sq_head_;
    ++taken;
    s->busy = true;
    ++inflight_;
    resume(s);
  }
  if (taken) sh_->sq_head.store(sq_head_, std::memory_order_release);
}

void RingServer::run_slot(Slot& s) {
  s.queued = false;
  if (!s.fiber) {
    s.fiber = boost::context::fiber(std::allocator_arg, boost::context::protected_fixedsize_stack(kFiberStack),
                                    [this, &s](boost::context::fiber&& loop) {
                                      s.loop = std::move(loop);
                                      for (;;) {
                                        serve(s);
                                        s.busy = false;
                                        s.loop = std::move(s.loop).resume();  // until the next IO
                                        if (!s.busy) break;                   // teardown
                                      }
                                      return std::move(s.loop);
                                    });
  }
  current_ = &s;
  s.fiber = std::move(s.fiber).resume();
  current_ = nullptr;
  if (s.busy) return;  // parked: the backends work
  --inflight_;
  free_.push_back(&s);
}

void RingServer::serve(Slot& s) noexcept {
  uint32_t path = LANEFS_PATH_HOST, reason = LANEFS_BOUNCE_NONE;
  const int64_t res = io(s, &path, &reason);
  client::DirectCounters& c = fs_->direct_counters();
  c.ios.fetch_add(1, std::memory_order_relaxed);
  if (res > 0) c.bytes.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
  if (res < 0) c.errors.fetch_add(1, std::memory_order_relaxed);
  if (path == LANEFS_PATH_GPUDIRECT) c.gpudirect_ios.fetch_add(1, std::memory_order_relaxed);
  if (path == LANEFS_PATH_BOUNCED) {
    c.gpudirect_bounced.fetch_add(1, std::memory_order_relaxed);
    c.bounce_reasons[reason].fetch_add(1, std::memory_order_relaxed);
  }
  ios_.fetch_add(1, std::memory_order_relaxed);
  post(s.sqe.user_data, res, path, reason);
}

void RingServer::poke() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(doorbell_, &one, sizeof one);
}

void RingServer::retire() {
  retired_.store(true);
  while (in_core_.load() != 0) ::usleep(1000);  // bounded: each IO ends by its RPC deadline
}

int64_t RingServer::io(Slot& s, uint32_t* path, uint32_t* reason) noexcept {
  // Counted before the check (both seq_cst): retire() either sees this IO
  // or this IO sees retire().
  in_core_.fetch_add(1);
  struct Out {
    std::atomic<uint32_t>& n;
    ~Out() { n.fetch_sub(1); }
  } out{in_core_};
  if (retired_.load()) return -ENOTCONN;
  const Sqe& q = s.sqe;
  const bool read = q.op == kOpRead;
  if (!read && q.op != kOpWrite) return -EINVAL;
  std::shared_ptr<Buffer> buf = buf_view_.get(*bufs_, q.buf);
  std::shared_ptr<File> file = file_view_.get(*files_, q.file);
  if (!buf) return -EINVAL;
  if (!file) return -EBADF;
  if (file->dev != dev_) return -EXDEV;
  if (read ? !file->readable : !file->writable) return -EBADF;
  if (!read && file->append) return -EINVAL;  // O_APPEND has no offsets to honour
  if (q.len == 0 || q.len > LANEFS_DIRECT_MAX_IO) return -EINVAL;
  if (q.buf_off > buf->size || q.len > buf->size - q.buf_off) return -ERANGE;
  client::MountFs& fs = *fs_;
  // Below the RDMA threshold the lane is the datagram one; above it the
  // policy decides (it reads the cluster's RDMA state under a lock).
  const client::MountOptions& mo = fs.options();
  const client::Lane lane = q.len < (read ? mo.rdma_read_min : mo.rdma_write_min)
                                ? client::Lane::kUdp
                                : fs.planned_lane(read ? client::IoDir::kRead : client::IoDir::kWrite, q.len);
  // RDMA in place needs the buffer registered with the lane (once).
  client::RegisteredMem reg;
  if (lane == client::Lane::kRdma) reg = registered(*buf);
  bool bounce = false;
  if (buf->device) {
    client::DeviceIo d;
    d.encrypted = fs.fs().encrypted;
    d.lane = lane;
    d.dmabuf_supported = reg.region != nullptr || buf->rdma_refused.load() == nullptr;
    d.registered = reg.region != nullptr;
    d.buf_off = q.buf_off;
    d.file_off = q.file_off;
    d.len = q.len;
    const client::BounceReason why = client::choose_device_path(d);
    *reason = static_cast<uint32_t>(why);
    bounce = why != client::BounceReason::kNone;
    if (bounce) {
      reg.region.reset();  // before its lane
      reg.lane.reset();
    }
  }
  buf->inflight.fetch_add(1, std::memory_order_relaxed);
  struct Done {
    Buffer& b;
    ~Done() { b.inflight.fetch_sub(1, std::memory_order_relaxed); }
  } done{*buf};
  uint8_t* mem = buf->addr + q.buf_off;
  // This host's dirty pages of the range reach the backends first: a read
  // sees them, and a write is not overwritten by their later writeback.
  if (fs.options().cache == client::CacheMode::kWriteCache)
    ::sync_file_range(file->fd, static_cast<off64_t>(q.file_off), q.len,
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  std::span<uint8_t> io_span(mem, q.len);
  if (bounce) {
    if (s.bounce.size() < q.len) s.bounce.resize(q.len);  // grows once per slot to its largest IO
    io_span = std::span<uint8_t>(s.bounce.data(), q.len);
    if (!read) {
      dmabuf_sync(*buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      std::memcpy(io_span.data(), mem, q.len);
      dmabuf_sync(*buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
    }
  }
  client::DataIoInfo info;
  const client::RegisteredMem* in_place = reg.region ? &reg : nullptr;
  // What the IO took: GPUDirect or a bounce for device memory; RDMA in
  // place (zero copies) or the datagram lane's one copy for host memory.
  auto took = [&] {
    const bool zero_copy = info.in_place_pieces > 0 && info.in_place_pieces == info.rdma_pieces;
    if (zero_copy) fs.direct_counters().rdma_zero_copy_ios.fetch_add(1, std::memory_order_relaxed);
    if (buf->device) {
      if (!bounce && !zero_copy) *reason = static_cast<uint32_t>(client::BounceReason::kNotRdma);  // fell back
      *path = bounce || !zero_copy ? LANEFS_PATH_BOUNCED : LANEFS_PATH_GPUDIRECT;
    } else {
      *path = info.rdma_pieces > 0 ? LANEFS_PATH_RDMA : LANEFS_PATH_HOST;
    }
  };
  if (read) {
    auto r = fs.read_into(file->nodeid, q.file_off, io_span, in_place, &info);
    took();
    if (!r.ok()) return -to_errno(r.code());
    if (bounce && *r > 0) {
      dmabuf_sync(*buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
      std::memcpy(mem, io_span.data(), *r);
      dmabuf_sync(*buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
    }
    return static_cast<int64_t>(*r);
  }
  auto a = fs.write(file->nodeid, q.file_off, io_span, file->kill_privs, in_place, &info);
  took();
  if (!a.ok()) return -to_errno(a.code());
  std::optional<uint8_t> last;
  if (q.file_off + q.len == a->size) last = io_span[q.len - 1];
  fs.bypassed_cache(file->nodeid, *a, last);
  return static_cast<int64_t>(q.len);
}

client::RegisteredMem RingServer::registered(Buffer& b) {
  client::RdmaPath* path = fs_->cluster().rdma_path();
  std::shared_ptr<transport::RdmaLane> lane = path ? path->lane() : nullptr;
  if (!lane || b.addr == nullptr) return {};
  std::lock_guard lk(b.rdma_mu);
  if (b.rdma.lane == lane) return b.rdma;
  if (b.rdma_refused.load() == lane.get()) return {};
  auto r = lane->register_region(b.addr, b.size, b.device ? b.fd : -1, b.dmabuf_offset);
  if (!r.ok()) {
    LOG_WARN("direct API: registering a {} buffer of {} bytes with RDMA: {}", b.device ? "device" : "host", b.size,
             r.error().to_string());
    b.rdma_refused = lane.get();  // not tried again on this lane
    return {};
  }
  b.rdma.region.reset();  // an old lane's registration goes before that lane
  b.rdma.lane = std::move(lane);
  b.rdma.region = std::move(*r);
  return b.rdma;
}

void RingServer::post(uint64_t user_data, int64_t res, uint32_t path, uint32_t reason) noexcept {
  // take() left room for this completion.
  lanefs_cqe& c = cqes_[cq_tail_ & mask_];
  c.res = res;
  c.user_data = user_data;
  c.path = path;
  c.reason = reason;
  sh_->cq_tail.store(++cq_tail_, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // One ring per wait: the flag is taken (the application sets it again
  // if it goes back to sleep).
  if (sh_->app_waiting.load(std::memory_order_relaxed) && sh_->app_waiting.exchange(0)) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(completion_, &one, sizeof one);
  }
}

// Sleeps on the doorbell, the network and stop, after telling the
// application to ring (and checking once more that it has not submitted).
void RingServer::sleep() {
  uint64_t timeout = 1'000'000'000;
  std::array<int, 2> net = {-1, -1};
  if (driver_) net = driver_->arm(&timeout);
  step_due_ns_ = std::min(step_due_ns_, mono_ns() + timeout);
  const bool cq_full = inflight_ + (cq_tail_ - sh_->cq_head.load(std::memory_order_acquire)) >= entries_;
  // A full completion queue frees up as the application reaps, which rings
  // nothing: look again soon.
  if (cq_full) timeout = std::min<uint64_t>(timeout, 1'000'000);
  sh_->server_sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!stop_.load() && !cq_full && sh_->sq_tail.load(std::memory_order_acquire) != sq_head_) {
    sh_->server_sleeping.store(0, std::memory_order_relaxed);
    return;
  }
  pollfd p[4] = {{doorbell_, POLLIN, 0}, {stop_fd_, POLLIN, 0}, {net[0], POLLIN, 0}, {net[1], POLLIN, 0}};
  timespec ts{static_cast<time_t>(timeout / 1'000'000'000), static_cast<long>(timeout % 1'000'000'000)};
  const int rc = ::ppoll(p, 4, &ts, nullptr);
  sh_->server_sleeping.store(0, std::memory_order_relaxed);
  if (rc <= 0) return;
  uint64_t v;
  if (p[0].revents & POLLIN) {
    [[maybe_unused]] ssize_t r = ::read(doorbell_, &v, sizeof v);
  }
  if (p[1].revents & POLLIN) {  // stop_ is set: consumed, so the drain sleeps instead of spinning
    [[maybe_unused]] ssize_t r = ::read(stop_fd_, &v, sizeof v);
  }
  for (int i = 0; i < 2; ++i)
    if (p[2 + i].revents & POLLIN) {
      driver_->fired(i);
      net_fired_ = true;
    }
}

void RingServer::run() {
  auto d = rpc::CallDriver::create(fs_->cluster().rpc(), *this);
  if (d.ok())
    driver_ = std::move(*d);
  else  // calls then block the thread, one IO at a time
    LOG_WARN("direct ring: no call driver ({}); IOs run one at a time", d.error().to_string());
  for (;;) {
    const bool stopping = stop_.load();
    if (stopping && inflight_ == 0) break;
    if (!stopping) take();
    running_.swap(ready_);
    for (Slot* s : running_) run_slot(*s);  // their calls are sent as they start
    running_.clear();
    if (driver_ && (net_fired_ || mono_ns() >= step_due_ns_)) {
      net_fired_ = false;
      step_due_ns_ = UINT64_MAX;
      driver_->step();
    }
    // Drop references to what the control thread removed (poke()).
    bufs_seen_.store(buf_view_.sync(*bufs_));
    files_seen_.store(file_view_.sync(*files_));
    if (!ready_.empty()) continue;
    sleep();
  }
  // Every fiber waits for its next IO: let each one return.
  for (auto& s : slots_) {
    if (!s->fiber) continue;
    current_ = s.get();
    s->fiber = std::move(s->fiber).resume();
    current_ = nullptr;
  }
  driver_.reset();
  buf_view_.clear();
  file_view_.clear();
}

}  // namespace lanefs::direct

#include "backend/disk_ring.h"

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/log.h"

namespace lanefs::backend {

struct DiskRing::Op {
  Done done;
  Op* next = nullptr;
  uint64_t id = 0;
  uint8_t opcode = IORING_OP_NOP;
  bool datasync = false;
  int fd = -1;
  void* buf = nullptr;
  uint32_t len = 0;
  uint64_t off = 0;
  const struct iovec* iov = nullptr;
  unsigned iovcnt = 0;
};

namespace {
constexpr size_t kOpBlock = 64;
constexpr size_t kReapBatch = 32;
constexpr int kPollRounds = 4;  // poll() repeats while callbacks queue instant work
}  // namespace

Result<std::unique_ptr<DiskRing>> DiskRing::create(uint32_t entries) {
  std::unique_ptr<DiskRing> r(new DiskRing());
  auto ring = std::make_unique<struct io_uring>();
  struct io_uring_params params = {};
  int rc = io_uring_queue_init_params(entries, ring.get(), &params);
  if (rc < 0) {
    if (rc == -EPERM || rc == -ENOSYS)
      return make_error(Errc::kNotSupported,
                        sys_error("io_uring_queue_init", -rc).message +
                            " (io_uring disabled: sysctl kernel.io_uring_disabled?)");
    return sys_error("io_uring_queue_init", -rc);
  }
  r->ring_ = std::move(ring);
  r->cq_entries_ = params.cq_entries;
  r->event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->event_fd_ < 0) return sys_error("eventfd", errno);
  rc = io_uring_register_eventfd(r->ring_.get(), r->event_fd_);
  if (rc < 0) return sys_error("io_uring_register_eventfd", -rc);
  return r;
}

DiskRing::~DiskRing() {
  if (ring_) {
    // The kernel may still be filling callers' buffers: let every queued
    // operation finish and run its callback first.
    while (inflight_ > 0) {
      size_t ran = poll_wait(1000);
      if (ran == 0 && in_kernel_ == 0 && posted_head_ == nullptr) {
        LOG_ERROR("disk ring: {} operation(s) could not be submitted; dropped at teardown",
                  inflight_);
        break;
      }
    }
    io_uring_queue_exit(ring_.get());
  }
  if (event_fd_ >= 0) ::close(event_fd_);
}

DiskRing::Op* DiskRing::get_op(uint8_t opcode, int fd, Done done) {
  if (free_ == nullptr) {
    // Grows the pool by a block; the loop's steady state reuses ops.
    blocks_.push_back(std::make_unique<Op[]>(kOpBlock));
    Op* block = blocks_.back().get();
    for (size_t i = 0; i < kOpBlock; ++i) {
      block[i].next = free_;
      free_ = &block[i];
    }
  }
  Op* op = free_;
  free_ = op->next;
  op->next = nullptr;
  op->id = ++next_op_id_;
  op->opcode = opcode;
  op->fd = fd;
  op->done = std::move(done);
  ++inflight_;
  return op;
}

void DiskRing::read(int fd, void* dst, uint32_t len, uint64_t off, Done done) {
  Op* op = get_op(IORING_OP_READ, fd, std::move(done));
  op->buf = dst;
  op->len = len;
  op->off = off;
  queue(op);
}

void DiskRing::writev(int fd, const struct iovec* iov, unsigned iovcnt, uint64_t off, Done done) {
  Op* op = get_op(IORING_OP_WRITEV, fd, std::move(done));
  op->iov = iov;
  op->iovcnt = iovcnt;
  op->off = off;
  queue(op);
}

void DiskRing::fdatasync(int fd, Done done) {
  Op* op = get_op(IORING_OP_FSYNC, fd, std::move(done));
  op->datasync = true;
  queue(op);
}

void DiskRing::fsync(int fd, Done done) {
  Op* op = get_op(IORING_OP_FSYNC, fd, std::move(done));
  op->datasync = false;
  queue(op);
}

void DiskRing::post(Done done) {
  Op* op = get_op(IORING_OP_NOP, -1, std::move(done));
  if (posted_tail_)
    posted_tail_->next = op;
  else
    posted_head_ = op;
  posted_tail_ = op;
}

void DiskRing::queue(Op* op) {
  // FIFO: nothing overtakes the backlog.
  if (backlog_head_ == nullptr && prep(op)) return;
  if (backlog_tail_)
    backlog_tail_->next = op;
  else
    backlog_head_ = op;
  backlog_tail_ = op;
}

bool DiskRing::prep(Op* op) {
  // Never more in the kernel than the completion queue holds: no overflow.
  if (in_kernel_ >= cq_entries_) return false;
  struct io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) {
    submit();  // a full SQ: hand it to the kernel and retry
    sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) return false;
  }
  switch (op->opcode) {
    case IORING_OP_READ:
      io_uring_prep_read(sqe, op->fd, op->buf, op->len, op->off);
      break;
    case IORING_OP_WRITEV:
      io_uring_prep_writev(sqe, op->fd, op->iov, op->iovcnt, op->off);
      break;
    default:
      io_uring_prep_fsync(sqe, op->fd, op->datasync ? IORING_FSYNC_DATASYNC : 0);
      break;
  }
  io_uring_sqe_set_data(sqe, op);
  ++in_kernel_;
  ++unsubmitted_;
  signaled_ = true;
  if (trace_) trace_->push_back({TraceEvent::kQueued, op->opcode, op->fd, op->id, 0});
  return true;
}

void DiskRing::feed_backlog() {
  while (backlog_head_ != nullptr) {
    Op* op = backlog_head_;
    Op* next = op->next;
    op->next = nullptr;
    if (!prep(op)) {
      op->next = next;
      return;
    }
    backlog_head_ = next;
    if (backlog_head_ == nullptr) backlog_tail_ = nullptr;
  }
}

void DiskRing::submit() {
  if (unsubmitted_ == 0) return;
  int rc = io_uring_submit(ring_.get());
  if (rc >= 0) {
    unsubmitted_ -= std::min<size_t>(unsubmitted_, static_cast<size_t>(rc));
    return;
  }
  // -EAGAIN/-EBUSY: the kernel is short of resources or has completions to
  // post first; the entries stay queued and the next poll() tries again.
  if (rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
    LOG_ERROR("disk ring: {}", sys_error("io_uring_submit", -rc).to_string());
}

size_t DiskRing::reap() {
  size_t ran = 0;
  struct io_uring_cqe* cqes[kReapBatch];
  struct Reaped {
    Op* op;
    int32_t res;
  } reaped[kReapBatch];
  // Bounded: callbacks may keep the kernel busy, and poll() must return.
  for (size_t budget = cq_entries_ * 2; budget > 0;) {
    unsigned got = io_uring_peek_batch_cqe(ring_.get(), cqes, kReapBatch);
    if (got == 0) break;
    for (unsigned i = 0; i < got; ++i)
      reaped[i] = {static_cast<Op*>(io_uring_cqe_get_data(cqes[i])), cqes[i]->res};
    io_uring_cq_advance(ring_.get(), got);
    in_kernel_ -= got;
    budget -= std::min<size_t>(budget, got);
    for (unsigned i = 0; i < got; ++i) {
      Op* op = reaped[i].op;
      if (trace_)
        trace_->push_back({TraceEvent::kCompleted, op->opcode, op->fd, op->id, reaped[i].res});
      Done done = std::move(op->done);
      op->next = free_;
      free_ = op;
      --inflight_;
      done(reaped[i].res);
      ++ran;
    }
  }
  return ran;
}

size_t DiskRing::run_posted() {
  Op* op = posted_head_;
  posted_head_ = posted_tail_ = nullptr;
  size_t ran = 0;
  while (op != nullptr) {
    Op* next = op->next;
    Done done = std::move(op->done);
    op->next = free_;
    free_ = op;
    --inflight_;
    done(0);
    ++ran;
    op = next;
  }
  return ran;
}

size_t DiskRing::poll() {
  if (signaled_) {
    // Drain before reaping: a completion posted after this read signals
    // again, so a loop that sleeps after poll() cannot miss it.
    uint64_t count;
    while (::read(event_fd_, &count, sizeof count) < 0 && errno == EINTR) {
    }
    signaled_ = in_kernel_ > 0;
  }
  size_t ran = 0;
  for (int round = 0; round < kPollRounds; ++round) {
    feed_backlog();
    submit();
    size_t n = reap();
    n += run_posted();
    ran += n;
    if (n == 0) break;
  }
  feed_backlog();
  submit();
  return ran;
}

size_t DiskRing::poll_wait(int timeout_ms) {
  size_t ran = poll();
  if (ran > 0 || in_kernel_ == 0 || has_pending()) return ran;
  struct pollfd p = {event_fd_, POLLIN, 0};
  int rc = ::poll(&p, 1, timeout_ms);
  if (rc < 0 && errno != EINTR) LOG_WARN("disk ring: {}", sys_error("poll", errno).to_string());
  signaled_ = true;
  return poll();
}

bool DiskRing::has_pending() const noexcept {
  return posted_head_ != nullptr || unsubmitted_ > 0 ||
         (backlog_head_ != nullptr && in_kernel_ < cq_entries_);
}

void DiskRing::trace_mark(int fd, uint64_t mark) {
  if (trace_) trace_->push_back({TraceEvent::kMark, 0, fd, mark, 0});
}

}  // namespace lanefs::backend

// DiskRing: one io_uring (liburing) for one event-loop thread's disk IO.
//
// A loop thread that serves data requests inline owns one DiskRing. It
// queues reads, writes and syncs with read()/writev()/fdatasync()/fsync(),
// then calls poll(), which submits the queued entries to the kernel, reaps
// every completion that is ready and runs the completions' callbacks. When
// nothing is ready the loop sleeps on notify_fd() together with its other
// fds (sockets, the transport's notify fd) and calls poll() when it wakes.
//
//   loop:  handle datagrams (they call read()/writev()/... through ChunkStore)
//          ring.poll()                  // submit + reap + callbacks
//          sleep on {sockets, ring.notify_fd()} unless ring.has_pending()
//
// Ownership: the ring owns its io_uring, its eventfd and a pool of op
// contexts (grown in blocks, reused through a freelist: no allocation per
// operation once the pool covers the loop's depth). Callers own the fds and
// the buffers; a buffer (and an iovec array) must stay valid until its
// callback has run.
//
// Threading: not thread-safe. One thread creates-or-receives the ring and
// is the only one that calls its methods from then on.
//
// Callbacks: `done` runs only inside poll() (or the destructor), never inside
// the call that queued it, so a caller never re-enters itself. A callback may
// queue more operations on the same ring; they are submitted before poll()
// returns. res is what the kernel returned: bytes transferred (a short count
// is possible: the caller continues) or -errno (-EBADF, -EIO, ...).
//
// Blocking: read()/writev()/fdatasync()/fsync()/post() never block. When the
// submission queue is full they submit what is queued (io_uring_enter, which
// does not wait for completions) and retry; if the kernel cannot take more
// (too many in flight for the completion queue, or -EBUSY/-EAGAIN) the
// operation waits in a user-space backlog that poll() feeds in later.
// poll() does not wait for completions; poll_wait() does (tests, benches,
// blocking helpers).
//
// Errors: create() fails with the failing call named ("io_uring_queue_init:
// ...", "eventfd: ...", "io_uring_register_eventfd: ..."); kNotSupported
// when the kernel has io_uring disabled (sysctl kernel.io_uring_disabled).
// Per-operation errors reach the callback as -errno.
//
// Destruction: the destructor polls until every queued operation has
// completed and run its callback (the kernel may still be writing into the
// caller's buffers otherwise), then tears the ring down.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/inline_fn.h"
#include "common/result.h"

struct io_uring;

namespace lanefs::backend {

class DiskRing {
 public:
  // `entries`: submission queue size (rounded up to a power of two by the
  // kernel); the completion queue is twice that.
  static Result<std::unique_ptr<DiskRing>> create(uint32_t entries = 256);
  ~DiskRing();
  DiskRing(const DiskRing&) = delete;
  DiskRing& operator=(const DiskRing&) = delete;

  // An eventfd registered with io_uring_register_eventfd: readable when
  // completions are waiting. poll() drains it. Owned by the ring.
  int notify_fd() const noexcept { return event_fd_; }

  using Done = InlineFn<void(int32_t res), 64>;

  // Reads up to len bytes at file offset off into dst.
  void read(int fd, void* dst, uint32_t len, uint64_t off, Done done);
  // Writes the iovecs at file offset off; iov[] and the memory it points to
  // stay valid until done has run.
  void writev(int fd, const struct iovec* iov, unsigned iovcnt, uint64_t off, Done done);
  // fdatasync(2) / fsync(2) of fd as an SQE (fsync for directories: a new
  // name is only durable once its directory is synced).
  void fdatasync(int fd, Done done);
  void fsync(int fd, Done done);
  // Runs done(0) from the next poll() (or the current one, when called from
  // a callback): deferred work and errors found before any IO was queued,
  // delivered like a completion so callers never re-enter.
  void post(Done done);

  // Submits queued SQEs, reaps every ready CQE and runs the callbacks (and
  // posted work), repeating while callbacks queue work that completes at
  // once (bounded). Returns the number of callbacks run. Never waits.
  size_t poll();
  // poll(); if nothing ran and operations are in flight, waits up to
  // timeout_ms (-1: no limit) for notify_fd() and polls again.
  size_t poll_wait(int timeout_ms);
  // Operations whose callback has not run yet (in the kernel, in the
  // backlog, or posted).
  size_t inflight() const noexcept { return inflight_; }
  // True when poll() has work it can do without waiting for the kernel
  // (posted callbacks, or SQEs/backlog not yet handed to the kernel): a loop
  // must not sleep on notify_fd() then.
  bool has_pending() const noexcept;

  // ---- test instrumentation
  // Every operation's queueing and completion, in the order they happened on
  // this thread; callers may add their own marks (e.g. "acknowledged") to the
  // same sequence with trace_mark(). Off unless a vector is given.
  struct TraceEvent {
    enum Kind : uint8_t { kQueued, kCompleted, kMark } kind;
    uint8_t opcode;  // an IORING_OP_* value (kQueued/kCompleted)
    int fd;
    uint64_t op;  // operation id (kQueued/kCompleted) or the caller's mark
    int32_t res;  // kCompleted: the result
  };
  void set_trace(std::vector<TraceEvent>* trace) noexcept { trace_ = trace; }
  void trace_mark(int fd, uint64_t mark);

 private:
  struct Op;
  DiskRing() = default;
  Op* get_op(uint8_t opcode, int fd, Done done);
  void queue(Op* op);
  bool prep(Op* op);  // false: no SQE available
  void feed_backlog();
  void submit();
  size_t reap();
  size_t run_posted();

  std::unique_ptr<struct io_uring> ring_;
  int event_fd_ = -1;
  unsigned cq_entries_ = 0;
  size_t inflight_ = 0;     // callbacks not yet run
  size_t in_kernel_ = 0;    // prepared SQEs whose CQE is not reaped
  size_t unsubmitted_ = 0;  // prepared SQEs not yet handed to the kernel
  uint64_t next_op_id_ = 0;
  bool signaled_ = false;  // an op went to the kernel since the eventfd was drained
  Op* free_ = nullptr;
  Op* backlog_head_ = nullptr;  // FIFO of ops waiting for an SQE
  Op* backlog_tail_ = nullptr;
  Op* posted_head_ = nullptr;  // FIFO of post()ed callbacks
  Op* posted_tail_ = nullptr;
  std::vector<std::unique_ptr<Op[]>> blocks_;
  std::vector<TraceEvent>* trace_ = nullptr;
};

}  // namespace lanefs::backend

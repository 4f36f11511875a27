// The io_uring FUSE channel (Linux 6.14+, fuse.enable_uring=Y; facts in
// ../shared/notes/fuse-io-uring.md). The kernel routes a request to the
// queue of the CPU its caller runs on; every possible CPU has a queue and
// every queue needs entries before the kernel uses any of them.
//
// Shape: per queue one thread (not pinned: see Queue::run) with one ring
// holding `depth` entries (mount option fuse_queue_depth; each a 4 KiB
// header buffer and a payload buffer of the negotiated size). Each entry
// has a fiber that runs its requests' handlers. A handler that calls the
// backends parks its fiber (rpc/call_driver.h): the thread goes on with
// other entries and sleeps in the same io_uring_enter on the kernel's
// requests and on the network (the RPC endpoint's fds as poll requests,
// its timers as the wait's timeout). When the backends answer, the
// handler resumes and its reply is committed with the same
// COMMIT_AND_FETCH that fetches the entry's next request. No thread
// hand-off and no blocked thread per request: requests in flight per CPU
// = depth, system calls per request ≤ 1 (fewer under load: one enter
// commits, fetches, sends and receives for every entry that is ready).
// The reply is written in place: the header over the request's, the
// reply's arguments into the payload buffer (a read's data lands there
// directly: Req::out).
//
// Errors: a REGISTER that fails is fatal to the mount (the kernel would
// otherwise hang it or silently go back to /dev/fuse); start() reports it.
// -ENOTCONN ends a thread (unmount, abort).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "common/result.h"

namespace lanefs::rpc {
class RpcClient;
}

namespace lanefs::fuse {

class Session;
struct RingEntry;  // channel_uring.cc

class UringChannel {
 public:
  // Registers depth entries on every possible CPU's queue of the
  // connection behind `devfd` (INIT answered with FUSE_OVER_IO_URING).
  // Its threads run even when it fails (`*outcome`): those registered end
  // when the caller aborts the connection; join() waits for them.
  // `rpc`: the client the handlers call (its calls are driven by the
  // queue threads' loops).
  static std::unique_ptr<UringChannel> start(Session& se, rpc::RpcClient& rpc, int devfd, uint32_t depth,
                                             size_t payload_size, Status* outcome);
  ~UringChannel();
  void join();  // every thread ended (the connection is gone)
  uint32_t queues() const { return queues_; }

  // A reply written into the entry's buffers (Session::reply for ring requests).
  static void set_reply(RingEntry& e, uint64_t unique, int error, const iovec* parts, int n) noexcept;

 private:
  UringChannel() = default;
  std::vector<std::thread> threads_;
  uint32_t queues_ = 0;
};

// CPUs the kernel may route requests from (/sys/devices/system/cpu/possible).
uint32_t possible_cpus();

// On a ring queue's fiber: runs fn(arg) on the queue's helper thread while
// the fiber parks, and returns true once it ran; false (nothing run)
// anywhere else. For a call that may wait for the kernel to finish another
// request of the same queue: a notification to /dev/fuse locks pages or
// a directory that a request parked on this thread may still hold, so the
// queue thread itself must never make it (it would wait for itself). The
// hand-off is on the notification path only, never on the request path.
bool run_off_ring(void (*fn)(void*), void* arg);

}  // namespace lanefs::fuse

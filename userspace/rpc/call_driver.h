// Calls from many fibers on one thread, driven by that thread's own event
// loop (the io_uring FUSE queues: one thread per CPU, one fiber per queue
// entry).
//
// Without a driver a caller drives its calls itself: a Batch leases an
// endpoint and its wait() polls the network until its calls are done, so a
// thread carries one request at a time. With a CallDriver installed on a
// thread, every Batch a fiber of that thread makes shares the driver's
// endpoint (on DPDK dedicated cores: the driver's mailbox and core), and
// its waits park the fiber; the thread's loop sleeps on arm()'s fds (in its
// io_uring, next to the kernel's requests) and calls step(), whose
// completions resume the fibers that wait for them. No call moves to
// another thread and nothing is copied or allocated for it.
//
// The one rule for code that runs on such a fiber: never hold a lock
// across a call that another fiber of the same thread may want, since the
// holder would park and the thread would block on the lock for good. Hold
// a NoPark for that span: calls made meanwhile block the thread as if no
// driver were installed (encrypted read-modify-write, client/sealed_io.cc).
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "rpc/rpc.h"

namespace lanefs::rpc {

// What the thread's scheduler offers: its fibers park and are resumed.
class Parker {
 public:
  // The fiber running now; nullptr when the loop itself runs (it never parks).
  virtual void* running() noexcept = 0;
  // The running fiber sleeps until resume(it) (the loop runs meanwhile).
  virtual void park() noexcept = 0;
  // Marks a fiber ready (from a completion, on the loop); idempotent.
  virtual void resume(void* fiber) noexcept = 0;

 protected:
  ~Parker() = default;
};

class CallDriver {
 public:
  // Installs itself on the calling thread. It takes an endpoint of
  // `client` at the first call and keeps it (on DPDK dedicated cores: a
  // mailbox and this thread's core). When the pool can open no endpoint
  // (256 at most), calls block their thread as without a driver.
  static Result<std::unique_ptr<CallDriver>> create(RpcClient& client, Parker& parker);
  ~CallDriver();  // waits for calls still out (each ends by its deadline); uninstalls

  // One turn: receive, timers, transmit; completions run here and resume
  // their fibers. Returns whether anything happened.
  bool step();
  // Before the loop sleeps: the fds to poll (-1: none) and the longest
  // sleep. Call step() when one fired or the time passed.
  std::array<int, 2> arm(uint64_t* timeout_ns);
  // arm()'s fd number `i` fired (a wake-up to consume before it is polled again).
  void fired(int i);
  size_t outstanding() const;

  // The driver installed on this thread (nullptr: none).
  static CallDriver* current() noexcept;

 private:
  friend class RpcClient;
  CallDriver(RpcClient& client, Parker& parker) : client_(client), parker_(parker) {}
  bool attach();  // has (or now took) an endpoint or mailbox
  RpcClient& client_;
  Parker& parker_;
  ClientEndpoint* ep_ = nullptr;  // leased for good, or
  Mailbox* mb_ = nullptr;         // dedicated cores: completions, with notify_fd_
  uint32_t core_ = 0;
  int notify_fd_ = -1;
};

// While one lives on a thread, its calls block the thread instead of
// parking the fiber (a lock is held across them). Nests.
class NoPark {
 public:
  NoPark() noexcept;
  ~NoPark();
  NoPark(const NoPark&) = delete;
  NoPark& operator=(const NoPark&) = delete;
  static bool active() noexcept;
};

}  // namespace lanefs::rpc

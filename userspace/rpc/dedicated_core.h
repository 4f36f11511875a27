// Internal to rpc/: the DPDK lane's dedicated cores (dedicated_mode=full).
//
// On a busy-polling port one thread per frontend core (transport config)
// owns one endpoint for good: it polls the port, answers ARP and drives
// every call made on that core (windows, retransmission, reassembly).
// Callers do not drive calls here: a caller sleeping between the bursts of
// a long message would need a wake-up per burst, and on a small machine it
// is off the CPU when its frames arrive (measured: 1 MiB writes over memif
// fell from 365 to 21-130 MB/s). So a call crosses threads twice on this
// lane, on purpose and only here: the caller hands it to its core through
// a submission queue, and the core hands the completion back through the
// caller's Mailbox with one futex wake. The response's data still lands
// straight in the caller's sink; only a response that does not go to a
// sink (metadata replies) is copied once into the mailbox.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "rpc/client_endpoint.h"
#include "rpc/rpc.h"

namespace lanefs::rpc {

// One caller's completions (a Batch while it lives; reused afterwards by
// the same thread). Caller side: dones_, outstanding_. Core side: deliver().
class Mailbox {
 public:
  // Caller: reserves the id of a new call and keeps its completion.
  uint32_t add(CallDone done);
  // Core: the call `id` completed (any thread but the caller's).
  void deliver(uint32_t id, Result<Response> r);
  // Caller: runs completions until none is outstanding (or, with until_any,
  // at least one ran). Spins while it holds one of `spin`'s slots, then
  // sleeps on a futex.
  void wait(bool until_any, SpinSlots* spin, uint64_t busy_poll_ns);
  size_t outstanding() const { return outstanding_; }
  // For a caller that sleeps in its own event loop (call_driver.h): every
  // delivery also writes this eventfd; poll() runs what was delivered.
  void set_notify_fd(int fd) { notify_fd_ = fd; }
  size_t poll() { return run_completions(); }

 private:
  struct Completion {
    uint32_t id = 0;
    bool ok = false;
    Error error;
    Response resp;
    Buffer copy;  // the response when it was not in the call's sink
  };
  size_t run_completions();

  std::vector<CallDone> dones_;  // by id
  int notify_fd_ = -1;
  std::vector<uint32_t> free_ids_;
  size_t outstanding_ = 0;
  std::vector<Completion> taking_;
  std::mutex mu_;                   // ready_
  std::vector<Completion> ready_;   // delivered, not yet run
  std::atomic<uint32_t> seq_{0};    // bumped on every delivery (futex word)
};

// One dedicated core: its thread and endpoint.
class DedicatedCore {
 public:
  // `prepare` brings the endpoint's HA paths and faults up to date (the
  // pool's configuration), called by the core between turns.
  using Prepare = std::function<void(ClientEndpoint&)>;
  // `ep` stays the pool's; the core leases it from start() to stop().
  DedicatedCore(ClientEndpoint* ep, Prepare prepare);
  ~DedicatedCore();  // stop()
  Status start(int cpu);
  // Joins the thread; submitted calls it never started fail with
  // kShutdown (those in flight fail when the pool destroys the endpoint).
  void stop();
  // Any thread: the call is started by the core on its next turn.
  void submit(const CallArgs& args, Mailbox* mb, uint32_t id);

 private:
  struct Submitted {
    CallArgs args;
    Mailbox* mb;
    uint32_t id;
  };
  void run();

  ClientEndpoint* ep_;
  Prepare prepare_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pending_{false};  // subs_ is not empty
  std::mutex mu_;                     // subs_
  std::vector<Submitted> subs_;
  std::vector<Submitted> taking_;  // core thread only
};

// The mailbox a Batch uses on this thread (a free list per thread, so
// nested Batches get their own and none is allocated per call).
Mailbox* take_mailbox();
void return_mailbox(Mailbox* mb);

}  // namespace lanefs::rpc

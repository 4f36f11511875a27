// RingServer: the frontend's side of one direct-API ring
// (include/lanefs/direct.h, direct_wire.h), on a thread of its own.
//
// Shape: the thread takes SQEs from the shared ring while it has room for
// their completions, starts each on a fiber (one per ring entry, made as
// needed) that calls the mount's client core (client::MountFs) straight
// into or out of the registered buffer, and posts the completion. A call
// that waits for the backends parks its fiber (rpc/call_driver.h): the
// thread goes on with other IOs and sleeps in one ppoll on the doorbell,
// the network and its stop eventfd. No thread hand-off per IO between the
// ring and the backends; the one copy is the lane's (packets <-> buffer).
//
// Kept on the IO path, by name: a shared_ptr copy of the buffer and file
// per IO (an atomic increment: they outlive a concurrent unregister);
// sync_file_range before IO on a writecache mount (a syscall; it writes
// back only what this host's page cache holds dirty in the range, and
// blocks this thread while it does); the bounce copy for device memory
// that cannot take GPUDirect.
//
// Threading: start() and the destructor on the control thread; the rest
// on the ring's thread. Counters are atomics.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "direct/direct_wire.h"
#include "direct/registry.h"
#include "rpc/call_driver.h"

namespace lanefs::direct {

class RingServer final : public rpc::Parker {
 public:
  struct Setup {
    std::shared_ptr<client::MountFs> fs;
    std::string target;  // the mount point (ps)
    dev_t dev = 0;       // the mount's device: files must be on it
    // Owned by the server from start() on (closed on failure too).
    int memfd = -1, doorbell = -1, completion = -1;
    uint32_t entries = 0;  // as the application asked (checked here)
    const Table<Buffer>* bufs = nullptr;
    const Table<File>* files = nullptr;
  };
  // Maps and checks the ring memory and starts the thread.
  static Result<std::unique_ptr<RingServer>> start(Setup s);
  // Takes no new SQEs, waits for the IOs in flight (each ends by its RPC
  // deadline), joins the thread, unmaps.
  ~RingServer();

  // The mount went away (its channel and its hook into the kernel's cache
  // are about to be destroyed): IOs already in the client core finish,
  // later ones complete with -ENOTCONN without touching the mount. Blocks
  // until the ones in flight are out of the client core.
  void retire();

  // The control thread removed buffers or files: the ring thread drops its
  // references to them (poke wakes it; caught_up says it did). Until then
  // a forgotten file stays open in the frontend (and its mount busy).
  void poke();
  bool caught_up(uint64_t bufs_version, uint64_t files_version) const {
    return bufs_seen_.load() >= bufs_version && files_seen_.load() >= files_version;
  }

  uint64_t ios() const { return ios_.load(std::memory_order_relaxed); }
  uint32_t entries() const { return entries_; }
  const std::string& target() const { return target_; }
  client::MountFs& fs() { return *fs_; }

  void* running() noexcept override { return current_; }
  void park() noexcept override;
  void resume(void* fiber) noexcept override;

 private:
  struct Slot;
  RingServer() = default;
  void run();
  void take();
  void start_slot(Slot& s);
  void run_slot(Slot& s);
  void serve(Slot& s) noexcept;
  int64_t io(Slot& s, uint32_t* path, uint32_t* reason) noexcept;
  // The buffer's registration with the mount's current RDMA lane (made at
  // its first use there; empty when there is none or it failed).
  client::RegisteredMem registered(Buffer& b);
  void post(uint64_t user_data, int64_t res, uint32_t path, uint32_t reason) noexcept;
  void sleep();

  std::shared_ptr<client::MountFs> fs_;
  std::string target_;
  dev_t dev_ = 0;
  const Table<Buffer>* bufs_ = nullptr;
  const Table<File>* files_ = nullptr;
  Table<Buffer>::View buf_view_;
  Table<File>::View file_view_;
  RingShared* sh_ = nullptr;
  size_t map_len_ = 0;
  Sqe* sqes_ = nullptr;
  lanefs_cqe* cqes_ = nullptr;
  uint32_t entries_ = 0, mask_ = 0;
  uint32_t sq_head_ = 0, cq_tail_ = 0;
  int memfd_ = -1, doorbell_ = -1, completion_ = -1, stop_fd_ = -1;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_, ready_, running_;
  Slot* current_ = nullptr;
  uint32_t inflight_ = 0;
  std::unique_ptr<rpc::CallDriver> driver_;
  bool net_fired_ = true;
  uint64_t step_due_ns_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> retired_{false};
  std::atomic<uint64_t> bufs_seen_{0}, files_seen_{0};
  std::atomic<uint32_t> in_core_{0};  // IOs inside the client core (retire() waits for 0)
  std::atomic<uint64_t> ios_{0};
  std::thread thread_;
};

}  // namespace lanefs::direct

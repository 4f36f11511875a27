// One mount's FUSE connection, spoken by lanefs itself (fuse/abi.h): the
// mount(2) call with a /dev/fuse fd, INIT negotiated here, and the classic
// channel — threads that read requests from /dev/fuse (each on its own
// fd, cloned with FUSE_DEV_IOC_CLONE, so they never share a kernel queue
// lock) and write each reply with one writev. Requests are decoded and
// answered by the channel-neutral dispatcher (dispatch.cc), which calls
// client::MountFs; the channel only moves bytes.
//
// Threads: run() reads INIT on the calling thread, then serves with a pool
// that grows while every reader is busy (up to kMaxThreads; a handler
// blocks on the network, so concurrency is threads). It returns when the
// kernel ends the connection (unmount, abort). Replies and notifications
// may be written from any thread.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "client/mount_fs.h"
#include "common/result.h"
#include "fuse/abi.h"

namespace lanefs::fuse {

class Session;

// One request being served: where its reply goes and who asked.
struct Req {
  Session* se = nullptr;
  int fd = -1;  // the /dev/fuse fd it was read from: its reply goes there
  uint64_t unique = 0;
  uint32_t uid = 0, gid = 0, pid = 0;
};

class Session {
 public:
  struct Options {
    std::string target;   // mount point (absolute, resolved)
    std::string source;   // shown in /proc/mounts (backend/fs)
    bool read_only = false;
    client::MountFs* fs = nullptr;
  };
  // mount(2) on a fresh /dev/fuse fd. The kernel queues INIT at once.
  static Result<std::unique_ptr<Session>> mount(const Options& o);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // INIT, then serve until the connection ends. Returns once every reader
  // thread has stopped.
  void run();
  // Detaches the mount (MNT_DETACH); the connection ends when the kernel
  // lets go of it (at once when nothing on it is open).
  void unmount();

  // Writes a reply: header (error, unique) and `n` pieces. Returns 0, or
  // -errno (-ENOENT: the request was interrupted and is gone).
  int reply(const Req& r, int error, const iovec* parts, int n) noexcept;
  // A notification (unique 0) on the main fd; -errno on failure.
  int notify(abi::NotifyCode code, const iovec* parts, int n) noexcept;

  client::MountFs& fs() { return *opts_.fs; }
  uint64_t kernel_flags() const { return kernel_flags_; }  // what the kernel offered at INIT
  uint64_t granted_flags() const { return granted_; }      // what we asked for
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  explicit Session(Options o) : opts_(std::move(o)) {}
  bool init();  // reads INIT from fd_ and answers it; false if the connection ended
  void reader(int fd);
  void maybe_grow();

  static constexpr int kMinThreads = 4, kMaxThreads = 32;
  Options opts_;
  int fd_ = -1;
  bool mounted_ = false;
  uint64_t kernel_flags_ = 0, granted_ = 0;
  size_t buf_size_ = 0;
  uint32_t minor_ = 0;
  std::mutex mu_;  // threads_
  std::vector<std::thread> threads_;
  std::atomic<int> idle_{0}, running_{0};
  std::atomic<bool> ended_{false};
  std::atomic<uint64_t> requests_{0};
};

// The dispatcher (dispatch.cc): decodes one request read from a channel and
// answers it through `r`: the per-op header (`op_in`, in_args[0]) and the
// rest (`payload`), as the kernel hands them to an io_uring entry.
void dispatch(const Req& r, const abi::InHeader& h, std::span<const uint8_t> op_in,
              std::span<const uint8_t> payload) noexcept;
// The size of an opcode's per-op header: where the classic channel's one
// buffer splits into op_in and payload.
size_t op_in_size(uint32_t opcode);
// The INIT reply's flags for this mount (dispatch.cc): what we want of
// what the kernel offers.
uint64_t init_flags(const client::MountFs& m, uint64_t offered);

}  // namespace lanefs::fuse

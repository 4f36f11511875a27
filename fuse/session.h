// One mount's FUSE connection, spoken by lanefs itself (fuse/abi.h): the
// mount(2) call with a /dev/fuse fd, INIT negotiated here, and the classic
// channel — threads that read requests from /dev/fuse (each on its own
// fd, cloned with FUSE_DEV_IOC_CLONE, so they never share a kernel queue
// lock) and write each reply with one writev. Requests are decoded and
// answered by the channel-neutral dispatcher (dispatch.cc), which calls
// client::MountFs; the channel only moves bytes.
//
// Channels: with FUSE over io_uring negotiated (mount option fuse_channel,
// channel_uring.h) requests come on per-CPU rings and one classic reader
// stays for what the kernel still sends on /dev/fuse (FORGET, INTERRUPT);
// otherwise the classic channel serves everything with a pool that grows
// while every reader is busy (up to kMaxThreads; a handler blocks on the
// network, so concurrency is threads).
//
// The kernel client (lanefs.ko, kmod/uapi/lanefs.h) is a third way in: its
// /dev/lanefs connection speaks the same requests on the same ring layout,
// so mount_kernel() makes a Session whose only channel is UringChannel on
// that fd (no INIT: LANEFS_IOC_SETUP says what it would negotiate; no
// classic reader: FORGET comes on the rings too), and notifications become
// LANEFS_IOC_NOTIFY ioctls (fuse/kernel_client.cc).
//
// Threads: start() answers INIT on the calling thread and starts the
// channel; wait() returns when the kernel ended the connection (unmount,
// abort) and every channel thread stopped. Replies and notifications may be
// written from any thread.
#pragma once

#include <sys/uio.h>

#include <algorithm>
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
#include "fuse/channel_uring.h"

namespace lanefs::fuse {

class Session;

// One request being served: where its reply goes and who asked.
struct Req {
  Session* se = nullptr;
  int fd = -1;  // the /dev/fuse fd it was read from: its reply goes there
  uint64_t unique = 0;
  uint32_t uid = 0, gid = 0, pid = 0;
  RingEntry* ring = nullptr;  // io_uring channel: the reply goes into this entry
  // Where a handler may build a large reply in place (the ring entry's
  // payload buffer; null on the classic channel).
  uint8_t* out = nullptr;
  size_t out_cap = 0;
};

class Session {
 public:
  struct Options {
    std::string target;   // mount point (absolute, resolved)
    std::string source;   // shown in /proc/mounts (backend/fs)
    bool read_only = false;
    client::MountFs* fs = nullptr;
    client::FuseChannel channel = client::FuseChannel::kAuto;  // what to ask the kernel for
    std::string classic_because;  // kClassic standing in for auto: why (the channel's reason)
  };
  // mount(2) on a fresh /dev/fuse fd. The kernel queues INIT at once.
  static Result<std::unique_ptr<Session>> mount(const Options& o);
  // mount(2) of type lanefs on a fresh, set-up /dev/lanefs connection
  // (kernel_client.cc); start() then registers its rings.
  static Result<std::unique_ptr<Session>> mount_kernel(const Options& o);
  // A fresh /dev/lanefs connection takes over the lanefs.ko mount at
  // o.target whose frontend died (LANEFS_IOC_ATTACH): the mount, and what
  // is open in it, stay; start() then registers the rings.
  static Result<std::unique_ptr<Session>> attach_kernel(const Options& o);
  // Whether lanefs.ko can serve a mount here: /dev/lanefs exists, or
  // `modprobe lanefs` made it. `why` says what is missing when not.
  static bool kernel_client_available(std::string* why);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Answers INIT and starts the channel. Fails (the caller unmounts) when
  // the kernel cannot give the channel the mount asks for (fuse_channel=
  // uring) or a ring cannot be set up after io_uring was negotiated; then
  // uring_negotiated() says whether a classic mount might still work.
  Status start();
  // Until the connection ends and every channel thread stopped.
  void wait();
  // The connection is unusable (a ring failed after negotiation): aborts
  // it (umount -f) and detaches the mount.
  void abort();
  // Detaches the mount (MNT_DETACH); the connection ends when the kernel
  // lets go of it (at once when nothing on it is open).
  void unmount();

  // Writes a reply: header (error, unique) and `n` pieces. Returns 0, or
  // -errno (-ENOENT: the request was interrupted and is gone).
  int reply(const Req& r, int error, const iovec* parts, int n) noexcept;
  // A notification (unique 0) on the main fd; -errno on failure.
  int notify(abi::NotifyCode code, const iovec* parts, int n) noexcept;

  client::MountFs& fs() { return *opts_.fs; }
  bool uring() const { return uring_ != nullptr; }
  bool kernel_client() const { return kernel_; }
  bool attached() const { return attached_; }
  bool uring_negotiated() const { return (granted_ & abi::kOverIoUring) != 0; }
  const std::string& channel_reason() const { return reason_; }
  uint64_t requests_classic() const { return requests_classic_.load(std::memory_order_relaxed); }
  uint64_t requests_uring() const { return requests_uring_.load(std::memory_order_relaxed); }
  void count_uring_request() { requests_uring_.fetch_add(1, std::memory_order_relaxed); }
  // The most requests one io_uring queue thread held at once (its entries
  // waiting on the backends together): > 1 shows replies are committed
  // as the backends answer, not one request per thread.
  void note_uring_held(uint64_t n) {
    uint64_t seen = uring_peak_.load(std::memory_order_relaxed);
    while (n > seen && !uring_peak_.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
    }
  }
  uint64_t uring_peak_per_thread() const { return uring_peak_.load(std::memory_order_relaxed); }
  uint64_t kernel_flags() const { return kernel_flags_; }  // what the kernel offered at INIT
  uint64_t granted_flags() const { return granted_; }      // what we asked for

 private:
  explicit Session(Options o) : opts_(std::move(o)) {}
  Status init();  // reads INIT from fd_ and answers it
  Status open_kernel();   // kernel_client.cc
  Status start_kernel();
  int notify_kernel(abi::NotifyCode code, const iovec* parts, int n) noexcept;
  void reader(int fd);
  void maybe_grow();

  static constexpr int kMinThreads = 4, kMaxThreads = 32;
  int max_threads_ = kMaxThreads;  // 1 beside the io_uring channel
  Options opts_;
  int fd_ = -1;
  bool mounted_ = false;
  bool kernel_ = false;  // a lanefs.ko connection (/dev/lanefs), not FUSE
  bool attached_ = false;  // it took over a mount (attach_kernel), not made one
  uint64_t kernel_flags_ = 0, granted_ = 0;
  size_t buf_size_ = 0;
  uint32_t minor_ = 0;
  std::mutex mu_;  // threads_
  std::vector<std::thread> threads_;
  std::atomic<int> idle_{0}, running_{0};
  std::atomic<bool> ended_{false};
  std::atomic<uint64_t> requests_classic_{0}, requests_uring_{0}, uring_peak_{0};
  std::unique_ptr<UringChannel> uring_;
  std::string reason_;  // why this channel
};

inline constexpr uint32_t kMaxWrite = 1u << 20;  // 1 MiB requests: one chunk per read/write
// A ring entry's payload buffer: the largest request or reply.
constexpr size_t ring_payload_size() { return std::max<size_t>(abi::kMinReadBuffer, kMaxWrite); }

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
uint64_t init_flags(const client::MountFs& m, client::FuseChannel channel, uint64_t offered);
// Why the kernel does not offer FUSE over io_uring (for the mount's error
// or the channel's reason).
std::string uring_unavailable_reason();

}  // namespace lanefs::fuse

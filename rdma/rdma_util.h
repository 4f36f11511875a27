// Internal helpers of lanefs_rdma: error construction naming the failing
// verbs/rdmacm call, address conversion, RAII owners for rdma-core objects,
// and the connection private data both the lane and the transport exchange.
#pragma once

#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <rdma/rdma_cma.h>

#include <cerrno>
#include <cstdint>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/net_addr.h"
#include "common/result.h"
#include "transport/rdma_lane.h"

namespace lanefs::transport::rdma {

// rdma-core reports failures as -1 + errno (rdmacm, most verbs) or as a
// positive errno return (ibv_post_*, ibv_req_notify_cq, ibv_modify_qp).
inline Error call_error(std::string_view call, int err) {
  return sys_error("rdma: " + std::string(call), err);
}

inline sockaddr_in to_sockaddr(NetAddr a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr.s_addr = htonl(a.ip);
  s.sin_port = htons(a.port);
  return s;
}

inline NetAddr from_sockaddr(const sockaddr* sa) {
  if (sa == nullptr || sa->sa_family != AF_INET) return {};
  const auto* s = reinterpret_cast<const sockaddr_in*>(sa);
  return NetAddr{ntohl(s->sin_addr.s_addr), ntohs(s->sin_port)};
}

struct EventChannelDeleter {
  void operator()(rdma_event_channel* c) const noexcept { rdma_destroy_event_channel(c); }
};
struct PdDeleter {
  void operator()(ibv_pd* p) const noexcept { ibv_dealloc_pd(p); }
};
struct CompChannelDeleter {
  void operator()(ibv_comp_channel* c) const noexcept { ibv_destroy_comp_channel(c); }
};
struct CqDeleter {
  void operator()(ibv_cq* c) const noexcept { ibv_destroy_cq(c); }
};
struct MrDeleter {
  void operator()(ibv_mr* m) const noexcept { ibv_dereg_mr(m); }
};
using EventChannelPtr = std::unique_ptr<rdma_event_channel, EventChannelDeleter>;
using PdPtr = std::unique_ptr<ibv_pd, PdDeleter>;
using CompChannelPtr = std::unique_ptr<ibv_comp_channel, CompChannelDeleter>;
using CqPtr = std::unique_ptr<ibv_cq, CqDeleter>;
using MrPtr = std::unique_ptr<ibv_mr, MrDeleter>;

// Frees an rdma_cm id and its QP (if any). Callers must have acked every
// event of the id first: rdma_destroy_id waits for those acks.
inline void destroy_cm_id(rdma_cm_id* id) noexcept {
  if (id == nullptr) return;
  if (id->qp != nullptr) rdma_destroy_qp(id);
  rdma_destroy_id(id);
}

// Runs teardown work (rdma_destroy_qp/rdma_destroy_id of dropped
// connections) on its own thread: rdma_destroy_id can block until the IB CM
// leaves timewait (seconds), which must stall neither the thread reading
// rdma_cm events nor a caller. drain() runs what is queued and stops.
class Reaper {
 public:
  Reaper() : thread_([this] { run(); }) {}
  ~Reaper() { drain(); }
  void push(std::function<void()> fn) {
    {
      std::lock_guard lk(mu_);
      work_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  void drain() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !work_.empty(); });
      if (work_.empty()) return;  // stop_ and nothing left
      auto batch = std::move(work_);
      work_.clear();
      lk.unlock();
      for (auto& fn : batch) fn();
      lk.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> work_;
  bool stop_ = false;
  std::thread thread_;
};

// Private data of a connect request (client -> server) and of the accept
// (server -> client). 32 bytes: fits the 56 bytes rdma_cm leaves for RC.
//   token:  the lane's connection token, chosen at random by the client
//           (the server rejects a token it already knows).
//   listen: the connecting transport's listening address (datagram
//           transport: received datagrams report it as their source).
//   max_datagram: the sender's receive limit (datagram transport).
struct WireHello {
  static constexpr uint32_t kMagic = 0x4c4e4652;  // "LNFR"
  static constexpr uint16_t kVersion = 1;
  static constexpr uint16_t kLane = 1, kDatagram = 2;
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  uint16_t kind = 0;
  uint64_t token = 0;
  uint32_t listen_ip = 0;
  uint16_t listen_port = 0;
  uint16_t pad = 0;
  uint32_t max_datagram = 0;
  uint32_t reserved = 0;
};
static_assert(sizeof(WireHello) == 32);

// Parses private data; false when it is short or not ours.
inline bool parse_hello(const void* data, uint8_t len, uint16_t kind, WireHello* out) {
  if (data == nullptr || len < sizeof(WireHello)) return false;
  std::memcpy(out, data, sizeof(WireHello));
  return out->magic == WireHello::kMagic && out->version == WireHello::kVersion &&
         out->kind == kind;
}

// Device port description from an open context (netdev read from sysfs).
RdmaDeviceInfo describe_port(ibv_context* ctx, uint8_t port);

// The rdma_cm contexts (one per device); nullptr-terminated array owned by
// librdmacm. kNotSupported when there is no device at all.
Result<ibv_context*> first_cm_device();

// Responder resources / initiator depth both sides advertise: RDMA READ
// needs them on the reading side's initiator and the target's responder.
uint8_t rd_atomic_depth(ibv_context* ctx);

}  // namespace lanefs::transport::rdma

// RdmaPath: a client's RDMA lane to the backends of one cluster.
//
// It owns the client side of the RDMA seam (transport/rdma_lane.h) on the
// device that owns the client's source address, keeps one connection per
// backend (made on first use), and answers the cluster/host half of the
// lane policy (rules (a)-(d) in lane_policy.h) for a cluster map.
// A backend whose RDMA connection or transfer failed is not tried again for
// a short back-off (the IOs go over UDP meanwhile, reason kUnavailable).
// When the device itself goes away (the lane reports !alive()), the lane is
// dropped at once, which releases the device, and re-opened on the same
// address every back-off period until the device is back.
//
// Threading: thread-safe. token_for() may block up to the lane's connect
// timeout the first time a backend is used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "client/lane_policy.h"
#include "proto/messages.h"
#include "transport/rdma_lane.h"

namespace lanefs::client {

class RdmaPath {
 public:
  // Opens the lane on the RDMA device owning local_ip. Never fails: without
  // RDMA support or a device the path stays closed and availability() says
  // why (kNotBuilt, kNoLocalDevice). `why` gets the lane's error text then.
  static std::unique_ptr<RdmaPath> open(uint32_t local_ip, std::string* why = nullptr);
  // A path over an existing lane (tests; local_ip 0: never re-opened).
  explicit RdmaPath(std::unique_ptr<transport::RdmaLane> lane, NotRdmaReason closed_reason,
                    uint32_t local_ip = 0);

  // Rules (a)-(d) and the back-off: kNone when RDMA may carry IO to every
  // backend of `map` from the client named `client`.
  NotRdmaReason availability(const proto::ClusterMap& map, const std::string& client) const;

  // The connection token for backend `m` (connecting on first use).
  // kUnreachable while the backend is backing off after a failure.
  Result<uint64_t> token_for(const proto::Member& m);
  // Records a failed connection or transfer to `m`: drops the connection
  // (so the backend can no longer touch our buffers) and starts a back-off.
  void failed(const proto::Member& m, const Error& e);

  // The current lane (nullptr while there is none). Callers keep the
  // shared_ptr while they use the lane or a buffer leased from it.
  std::shared_ptr<transport::RdmaLane> lane() const;
  // "rxe1/1 (ethernet)" or why there is no lane.
  std::string describe() const;

  static constexpr uint64_t kBackoffNs = 5'000'000'000ull;

 private:
  struct Peer {
    uint64_t token = 0;
    uint64_t retry_after_ns = 0;
  };
  // Drops a dead lane and, after the back-off, tries to open a new one.
  // Called with mu_ held.
  void check_lane_locked() const;

  uint32_t local_ip_ = 0;
  mutable std::mutex mu_;
  mutable std::shared_ptr<transport::RdmaLane> lane_;
  mutable NotRdmaReason closed_reason_;
  mutable std::string closed_text_;
  mutable uint64_t reopen_after_ns_ = 0;
  std::map<uint64_t, Peer> peers_;  // by backend uuid
};

}  // namespace lanefs::client

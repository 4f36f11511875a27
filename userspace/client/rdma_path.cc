#include "client/rdma_path.h"

#include "common/clock.h"
#include "common/log.h"

namespace lanefs::client {

std::unique_ptr<RdmaPath> RdmaPath::open(uint32_t local_ip, std::string* why) {
  transport::RdmaLaneConfig c;
  c.bind = NetAddr{local_ip, 0};
  auto lane = transport::make_rdma_lane(c);
  if (lane.ok()) return std::make_unique<RdmaPath>(std::move(*lane), NotRdmaReason::kNone);
  if (why) *why = lane.error().to_string();
  auto p = std::make_unique<RdmaPath>(nullptr, lane.code() == Errc::kNotSupported
                                                   ? NotRdmaReason::kNotBuilt
                                                   : NotRdmaReason::kNoLocalDevice);
  p->closed_text_ = lane.error().to_string();
  return p;
}

RdmaPath::RdmaPath(std::unique_ptr<transport::RdmaLane> lane, NotRdmaReason closed_reason)
    : lane_(std::move(lane)), closed_reason_(lane_ ? NotRdmaReason::kNone : closed_reason) {}

NotRdmaReason RdmaPath::availability(const proto::ClusterMap& map, const std::string& client) const {
  if (closed_reason_ == NotRdmaReason::kNotBuilt) return closed_reason_;
  if (!map.rdma_enabled) return NotRdmaReason::kDisabledCluster;
  if (!map.rdma_enabled_for(client)) return NotRdmaReason::kDisabledClient;
  uint8_t link = 0;
  bool mixed = false;
  for (const auto& m : map.members) {
    if (m.rdma_link == 0) return NotRdmaReason::kBackendNoRdma;
    if (link != 0 && m.rdma_link != link) mixed = true;
    link = m.rdma_link;
  }
  if (mixed) return NotRdmaReason::kMixedFabric;
  if (!lane_) return closed_reason_;
  if (static_cast<uint8_t>(lane_->device().link) != link) return NotRdmaReason::kMixedFabric;
  std::lock_guard lk(mu_);
  uint64_t now = mono_ns();
  for (const auto& [uuid, p] : peers_)
    if (p.retry_after_ns > now) return NotRdmaReason::kUnavailable;
  return NotRdmaReason::kNone;
}

Result<uint64_t> RdmaPath::token_for(const proto::Member& m) {
  if (!lane_) return make_error(Errc::kUnreachable, "no RDMA lane: " + closed_text_);
  {
    std::lock_guard lk(mu_);
    auto& p = peers_[m.uuid];
    if (p.token != 0) return p.token;
    if (p.retry_after_ns > mono_ns())
      return make_error(Errc::kUnreachable, "RDMA to " + m.name + " is backing off after a failure");
  }
  // Connect outside the lock (may take up to the lane's timeout); the lane
  // itself makes concurrent callers share one connection.
  auto t = lane_->connect(NetAddr{m.addr.ip, m.rdma_port});
  if (!t.ok()) {
    failed(m, t.error());
    return t.error();
  }
  std::lock_guard lk(mu_);
  peers_[m.uuid].token = *t;
  return *t;
}

void RdmaPath::failed(const proto::Member& m, const Error& e) {
  bool first = false;
  {
    std::lock_guard lk(mu_);
    auto& p = peers_[m.uuid];
    first = p.retry_after_ns <= mono_ns();
    p.token = 0;
    p.retry_after_ns = mono_ns() + kBackoffNs;
  }
  if (lane_) lane_->disconnect(NetAddr{m.addr.ip, m.rdma_port});
  if (first) LOG_WARN("RDMA to backend {} failed, using UDP for {} s: {}", m.name, kBackoffNs / 1'000'000'000, e.to_string());
}

std::string RdmaPath::describe() const {
  if (!lane_) return "none (" + closed_text_ + ")";
  const auto& d = lane_->device();
  return d.device + "/" + std::to_string(d.port) + " (" + std::string(transport::link_layer_name(d.link)) + ")";
}

}  // namespace lanefs::client

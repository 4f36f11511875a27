#include "client/rdma_path.h"

#include "common/clock.h"
#include "common/log.h"
#include "lanefs/config.h"

namespace lanefs::client {

namespace {
Result<std::unique_ptr<transport::RdmaLane>> open_lane(uint32_t local_ip) {
  transport::RdmaLaneConfig c;
  c.bind = NetAddr{local_ip, 0};
  return transport::make_rdma_lane(c);
}
}  // namespace

std::unique_ptr<RdmaPath> RdmaPath::open(uint32_t local_ip, std::string* why) {
  auto lane = open_lane(local_ip);
  if (lane.ok()) return std::make_unique<RdmaPath>(std::move(*lane), NotRdmaReason::kNone, local_ip);
  if (why) *why = lane.error().to_string();
  // Built with rdma-core, a host without the RDMA stack (no rdma_cm
  // device file) or without a device on this address is the same to users.
  auto p = std::make_unique<RdmaPath>(nullptr, LANEFS_HAVE_RDMA ? NotRdmaReason::kNoLocalDevice : NotRdmaReason::kNotBuilt,
                                      local_ip);
  p->closed_text_ = lane.error().to_string();
  p->reopen_after_ns_ = mono_ns() + kBackoffNs;
  return p;
}

RdmaPath::RdmaPath(std::unique_ptr<transport::RdmaLane> lane, NotRdmaReason closed_reason, uint32_t local_ip)
    : local_ip_(local_ip), lane_(std::move(lane)), closed_reason_(lane_ ? NotRdmaReason::kNone : closed_reason) {}

std::shared_ptr<transport::RdmaLane> RdmaPath::lane() const {
  std::lock_guard lk(mu_);
  check_lane_locked();
  return lane_;
}

void RdmaPath::check_lane_locked() const {
  if (lane_ && !lane_->alive()) {
    // Release the device now (in-flight users hold their own references).
    LOG_WARN("RDMA device {} is gone: IO uses UDP until it is back", lane_->device().device);
    lane_.reset();
    closed_reason_ = NotRdmaReason::kNoLocalDevice;
    closed_text_ = "RDMA device removed";
    reopen_after_ns_ = mono_ns() + kBackoffNs;
    return;
  }
  // Built without RDMA, or a test path: nothing to re-open.
  if (lane_ || closed_reason_ == NotRdmaReason::kNotBuilt || local_ip_ == 0) return;
  if (mono_ns() < reopen_after_ns_) return;
  auto l = open_lane(local_ip_);
  if (l.ok()) {
    lane_ = std::move(*l);
    closed_reason_ = NotRdmaReason::kNone;
    closed_text_.clear();
    LOG_INFO("RDMA lane on {} again", lane_->device().device);
  } else {
    closed_text_ = l.error().to_string();
    reopen_after_ns_ = mono_ns() + kBackoffNs;
  }
}

NotRdmaReason RdmaPath::availability(const proto::ClusterMap& map, const std::string& client) const {
  std::lock_guard lk(mu_);
  check_lane_locked();
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
  uint64_t now = mono_ns();
  for (const auto& [uuid, p] : peers_)
    if (p.retry_after_ns > now) return NotRdmaReason::kUnavailable;
  return NotRdmaReason::kNone;
}

Result<uint64_t> RdmaPath::token_for(const proto::Member& m) {
  std::shared_ptr<transport::RdmaLane> lane;
  {
    std::lock_guard lk(mu_);
    check_lane_locked();
    if (!lane_) return make_error(Errc::kUnreachable, "no RDMA lane: " + closed_text_);
    lane = lane_;
    auto& p = peers_[m.uuid];
    if (p.token != 0) return p.token;
    if (p.retry_after_ns > mono_ns())
      return make_error(Errc::kUnreachable, "RDMA to " + m.name + " is backing off after a failure");
  }
  // Connect outside the lock (may take up to the lane's timeout); the lane
  // itself makes concurrent callers share one connection.
  auto t = lane->connect(NetAddr{m.addr.ip, m.rdma_port});
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
  std::shared_ptr<transport::RdmaLane> lane;
  {
    std::lock_guard lk(mu_);
    auto& p = peers_[m.uuid];
    first = p.retry_after_ns <= mono_ns();
    p.token = 0;
    p.retry_after_ns = mono_ns() + kBackoffNs;
    lane = lane_;
    check_lane_locked();  // a removed device is released here
  }
  if (lane && lane->alive()) lane->disconnect(NetAddr{m.addr.ip, m.rdma_port});
  if (first) LOG_WARN("RDMA to backend {} failed, using UDP for {} s: {}", m.name, kBackoffNs / 1'000'000'000, e.to_string());
}

std::string RdmaPath::describe() const {
  std::lock_guard lk(mu_);
  if (!lane_) return "none (" + closed_text_ + ")";
  const auto& d = lane_->device();
  return d.device + "/" + std::to_string(d.port) + " (" + std::string(transport::link_layer_name(d.link)) + ")";
}

}  // namespace lanefs::client

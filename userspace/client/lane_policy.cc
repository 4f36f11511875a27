#include "client/lane_policy.h"

namespace lanefs::client {

std::string_view lane_name(Lane lane) {
  switch (lane) {
    case Lane::kUdp: return "udp";
  }
  return "?";
}

std::string_view not_rdma_reason_text(NotRdmaReason r) {
  switch (r) {
    case NotRdmaReason::kNone: return "";
    case NotRdmaReason::kEncrypted: return "encrypted filesystem";
    case NotRdmaReason::kNoRdmaLane: return "no RDMA lane built";
  }
  return "?";
}

LaneChoice choose_lane(const LaneRequest& io) {
  // Encryption comes first: it excludes RDMA whatever the hardware offers.
  if (io.encrypted) return LaneChoice{Lane::kUdp, NotRdmaReason::kEncrypted};
  return LaneChoice{Lane::kUdp, NotRdmaReason::kNoRdmaLane};
}

void LaneCounters::account(const LaneChoice& c, uint64_t bytes) {
  auto& l = lanes[static_cast<size_t>(c.lane)];
  l.ios.fetch_add(1, std::memory_order_relaxed);
  l.bytes.fetch_add(bytes, std::memory_order_relaxed);
  not_rdma[static_cast<size_t>(c.not_rdma)].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace lanefs::client

#include "client/lane_policy.h"

namespace lanefs::client {

std::string_view lane_name(Lane lane) {
  switch (lane) {
    case Lane::kUdp: return "udp";
    case Lane::kRdma: return "rdma";
    case Lane::kDpdk: return "dpdk";
  }
  return "?";
}

std::string_view not_rdma_reason_text(NotRdmaReason r) {
  switch (r) {
    case NotRdmaReason::kNone: return "";
    case NotRdmaReason::kEncrypted: return "encrypted filesystem";
    case NotRdmaReason::kNotBuilt: return "lanefs built without RDMA support";
    case NotRdmaReason::kDisabledCluster: return "RDMA disabled for the cluster";
    case NotRdmaReason::kDisabledClient: return "RDMA disabled for this client";
    case NotRdmaReason::kBackendNoRdma: return "a backend has no RDMA";
    case NotRdmaReason::kNoLocalDevice: return "no RDMA device on this client's address";
    case NotRdmaReason::kMixedFabric: return "mixed InfiniBand/Ethernet fabric";
    case NotRdmaReason::kUnavailable: return "RDMA connection failed recently";
    case NotRdmaReason::kBelowThreshold: return "IO below the RDMA threshold";
    case NotRdmaReason::kFallback: return "RDMA failed, redone on UDP";
  }
  return "?";
}

std::string_view not_rdma_reason_key(NotRdmaReason r) {
  switch (r) {
    case NotRdmaReason::kNone: return "none";
    case NotRdmaReason::kEncrypted: return "encrypted";
    case NotRdmaReason::kNotBuilt: return "not_built";
    case NotRdmaReason::kDisabledCluster: return "disabled_cluster";
    case NotRdmaReason::kDisabledClient: return "disabled_client";
    case NotRdmaReason::kBackendNoRdma: return "backend_no_rdma";
    case NotRdmaReason::kNoLocalDevice: return "no_local_device";
    case NotRdmaReason::kMixedFabric: return "mixed_fabric";
    case NotRdmaReason::kUnavailable: return "unavailable";
    case NotRdmaReason::kBelowThreshold: return "below_threshold";
    case NotRdmaReason::kFallback: return "fallback";
  }
  return "?";
}

LaneChoice choose_lane(const LaneRequest& io) {
  // Encryption comes first: it excludes RDMA whatever the hardware offers.
  if (io.encrypted) return {Lane::kUdp, NotRdmaReason::kEncrypted};
  if (io.availability != NotRdmaReason::kNone) return {Lane::kUdp, io.availability};
  uint64_t min = io.dir == IoDir::kRead ? io.thresholds.read_min : io.thresholds.write_min;
  if (io.bytes < min) return {Lane::kUdp, NotRdmaReason::kBelowThreshold};
  return {Lane::kRdma, NotRdmaReason::kNone};
}

std::string_view bounce_reason_key(BounceReason r) {
  switch (r) {
    case BounceReason::kNone: return "none";
    case BounceReason::kNotRdma: return "not_rdma";
    case BounceReason::kEncrypted: return "encrypted";
    case BounceReason::kUnaligned: return "unaligned";
    case BounceReason::kNoDmabufSupport: return "no_dmabuf_support";
    case BounceReason::kDeviceUnregistered: return "device_unregistered";
  }
  return "?";
}

BounceReason choose_device_path(const DeviceIo& io) {
  if (io.encrypted) return BounceReason::kEncrypted;
  if (io.lane != Lane::kRdma) return BounceReason::kNotRdma;
  if (!io.dmabuf_supported) return BounceReason::kNoDmabufSupport;
  if (!io.registered) return BounceReason::kDeviceUnregistered;
  if ((io.buf_off | io.file_off | io.len) % kDeviceAlign != 0) return BounceReason::kUnaligned;
  return BounceReason::kNone;
}

void LaneCounters::account(const LaneChoice& c, uint64_t bytes) {
  auto& l = lanes[static_cast<size_t>(c.lane)];
  l.ios.fetch_add(1, std::memory_order_relaxed);
  l.bytes.fetch_add(bytes, std::memory_order_relaxed);
  not_rdma[static_cast<size_t>(c.not_rdma)].fetch_add(1, std::memory_order_relaxed);
  if (c.not_rdma == NotRdmaReason::kFallback) fallbacks.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace lanefs::client

// Built when lanefs is configured without rdma-core: every RDMA entry point
// answers kNotSupported, so callers need no #ifdef.
#include "transport/rdma_lane.h"

namespace lanefs::transport {

std::string_view link_layer_name(LinkLayer l) noexcept {
  switch (l) {
    case LinkLayer::kNone: return "none";
    case LinkLayer::kInfiniBand: return "infiniband";
    case LinkLayer::kEthernet: return "ethernet";
  }
  return "none";
}

std::vector<RdmaDeviceInfo> list_rdma_devices() { return {}; }

Result<RdmaDeviceInfo> rdma_device_for_ip(uint32_t) {
  return make_error(Errc::kNotSupported, "lanefs was built without RDMA (rdma-core) support");
}

Result<std::unique_ptr<RdmaLane>> make_rdma_lane(const RdmaLaneConfig&) {
  return make_error(Errc::kNotSupported, "lanefs was built without RDMA (rdma-core) support");
}

Result<std::unique_ptr<Transport>> make_rdma_transport(const TransportConfig&) {
  return make_error(Errc::kNotSupported, "lanefs was built without RDMA (rdma-core) support");
}

}  // namespace lanefs::transport

// Built when lanefs has no rdma-core (LANEFS_HAVE_RDMA 0): every factory of
// the seam answers kNotSupported so callers carry no #ifdef.
#include "transport/rdma_lane.h"

namespace lanefs::transport {

std::vector<RdmaDeviceInfo> list_rdma_devices() { return {}; }

Result<RdmaDeviceInfo> rdma_device_for_ip(uint32_t) {
  return make_error(Errc::kNotSupported, "RDMA lane not built (no rdma-core)");
}

Result<std::unique_ptr<RdmaLane>> make_rdma_lane(const RdmaLaneConfig&) {
  return make_error(Errc::kNotSupported, "RDMA lane not built (no rdma-core)");
}

Result<std::unique_ptr<Transport>> make_rdma_transport(const TransportConfig&) {
  return make_error(Errc::kNotSupported, "RDMA lane not built (no rdma-core)");
}

}  // namespace lanefs::transport

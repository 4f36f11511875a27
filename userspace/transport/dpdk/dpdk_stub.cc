// Built when lanefs is configured without DPDK: the lane answers
// kNotSupported, so callers need no #ifdef.
#include "transport/dpdk/dpdk_transport.h"

namespace lanefs::transport::dpdk {

Result<std::unique_ptr<Transport>> create_dpdk_transport(const TransportConfig&) {
  return make_error(Errc::kNotSupported, "lanefs was built without the DPDK lane (libdpdk)");
}

}  // namespace lanefs::transport::dpdk

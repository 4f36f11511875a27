// Device discovery: every port of every RDMA device, and the port rdma_cm
// resolves for a local IPv4 address.
#include <algorithm>
#include <fstream>
#include <string>

#include "rdma/rdma_util.h"

namespace lanefs::transport {
namespace rdma {

namespace {
// The netdev of a RoCE port: sysfs names it per GID (index 0 is the default).
std::string port_netdev(const std::string& dev, uint8_t port) {
  std::ifstream f("/sys/class/infiniband/" + dev + "/ports/" + std::to_string(port) +
                  "/gid_attrs/ndevs/0");
  std::string name;
  if (f) std::getline(f, name);
  return name;
}
}  // namespace

RdmaDeviceInfo describe_port(ibv_context* ctx, uint8_t port) {
  RdmaDeviceInfo info;
  info.device = ibv_get_device_name(ctx->device);
  info.port = port;
  ibv_port_attr attr{};
  if (ibv_query_port(ctx, port, &attr) == 0) {
    info.active = attr.state == IBV_PORT_ACTIVE;
    info.link = attr.link_layer == IBV_LINK_LAYER_ETHERNET ? LinkLayer::kEthernet
                                                           : LinkLayer::kInfiniBand;
  }
  info.netdev = port_netdev(info.device, port);
  return info;
}

Result<ibv_context*> first_cm_device() {
  int n = 0;
  ibv_context** list = rdma_get_devices(&n);
  if (list == nullptr || n == 0) {
    if (list != nullptr) rdma_free_devices(list);
    return make_error(Errc::kNotSupported, "RDMA lane: no RDMA device on this host");
  }
  ibv_context* ctx = list[0];
  rdma_free_devices(list);  // the contexts stay open for the process lifetime
  return ctx;
}

uint8_t rd_atomic_depth(ibv_context* ctx) {
  ibv_device_attr a{};
  if (ibv_query_device(ctx, &a) != 0) return 1;
  int d = std::min(a.max_qp_rd_atom, a.max_qp_init_rd_atom);
  return static_cast<uint8_t>(std::clamp(d, 1, 16));
}

}  // namespace rdma

std::vector<RdmaDeviceInfo> list_rdma_devices() {
  std::vector<RdmaDeviceInfo> out;
  int n = 0;
  ibv_device** devs = ibv_get_device_list(&n);
  if (devs == nullptr) return out;
  for (int i = 0; i < n; ++i) {
    ibv_context* ctx = ibv_open_device(devs[i]);
    if (ctx == nullptr) continue;  // documented: a device we cannot read is skipped
    ibv_device_attr attr{};
    if (ibv_query_device(ctx, &attr) == 0) {
      for (uint8_t p = 1; p <= attr.phys_port_cnt; ++p) out.push_back(rdma::describe_port(ctx, p));
    }
    ibv_close_device(ctx);
  }
  ibv_free_device_list(devs);
  return out;
}

Result<RdmaDeviceInfo> rdma_device_for_ip(uint32_t ip) {
  rdma_event_channel* raw = rdma_create_event_channel();
  if (raw == nullptr)
    return make_error(Errc::kNotSupported,
                      "RDMA lane: rdma_create_event_channel: " + std::string(strerror(errno)));
  rdma::EventChannelPtr ch(raw);
  rdma_cm_id* id = nullptr;
  if (rdma_create_id(ch.get(), &id, nullptr, RDMA_PS_TCP) != 0)
    return rdma::call_error("rdma_create_id", errno);
  sockaddr_in sa = rdma::to_sockaddr(NetAddr{ip, 0});
  const int rc = rdma_bind_addr(id, reinterpret_cast<sockaddr*>(&sa));
  const int err = errno;
  Result<RdmaDeviceInfo> res = make_error(Errc::kNotFound, "");
  if (rc != 0) {
    res = make_error(err == ENODEV || err == EADDRNOTAVAIL ? Errc::kNotFound : from_errno(err),
                     "rdma_bind_addr " + NetAddr{ip, 0}.ip_string() + ": " + strerror(err));
  } else if (id->verbs == nullptr) {
    res = make_error(Errc::kNotFound, "no RDMA device serves " + NetAddr{ip, 0}.ip_string());
  } else {
    res = rdma::describe_port(id->verbs, id->port_num);
  }
  rdma_destroy_id(id);
  return res;
}

}  // namespace lanefs::transport

// IPv4 socket address used by every transport (UDP, DPDK, RDMA CM).
// A plain value type; thread-safe by being immutable.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lanefs {

struct NetAddr {
  uint32_t ip = 0;    // host byte order
  uint16_t port = 0;  // host byte order

  bool operator==(const NetAddr&) const = default;
  auto operator<=>(const NetAddr&) const = default;
  std::string to_string() const;      // "192.0.2.1:14000"
  std::string ip_string() const;      // "192.0.2.1"
};

// Parses "A.B.C.D[:PORT]"; `default_port` is used when no port is given
// (0 means a port is required). Names are not resolved: IPs only.
Result<NetAddr> parse_net_addr(std::string_view text, uint16_t default_port = 0);
// Parses a comma-separated list of addresses.
Result<std::vector<NetAddr>> parse_net_addr_list(std::string_view text, uint16_t default_port);

// The local IPv4 address this host uses to reach `peer` (routing lookup
// through a connected UDP socket; nothing is sent). 0 when there is no route.
uint32_t source_ip_for(const NetAddr& peer);

// The first IPv4 address of network interface `dev` and its prefix length
// (getifaddrs). kNotFound naming the interface when it has none.
struct IfaceAddr {
  uint32_t ip = 0;  // host order
  uint8_t prefix_bits = 32;
};
Result<IfaceAddr> interface_ipv4(const std::string& dev);
// The interface holding IPv4 address ip ("" when none does).
std::string interface_with(uint32_t ip);

struct NetAddrHash {
  size_t operator()(const NetAddr& a) const noexcept {
    return std::hash<uint64_t>()((uint64_t{a.ip} << 16) | a.port);
  }
};

}  // namespace lanefs

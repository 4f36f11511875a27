// The data-lane device spec shared by the mount option `net=` and
// `lanefsd --net`: "udp" (kernel UDP) or a DPDK device with its addresses,
//   <dev>/<ip>[+<ip>...]/<bits>[/<gw>]
// where <dev> is a PCI address (0000:03:00.0), a netdev name or MAC backed
// by a PCI device (resolved through sysfs), or a DPDK virtual device for
// tests and containers: `tap:<iface>`, `afpacket:<iface>`,
// `memif:<socket>[:server]`. Several IPs ("+") give one IP per frontend core
// (non-shared IP); one IP is shared by every core (each core its own UDP
// port). Plain values; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/transport.h"

namespace lanefs::transport {

struct NetSpec {
  bool udp = true;
  std::string device;     // as given
  std::string dpdk_port;  // the DPDK device spec it becomes
  std::vector<uint32_t> ips;  // host order; at least one unless udp
  uint8_t prefix_bits = 24;
  uint32_t gateway = 0;
  uint32_t ip() const { return ips.empty() ? 0 : ips.front(); }
  std::string to_string() const;  // "udp" or the canonical form
  // The DPDK lane config for address `ip` (one of ips).
  DpdkConfig dpdk_config(uint32_t ip, bool interrupt_mode) const;
};

// `option` names the option in errors ("mount option 'net=...'" or
// "--net ..."); sysfs_root is where /sys is (tests use fixture trees).
Result<NetSpec> parse_net_spec(std::string_view text, const std::string& sysfs_root = "/sys",
                               std::string_view option = "mount option 'net=");

// True when the host's free hugepages (any size, under sysfs_root/kernel/
// mm/hugepages) hold at least `mb` MiB: the DPDK lane then uses them, else
// anonymous memory (EAL --no-huge).
bool hugepages_cover(uint32_t mb, const std::string& sysfs_root = "/sys");

}  // namespace lanefs::transport

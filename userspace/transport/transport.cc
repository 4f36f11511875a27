#include "transport/transport.h"

#include <charconv>
#include <cmath>
#include <string>

#include "transport/dpdk/dpdk_transport.h"
#include "transport/fault_transport.h"
#include "transport/loopback/loopback_transport.h"
#include "transport/multi_transport.h"
#include "transport/rdma_lane.h"
#include "transport/udp/udp_transport.h"

namespace lanefs::transport {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Error bad_option(std::string_view key, std::string_view expected, std::string_view value) {
  return make_error(Errc::kInvalid, "fault option '" + std::string(key) + "': expected " +
                                        std::string(expected) + ", got '" + std::string(value) +
                                        "'");
}

Status parse_pct(std::string_view key, std::string_view value, double* out) {
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(v) || v < 0 ||
      v > 100)
    return bad_option(key, "a percentage 0..100", value);
  *out = v;
  return ok_status();
}

template <class T>
Status parse_uint(std::string_view key, std::string_view value, T* out) {
  T v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || value.empty())
    return bad_option(key, "an unsigned integer", value);
  *out = v;
  return ok_status();
}

}  // namespace

std::string_view transport_kind_name(TransportKind kind) noexcept {
  switch (kind) {
    case TransportKind::kUdp:
      return "udp";
    case TransportKind::kLoopback:
      return "loopback";
    case TransportKind::kDpdk:
      return "dpdk";
    case TransportKind::kRdma:
      return "rdma";
  }
  return "unknown";
}

Result<FaultConfig> parse_fault_config(std::string_view text) {
  FaultConfig c;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;  // tolerate "drop=1," and empty input
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return make_error(Errc::kInvalid,
                        "fault option '" + std::string(item) + "': expected key=value");
    const std::string_view key = trim(item.substr(0, eq));
    const std::string_view value = trim(item.substr(eq + 1));
    if (key == "drop") {
      LANEFS_TRY(parse_pct(key, value, &c.drop_pct));
    } else if (key == "dup" || key == "duplicate") {
      LANEFS_TRY(parse_pct(key, value, &c.duplicate_pct));
    } else if (key == "reorder") {
      LANEFS_TRY(parse_pct(key, value, &c.reorder_pct));
    } else if (key == "corrupt") {
      LANEFS_TRY(parse_pct(key, value, &c.corrupt_pct));
    } else if (key == "delay") {
      LANEFS_TRY(parse_pct(key, value, &c.delay_pct));
    } else if (key == "delay_us") {
      LANEFS_TRY(parse_uint(key, value, &c.delay_us));
    } else if (key == "seed") {
      LANEFS_TRY(parse_uint(key, value, &c.seed));
    } else {
      return make_error(Errc::kInvalid,
                        "unknown fault option '" + std::string(key) +
                            "' (known: drop, dup, reorder, corrupt, delay, delay_us, seed)");
    }
  }
  return c;
}

namespace {
Result<std::unique_ptr<Transport>> make_one(const TransportConfig& config);
}  // namespace

TransportConfig reuseport_member_config(const TransportConfig& first, const Transport& member0,
                                        uint32_t index) {
  TransportConfig c = first;
  c.reuseport_index = index;
  const std::vector<NetAddr> addrs = member0.local_addrs();
  c.bind = addrs[0];
  c.extra_binds.assign(addrs.begin() + 1, addrs.end());
  return c;
}

Result<std::unique_ptr<Transport>> make_transport(const TransportConfig& config) {
  if (config.reuseport_group > 1) {
    if (config.kind != TransportKind::kUdp)
      return make_error(Errc::kNotSupported, "reuseport groups on the " +
                                                 std::string(transport_kind_name(config.kind)) +
                                                 " lane are not built; the UDP lane has them");
    if (config.reuseport_index >= config.reuseport_group)
      return make_error(Errc::kInvalid, "reuseport_index " + std::to_string(config.reuseport_index) +
                                            " is outside a group of " +
                                            std::to_string(config.reuseport_group));
  }
  if (config.kind == TransportKind::kDpdk && !config.extra_dpdk.empty()) {
    // One endpoint per DPDK port (HA legs), the primary first.
    std::vector<std::unique_ptr<Transport>> legs;
    TransportConfig one = config;
    one.extra_dpdk.clear();
    one.faults = FaultConfig{};
    LANEFS_ASSIGN_OR_RETURN(auto first, make_one(one));
    legs.push_back(std::move(first));
    for (const DpdkConfig& d : config.extra_dpdk) {
      one.dpdk = d;
      one.bind = NetAddr{d.ip, config.bind.port};
      LANEFS_ASSIGN_OR_RETURN(auto leg, make_one(one));
      legs.push_back(std::move(leg));
    }
    LANEFS_ASSIGN_OR_RETURN(auto t, MultiHomedTransport::create(std::move(legs)));
    if (config.faults.any()) t = std::make_unique<FaultTransport>(std::move(t), config.faults);
    return t;
  }
  if (config.extra_binds.empty()) {
    LANEFS_ASSIGN_OR_RETURN(auto t, make_one(config));
    if (config.faults.any()) t = std::make_unique<FaultTransport>(std::move(t), config.faults);
    return t;
  }
  if (config.kind != TransportKind::kUdp)
    return make_error(Errc::kNotSupported, std::string("several local addresses (HA legs) on the ") +
                                               std::string(transport_kind_name(config.kind)) +
                                               " lane are not built; the UDP lane has them");
  std::vector<std::unique_ptr<Transport>> legs;
  TransportConfig one = config;
  one.extra_binds.clear();
  one.faults = FaultConfig{};
  // Each leg's socket is bound to its NIC: its datagrams leave by that
  // NIC even when another one has a route to the peer too.
  one.bind_device = interface_with(config.bind.ip);
  LANEFS_ASSIGN_OR_RETURN(auto first, make_one(one));
  uint16_t port = first->local_addr().port;
  legs.push_back(std::move(first));
  for (NetAddr b : config.extra_binds) {
    one.bind = b;
    one.bind_device = interface_with(b.ip);
    if (b.port == 0) {
      // The same port on every leg when it is free (peers see one port).
      one.bind.port = port;
      auto leg = make_one(one);
      if (!leg.ok()) {  // taken on this address: any port
        one.bind.port = 0;
        leg = make_one(one);
      }
      if (!leg.ok()) return leg.error();
      legs.push_back(std::move(*leg));
    } else {
      LANEFS_ASSIGN_OR_RETURN(auto leg, make_one(one));
      legs.push_back(std::move(leg));
    }
  }
  LANEFS_ASSIGN_OR_RETURN(auto t, MultiHomedTransport::create(std::move(legs)));
  if (config.faults.any()) t = std::make_unique<FaultTransport>(std::move(t), config.faults);
  return t;
}

namespace {
Result<std::unique_ptr<Transport>> make_one(const TransportConfig& config) {
  std::unique_ptr<Transport> t;
  switch (config.kind) {
    case TransportKind::kUdp: {
      LANEFS_ASSIGN_OR_RETURN(t, UdpTransport::create(config));
      break;
    }
    case TransportKind::kLoopback: {
      LANEFS_ASSIGN_OR_RETURN(t, LoopbackTransport::create(config));
      break;
    }
    case TransportKind::kDpdk: {
      // lanefs_dpdk (or its stub without libdpdk: kNotSupported).
      LANEFS_ASSIGN_OR_RETURN(t, dpdk::create_dpdk_transport(config));
      break;
    }
    case TransportKind::kRdma: {
      // lanefs_rdma (or its stub without rdma-core: kNotSupported).
      LANEFS_ASSIGN_OR_RETURN(t, make_rdma_transport(config));
      break;
    }
    default:
      return make_error(Errc::kInvalid,
                        "unknown transport kind " + std::to_string(static_cast<int>(config.kind)));
  }
  return t;
}
}  // namespace

}  // namespace lanefs::transport

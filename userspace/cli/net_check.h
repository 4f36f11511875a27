// `lanefs net check`: which lane (DPDK polling, DPDK RX interrupts or kernel
// UDP) and whether RDMA lanefs would use on each NIC of a host, and why,
// following WEKA's network configuration guidelines.
//
// Everything is read from a sysfs tree (`/sys`, or a fixture tree in tests):
// class/net, class/infiniband, devices/system/cpu/online and
// kernel/mm/hugepages. Nothing is written and no backend is contacted.
//
// Driver knowledge lives in one table (kDriverTable in net_check.cc, reached
// through find_driver()); the rules that combine it with what sysfs says are
// in decide(). Hints in reasons name the live paths under /sys (they are
// commands to run on the host), whatever root was inspected.
//
// Thread-safety: every function is reentrant; results are plain values.
// Errors: inspect_host() fails with kInvalid when the root is not a
// directory or has no class/net; unreadable attributes of a NIC are reported
// as absent (std::nullopt / empty), never as errors.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/transport.h"

namespace lanefs::cli {

// The datagram lane a NIC gets.
enum class NetLane : uint8_t {
  kUdp,            // kernel UDP sockets
  kDpdkPolling,    // DPDK on dedicated cores (dedicated_mode=full)
  kDpdkInterrupt,  // DPDK sleeping on RX interrupts (dedicated_mode=none)
};
// "UDP", "DPDK polling", "DPDK rx-interrupt".
std::string_view net_lane_name(NetLane lane);

// What lanefs knows about a kernel network driver.
struct DriverCaps {
  std::string_view driver;       // kernel driver name (basename of device/driver)
  std::string_view description;  // "AWS ENA", "Mellanox ConnectX-3", ...
  bool dpdk = false;             // lanefs' DPDK lane can drive it
  bool rx_interrupts = false;    // its PMD has RX interrupts (dedicated_mode=none)
  // One IP for management and data. Otherwise the NIC needs one management
  // IP plus one data IP per frontend core.
  bool shared_ip = false;
  bool needs_vfs = false;  // a physical function: non-shared-IP DPDK runs on SR-IOV VFs
  bool is_vf = false;      // the driver of an SR-IOV virtual function
  std::string_view notes;  // one line shown with the NIC
};
// The table entry for `driver`, nullptr when lanefs does not know it.
const DriverCaps* find_driver(std::string_view driver);

struct NetCheckOptions {
  uint32_t cores = 1;          // dedicated frontend cores (num_cores); >= 1
  bool dedicated_full = true;  // dedicated_mode=full (true) or none
  // DPDK memory (EAL -m) that must come from hugepages.
  uint32_t dpdk_memory_mb = transport::DpdkConfig{}.memory_mb;
};

struct Hugepages {
  bool present = false;  // the kernel/mm/hugepages/hugepages-<size> directory exists
  uint64_t total = 0;    // nr_hugepages
  uint64_t free = 0;     // free_hugepages
};

struct RdmaDevice {
  std::string name;         // "mlx5_0"
  std::string link_layer;   // port 1: "Ethernet" or "InfiniBand" ("" when unreadable)
  std::string device_path;  // resolved class/infiniband/<dev>/device ("" when none, e.g. rxe)
  std::string netdev;       // netdev named by the device (parent or port 1 GID 0), may be ""
};

struct HostInfo {
  std::string sysfs_root;
  std::string cpus_online;    // devices/system/cpu/online as written ("0-7")
  uint32_t cores_online = 0;  // 0 when unreadable
  Hugepages huge_2m, huge_1g;
  std::vector<RdmaDevice> rdma;
  bool mixed_fabric = false;  // RDMA devices with InfiniBand and Ethernet link layers
  uint64_t hugepage_bytes() const {
    return huge_2m.total * (2ull << 20) + huge_1g.total * (1ull << 30);
  }
};

// One entry of class/net, as sysfs shows it.
struct NicInfo {
  std::string name;
  bool is_virtual = false;  // no device link
  std::string driver;       // "" when no driver is bound
  std::string pci;          // PCI function ("0000:00:05.0"), or the device name if not PCI
  std::string device_path;  // resolved PCI function directory
  std::string mac;
  std::string operstate;
  std::optional<uint32_t> mtu;
  std::optional<int64_t> speed_mbps;  // absent when the link is down or the driver does not say
  std::optional<uint32_t> sriov_totalvfs, sriov_numvfs;
  std::vector<RdmaDevice> rdma;  // RDMA devices on the same PCI function
};

struct NicDecision {
  NetLane lane = NetLane::kUdp;       // for the requested dedicated_mode
  NetLane lane_full = NetLane::kUdp;  // with dedicated_mode=full
  NetLane lane_none = NetLane::kUdp;  // with dedicated_mode=none
  bool rdma = false;                  // large IOs may move by RDMA on this NIC
  std::optional<bool> shared_ip;      // absent when the driver is unknown
  uint32_t ips_needed = 1;            // for `lane`
  std::vector<std::string> reasons;   // one line each
};

struct NicReport {
  NicInfo nic;
  NicDecision decision;
};

struct NetReport {
  NetCheckOptions options;
  HostInfo host;
  std::vector<NicReport> nics;  // sorted by name; lo is left out
};

// Counts the CPUs in a kernel CPU list ("0-3,8,10-11" -> 7); nullopt if malformed.
std::optional<uint32_t> count_cpu_list(std::string_view list);

// The lane rules for one NIC on one host.
NicDecision decide(const NicInfo& nic, const HostInfo& host, const NetCheckOptions& options);

// Reads the host and every NIC under `sysfs_root` and decides each NIC.
Result<NetReport> inspect_host(const std::string& sysfs_root, const NetCheckOptions& options);

// A host summary, then one table row per NIC with its reasons indented below.
std::string format_text(const NetReport& report);
// {"host": {...}, "nics": [...]}; the keys are listed in docs/net_check.md.
nlohmann::json to_json(const NetReport& report);

}  // namespace lanefs::cli

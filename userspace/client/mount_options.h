// Mount source and -o options of `mount -t lanefs`, with WEKA's option
// names and defaults where they exist. Parsing is strict: an unknown or
// malformed option is an error naming it (mount.lanefs turns that into exit
// status 32, as mount(8) expects). Plain values; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/net_addr.h"
#include "common/result.h"

namespace lanefs::client {

enum class CacheMode : uint8_t {
  kWriteCache,   // page cache, write-back (default)
  kReadCache,    // page cache, write-through
  kForceDirect,  // no page cache
};
std::string_view cache_mode_name(CacheMode m);

// `net=`: the datagram lane. "udp" (kernel UDP, the default) or a DPDK
// device with its address: `<dev>/<ip>/<bits>[/<gw>]` where <dev> is a PCI
// address (0000:03:00.0), a netdev name or MAC backed by a PCI device, or a
// DPDK virtual device for tests and containers: `tap:<iface>`,
// `afpacket:<iface>`, `memif:<socket>[:server]`.
struct NetSpec {
  bool udp = true;
  std::string device;     // as given
  std::string dpdk_port;  // the DPDK device spec it becomes
  uint32_t ip = 0;
  uint8_t prefix_bits = 24;
  uint32_t gateway = 0;
  std::string to_string() const;  // "udp" or the canonical form
};
// sysfs_root: where /sys is (tests use fixture trees).
Result<NetSpec> parse_net_spec(std::string_view text, const std::string& sysfs_root = "/sys");

struct MountOptions {
  CacheMode cache = CacheMode::kWriteCache;
  bool sync_on_close = false;           // fsync on every close
  uint32_t readahead_kb = 32768;        // kernel readahead window
  uint32_t dentry_max_age_positive_ms = 1000;
  uint32_t dentry_max_age_negative_ms = 0;
  bool read_only = false;
  uint32_t connect_timeout_secs = 10;   // reaching a backend at mount time
  uint32_t response_timeout_secs = 60;  // an IO retries this long, then EIO
  uint32_t remove_after_secs = 3600;    // unreachable this long: leave the cluster
  NetSpec net;                          // lane (see NetSpec)
  // DPDK lane: "full" polls on a dedicated core, "none" sleeps on RX
  // interrupts (falls back to UDP, with the reason in the log, when the
  // driver has none).
  bool dedicated_full = true;
  std::string key_file;                 // encrypted filesystems: absolute path of the key file
  // Smallest IO that takes the RDMA lane (lane_policy.h, docs/lanes.md).
  uint32_t rdma_read_min = 32 * 1024;
  uint32_t rdma_write_min = 256 * 1024;
  // Source IPv4 address toward the backends (0: chosen by the route to the
  // first backend). It also selects the RDMA device.
  uint32_t local_ip = 0;

  // The canonical "-o" string (every option, explicit), for logs and ps.
  std::string to_string() const;
};

struct MountSource {
  std::vector<NetAddr> backends;
  std::string fs_name;
  std::string to_string() const;  // "127.0.0.1:14000,127.0.0.2:14000/fs"
};

inline constexpr uint16_t kDefaultBackendPort = 14000;

// "HOST[:PORT][,HOST[:PORT]...]/FSNAME"; hosts are IPv4 addresses.
Result<MountSource> parse_mount_source(std::string_view text);
// Comma-separated -o list. Generic mount(8) options that do not concern
// lanefs (defaults, _netdev, nofail, auto, noatime, x-*, ...) are accepted
// and ignored.
Result<MountOptions> parse_mount_options(std::string_view text);

}  // namespace lanefs::client

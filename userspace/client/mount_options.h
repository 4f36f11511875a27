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
#include "transport/net_spec.h"

namespace lanefs::client {

enum class CacheMode : uint8_t {
  kWriteCache,   // page cache, write-back (default)
  kReadCache,    // page cache, write-through
  kForceDirect,  // no page cache
};
std::string_view cache_mode_name(CacheMode m);

// `fuse_channel=`: how the kernel hands FUSE requests to the frontend.
enum class FuseChannel : uint8_t {
  kAuto,     // io_uring when the kernel offers it (fuse.enable_uring=Y), else classic
  kUring,    // FUSE over io_uring or the mount fails
  kClassic,  // /dev/fuse read/writev
};
std::string_view fuse_channel_name(FuseChannel c);

// `client=`: which kernel client serves the mount.
enum class ClientKind : uint8_t {
  kAuto,    // the kernel client when lanefs.ko is loaded or loadable, else FUSE
  kKernel,  // lanefs.ko (/dev/lanefs) or the mount fails
  kFuse,    // FUSE (fuse_channel= picks io_uring or classic)
};
std::string_view client_kind_name(ClientKind c);

// `net=`: the datagram lane (transport/net_spec.h).
using transport::NetSpec;
using transport::parse_net_spec;

struct MountOptions {
  CacheMode cache = CacheMode::kWriteCache;
  bool sync_on_close = false;           // fsync on every close
  uint32_t readahead_kb = 32768;        // kernel readahead window
  ClientKind client = ClientKind::kAuto;
  FuseChannel fuse_channel = FuseChannel::kAuto;
  uint32_t fuse_queue_depth = 8;        // io_uring channel: requests in flight per CPU queue
  uint32_t dentry_max_age_positive_ms = 1000;
  uint32_t dentry_max_age_negative_ms = 0;
  bool read_only = false;
  uint32_t connect_timeout_secs = 10;   // reaching a backend at mount time
  uint32_t response_timeout_secs = 60;  // an IO retries this long, then EIO
  uint32_t remove_after_secs = 3600;    // unreachable this long: leave the cluster
  NetSpec net;                          // lane (see NetSpec)
  // More DPDK NICs (net= repeated): HA legs on the DPDK lane, one port
  // each, one shared IP per port; labels from `lanefs local resources`.
  std::vector<NetSpec> extra_nets;
  // DPDK lane: "full" polls on a dedicated core, "none" sleeps on RX
  // interrupts (falls back to UDP, with the reason in the log, when the
  // driver has none).
  bool dedicated_full = true;
  // DPDK lane: frontend cores (one endpoint and loop thread each), and the
  // CPUs they are pinned to (core=ID, repeatable; empty = not pinned). With
  // several IPs in net= there is one per core (non-shared IP).
  uint32_t num_cores = 1;
  std::vector<int> cores;
  // DPDK lane memory (EAL -m = memory_mb + dpdk_base_memory_mb): hugepages
  // when the host has free ones, anonymous memory (--no-huge) otherwise.
  uint32_t memory_mb = 256;
  uint32_t dpdk_base_memory_mb = 0;
  // HA (UDP lane): `net:ha=<dev>`, repeatable: the data NICs this host's
  // frontend uses, the first the primary; labels come from
  // `lanefs local resources net add DEV --label L`.
  std::vector<std::string> ha_devs;
  std::string key_file;                 // encrypted filesystems: absolute path of the key file
  // The token this mount presents (absolute path). mount.lanefs fills it
  // in when not given: $LANEFS_TOKEN_FILE, else /etc/lanefs/client.token.
  std::string auth_token_path;
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

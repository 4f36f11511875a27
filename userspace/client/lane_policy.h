// Lane policy: the one place where the client core decides which lane an
// IO travels on, and the per-lane counters that prove it.
//
// RDMA carries the data of an IO only when all of these hold (docs/lanes.md):
//   (a) RDMA is enabled for the cluster and for this client
//       (`lanefs cluster rdma enable|disable [--client NAME]`);
//   (b) every backend advertises RDMA in the cluster map;
//   (c) this client has an RDMA device on the address it talks from;
//   (d) the fabric is not mixed (all InfiniBand or all Ethernet/RoCE);
//   (e) the filesystem is not encrypted (never, in any cache mode);
//   (f) the IO is at least the threshold (reads 32 KiB, writes 256 KiB by
//       default; mount options rdma_read_min= / rdma_write_min=).
// (a)-(d) are facts about the cluster and host (RdmaAvailability, computed
// by the ClusterClient); (e) and (f) are facts about the IO. When an RDMA
// transfer fails the IO is redone on UDP and counted as a fallback.
//
// Threading: choose_lane() is pure; LaneCounters are atomics, safe to update
// and read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace lanefs::client {

// kUdp and kDpdk are the datagram lanes (whichever the mount uses carries
// every IO that does not take RDMA); kRdma moves large IO data.
enum class Lane : uint8_t { kUdp = 0, kRdma = 1, kDpdk = 2 };
inline constexpr size_t kLaneCount = 3;
std::string_view lane_name(Lane lane);  // "udp", "rdma", "dpdk"

// Why an IO did not take the RDMA lane (kNone: it did). Order is the order
// the rules are checked in; the first that applies is reported.
enum class NotRdmaReason : uint8_t {
  kNone = 0,
  kEncrypted,        // (e)
  kNotBuilt,         // lanefs built without rdma-core
  kDisabledCluster,  // (a)
  kDisabledClient,   // (a)
  kBackendNoRdma,    // (b)
  kNoLocalDevice,    // (c)
  kMixedFabric,      // (d)
  kUnavailable,      // the RDMA connection failed recently; retried later
  kBelowThreshold,   // (f)
  kFallback,         // RDMA was chosen, failed, and the IO was redone on UDP
};
inline constexpr size_t kNotRdmaReasonCount = 11;
std::string_view not_rdma_reason_text(NotRdmaReason r);  // "encrypted filesystem", ...
std::string_view not_rdma_reason_key(NotRdmaReason r);   // "encrypted", ... (JSON keys)

enum class IoDir : uint8_t { kRead, kWrite };

struct LaneThresholds {
  uint64_t read_min = 32 * 1024;
  uint64_t write_min = 256 * 1024;
};

struct LaneRequest {
  bool encrypted = false;  // filesystem is encrypted
  IoDir dir = IoDir::kRead;
  uint64_t bytes = 0;
  // (a)-(d) for this cluster and host: kNone when RDMA could be used.
  NotRdmaReason availability = NotRdmaReason::kNotBuilt;
  LaneThresholds thresholds;
};
struct LaneChoice {
  Lane lane = Lane::kUdp;
  NotRdmaReason not_rdma = NotRdmaReason::kNotBuilt;
};

// The lane decision for one IO.
LaneChoice choose_lane(const LaneRequest& io);

// Per-mount counters: IOs and bytes per lane, how often each reason kept an
// IO off RDMA, and fallbacks (RDMA chosen, redone on UDP).
struct LaneCounters {
  struct PerLane {
    std::atomic<uint64_t> ios{0}, bytes{0};
  };
  std::array<PerLane, kLaneCount> lanes;
  std::array<std::atomic<uint64_t>, kNotRdmaReasonCount> not_rdma{};
  std::atomic<uint64_t> fallbacks{0};
  void account(const LaneChoice& c, uint64_t bytes);
};

// Device memory of the direct API (include/lanefs/direct.h): an IO goes
// GPUDirect (RDMA straight into the device memory) only when every rule
// holds; otherwise its data bounces through host memory and the first
// rule that failed is the reason. Values are the public header's enum
// lanefs_bounce_reason.
enum class BounceReason : uint8_t {
  kNone = 0,
  kNotRdma = 1,             // the IO's lane is not RDMA (choose_lane)
  kEncrypted = 2,           // sealed in the frontend: never RDMA
  kUnaligned = 3,           // buffer offset, file offset or length not kDeviceAlign-aligned
  kNoDmabufSupport = 4,     // the RDMA device (or this build) cannot register dma-buf memory
  kDeviceUnregistered = 5,  // the dma-buf is not registered with the RDMA device
};
inline constexpr size_t kBounceReasonCount = 6;
inline constexpr uint64_t kDeviceAlign = 4096;
std::string_view bounce_reason_key(BounceReason r);  // "not_rdma", ... (JSON keys)

struct DeviceIo {
  bool encrypted = false;
  Lane lane = Lane::kUdp;         // what choose_lane() picked for the IO
  bool dmabuf_supported = false;  // the RDMA lane can register dma-bufs
  bool registered = false;        // this buffer is registered with it
  uint64_t buf_off = 0, file_off = 0, len = 0;
};
BounceReason choose_device_path(const DeviceIo& io);

// Per-mount direct-API counters (`lanefs stats --json`).
struct DirectCounters {
  std::atomic<uint64_t> ios{0}, bytes{0}, errors{0};
  std::atomic<uint64_t> gpudirect_ios{0}, gpudirect_bounced{0};
  // IOs whose RDMA pieces moved in place, straight into or out of the
  // application's registered buffer (zero user-space copies).
  std::atomic<uint64_t> rdma_zero_copy_ios{0};
  std::array<std::atomic<uint64_t>, kBounceReasonCount> bounce_reasons{};
};

}  // namespace lanefs::client

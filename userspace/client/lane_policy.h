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

}  // namespace lanefs::client

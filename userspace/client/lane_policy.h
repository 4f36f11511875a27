// Lane policy: the one place where the client core decides which lane an
// IO travels on, and the per-lane counters that prove it.
//
// Today only the kernel UDP lane exists, so every IO takes kUdp; the RDMA
// issue extends choose_lane() with its thresholds (reads >= 32 KiB, writes
// >= 256 KiB, every backend and HCA capable, fabric not mixed) and adds
// lanes to Lane. The rule that never changes: IO to an encrypted filesystem
// never uses RDMA (data is sealed on the client and sent on UDP/DPDK).
//
// Threading: choose_lane() is pure; LaneCounters are atomics, safe to update
// and read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace lanefs::client {

enum class Lane : uint8_t { kUdp = 0 };  // later: kDpdk, kRdma
inline constexpr size_t kLaneCount = 1;
std::string_view lane_name(Lane lane);  // "udp"

// Why an IO did not take the RDMA lane (kNone: it did).
enum class NotRdmaReason : uint8_t { kNone = 0, kEncrypted, kNoRdmaLane };
inline constexpr size_t kNotRdmaReasonCount = 3;
std::string_view not_rdma_reason_text(NotRdmaReason r);  // "encrypted filesystem", "no RDMA lane built"

enum class IoDir : uint8_t { kRead, kWrite };

struct LaneRequest {
  bool encrypted = false;  // filesystem is encrypted
  IoDir dir = IoDir::kRead;
  uint64_t bytes = 0;
};
struct LaneChoice {
  Lane lane = Lane::kUdp;
  NotRdmaReason not_rdma = NotRdmaReason::kNoRdmaLane;
};

// The lane decision for one IO.
LaneChoice choose_lane(const LaneRequest& io);

// Per-mount counters: IOs and bytes per lane, and how often each reason
// kept an IO off RDMA.
struct LaneCounters {
  struct PerLane {
    std::atomic<uint64_t> ios{0}, bytes{0};
  };
  std::array<PerLane, kLaneCount> lanes;
  std::array<std::atomic<uint64_t>, kNotRdmaReasonCount> not_rdma{};
  void account(const LaneChoice& c, uint64_t bytes);
};

}  // namespace lanefs::client

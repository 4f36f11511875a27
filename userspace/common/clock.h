// Monotonic time in nanoseconds, and a Clock seam so protocol logic (RTO,
// congestion window) can be tested on a simulated clock.
#pragma once

#include <cstdint>
#include <ctime>

namespace lanefs {

inline uint64_t mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t wall_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace lanefs

// Feeds one seed, every truncation of it and every single-bit mutant of it
// to the linked fuzz harness (the replay tests' g++ stand-in for libFuzzer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace lanefs::test {

// The harness's return value for the seed itself (0: accepted).
inline int feed_with_mutants(const std::vector<uint8_t>& seed) {
  const int rc = LLVMFuzzerTestOneInput(seed.data(), seed.size());
  for (size_t len = 0; len < seed.size(); ++len) LLVMFuzzerTestOneInput(seed.data(), len);
  for (size_t bit = 0; bit < seed.size() * 8; ++bit) {
    auto m = seed;
    m[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    LLVMFuzzerTestOneInput(m.data(), m.size());
  }
  return rc;
}

}  // namespace lanefs::test

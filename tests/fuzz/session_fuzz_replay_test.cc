// Runs the session fuzz harness (session_fuzz.cc, linked in) over its seeds
// and their single-bit and truncation mutants, so g++ builds without
// libFuzzer exercise the harness and its checks too.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "fuzz/session_fuzz_seeds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(SessionFuzz, HarnessAcceptsSeedsAndMutants) {
  const auto seeds = lanefs::test::session_fuzz_seeds();
  ASSERT_GE(seeds.size(), 12u);
  for (const auto& [name, seed] : seeds) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(seed.data(), seed.size()), 0) << name;
    for (size_t len = 0; len < seed.size(); ++len) LLVMFuzzerTestOneInput(seed.data(), len);
    for (size_t bit = 0; bit < seed.size() * 8; ++bit) {
      auto m = seed;
      m[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      LLVMFuzzerTestOneInput(m.data(), m.size());
    }
  }
}

}  // namespace

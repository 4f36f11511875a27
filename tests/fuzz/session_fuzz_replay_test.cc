// Runs the session fuzz harness (session_fuzz.cc, linked in) over its seeds
// and their single-bit and truncation mutants, so g++ builds without
// libFuzzer exercise the harness and its checks too.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "fuzz/replay.h"
#include "fuzz/session_fuzz_seeds.h"

namespace {

TEST(SessionFuzz, HarnessAcceptsSeedsAndMutants) {
  const auto seeds = lanefs::test::session_fuzz_seeds();
  ASSERT_GE(seeds.size(), 12u);
  for (const auto& [name, seed] : seeds) EXPECT_EQ(lanefs::test::feed_with_mutants(seed), 0) << name;
}

}  // namespace

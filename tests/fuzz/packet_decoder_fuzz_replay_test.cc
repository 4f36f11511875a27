// Runs the fuzz harness (packet_decoder_fuzz.cc, linked in) over the
// build-time seed corpus and over single-bit and truncation mutants of each
// seed, so the harness and its round-trip checks are exercised by g++ builds
// that have no libFuzzer.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "fuzz/replay.h"
#include "proto/wire.h"

namespace {

std::vector<std::vector<uint8_t>> read_corpus(std::vector<std::string>* names) {
  std::vector<std::vector<uint8_t>> out;
  for (const auto& entry : std::filesystem::directory_iterator(LANEFS_FUZZ_SEED_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    names->push_back(entry.path().filename().string());
  }
  return out;
}

TEST(PacketDecoderFuzz, SeedCorpusIsPresentAndValid) {
  std::vector<std::string> names;
  const auto seeds = read_corpus(&names);
  ASSERT_GE(seeds.size(), 12u) << "seed corpus missing in " << LANEFS_FUZZ_SEED_DIR;
  int valid = 0;
  for (size_t i = 0; i < seeds.size(); ++i) {
    lanefs::proto::PacketHeader h;
    std::span<const uint8_t> payload;
    const auto r = lanefs::proto::decode_packet(seeds[i], &h, &payload);
    if (names[i].rfind("valid_", 0) == 0) {
      EXPECT_EQ(r, lanefs::proto::DecodeError::kOk) << names[i];
      ++valid;
    } else {
      EXPECT_NE(r, lanefs::proto::DecodeError::kOk) << names[i];
    }
  }
  EXPECT_GE(valid, 12);
}

TEST(PacketDecoderFuzz, HarnessAcceptsSeedsAndMutants) {
  std::vector<std::string> names;
  const auto seeds = read_corpus(&names);
  ASSERT_FALSE(seeds.empty());
  for (const auto& seed : seeds) EXPECT_EQ(lanefs::test::feed_with_mutants(seed), 0);
}

}  // namespace

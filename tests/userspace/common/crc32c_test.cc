// CRC32C: published check values, extend() over every split point, and the
// production path (hardware when present) against a bitwise reference.
#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace lanefs {
namespace {

// Bit-at-a-time reflected CRC32C, independent of the table and of SSE4.2.
uint32_t reference_crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(Crc32c, KnownVectors) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
  const std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::vector<uint8_t> ones(32, 0xFF);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::vector<uint8_t> inc(32);
  for (size_t i = 0; i < inc.size(); ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(inc.data(), inc.size()), 0x46DD794Eu);
}

TEST(Crc32c, EmptyInputIsIdentity) {
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  EXPECT_EQ(crc32c_extend(0x12345678u, nullptr, 0), 0x12345678u);
}

TEST(Crc32c, ExtendEqualsOneShotAtEverySplitPoint) {
  const auto data = random_bytes(67, 1);  // odd size: exercises 8-byte and tail loops
  const uint32_t whole = crc32c(data.data(), data.size());
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    uint32_t c = crc32c_extend(0, data.data(), cut);
    c = crc32c_extend(c, data.data() + cut, data.size() - cut);
    EXPECT_EQ(c, whole) << "split at " << cut;
  }
  uint32_t bytewise = 0;
  for (uint8_t b : data) bytewise = crc32c_extend(bytewise, &b, 1);
  EXPECT_EQ(bytewise, whole);
}

TEST(Crc32c, MatchesBitwiseReferenceForAllLengthsAndAlignments) {
  const auto data = random_bytes(300, 2);
  for (size_t off = 0; off < 8; ++off) {
    for (size_t len = 0; off + len <= data.size(); len += (len < 40 ? 1 : 13)) {
      ASSERT_EQ(crc32c(data.data() + off, len), reference_crc32c(data.data() + off, len))
          << "offset " << off << " length " << len;
    }
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  auto data = random_bytes(64, 3);
  const uint32_t base = crc32c(data.data(), data.size());
  for (size_t bit = 0; bit < data.size() * 8; ++bit) {
    data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_NE(crc32c(data.data(), data.size()), base) << "bit " << bit;
    data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

TEST(Crc32c, LargeBufferCrossesTheLengthSplit) {
  // ISA-L takes an int length; longer buffers are fed in pieces.
  std::vector<uint8_t> big((size_t{1} << 30) + 4097, 0x5a);
  uint32_t whole = crc32c(big.data(), big.size());
  uint32_t split = crc32c_extend(crc32c(big.data(), 4097), big.data() + 4097, big.size() - 4097);
  EXPECT_EQ(whole, split);
}

}  // namespace
}  // namespace lanefs

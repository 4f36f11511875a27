// Encoder/Decoder: round trips of every type, exact little-endian layout, and
// a decoder that fails (never reads past its input) on every truncation.
#include "common/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lanefs {
namespace {

struct Sample {
  uint8_t a = 0xA5;
  uint16_t b = 0xBEEF;
  uint32_t c = 0xDEADBEEF;
  uint64_t d = 0x0123456789ABCDEFull;
  int32_t e = -123456789;
  int64_t f = std::numeric_limits<int64_t>::min() + 7;
  std::vector<uint8_t> g = {0, 1, 2, 0xFF};
  std::string h = "hello, lanefs";
  std::string i;  // empty string
  uint8_t raw[3] = {9, 8, 7};
};

std::vector<uint8_t> encode_sample(const Sample& s) {
  std::vector<uint8_t> out;
  Encoder e(&out);
  e.u8(s.a);
  e.u16(s.b);
  e.u32(s.c);
  e.u64(s.d);
  e.i32(s.e);
  e.i64(s.f);
  e.bytes(s.g);
  e.str(s.h);
  e.str(s.i);
  e.raw(s.raw, sizeof s.raw);
  return out;
}

// Decodes a Sample; returns false on the first failure the decoder reports.
bool decode_sample(std::span<const uint8_t> in, Sample* s) {
  Decoder d(in);
  s->a = d.u8();
  s->b = d.u16();
  s->c = d.u32();
  s->d = d.u64();
  s->e = d.i32();
  s->f = d.i64();
  auto g = d.bytes();
  s->g.assign(g.begin(), g.end());
  s->h = d.str();
  s->i = d.str();
  if (d.remaining() < sizeof s->raw) return false;
  auto rest = d.rest();
  std::copy(rest.begin(), rest.begin() + sizeof s->raw, s->raw);
  return d.done();
}

TEST(Codec, RoundTripsEveryType) {
  Sample in;
  const auto buf = encode_sample(in);
  EXPECT_EQ(buf.size(), 1u + 2 + 4 + 8 + 4 + 8 + (4 + 4) + (4 + 13) + 4 + 3);
  Sample out{0, 0, 0, 0, 0, 0, {}, {}, "x", {0, 0, 0}};  // differs from `in` everywhere
  ASSERT_TRUE(decode_sample(buf, &out));
  EXPECT_EQ(out.a, in.a);
  EXPECT_EQ(out.b, in.b);
  EXPECT_EQ(out.c, in.c);
  EXPECT_EQ(out.d, in.d);
  EXPECT_EQ(out.e, in.e);
  EXPECT_EQ(out.f, in.f);
  EXPECT_EQ(out.g, in.g);
  EXPECT_EQ(out.h, in.h);
  EXPECT_EQ(out.i, in.i);
  EXPECT_EQ(out.raw[0], 9);
  EXPECT_EQ(out.raw[1], 8);
  EXPECT_EQ(out.raw[2], 7);
}

TEST(Codec, LittleEndianLayout) {
  std::vector<uint8_t> out;
  Encoder e(&out);
  e.u32(0x11223344u);
  e.u16(0xA1B2);
  e.str("ab");
  const std::vector<uint8_t> want = {0x44, 0x33, 0x22, 0x11, 0xB2, 0xA1, 2, 0, 0, 0, 'a', 'b'};
  EXPECT_EQ(out, want);
}

TEST(Codec, ExtremeValuesRoundTrip) {
  std::vector<uint8_t> out;
  Encoder e(&out);
  e.u64(std::numeric_limits<uint64_t>::max());
  e.i64(std::numeric_limits<int64_t>::min());
  e.i32(-1);
  e.u16(0);
  Decoder d(out);
  EXPECT_EQ(d.u64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(d.i64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(d.i32(), -1);
  EXPECT_EQ(d.u16(), 0);
  EXPECT_TRUE(d.done());
}

TEST(Codec, TruncatedInputFailsAtEveryCutPoint) {
  const auto full = encode_sample(Sample{});
  for (size_t cut = 0; cut < full.size(); ++cut) {
    // An exact-size heap copy so AddressSanitizer/valgrind would catch a read
    // past the end; the decoder itself must report failure.
    std::unique_ptr<uint8_t[]> copy(new uint8_t[cut == 0 ? 1 : cut]);
    std::copy(full.begin(), full.begin() + cut, copy.get());
    Sample s;
    EXPECT_FALSE(decode_sample({copy.get(), cut}, &s)) << "cut at " << cut;
  }
}

TEST(Codec, FailedGetterReturnsZeroAndStaysFailed) {
  const uint8_t two[2] = {1, 2};
  Decoder d(two);
  EXPECT_EQ(d.u32(), 0u);
  EXPECT_FALSE(d.ok());
  EXPECT_FALSE(d.done());
  // Sticky: even a getter that would fit now fails and consumes nothing.
  EXPECT_EQ(d.u8(), 0u);
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.remaining(), 2u);
}

TEST(Codec, BytesLongerThanRemainingFails) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  e.u32(5);  // claims 5 bytes, only 4 follow
  e.raw("abcd", 4);
  Decoder d(buf);
  auto b = d.bytes();
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(d.ok());

  std::vector<uint8_t> huge;
  Encoder e2(&huge);
  e2.u32(0xFFFFFFFFu);
  e2.raw("xy", 2);
  Decoder d2(huge);
  EXPECT_TRUE(d2.str().empty());
  EXPECT_FALSE(d2.ok());
}

TEST(Codec, BytesRespectsMaxLen) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  e.str("abcdef");
  {
    Decoder d(buf);
    EXPECT_TRUE(d.str(5).empty());
    EXPECT_FALSE(d.ok());
  }
  {
    Decoder d(buf);
    EXPECT_EQ(d.str(6), "abcdef");
    EXPECT_TRUE(d.done());
  }
}

TEST(Codec, BytesViewsIntoInput) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  const uint8_t payload[] = {1, 2, 3};
  e.bytes(payload);
  e.u8(0x77);
  Decoder d(buf);
  auto v = d.bytes();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v.data(), buf.data() + 4);
  EXPECT_EQ(d.remaining(), 1u);
  EXPECT_FALSE(d.done());
  EXPECT_EQ(d.u8(), 0x77);
  EXPECT_TRUE(d.done());
}

TEST(Codec, RestTakesEverythingLeft) {
  const uint8_t in[] = {1, 2, 3, 4, 5};
  Decoder d(in);
  EXPECT_EQ(d.u16(), 0x0201);
  auto r = d.rest();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], 3);
  EXPECT_TRUE(d.done());
  EXPECT_TRUE(d.rest().empty());
}

}  // namespace
}  // namespace lanefs

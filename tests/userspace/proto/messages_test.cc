// Message bodies that gained fields: an older peer's encoding still decodes
// (new fields read as 0), and a newer one round-trips.
#include <gtest/gtest.h>

#include "proto/messages.h"

namespace lanefs::proto {
namespace {

BackendStatus sample_status() {
  BackendStatus s;
  s.pid = 42;
  s.requests = 7;
  s.replies_from_cache = 3;
  s.data_read_bytes = uint64_t{5} << 32;
  s.data_written_bytes = 4096;
  s.rx_bad_mac = 9;
  s.rx_replayed = 2;
  s.corrupt_blocks = 5;
  return s;
}

TEST(Messages, BackendStatusRoundTripsDataByteCounters) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  sample_status().encode(e);
  BackendStatus got;
  Decoder d(buf);
  ASSERT_TRUE(got.decode(d));
  EXPECT_TRUE(d.done());
  EXPECT_EQ(got.pid, 42u);
  EXPECT_EQ(got.replies_from_cache, 3u);
  EXPECT_EQ(got.data_read_bytes, uint64_t{5} << 32);
  EXPECT_EQ(got.data_written_bytes, 4096u);
  EXPECT_EQ(got.rx_bad_mac, 9u);
  EXPECT_EQ(got.rx_replayed, 2u);
  EXPECT_EQ(got.corrupt_blocks, 5u);
}

TEST(Messages, BackendStatusFromAnOlderPeerDecodesWithZeroCounters) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  sample_status().encode(e);
  buf.resize(buf.size() - 8);  // a peer without the corrupt-block counter
  BackendStatus got;
  Decoder d0(buf);
  ASSERT_TRUE(got.decode(d0));
  EXPECT_EQ(got.corrupt_blocks, 0u);
  EXPECT_EQ(got.rx_replayed, sample_status().rx_replayed);
  buf.resize(buf.size() - 16);  // nor the MAC counters
  got = BackendStatus{};
  Decoder d(buf);
  ASSERT_TRUE(got.decode(d));
  EXPECT_EQ(got.data_written_bytes, 4096u);
  EXPECT_EQ(got.rx_bad_mac, 0u);
  EXPECT_EQ(got.rx_replayed, 0u);
  buf.resize(buf.size() - 16);  // and without the data byte counters
  BackendStatus older;
  Decoder d1(buf);
  ASSERT_TRUE(older.decode(d1));
  EXPECT_EQ(older.replies_from_cache, 3u);
  EXPECT_EQ(older.data_read_bytes, 0u);
  EXPECT_EQ(older.data_written_bytes, 0u);
  buf.resize(buf.size() - 1);  // but a truncated older body is still refused
  Decoder d2(buf);
  EXPECT_FALSE(got.decode(d2));
}

}  // namespace
}  // namespace lanefs::proto

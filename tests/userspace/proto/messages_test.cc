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
}

TEST(Messages, BackendStatusFromAnOlderPeerDecodesWithZeroCounters) {
  std::vector<uint8_t> buf;
  Encoder e(&buf);
  sample_status().encode(e);
  buf.resize(buf.size() - 16);  // what a peer without the two counters sends
  BackendStatus got;
  Decoder d(buf);
  ASSERT_TRUE(got.decode(d));
  EXPECT_EQ(got.replies_from_cache, 3u);
  EXPECT_EQ(got.data_read_bytes, 0u);
  EXPECT_EQ(got.data_written_bytes, 0u);
  buf.resize(buf.size() - 1);  // but a truncated older body is still refused
  Decoder d2(buf);
  EXPECT_FALSE(got.decode(d2));
}

}  // namespace
}  // namespace lanefs::proto

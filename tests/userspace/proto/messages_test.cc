// Message bodies that gained fields: an older peer's encoding still decodes
// (new fields read as 0), and a newer one round-trips; a token travels
// sealed for the caller.
#include <gtest/gtest.h>

#include <algorithm>

#include "proto/auth.h"
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

namespace lanefs::proto {
namespace {

// kUserAdd/kUserToken replies: the token's key travels sealed for the
// caller; only the caller's key opens it, and any change on the way fails.
TEST(TokenSeal, OnlyTheCallersKeyOpensTheToken) {
  AuthKey caller = random_key(), other = random_key();
  Credentials bob{"bob", 7, random_key()};
  TokenResp t = seal_token(caller, bob);
  std::vector<uint8_t> wire = encode_msg(t);
  EXPECT_EQ(std::search(wire.begin(), wire.end(), bob.key.begin(), bob.key.end()), wire.end())
      << "the key is on the wire in clear";
  auto back = decode_msg<TokenResp>(wire);
  ASSERT_TRUE(back.ok());
  auto opened = open_token(caller, *back);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  EXPECT_EQ(opened->user, "bob");
  EXPECT_EQ(opened->generation, 7u);
  EXPECT_EQ(opened->key, bob.key);
  EXPECT_EQ(open_token(other, *back).code(), Errc::kPermission);
  TokenResp renamed = *back;
  renamed.user = "mallory";
  EXPECT_EQ(open_token(caller, renamed).code(), Errc::kPermission);
  TokenResp older = *back;
  older.generation = 6;
  EXPECT_EQ(open_token(caller, older).code(), Errc::kPermission);
  TokenResp flipped = *back;
  flipped.sealed[3] ^= 1;
  EXPECT_EQ(open_token(caller, flipped).code(), Errc::kPermission);
  EXPECT_NE(seal_token(caller, bob).nonce, t.nonce) << "a fresh nonce per reply";
}

}  // namespace
}  // namespace lanefs::proto

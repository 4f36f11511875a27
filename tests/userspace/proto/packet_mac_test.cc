// Packet MACs (proto/packet_mac.h): a sealed packet decodes with its tag
// and verifies under its session key only; any bit flipped, another key,
// another direction or another sequence number fails it; the replay window
// takes each number once, tolerates reordering within the window and
// refuses what is older. The session key depends on every input.
#include "proto/packet_mac.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

namespace lanefs::proto {
namespace {

SessionKey key_of(uint8_t b) {
  SessionKey k;
  k.bytes.fill(b);
  return k;
}

struct Sealed {
  std::vector<uint8_t> pkt;
};

Sealed seal(const SessionKey& key, PacketHeader h, const std::vector<uint8_t>& payload) {
  SessionMac mac(key);
  Sealed s;
  s.pkt.assign(kHeaderSize + payload.size(), 0);
  std::copy(payload.begin(), payload.end(), s.pkt.begin() + kHeaderSize);
  h.payload_len = static_cast<uint32_t>(payload.size());
  // Two parts, as the transmit path gathers them.
  const size_t cut = payload.size() / 3;
  mac.seal_header(h, {s.pkt.data() + kHeaderSize, cut}, {s.pkt.data() + kHeaderSize + cut, payload.size() - cut},
                  s.pkt.data());
  return s;
}

bool verifies(const SessionKey& key, const std::vector<uint8_t>& pkt) {
  PacketHeader h;
  std::span<const uint8_t> payload;
  if (decode_packet(pkt, &h, &payload) != DecodeError::kOk) return false;
  SessionMac mac(key);
  return mac.verify(h, payload);
}

PacketHeader response(uint64_t seq, uint32_t len) {
  PacketHeader h;
  h.type = PktType::kResponse;
  h.session_id = 0xabcdef01u;
  h.request_id = 42;
  h.pkt_count = 1;
  h.msg_len = len;
  h.seq = seq;
  return h;
}

TEST(PacketMac, SealedPacketVerifiesUnderItsKeyOnly) {
  std::vector<uint8_t> payload(1000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 13);
  auto s = seal(key_of(1), response(7, 1000), payload);
  PacketHeader h;
  std::span<const uint8_t> body;
  ASSERT_EQ(decode_packet(s.pkt, &h, &body), DecodeError::kOk);
  EXPECT_TRUE(h.flags & kFlagMac);
  EXPECT_EQ(h.seq, 7u);
  SessionMac right(key_of(1)), wrong(key_of(2));
  EXPECT_TRUE(right.verify(h, body));
  EXPECT_FALSE(wrong.verify(h, body));
  SessionKey near = key_of(1);
  near.bytes[15] ^= 1;
  SessionMac one_bit_off(near);
  EXPECT_FALSE(one_bit_off.verify(h, body));
  EXPECT_TRUE(right.verify(h, body));  // checking leaves nothing behind
}

TEST(PacketMac, AnyFlippedBitFails) {
  std::vector<uint8_t> payload(200, 0x33);
  auto s = seal(key_of(9), response(1, 200), payload);
  for (size_t byte = 0; byte < s.pkt.size(); ++byte) {
    for (int bit : {0, 7}) {
      auto bad = s.pkt;
      bad[byte] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(verifies(key_of(9), bad)) << "byte " << byte << " bit " << bit;
    }
  }
  EXPECT_TRUE(verifies(key_of(9), s.pkt));
}

TEST(PacketMac, TheSameBytesFromTheOtherDirectionFail) {
  // A server's packet replayed to it as a client's (same seq, same key)
  // uses another nonce: it does not verify.
  PacketHeader h = response(3, 0);
  auto s = seal(key_of(4), h, {});
  auto as_request = s.pkt;
  as_request[5] = static_cast<uint8_t>(PktType::kRequest);
  EXPECT_FALSE(verifies(key_of(4), as_request));
  EXPECT_TRUE(verifies(key_of(4), s.pkt));
  EXPECT_NE(mac_direction(PktType::kRequest), mac_direction(PktType::kResponse));
  EXPECT_NE(mac_direction(PktType::kConnectOk), mac_direction(PktType::kResponse));
}

TEST(PacketMac, UnkeyedPacketDoesNotVerify) {
  PacketHeader h = response(1, 4);
  std::vector<uint8_t> pkt(kHeaderSize + 4, 1);
  h.payload_len = 4;
  encode_header(h, {pkt.data() + kHeaderSize, 4}, pkt.data());
  EXPECT_FALSE(verifies(key_of(1), pkt));
}

TEST(PacketMac, SessionKeyDependsOnEveryInput) {
  AuthKey user{};
  user[0] = 1;
  std::vector<uint8_t> cookie(20, 7);
  const SessionKey k = session_key(user, 11, cookie);
  EXPECT_EQ(k, session_key(user, 11, cookie));
  EXPECT_NE(k, session_key(user, 12, cookie));
  auto other_cookie = cookie;
  other_cookie[19] ^= 1;
  EXPECT_NE(k, session_key(user, 11, other_cookie));
  AuthKey other_user = user;
  other_user[31] ^= 1;
  EXPECT_NE(k, session_key(other_user, 11, cookie));
}

TEST(ReplayWindow, EachNumberOnceInAnyOrderWithinTheWindow) {
  ReplayWindow w;
  EXPECT_FALSE(w.accept(0));  // never sent
  EXPECT_TRUE(w.accept(1));
  EXPECT_FALSE(w.accept(1));
  EXPECT_TRUE(w.accept(5));
  EXPECT_TRUE(w.accept(3));  // late, still inside
  EXPECT_FALSE(w.accept(3));
  EXPECT_TRUE(w.accept(2));
  EXPECT_TRUE(w.accept(4));
  EXPECT_FALSE(w.accept(5));
}

TEST(ReplayWindow, OlderThanTheWindowIsRefused) {
  ReplayWindow w;
  const uint64_t top = 3 * ReplayWindow::kWindow + 17;
  EXPECT_TRUE(w.accept(top));
  EXPECT_FALSE(w.accept(top - ReplayWindow::kWindow));      // just outside
  EXPECT_TRUE(w.accept(top - ReplayWindow::kWindow + 1));   // just inside
  EXPECT_FALSE(w.accept(top - ReplayWindow::kWindow + 1));
  EXPECT_FALSE(w.accept(1));
}

TEST(ReplayWindow, MatchesAModelOnRandomTraffic) {
  std::mt19937_64 rnd(7);
  ReplayWindow w;
  std::set<uint64_t> seen;
  uint64_t top = 0;
  for (int i = 0; i < 200000; ++i) {
    uint64_t seq;
    switch (rnd() % 4) {
      case 0: seq = top + 1 + rnd() % 100; break;
      case 1: seq = top > 200 ? top - rnd() % 200 : 1 + rnd() % 200; break;
      case 2: seq = top + rnd() % (3 * ReplayWindow::kWindow); break;
      default: seq = top > ReplayWindow::kWindow ? top - ReplayWindow::kWindow + rnd() % 3 : 1; break;
    }
    const bool want = seq != 0 && !seen.count(seq) && (seq > top || top - seq < ReplayWindow::kWindow);
    ASSERT_EQ(w.accept(seq), want) << "step " << i << " seq " << seq << " top " << top;
    if (want) {
      seen.insert(seq);
      top = std::max(top, seq);
    }
  }
}

}  // namespace
}  // namespace lanefs::proto

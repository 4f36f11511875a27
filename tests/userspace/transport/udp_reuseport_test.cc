// Reuseport groups on the UDP lane (127.0.0.x, no root needed): several
// sockets on one address, each datagram steered by the low byte of the
// session id at payload offset 8, whatever socket sent it:
//   - a group of 3: byte k lands on member k % 3 from four different
//     senders; session 0 lands on member 0; reuseport_steer() agrees;
//   - a group whose members have two legs (127.0.0.1 + 127.0.0.2): each leg
//     is a group of its own and steers the same way;
//   - the steering byte is where proto/wire.h puts the session id;
//   - other lanes refuse a group, an index outside the group is invalid.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "proto/wire.h"
#include "support/test_support.h"
#include "transport/loopback/loopback_transport.h"
#include "transport/transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs::transport {
namespace {

using test::pattern;
using test::receive;
using test::send_all;

constexpr uint32_t kIp1 = 0x7f000001, kIp2 = 0x7f000002, kIp5 = 0x7f000005;
constexpr int kTimeoutMs = 10000;
constexpr uint32_t kGroup = 3;

TransportConfig group_config(NetAddr bind, std::vector<NetAddr> legs = {}) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = bind;
  c.extra_binds = std::move(legs);
  c.reuseport_group = kGroup;
  c.reuseport_index = 0;
  return c;
}

// Member 0 first, then the others bound to its real addresses.
std::vector<std::unique_ptr<Transport>> make_group(const TransportConfig& first) {
  std::vector<std::unique_ptr<Transport>> g;
  auto m0 = make_transport(first);
  EXPECT_OK(m0);
  if (!m0.ok()) return g;
  g.push_back(std::move(m0).value());
  for (uint32_t i = 1; i < kGroup; ++i) {
    auto m = make_transport(reuseport_member_config(first, *g[0], i));
    EXPECT_OK(m);
    if (!m.ok()) return {};
    g.push_back(std::move(m).value());
  }
  return g;
}

// A 44-byte datagram whose session field (bytes 8..11, little-endian) is
// `session`, and whose bytes 0..3 say which datagram it is.
std::vector<uint8_t> packet(uint32_t id, uint32_t session) {
  auto p = pattern(44, id);
  std::memcpy(p.data(), &id, 4);
  for (int i = 0; i < 4; ++i) p[8 + i] = static_cast<uint8_t>(session >> (8 * i));
  return p;
}

struct Sent {
  uint32_t id, session;
  NetAddr to;
};

// Sends one packet per session from rotating senders to `dst`; checks each
// member got exactly those that reuseport_steer() assigns to it.
void check_steering(std::vector<std::unique_ptr<Transport>>& group,
                    std::vector<std::unique_ptr<Transport>>& senders, NetAddr dst,
                    const std::vector<uint32_t>& sessions) {
  std::map<uint32_t, std::vector<uint32_t>> want;  // member -> ids
  std::map<uint32_t, uint32_t> session_of;
  std::vector<std::vector<uint8_t>> bytes;
  for (uint32_t i = 0; i < sessions.size(); ++i) {
    bytes.push_back(packet(i, sessions[i]));
    TxDatagram d{dst, bytes.back().data(), 44};
    ASSERT_TRUE(send_all(*senders[i % senders.size()], {&d, 1}));
    want[reuseport_steer(sessions[i], kGroup)].push_back(i);
    session_of[i] = sessions[i];
  }
  for (uint32_t m = 0; m < kGroup; ++m) {
    auto got = receive(*group[m], want[m].size(), kTimeoutMs);
    std::vector<uint32_t> ids;
    for (const auto& g : got) {
      uint32_t id;
      std::memcpy(&id, g.data.data(), 4);
      ids.push_back(id);
      EXPECT_EQ(g.src, senders[id % senders.size()]->local_addr());
    }
    // Per member, one sender's datagrams keep their order, but different
    // senders' may interleave: compare as sets.
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, want[m]) << "member " << m << " on " << dst.to_string();
    for (uint32_t id : ids) EXPECT_EQ(reuseport_steer(session_of[id], kGroup), m);
  }
  // Nothing else arrived anywhere.
  std::vector<RxDatagram> out(16);
  for (auto& t : group) {
    auto r = t->rx_burst(out);
    ASSERT_OK(r);
    EXPECT_EQ(*r, 0u);
  }
}

std::vector<std::unique_ptr<Transport>> senders(size_t n) {
  std::vector<std::unique_ptr<Transport>> s;
  for (size_t i = 0; i < n; ++i) {
    TransportConfig c;
    c.kind = TransportKind::kUdp;
    c.bind = NetAddr{i % 2 ? kIp5 : kIp1, 0};
    auto t = make_transport(c);
    EXPECT_OK(t);
    if (t.ok()) s.push_back(std::move(t).value());
  }
  return s;
}

TEST(UdpReuseport, SteerHelper) {
  EXPECT_EQ(reuseport_steer(0, 3), 0u);
  EXPECT_EQ(reuseport_steer(7, 3), 1u);
  EXPECT_EQ(reuseport_steer(0x12345605, 3), 2u);  // only the low byte counts
  EXPECT_EQ(reuseport_steer(255, 4), 3u);
  EXPECT_EQ(reuseport_steer(9, 0), 0u);
  EXPECT_EQ(reuseport_steer(9, 1), 0u);
}

// The steering byte is the low byte of the session id as proto/wire.h
// lays it out.
TEST(UdpReuseport, SteerOffsetIsTheSessionIdLowByte) {
  proto::PacketHeader h;
  h.session_id = 0x12345678;
  uint8_t out[proto::kHeaderSize];
  proto::encode_header(h, {}, out);
  EXPECT_EQ(out[kSteerOffset], 0x78);
  EXPECT_EQ(out[kSteerOffset + 3], 0x12);
}

TEST(UdpReuseport, GroupOfThreeSteersBySession) {
  auto group = make_group(group_config({kIp1, 0}));
  ASSERT_EQ(group.size(), kGroup);
  const NetAddr addr = group[0]->local_addr();
  for (auto& m : group) {
    EXPECT_EQ(m->local_addr(), addr);  // one address for the whole group
    EXPECT_FALSE(m->stats().gro_active);
  }
  auto from = senders(4);
  ASSERT_EQ(from.size(), 4u);
  std::vector<uint32_t> sessions = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255,
                                    0x100, 0x101, 0x12345602, 0xffffff00};
  check_steering(group, from, addr, sessions);
}

// A GSO packet is steered whole, by its first datagram: runs stop at a new
// session id, so one sender's burst for several sessions still lands per
// session.
TEST(UdpReuseport, GsoBurstsForSeveralSessionsLandPerSession) {
  auto group = make_group(group_config({kIp1, 0}));
  ASSERT_EQ(group.size(), kGroup);
  auto from = senders(1);
  ASSERT_EQ(from.size(), 1u);
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TxDatagram> pkts;
  for (uint32_t i = 0; i < 30; ++i) bytes.push_back(packet(i, 1 + i / 10));  // sessions 1, 2, 3
  for (const auto& b : bytes) pkts.push_back(TxDatagram{group[0]->local_addr(), b.data(), 44});
  ASSERT_TRUE(send_all(*from[0], pkts));
  EXPECT_EQ(from[0]->stats().tx_gso_sends, 3u);
  for (uint32_t s = 1; s <= 3; ++s) {
    auto got = receive(*group[reuseport_steer(s, kGroup)], 10, kTimeoutMs);
    ASSERT_EQ(got.size(), 10u) << "session " << s;
    for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k].data, bytes[(s - 1) * 10 + k]);
  }
}

TEST(UdpReuseport, SessionZeroAlwaysReachesMemberZero) {
  auto group = make_group(group_config({kIp1, 0}));
  ASSERT_EQ(group.size(), kGroup);
  auto from = senders(4);
  check_steering(group, from, group[0]->local_addr(), std::vector<uint32_t>(12, 0));
}

TEST(UdpReuseport, EveryLegIsAGroupOfItsOwn) {
  auto group = make_group(group_config({kIp1, 0}, {{kIp2, 0}}));
  ASSERT_EQ(group.size(), kGroup);
  const auto legs = group[0]->local_addrs();
  ASSERT_EQ(legs.size(), 2u);
  for (auto& m : group) EXPECT_EQ(m->local_addrs(), legs);
  auto from = senders(3);
  std::vector<uint32_t> sessions = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0x201, 0x302};
  check_steering(group, from, legs[0], sessions);
  check_steering(group, from, legs[1], sessions);
}

TEST(UdpReuseport, OtherLanesRefuseAGroup) {
  TransportConfig c = group_config({kIp1, 0});
  c.kind = TransportKind::kLoopback;
  c.hub = std::make_shared<LoopbackHub>();
  auto r = make_transport(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kNotSupported);
  EXPECT_NE(r.error().message.find("reuseport"), std::string::npos) << r.error().message;
  c.kind = TransportKind::kDpdk;
  EXPECT_EQ(make_transport(c).code(), Errc::kNotSupported);
  c.kind = TransportKind::kRdma;
  EXPECT_EQ(make_transport(c).code(), Errc::kNotSupported);
  // A group of 1 is no group: allowed everywhere.
  c.kind = TransportKind::kLoopback;
  c.reuseport_group = 1;
  EXPECT_OK(make_transport(c));
}

TEST(UdpReuseport, IndexOutsideTheGroupIsInvalid) {
  TransportConfig c = group_config({kIp1, 0});
  c.reuseport_index = kGroup;
  EXPECT_EQ(make_transport(c).code(), Errc::kInvalid);
}

}  // namespace
}  // namespace lanefs::transport

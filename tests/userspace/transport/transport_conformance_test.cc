// One suite, run over every transport lane that can run in a test process:
// in-process loopback and kernel UDP on 127.0.0.1, and RDMA (SEND/RECV over
// RC QPs) when LANEFS_TEST_RDMA_IPS="A,B" names two local addresses on
// different RDMA devices (the qemu guest rig: tests/vm/guest/
// rdma_conformance.sh); without it the RDMA instantiation skips, saying why.
// A new lane joins by adding its kind to INSTANTIATE_TEST_SUITE_P below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lanefs/config.h"
#include "rdma/rdma_test_env.h"
#include "support/test_support.h"
#include "transport/loopback/loopback_transport.h"
#include "transport/transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs::transport {
namespace {

using test::dgram;
using test::pattern;
using test::readable;
using test::receive;
using test::send_all;

constexpr uint32_t kLocalhost = 0x7f000001;
// A bound on waiting, not a timing assertion: RDMA under qemu TCG is slow.
constexpr int kTimeoutMs = 20000;

class TransportConformance : public testing::TestWithParam<TransportKind> {
 protected:
  void SetUp() override {
    if (GetParam() == TransportKind::kRdma) {
      auto ips = lanefs::test::rdma_test_ips();
      if (ips.size() < 2)
        GTEST_SKIP() << "RDMA lane: set LANEFS_TEST_RDMA_IPS=\"A,B\" (two local addresses on "
                        "different RDMA devices; the vm rig does)";
      ip_a_ = ips[0];
      ip_b_ = ips[1];
    }
    auto a = make();
    ASSERT_OK(a);
    a_ = std::move(a).value();
    auto b = make(1472, ip_b_);
    ASSERT_OK(b);
    b_ = std::move(b).value();
  }

  // An explicit Ethernet-sized limit, so both lanes behave alike here (UDP's
  // automatic limit follows the interface MTU; see UdpTransport tests).
  // RDMA: a_ (and extra senders) on the first address, b_ on the second, so
  // the datagrams cross between two devices.
  Result<std::unique_ptr<Transport>> make(uint32_t mtu = 1472, uint32_t ip = 0) {
    TransportConfig c;
    c.kind = GetParam();
    c.bind = NetAddr{ip ? ip : ip_a_, 0};
    c.mtu = mtu;
    c.hub = hub_;
    return make_transport(c);
  }

  std::shared_ptr<LoopbackHub> hub_ = std::make_shared<LoopbackHub>();
  uint32_t ip_a_ = kLocalhost, ip_b_ = kLocalhost;
  std::unique_ptr<Transport> a_, b_;
};

TEST_P(TransportConformance, LocalAddrHasRealPort) {
  EXPECT_EQ(a_->kind(), GetParam());
  EXPECT_NE(a_->local_addr().port, 0);
  EXPECT_EQ(a_->local_addr().ip, ip_a_);
  EXPECT_NE(a_->local_addr(), b_->local_addr());
  EXPECT_EQ(a_->max_datagram(), 1472u);
}

TEST_P(TransportConformance, SendReceiveExactBytesAndSource) {
  auto bytes = pattern(100, 1);
  TxDatagram d = dgram(b_->local_addr(), bytes);
  auto r = a_->tx_burst({&d, 1});
  ASSERT_OK(r);
  EXPECT_EQ(*r, 1u);
  auto got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, bytes);
  EXPECT_EQ(got[0].src, a_->local_addr());
}

TEST_P(TransportConformance, HeadAndBodyAreGathered) {
  auto head = pattern(24, 2), body = pattern(300, 3), head_only = pattern(7, 4),
       body_only = pattern(55, 5);
  NetAddr dst = b_->local_addr();
  TxDatagram pkts[] = {
      {dst, head.data(), uint32_t(head.size()), body.data(), uint32_t(body.size())},
      {dst, head_only.data(), uint32_t(head_only.size()), nullptr, 0},
      {dst, nullptr, 0, body_only.data(), uint32_t(body_only.size())},
  };
  ASSERT_TRUE(send_all(*a_, pkts));
  auto got = receive(*b_, 3, kTimeoutMs);
  ASSERT_EQ(got.size(), 3u);
  std::vector<uint8_t> joined = head;
  joined.insert(joined.end(), body.begin(), body.end());
  // Identify by length: ordering is not part of the contract.
  std::sort(got.begin(), got.end(),
            [](const auto& x, const auto& y) { return x.data.size() < y.data.size(); });
  EXPECT_EQ(got[0].data, head_only);
  EXPECT_EQ(got[1].data, body_only);
  EXPECT_EQ(got[2].data, joined);
}

// Three-part gathers (head, body, body2) split at every interesting point,
// empty parts included (with null pointers), down to the whole datagram in
// one part, at a small size and at max_datagram(): the bytes arrive as the
// concatenation of the parts.
TEST_P(TransportConformance, ThreePartDatagramsArriveIntactAtEverySplit) {
  struct Case {
    uint32_t len, a, b;  // parts: [0, a) [a, b) [b, len)
  };
  const uint32_t max = a_->max_datagram();
  std::vector<Case> cases;
  for (uint32_t len : {300u, max}) {
    const uint32_t points[] = {0, 1, 44, len / 2, len - 1, len};
    for (uint32_t a : points)
      for (uint32_t b : points)
        if (a <= b) cases.push_back({len, a, b});
  }
  std::vector<std::vector<uint8_t>> whole;
  std::vector<TxDatagram> pkts;
  for (uint32_t i = 0; i < cases.size(); ++i) {
    auto bytes = pattern(cases[i].len, 3000 + i);
    std::memcpy(bytes.data(), &i, sizeof i);  // identifies the case on arrival
    whole.push_back(std::move(bytes));
  }
  for (uint32_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const uint8_t* p = whole[i].data();
    TxDatagram d{b_->local_addr(), c.a ? p : nullptr, c.a, c.b > c.a ? p + c.a : nullptr,
                 c.b - c.a};
    d.body2 = c.len > c.b ? p + c.b : nullptr;
    d.body2_len = c.len - c.b;
    EXPECT_EQ(d.size(), c.len);
    pkts.push_back(d);
  }
  // Sent a few at a time: RDMA's receive ring and the loopback queue are finite.
  for (size_t off = 0; off < pkts.size(); off += 8) {
    const size_t n = std::min<size_t>(8, pkts.size() - off);
    ASSERT_TRUE(send_all(*a_, std::span<const TxDatagram>(pkts).subspan(off, n)));
    auto got = receive(*b_, n, kTimeoutMs);
    ASSERT_EQ(got.size(), n) << "cases from " << off;
    for (const auto& g : got) {
      ASSERT_GE(g.data.size(), 4u);
      uint32_t i;
      std::memcpy(&i, g.data.data(), sizeof i);
      ASSERT_LT(i, cases.size());
      EXPECT_EQ(g.data, whole[i]) << "len " << cases[i].len << " split " << cases[i].a << "/"
                                  << cases[i].b;
    }
  }
  EXPECT_EQ(a_->stats().tx_bytes, [&] {
    uint64_t sum = 0;
    for (const auto& w : whole) sum += w.size();
    return sum;
  }());
  EXPECT_EQ(b_->stats().rx_truncated, 0u);
}

// The size limit counts all three parts: one byte over in body2 is dropped
// at the sender like any oversized datagram.
TEST_P(TransportConformance, OversizedByBody2IsDropped) {
  const uint32_t max = a_->max_datagram();
  auto head = pattern(44, 20), body = pattern(max - 44, 21), one = pattern(1, 22),
       marker = pattern(9, 23);
  TxDatagram big{b_->local_addr(), head.data(), 44, body.data(), max - 44};
  big.body2 = one.data();
  big.body2_len = 1;
  TxDatagram pkts[] = {big, dgram(b_->local_addr(), marker)};
  ASSERT_TRUE(send_all(*a_, pkts));
  auto got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, marker);
  EXPECT_EQ(a_->stats().tx_dropped, 1u);
}

TEST_P(TransportConformance, BurstOf256AllArriveIntact) {
  constexpr uint32_t kN = 256;
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<TxDatagram> pkts;
  for (uint32_t i = 0; i < kN; ++i) {
    auto p = pattern(64, 100 + i);
    std::memcpy(p.data(), &i, sizeof i);
    payloads.push_back(std::move(p));
  }
  for (const auto& p : payloads) pkts.push_back(dgram(b_->local_addr(), p));
  ASSERT_TRUE(send_all(*a_, pkts));
  auto got = receive(*b_, kN, kTimeoutMs);
  ASSERT_EQ(got.size(), kN);
  std::set<uint32_t> seen;
  for (const auto& g : got) {
    ASSERT_EQ(g.data.size(), 64u);
    uint32_t seq;
    std::memcpy(&seq, g.data.data(), sizeof seq);
    ASSERT_LT(seq, kN);
    EXPECT_EQ(g.data, payloads[seq]);
    EXPECT_EQ(g.src, a_->local_addr());
    EXPECT_TRUE(seen.insert(seq).second) << "duplicate " << seq;
  }
  EXPECT_EQ(seen.size(), kN);
}

TEST_P(TransportConformance, MaxDatagramArrivesIntact) {
  const uint32_t max = a_->max_datagram();
  auto head = pattern(40, 6), body = pattern(max - 40, 7);
  TxDatagram d{b_->local_addr(), head.data(), 40, body.data(), max - 40};
  ASSERT_TRUE(send_all(*a_, {&d, 1}));
  auto got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].data.size(), max);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), got[0].data.begin()));
  EXPECT_TRUE(std::equal(body.begin(), body.end(), got[0].data.begin() + 40));
  EXPECT_EQ(b_->stats().rx_truncated, 0u);
}

// Decision: a datagram above max_datagram() is taken, dropped and counted in
// the sender's tx_dropped (not an error), like any other undeliverable one.
TEST_P(TransportConformance, OversizedIsDroppedAndCountedAtSender) {
  auto big = pattern(a_->max_datagram() + 1, 8), marker = pattern(10, 9);
  TxDatagram pkts[] = {dgram(b_->local_addr(), big), dgram(b_->local_addr(), marker)};
  auto r = a_->tx_burst(pkts);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 2u);
  EXPECT_EQ(a_->stats().tx_dropped, 1u);
  EXPECT_EQ(a_->stats().tx_packets, 1u);
  auto got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, marker);
  std::vector<RxDatagram> out(8);
  auto more = b_->rx_burst(out);
  ASSERT_OK(more);
  EXPECT_EQ(*more, 0u);
}

// A peer with a larger limit can still send us something bigger than our
// max_datagram(): it is dropped on receipt and counted in rx_truncated.
TEST_P(TransportConformance, LargerThanReceiverLimitCountsRxTruncated) {
  auto big_tx = make(4000);
  ASSERT_OK(big_tx);
  auto big = pattern(2000, 10), marker = pattern(12, 11);
  TxDatagram pkts[] = {dgram(b_->local_addr(), big), dgram(b_->local_addr(), marker)};
  ASSERT_TRUE(send_all(**big_tx, pkts));
  EXPECT_EQ((*big_tx)->stats().tx_packets, 2u);
  auto got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, marker);
  EXPECT_EQ(b_->stats().rx_truncated, 1u);
  EXPECT_EQ(b_->stats().rx_packets, 1u);
}

TEST_P(TransportConformance, NotifyFdFollowsQueueState) {
  std::vector<RxDatagram> out(64);
  ASSERT_OK(b_->arm_notify());
  auto idle = b_->rx_burst(out);
  ASSERT_OK(idle);
  ASSERT_EQ(*idle, 0u);
  EXPECT_FALSE(readable(b_->notify_fd(), 0));

  auto p1 = pattern(30, 12), p2 = pattern(31, 13);
  TxDatagram d1 = dgram(b_->local_addr(), p1);
  ASSERT_TRUE(send_all(*a_, {&d1, 1}));
  EXPECT_TRUE(readable(b_->notify_fd(), kTimeoutMs));
  auto got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);

  // Drained: the fd must go quiet, then wake again for the next datagram.
  ASSERT_OK(b_->arm_notify());
  auto again = b_->rx_burst(out);
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0u);
  EXPECT_FALSE(readable(b_->notify_fd(), 0));
  TxDatagram d2 = dgram(b_->local_addr(), p2);
  ASSERT_TRUE(send_all(*a_, {&d2, 1}));
  EXPECT_TRUE(readable(b_->notify_fd(), kTimeoutMs));
  got = receive(*b_, 1, kTimeoutMs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, p2);
}

TEST_P(TransportConformance, RxBurstReturnsZeroWhenIdle) {
  std::vector<RxDatagram> out(64);
  for (int i = 0; i < 3; ++i) {
    auto r = b_->rx_burst(out);
    ASSERT_OK(r);
    EXPECT_EQ(*r, 0u);
  }
  auto r = b_->rx_burst({});
  ASSERT_OK(r);
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(b_->stats().rx_packets, 0u);
}

TEST_P(TransportConformance, ReceivedDataStaysValidUntilNextRxBurst) {
  auto first = pattern(200, 14);
  TxDatagram d = dgram(b_->local_addr(), first);
  ASSERT_TRUE(send_all(*a_, {&d, 1}));
  ASSERT_TRUE(readable(b_->notify_fd(), kTimeoutMs));
  RxDatagram one;
  auto r = b_->rx_burst({&one, 1});
  ASSERT_OK(r);
  ASSERT_EQ(*r, 1u);
  // More traffic into the receiver must not overwrite what it holds.
  std::vector<std::vector<uint8_t>> later;
  std::vector<TxDatagram> pkts;
  for (int i = 0; i < 100; ++i) later.push_back(pattern(200, 1000 + i));
  for (const auto& p : later) pkts.push_back(dgram(b_->local_addr(), p));
  ASSERT_TRUE(send_all(*a_, pkts));
  ASSERT_EQ(one.len, first.size());
  EXPECT_EQ(std::vector<uint8_t>(one.data, one.data + one.len), first);
  EXPECT_EQ(receive(*b_, 100, kTimeoutMs).size(), 100u);
}

// Every datagram one rx_burst() returns stays intact until the next call,
// however the queue was refilled in between.
TEST_P(TransportConformance, WholeBurstStaysValidAcrossLaterSends) {
  std::vector<std::vector<uint8_t>> p;
  for (int i = 0; i < 5; ++i) p.push_back(pattern(90, 2000 + i));
  auto send = [&](int i) {
    TxDatagram d = dgram(b_->local_addr(), p[i]);
    return send_all(*a_, {&d, 1});
  };
  ASSERT_TRUE(send(0) && send(1));
  ASSERT_TRUE(readable(b_->notify_fd(), kTimeoutMs));
  RxDatagram one;
  auto r = b_->rx_burst({&one, 1});
  ASSERT_OK(r);
  ASSERT_EQ(*r, 1u);
  ASSERT_TRUE(send(2));
  std::vector<RxDatagram> out(4);
  r = b_->rx_burst(out);
  ASSERT_OK(r);
  ASSERT_GE(*r, 1u);
  const size_t n = *r;
  ASSERT_TRUE(send(3) && send(4));
  for (size_t i = 0; i < n; ++i)
    EXPECT_EQ(std::vector<uint8_t>(out[i].data, out[i].data + out[i].len), p[1 + i]) << i;
  EXPECT_EQ(receive(*b_, 4 - n, kTimeoutMs).size(), 4 - n);
}

TEST_P(TransportConformance, StatsCountersRise) {
  auto p = pattern(77, 15);
  std::vector<TxDatagram> pkts(3, dgram(b_->local_addr(), p));
  ASSERT_TRUE(send_all(*a_, pkts));
  ASSERT_EQ(receive(*b_, 3, kTimeoutMs).size(), 3u);
  EXPECT_EQ(a_->stats().tx_packets, 3u);
  EXPECT_EQ(a_->stats().tx_bytes, 3u * 77);
  EXPECT_EQ(a_->stats().tx_dropped, 0u);
  EXPECT_EQ(b_->stats().rx_packets, 3u);
  EXPECT_EQ(b_->stats().rx_bytes, 3u * 77);
}

TEST_P(TransportConformance, RegisterMemoryRecordsRange) {
  std::vector<uint8_t> buf(4096);
  auto mr = a_->register_memory(buf.data(), buf.size());
  ASSERT_OK(mr);
  ASSERT_NE(mr->get(), nullptr);
  EXPECT_EQ((*mr)->addr(), buf.data());
  EXPECT_EQ((*mr)->length(), buf.size());
}

INSTANTIATE_TEST_SUITE_P(Lanes, TransportConformance,
                         testing::Values(TransportKind::kLoopback, TransportKind::kUdp,
                                         TransportKind::kRdma),
                         [](const testing::TestParamInfo<TransportKind>& info) {
                           return std::string(transport_kind_name(info.param));
                         });

// Factory and lane-specific behaviour that the shared suite cannot express.

TEST(TransportFactory, KindNames) {
  EXPECT_EQ(transport_kind_name(TransportKind::kUdp), "udp");
  EXPECT_EQ(transport_kind_name(TransportKind::kLoopback), "loopback");
  EXPECT_EQ(transport_kind_name(TransportKind::kDpdk), "dpdk");
  EXPECT_EQ(transport_kind_name(TransportKind::kRdma), "rdma");
}

// DPDK without a port: kInvalid naming the lane when the lane is built,
// kNotSupported naming it when not (tests/dpdk runs it on real ports).
TEST(TransportFactory, DpdkNeedsAPortOrIsNotBuilt) {
  TransportConfig c;
  c.kind = TransportKind::kDpdk;
  auto d = make_transport(c);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), LANEFS_HAVE_DPDK ? Errc::kInvalid : Errc::kNotSupported);
  EXPECT_NE(d.error().to_string().find(LANEFS_HAVE_DPDK ? "dpdk" : "DPDK"), std::string::npos)
      << d.error().to_string();
}

// RDMA on an address no RDMA device serves (TEST-NET-3): kNotSupported
// without rdma-core or without any device, kNotFound otherwise; the message
// names the lane.
TEST(TransportFactory, RdmaWithoutDeviceForAddressFails) {
  TransportConfig c;
  c.kind = TransportKind::kRdma;
  c.bind = NetAddr{0xcb007163, 0};  // 203.0.113.99
  auto r = make_transport(c);
  ASSERT_FALSE(r.ok());
  if (!LANEFS_HAVE_RDMA) {
    EXPECT_EQ(r.code(), Errc::kNotSupported);
  }
  EXPECT_TRUE(r.code() == Errc::kNotSupported || r.code() == Errc::kNotFound)
      << r.error().to_string();
  EXPECT_NE(r.error().message.find("RDMA"), std::string::npos) << r.error().message;
}

TEST(TransportFactory, LoopbackNeedsHub) {
  TransportConfig c;
  c.kind = TransportKind::kLoopback;
  EXPECT_EQ(make_transport(c).code(), Errc::kInvalid);
}

TEST(TransportFactory, FaultsWrapTheTransport) {
  TransportConfig c;
  c.kind = TransportKind::kLoopback;
  c.hub = std::make_shared<LoopbackHub>();
  c.faults.drop_pct = 100;
  auto a = make_transport(c);
  ASSERT_OK(a);
  c.faults = {};
  auto b = make_transport(c);
  ASSERT_OK(b);
  EXPECT_EQ((*a)->kind(), TransportKind::kLoopback);
  auto p = pattern(10, 16);
  TxDatagram d = dgram((*b)->local_addr(), p);
  ASSERT_TRUE(send_all(**a, {&d, 1}));
  EXPECT_EQ((*a)->stats().fault_dropped, 1u);
  EXPECT_EQ((*b)->stats().rx_packets, 0u);
}

TEST(UdpTransport, BindingATakenPortFailsNamingBind) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{kLocalhost, 0};
  auto a = make_transport(c);
  ASSERT_OK(a);
  c.bind = (*a)->local_addr();
  auto b = make_transport(c);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("bind"), std::string::npos) << b.error().message;
}

// mtu 0: the limit follows the MTU of the interface the socket is bound to
// (loopback: 65536 - 28 header bytes, capped at 65507); unbound: 1472.
TEST(UdpTransport, AutomaticLimitFollowsInterfaceMtu) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{kLocalhost, 0};
  auto lo = make_transport(c);
  ASSERT_OK(lo);
  EXPECT_GT((*lo)->max_datagram(), 1472u);
  EXPECT_LE((*lo)->max_datagram(), 65507u);
  c.bind = NetAddr{0, 0};
  auto any = make_transport(c);
  ASSERT_OK(any);
  EXPECT_EQ((*any)->max_datagram(), 1472u);
}

TEST(UdpTransport, MtuIsCappedAtMaxUdpPayload) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{kLocalhost, 0};
  c.mtu = 100000;
  auto a = make_transport(c);
  ASSERT_OK(a);
  EXPECT_EQ((*a)->max_datagram(), 65507u);
}

class LoopbackTest : public testing::Test {
 protected:
  Result<std::unique_ptr<Transport>> make(NetAddr bind = {kLocalhost, 0}) {
    TransportConfig c;
    c.kind = TransportKind::kLoopback;
    c.bind = bind;
    c.hub = hub_;
    return make_transport(c);
  }
  std::shared_ptr<LoopbackHub> hub_ = std::make_shared<LoopbackHub>(8);
};

TEST_F(LoopbackTest, TakenAddressIsExists) {
  auto a = make({kLocalhost, 5000});
  ASSERT_OK(a);
  EXPECT_EQ((*a)->local_addr(), (NetAddr{kLocalhost, 5000}));
  EXPECT_EQ(make({kLocalhost, 5000}).code(), Errc::kExists);
  EXPECT_OK(make({kLocalhost + 1, 5000}));
}

TEST_F(LoopbackTest, UnknownDestinationCountsTxDropped) {
  auto a = make();
  ASSERT_OK(a);
  auto p = pattern(10, 17);
  TxDatagram d = dgram(NetAddr{kLocalhost, 9}, p);
  auto r = (*a)->tx_burst({&d, 1});
  ASSERT_OK(r);
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ((*a)->stats().tx_dropped, 1u);
  EXPECT_EQ((*a)->stats().tx_packets, 0u);
}

TEST_F(LoopbackTest, FullQueueDropsAtSender) {
  auto a = make(), b = make();
  ASSERT_OK(a);
  ASSERT_OK(b);
  auto p = pattern(10, 18);
  std::vector<TxDatagram> pkts(10, dgram((*b)->local_addr(), p));
  ASSERT_TRUE(send_all(**a, pkts));
  EXPECT_EQ((*a)->stats().tx_packets, 8u);
  EXPECT_EQ((*a)->stats().tx_dropped, 2u);
  EXPECT_EQ(receive(**b, 10, 100).size(), 8u);
}

TEST_F(LoopbackTest, DestroyDetachesFromHub) {
  auto a = make();
  ASSERT_OK(a);
  NetAddr gone;
  {
    auto b = make();
    ASSERT_OK(b);
    gone = (*b)->local_addr();
    EXPECT_EQ(hub_->endpoints(), 2u);
  }
  EXPECT_EQ(hub_->endpoints(), 1u);
  auto p = pattern(10, 19);
  TxDatagram d = dgram(gone, p);
  ASSERT_TRUE(send_all(**a, {&d, 1}));
  EXPECT_EQ((*a)->stats().tx_dropped, 1u);
  EXPECT_OK(make(gone));  // the address is free again
}

// The hub is the one shared object: senders on several threads while the
// receiver sleeps on its eventfd must lose neither datagrams nor wake-ups.
TEST(LoopbackHubTest, ConcurrentSendersAllDelivered) {
  constexpr uint32_t kPerThread = 5000;
  auto hub = std::make_shared<LoopbackHub>();
  TransportConfig c;
  c.kind = TransportKind::kLoopback;
  c.hub = hub;
  auto rx = make_transport(c);
  ASSERT_OK(rx);
  const NetAddr dst = (*rx)->local_addr();
  std::vector<std::thread> senders;
  for (uint32_t t = 0; t < 2; ++t) {
    senders.emplace_back([&, t] {
      auto tx = make_transport(c);
      if (!tx.ok()) return;
      for (uint32_t i = 0; i < kPerThread; ++i) {
        auto p = pattern(32, t * kPerThread + i);
        const uint32_t id = t * kPerThread + i;
        std::memcpy(p.data(), &id, sizeof id);
        TxDatagram d = dgram(dst, p);
        if (!send_all(**tx, {&d, 1})) return;
      }
    });
  }
  auto got = receive(**rx, 2 * kPerThread, 20000);
  for (auto& s : senders) s.join();
  ASSERT_EQ(got.size(), 2 * kPerThread);
  std::set<uint32_t> seen;
  for (const auto& g : got) {
    uint32_t id;
    std::memcpy(&id, g.data.data(), sizeof id);
    auto want = pattern(32, id);
    std::memcpy(want.data(), &id, sizeof id);
    EXPECT_EQ(g.data, want);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2 * kPerThread);
}

}  // namespace
}  // namespace lanefs::transport

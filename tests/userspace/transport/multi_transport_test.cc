// MultiHomedTransport (HA legs) over real UDP on loopback addresses, which
// need no setup: a transport with legs 127.0.0.1 and 127.0.0.2 talks to a
// plain UDP peer on 127.0.0.3. Checks that a datagram leaves from the leg its
// `src` names, arrives with `dst` naming the leg it came in on, wakes
// notify_fd() on either leg, and that make_transport() builds the legs as
// transport.h says (shared port when free, UDP only, fault layer on top).
#include "transport/multi_transport.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "support/test_support.h"
#include "transport/fault_transport.h"
#include "transport/loopback/loopback_transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs {
// Readable failures: "127.0.0.2:40000" instead of the object's bytes.
inline void PrintTo(const NetAddr& a, std::ostream* os) { *os << a.to_string(); }
}  // namespace lanefs

namespace lanefs::transport {
namespace {

using test::dgram;
using test::pattern;
using test::readable;
using test::send_all;

constexpr uint32_t kIp1 = 0x7f000001, kIp2 = 0x7f000002, kIp3 = 0x7f000003;
constexpr int kTimeoutMs = 5000;

struct Got {
  NetAddr src, dst;
  std::vector<uint8_t> data;
};

// Receives until `want` datagrams arrived or the timeout passed, keeping dst.
// `pump` (a fault-injecting sender) gets rx_burst() calls so it releases
// the datagrams it holds.
std::vector<Got> receive_with_dst(Transport& rx, size_t want, int timeout_ms = kTimeoutMs,
                                  Transport* pump = nullptr) {
  std::vector<Got> got;
  std::vector<RxDatagram> buf(64);
  const uint64_t deadline = mono_ns() + uint64_t(timeout_ms) * 1'000'000;
  while (got.size() < want) {
    if (pump) (void)pump->rx_burst({});
    auto r = rx.rx_burst(buf);
    if (!r.ok()) {
      ADD_FAILURE() << r.error().to_string();
      break;
    }
    for (size_t i = 0; i < *r; ++i)
      got.push_back({buf[i].src, buf[i].dst, {buf[i].data, buf[i].data + buf[i].len}});
    if (*r > 0) continue;
    const uint64_t now = mono_ns();
    if (now >= deadline) break;
    EXPECT_OK(rx.arm_notify());
    readable(rx.notify_fd(), pump ? 1 : static_cast<int>((deadline - now) / 1'000'000) + 1);
  }
  return got;
}

Result<std::unique_ptr<Transport>> udp(NetAddr bind, std::vector<NetAddr> extra = {}) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = bind;
  c.extra_binds = std::move(extra);
  return make_transport(c);
}

// A payload whose first byte says which datagram it is.
std::vector<uint8_t> tagged(uint8_t tag, size_t len = 100) {
  auto p = pattern(len, tag);
  p[0] = tag;
  return p;
}

class MultiTransportTest : public testing::Test {
 protected:
  void SetUp() override {
    auto m = udp(NetAddr{kIp1, 0}, {NetAddr{kIp2, 0}});
    ASSERT_OK(m);
    multi_ = std::move(*m);
    auto p = udp(NetAddr{kIp3, 0});
    ASSERT_OK(p);
    peer_ = std::move(*p);
    auto addrs = multi_->local_addrs();
    ASSERT_EQ(addrs.size(), 2u);
    leg1_ = addrs[0];
    leg2_ = addrs[1];
  }

  std::unique_ptr<Transport> multi_, peer_;
  NetAddr leg1_, leg2_;
};

TEST_F(MultiTransportTest, TwoLegsShareOnePort) {
  EXPECT_EQ(multi_->kind(), TransportKind::kUdp);
  EXPECT_EQ(leg1_.ip, kIp1);
  EXPECT_EQ(leg2_.ip, kIp2);
  EXPECT_NE(leg1_.port, 0);
  EXPECT_EQ(leg2_.port, leg1_.port) << "a leg with port 0 takes the primary's port when free";
  EXPECT_EQ(multi_->local_addr(), leg1_);
  // A single-address transport reports just its own address.
  EXPECT_EQ(peer_->local_addrs(), std::vector<NetAddr>{peer_->local_addr()});
}

TEST_F(MultiTransportTest, SendsFromTheLegSrcNames) {
  const NetAddr to = peer_->local_addr();
  std::vector<std::vector<uint8_t>> bodies;
  for (uint8_t t = 0; t < 6; ++t) bodies.push_back(tagged(t));
  // Mixed runs in one burst: .2 .2 primary .2 unknown(-> primary) primary-by-ip.
  const NetAddr srcs[6] = {NetAddr{kIp2, 0}, leg2_,           NetAddr{},
                           NetAddr{kIp2, 0}, NetAddr{0x7f000009, 0}, NetAddr{kIp1, 0}};
  const NetAddr want[6] = {leg2_, leg2_, leg1_, leg2_, leg1_, leg1_};
  std::vector<TxDatagram> pkts;
  for (size_t i = 0; i < 6; ++i) {
    pkts.push_back(dgram(to, bodies[i]));
    pkts.back().src = srcs[i];
  }
  ASSERT_TRUE(send_all(*multi_, pkts));
  auto got = receive_with_dst(*peer_, 6);
  ASSERT_EQ(got.size(), 6u);
  std::map<uint8_t, NetAddr> from;
  for (const auto& g : got) {
    ASSERT_FALSE(g.data.empty());
    from[g.data[0]] = g.src;
    EXPECT_EQ(g.data, bodies[g.data[0]]);
    EXPECT_EQ(g.dst, NetAddr{}) << "a single-address transport leaves dst 0";
  }
  ASSERT_EQ(from.size(), 6u);
  for (uint8_t t = 0; t < 6; ++t) EXPECT_EQ(from[t], want[t]) << "datagram " << int(t);
}

TEST_F(MultiTransportTest, ReceivesOnEveryLegWithDst) {
  std::vector<std::vector<uint8_t>> bodies;
  std::vector<TxDatagram> pkts;
  for (uint8_t t = 0; t < 8; ++t) bodies.push_back(tagged(t, 200 + t));
  for (uint8_t t = 0; t < 8; ++t) pkts.push_back(dgram(t % 2 ? leg2_ : leg1_, bodies[t]));
  ASSERT_TRUE(send_all(*peer_, pkts));
  auto got = receive_with_dst(*multi_, 8);
  ASSERT_EQ(got.size(), 8u);
  std::map<uint8_t, NetAddr> dst_of;
  for (const auto& g : got) {
    ASSERT_FALSE(g.data.empty());
    EXPECT_EQ(g.src, peer_->local_addr());
    EXPECT_EQ(g.data, bodies[g.data[0]]);
    dst_of[g.data[0]] = g.dst;
  }
  ASSERT_EQ(dst_of.size(), 8u);
  for (uint8_t t = 0; t < 8; ++t) EXPECT_EQ(dst_of[t], t % 2 ? leg2_ : leg1_) << "datagram " << int(t);
}

TEST_F(MultiTransportTest, NotifyFdWakesForEitherLeg) {
  const int fd = multi_->notify_fd();
  ASSERT_GE(fd, 0);
  ASSERT_OK(multi_->arm_notify());
  EXPECT_FALSE(readable(fd, 50)) << "readable with nothing sent";
  for (NetAddr leg : {leg2_, leg1_, leg2_}) {
    auto body = tagged(static_cast<uint8_t>(leg.ip & 0xff));
    TxDatagram d = dgram(leg, body);
    ASSERT_TRUE(send_all(*peer_, {&d, 1}));
    EXPECT_TRUE(readable(fd, kTimeoutMs)) << "no wake-up for data on " << leg.to_string();
    auto got = receive_with_dst(*multi_, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].dst, leg);
    ASSERT_OK(multi_->arm_notify());
    EXPECT_FALSE(readable(fd, 20)) << "still readable after draining " << leg.to_string();
  }
}

TEST_F(MultiTransportTest, StatsSumTheLegs) {
  const NetAddr to = peer_->local_addr();
  auto a = tagged(1, 100), b = tagged(2, 300), c = tagged(3, 500);
  std::vector<TxDatagram> out = {dgram(to, a), dgram(to, b), dgram(to, c)};
  out[1].src = leg2_;
  out[2].src = leg2_;
  ASSERT_TRUE(send_all(*multi_, out));
  ASSERT_EQ(receive_with_dst(*peer_, 3).size(), 3u);
  std::vector<TxDatagram> in = {dgram(leg1_, a), dgram(leg2_, c)};
  ASSERT_TRUE(send_all(*peer_, in));
  ASSERT_EQ(receive_with_dst(*multi_, 2).size(), 2u);
  const TransportStats& s = multi_->stats();
  EXPECT_EQ(s.tx_packets, 3u);
  EXPECT_EQ(s.tx_bytes, 900u);
  EXPECT_EQ(s.rx_packets, 2u);
  EXPECT_EQ(s.rx_bytes, 600u);
  EXPECT_EQ(s.tx_dropped, 0u);
  EXPECT_EQ(s.rx_truncated, 0u);
  // An oversized datagram is dropped by its leg and counted in the sum.
  std::vector<uint8_t> huge(multi_->max_datagram() + 1);
  TxDatagram h = dgram(to, huge);
  h.src = leg2_;
  ASSERT_TRUE(send_all(*multi_, {&h, 1}));
  EXPECT_EQ(multi_->stats().tx_dropped, 1u);
  EXPECT_EQ(multi_->stats().tx_packets, 3u);
}

TEST(MultiTransport, LegFallsBackToAnotherPortWhenTaken) {
  // Hold a port on 127.0.0.2, then make the primary take that same port on
  // 127.0.0.1 (retrying if it happens to be in use there).
  std::unique_ptr<Transport> blocker, multi;
  for (int attempt = 0; attempt < 20 && !multi; ++attempt) {
    auto b = udp(NetAddr{kIp2, 0});
    ASSERT_OK(b);
    blocker = std::move(*b);
    auto m = udp(NetAddr{kIp1, blocker->local_addr().port}, {NetAddr{kIp2, 0}});
    if (m.ok()) multi = std::move(*m);
  }
  ASSERT_TRUE(multi) << "no port free on both 127.0.0.1 and 127.0.0.2";
  auto addrs = multi->local_addrs();
  ASSERT_EQ(addrs.size(), 2u);
  EXPECT_EQ(addrs[0], (NetAddr{kIp1, blocker->local_addr().port}));
  EXPECT_EQ(addrs[1].ip, kIp2);
  EXPECT_NE(addrs[1].port, 0);
  EXPECT_NE(addrs[1].port, blocker->local_addr().port);
  // The fallback leg works: a datagram from it arrives from its real port.
  auto p = udp(NetAddr{kIp3, 0});
  ASSERT_OK(p);
  auto body = tagged(7);
  TxDatagram d = dgram((*p)->local_addr(), body);
  d.src = NetAddr{kIp2, 0};
  ASSERT_TRUE(send_all(*multi, {&d, 1}));
  auto got = receive_with_dst(**p, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].src, addrs[1]);

  // An explicit port that is taken is an error naming the bind, not a fallback.
  auto taken = udp(NetAddr{kIp1, 0}, {blocker->local_addr()});
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.error().message.find("bind " + blocker->local_addr().to_string()), std::string::npos)
      << taken.error().to_string();
}

TEST(MultiTransport, ExtraBindsOnlyOnUdp) {
  TransportConfig c;
  c.kind = TransportKind::kLoopback;
  c.hub = std::make_shared<LoopbackHub>();
  c.bind = NetAddr{kIp1, 0};
  ASSERT_OK(make_transport(c));  // the same config without legs is fine
  c.extra_binds = {NetAddr{kIp2, 0}};
  auto r = make_transport(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kNotSupported);
  EXPECT_NE(r.error().message.find("loopback lane are not built"), std::string::npos) << r.error().to_string();
  c.kind = TransportKind::kDpdk;
  auto d = make_transport(c);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), Errc::kNotSupported);
  EXPECT_NE(d.error().message.find("dpdk lane"), std::string::npos) << d.error().to_string();
}

TEST(MultiTransport, CreateWithoutLegsIsInvalid) {
  auto r = MultiHomedTransport::create({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kInvalid);
}

TEST(MultiTransport, FaultLayerKeepsEveryLeg) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{kIp1, 0};
  c.extra_binds = {NetAddr{kIp2, 0}};
  c.faults.duplicate_pct = 100;  // every datagram twice: visible proof the layer is there
  auto m = make_transport(c);
  ASSERT_OK(m);
  Transport& t = **m;
  auto addrs = t.local_addrs();
  ASSERT_EQ(addrs.size(), 2u);
  EXPECT_EQ(addrs[0].ip, kIp1);
  EXPECT_EQ(addrs[1].ip, kIp2);
  EXPECT_EQ(addrs[1].port, addrs[0].port);
  EXPECT_EQ(t.local_addr(), addrs[0]);

  auto p = udp(NetAddr{kIp3, 0});
  ASSERT_OK(p);
  auto body = tagged(9);
  TxDatagram d = dgram((*p)->local_addr(), body);
  d.src = addrs[1];
  ASSERT_TRUE(send_all(t, {&d, 1}));
  EXPECT_EQ(t.stats().fault_duplicated, 1u);
  auto got = receive_with_dst(**p, 2);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& g : got) EXPECT_EQ(g.src, addrs[1]) << "a duplicate left from another leg";
}


// Datagrams the fault layer copies (corrupt) or holds (delay, reorder) still
// leave from the leg their src named.
TEST(MultiTransport, FaultLayerKeepsTheSourceLeg) {
  for (const char* spec : {"corrupt=100", "delay=100,delay_us=500", "reorder=100,delay_us=500"}) {
    SCOPED_TRACE(spec);
    auto faults = parse_fault_config(spec);
    ASSERT_OK(faults);
    TransportConfig c;
    c.kind = TransportKind::kUdp;
    c.bind = NetAddr{kIp1, 0};
    c.extra_binds = {NetAddr{kIp2, 0}};
    c.faults = *faults;
    auto m = make_transport(c);
    ASSERT_OK(m);
    const NetAddr leg2 = (*m)->local_addrs().at(1);
    auto p = udp(NetAddr{kIp3, 0});
    ASSERT_OK(p);
    auto a = tagged(1), b = tagged(2);
    std::vector<TxDatagram> pkts = {dgram((*p)->local_addr(), a), dgram((*p)->local_addr(), b)};
    for (auto& d : pkts) d.src = NetAddr{kIp2, 0};
    ASSERT_TRUE(send_all(**m, pkts));
    auto got = receive_with_dst(**p, 2, kTimeoutMs, m->get());
    ASSERT_EQ(got.size(), 2u);
    for (const auto& g : got) EXPECT_EQ(g.src, leg2);
    const auto& st = (*m)->stats();
    EXPECT_EQ(st.fault_corrupted + st.fault_delayed + st.fault_reordered, spec[0] == 'r' ? 1u : 2u);
  }
}

}  // namespace
}  // namespace lanefs::transport

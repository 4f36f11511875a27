// The UDP lane's kernel batching on 127.0.0.1 (no root needed):
//   - GSO on: a run of equal datagrams (and a shorter last one) to one
//     destination leaves as GSO sends and arrives intact, in order, as the
//     same datagrams; off via config: the same bytes, no GSO send;
//   - runs stop at another destination, another session id, a larger
//     datagram, 64 segments and 65507 bytes; interleaved destinations keep
//     their order;
//   - GRO: the receiver gets coalesced messages and hands out the datagrams
//     one by one with the right source, across rx_burst() calls when `out`
//     is small, each batch valid until the next call;
//   - a real refusal by the kernel (SO_NO_CHECK makes UDP_SEGMENT sends
//     fail with EINVAL): nothing is lost, GSO is off for good, counted once.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "support/test_support.h"
#include "transport/transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs::transport {
namespace {

using test::pattern;
using test::receive;
using test::Received;
using test::send_all;

constexpr uint32_t kLocalhost = 0x7f000001;
constexpr int kTimeoutMs = 10000;

Result<std::unique_ptr<Transport>> udp(UdpOffload gso = UdpOffload::kAuto,
                                       UdpOffload gro = UdpOffload::kOff, uint32_t mtu = 0,
                                       uint32_t rx_batch = 0) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{kLocalhost, 0};
  c.gso = gso;
  c.gro = gro;
  c.mtu = mtu;
  c.rx_batch = rx_batch;
  return make_transport(c);
}

// Datagrams shaped like lanefs packets: bytes 0..3 a sequence number, 8..11
// the session id (what GSO runs and reuseport steering look at), the rest a
// pattern. Sent as three parts (44-byte head, body, 100-byte body2 when
// long enough) so the GSO sends gather many iovecs.
struct Batch {
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TxDatagram> pkts;

  void add(NetAddr dst, size_t len, uint32_t session) {
    auto b = pattern(len, static_cast<uint32_t>(bytes.size()) + 77);
    const auto seq = static_cast<uint32_t>(bytes.size());
    std::memcpy(b.data(), &seq, sizeof seq);  // len >= 4
    if (len >= 12) std::memcpy(b.data() + 8, &session, sizeof session);
    bytes.push_back(std::move(b));
    dsts.push_back(dst);
  }
  // Builds pkts once every datagram was added (bytes no longer moves).
  std::span<const TxDatagram> datagrams() {
    pkts.clear();
    for (size_t i = 0; i < bytes.size(); ++i) {
      const auto& b = bytes[i];
      const auto len = static_cast<uint32_t>(b.size());
      const uint32_t head = std::min<uint32_t>(44, len);
      const uint32_t tail = len >= 244 ? 100 : 0;
      TxDatagram d{dsts[i], b.data(), head, b.data() + head, len - head - tail};
      d.body2 = b.data() + len - tail;
      d.body2_len = tail;
      pkts.push_back(d);
    }
    return pkts;
  }
  static uint32_t seq(const std::vector<uint8_t>& b) {
    uint32_t s;
    std::memcpy(&s, b.data(), sizeof s);
    return s;
  }

  std::vector<NetAddr> dsts;
};

// Checks `got` holds exactly batch datagrams `want_seqs`, in that order.
void expect_in_order(const std::vector<Received>& got, const Batch& batch,
                     const std::vector<uint32_t>& want_seqs, NetAddr src) {
  ASSERT_EQ(got.size(), want_seqs.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_GE(got[i].data.size(), 4u);
    EXPECT_EQ(Batch::seq(got[i].data), want_seqs[i]) << "position " << i;
    EXPECT_EQ(got[i].data, batch.bytes[want_seqs[i]]) << "position " << i;
    EXPECT_EQ(got[i].src, src);
  }
}

std::vector<uint32_t> iota(uint32_t n) {
  std::vector<uint32_t> v(n);
  for (uint32_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// 40 datagrams of 1000 bytes and one of 300 to one destination.
Batch forty_one(NetAddr dst) {
  Batch b;
  for (int i = 0; i < 40; ++i) b.add(dst, 1000, 7);
  b.add(dst, 300, 7);
  return b;
}

TEST(UdpGso, OnByDefaultRunArrivesIntactInOrder) {
  auto tx = udp(), rx = udp();
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  ASSERT_TRUE((*tx)->stats().gso_active) << "this kernel has UDP GSO (4.18+)";
  Batch b = forty_one((*rx)->local_addr());
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  const auto& s = (*tx)->stats();
  EXPECT_GE(s.tx_gso_sends, 1u);
  EXPECT_EQ(s.tx_gso_segments, 41u);  // one run: 40 x 1000 + 300 bytes, 41 segments
  EXPECT_EQ(s.tx_packets, 41u);
  EXPECT_EQ(s.tx_bytes, 40u * 1000 + 300);
  EXPECT_EQ(s.gso_fallbacks, 0u);
  auto got = receive(**rx, 41, kTimeoutMs);
  expect_in_order(got, b, iota(41), (*tx)->local_addr());
  EXPECT_EQ((*rx)->stats().rx_gro_messages, 0u);  // GRO off on this receiver
}

TEST(UdpGso, OffByConfigSendsTheSameWithoutGso) {
  auto tx = udp(UdpOffload::kOff), rx = udp();
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  EXPECT_FALSE((*tx)->stats().gso_active);
  Batch b = forty_one((*rx)->local_addr());
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  EXPECT_EQ((*tx)->stats().tx_gso_sends, 0u);
  EXPECT_EQ((*tx)->stats().tx_gso_segments, 0u);
  EXPECT_EQ((*tx)->stats().tx_packets, 41u);
  EXPECT_EQ((*tx)->stats().gso_fallbacks, 0u);
  expect_in_order(receive(**rx, 41, kTimeoutMs), b, iota(41), (*tx)->local_addr());
}

TEST(UdpGso, GroReceiverSplitsCoalescedMessages) {
  auto tx = udp(), rx = udp(UdpOffload::kAuto, UdpOffload::kAuto);
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  ASSERT_TRUE((*rx)->stats().gro_active) << "this kernel has UDP GRO (5.0+)";
  Batch b = forty_one((*rx)->local_addr());
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  expect_in_order(receive(**rx, 41, kTimeoutMs), b, iota(41), (*tx)->local_addr());
  const auto& s = (*rx)->stats();
  // Loopback hands the GSO packet to a GRO socket whole.
  EXPECT_GE(s.rx_gro_messages, 1u);
  EXPECT_GE(s.rx_gro_segments, 2u);
  EXPECT_LE(s.rx_gro_segments, 41u);
  EXPECT_EQ(s.rx_packets, 41u);
  EXPECT_EQ(s.rx_bytes, 40u * 1000 + 300);
  EXPECT_FALSE((*rx)->has_pending());
}

// A GRO message larger than `out`: the rest waits in the transport
// (has_pending), and every batch stays intact until the next call.
TEST(UdpGso, GroRemainderIsReturnedOverSeveralCalls) {
  auto tx = udp(), rx = udp(UdpOffload::kAuto, UdpOffload::kAuto, 0, 4);
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  Batch b = forty_one((*rx)->local_addr());
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  ASSERT_TRUE(test::readable((*rx)->notify_fd(), kTimeoutMs));
  std::vector<uint32_t> seqs;
  RxDatagram out[5];
  bool saw_pending = false;
  const uint64_t deadline = mono_ns() + uint64_t{kTimeoutMs} * 1'000'000;
  while (seqs.size() < 41 && mono_ns() < deadline) {
    auto r = (*rx)->rx_burst(out);
    ASSERT_OK(r);
    saw_pending |= (*rx)->has_pending();
    if (*r == 0) {
      test::readable((*rx)->notify_fd(), 10);
      continue;
    }
    // Everything this call returned is intact now, before the next call.
    for (size_t i = 0; i < *r; ++i) {
      std::vector<uint8_t> d(out[i].data, out[i].data + out[i].len);
      const uint32_t s = Batch::seq(d);
      ASSERT_LT(s, 41u);
      EXPECT_EQ(d, b.bytes[s]);
      seqs.push_back(s);
    }
  }
  EXPECT_EQ(seqs, iota(41));
  if ((*rx)->stats().rx_gro_messages > 0) {
    EXPECT_TRUE(saw_pending);
  }
  EXPECT_FALSE((*rx)->has_pending());
}

// GRO segments larger than the receiver's limit are dropped one by one and
// counted; the shorter tail that fits is delivered.
TEST(UdpGso, GroSegmentsOverTheLimitCountRxTruncated) {
  auto tx = udp(), rx = udp(UdpOffload::kAuto, UdpOffload::kAuto, 900);
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  Batch b = forty_one((*rx)->local_addr());
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  auto got = receive(**rx, 1, kTimeoutMs);
  expect_in_order(got, b, {40}, (*tx)->local_addr());
  EXPECT_EQ((*rx)->stats().rx_truncated, 40u);
}

TEST(UdpGso, RunsRespectSegmentAndByteLimits) {
  auto tx = udp(), rx = udp();
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  Batch b;
  for (int i = 0; i < 130; ++i) b.add((*rx)->local_addr(), 100, 1);  // > 64 segments
  for (int i = 0; i < 70; ++i) b.add((*rx)->local_addr(), 1000, 2);  // > 65507 bytes
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  const auto& s = (*tx)->stats();
  // 130 = 64 + 64 + 2; 70 x 1000 = 65 + 5 (65 x 1000 <= 65507 < 66 x 1000).
  EXPECT_EQ(s.tx_gso_sends, 5u);
  EXPECT_EQ(s.tx_gso_segments, 200u);
  expect_in_order(receive(**rx, 200, kTimeoutMs), b, iota(200), (*tx)->local_addr());
}

// Runs end at another session id (the kernel steers a GSO packet by its
// first datagram), at a larger datagram and after a shorter one.
TEST(UdpGso, RunsStopAtSessionAndSizeChanges) {
  auto tx = udp(), rx = udp();
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  Batch b;
  const NetAddr dst = (*rx)->local_addr();
  for (int i = 0; i < 5; ++i) b.add(dst, 500, 1);
  for (int i = 0; i < 5; ++i) b.add(dst, 500, 2);  // another session: a new run
  b.add(dst, 400, 2);                              // shorter: ends that run
  for (int i = 0; i < 3; ++i) b.add(dst, 400, 2);  // a new run
  b.add(dst, 600, 2);                              // larger: alone
  b.add(dst, 10, 2);                               // no session field: alone
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  EXPECT_EQ((*tx)->stats().tx_gso_sends, 3u);
  EXPECT_EQ((*tx)->stats().tx_gso_segments, 14u);
  expect_in_order(receive(**rx, 16, kTimeoutMs), b, iota(16), (*tx)->local_addr());
}

// Datagrams for two receivers, interleaved one by one and in blocks: each
// receiver sees its own in the order they were given.
TEST(UdpGso, InterleavedDestinationsKeepTheirOrder) {
  auto tx = udp(), rx1 = udp(), rx2 = udp();
  ASSERT_OK(tx);
  ASSERT_OK(rx1);
  ASSERT_OK(rx2);
  Batch b;
  std::vector<uint32_t> to1, to2;
  auto add = [&](Transport& rx, std::vector<uint32_t>& list) {
    list.push_back(static_cast<uint32_t>(b.bytes.size()));
    b.add(rx.local_addr(), 800, 3);
  };
  for (int i = 0; i < 20; ++i) {
    add(**rx1, to1);
    add(**rx2, to2);
  }
  for (int block = 0; block < 4; ++block)
    for (int i = 0; i < 10; ++i) add(block % 2 ? **rx2 : **rx1, block % 2 ? to2 : to1);
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  EXPECT_EQ((*tx)->stats().tx_gso_sends, 4u);  // the four blocks
  expect_in_order(receive(**rx1, to1.size(), kTimeoutMs), b, to1, (*tx)->local_addr());
  expect_in_order(receive(**rx2, to2.size(), kTimeoutMs), b, to2, (*tx)->local_addr());
}

// The kernel refuses UDP_SEGMENT on a socket without UDP checksums
// (SO_NO_CHECK: udp_send_skb says EINVAL). The transport resends the
// refused datagrams plainly, turns GSO off for good and counts it once.
TEST(UdpGso, KernelRefusalFallsBackForGood) {
  auto tx = udp(), rx = udp();
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  int one = 1;
  ASSERT_EQ(setsockopt((*tx)->notify_fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0)
      << std::strerror(errno);
  Batch b = forty_one((*rx)->local_addr());
  for (int i = 0; i < 41; ++i) b.add((*rx)->local_addr(), 700, 9);
  ASSERT_TRUE(send_all(**tx, std::span(b.datagrams()).first(41)));
  EXPECT_EQ((*tx)->stats().gso_fallbacks, 1u);
  EXPECT_FALSE((*tx)->stats().gso_active);
  EXPECT_EQ((*tx)->stats().tx_gso_sends, 0u);
  EXPECT_EQ((*tx)->stats().tx_packets, 41u);
  expect_in_order(receive(**rx, 41, kTimeoutMs), b, iota(41), (*tx)->local_addr());
  // Later bursts go plainly from the start.
  ASSERT_TRUE(send_all(**tx, std::span(b.datagrams()).subspan(41)));
  EXPECT_EQ((*tx)->stats().gso_fallbacks, 1u);
  EXPECT_EQ((*tx)->stats().tx_gso_sends, 0u);
  std::vector<uint32_t> later;
  for (uint32_t i = 41; i < 82; ++i) later.push_back(i);
  expect_in_order(receive(**rx, 41, kTimeoutMs), b, later, (*tx)->local_addr());
}

// A small receive batch bounds memory, not what arrives.
TEST(UdpGso, SmallRxBatchStillReceivesEverything) {
  auto tx = udp(UdpOffload::kOff), rx = udp(UdpOffload::kOff, UdpOffload::kOff, 0, 2);
  ASSERT_OK(tx);
  ASSERT_OK(rx);
  Batch b;
  for (int i = 0; i < 50; ++i) b.add((*rx)->local_addr(), 64, 4);
  ASSERT_TRUE(send_all(**tx, b.datagrams()));
  expect_in_order(receive(**rx, 50, kTimeoutMs), b, iota(50), (*tx)->local_addr());
}

}  // namespace
}  // namespace lanefs::transport

// FaultTransport over the loopback lane (deterministic, in order, no real
// loss), so every observed change is the fault layer's doing.
#include "transport/fault_transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "support/test_support.h"
#include "transport/loopback/loopback_transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs::transport {
namespace {

using test::dgram;
using test::pattern;
using test::receive;
using test::Received;
using test::send_all;

constexpr int kTimeoutMs = 5000;

class FaultTransportTest : public testing::Test {
 protected:
  void SetUp() override {
    TransportConfig c;
    c.kind = TransportKind::kLoopback;
    c.bind = NetAddr{0x7f000001, 0};
    c.hub = hub_;
    auto a = make_transport(c);
    ASSERT_OK(a);
    tx_ = std::make_unique<FaultTransport>(std::move(a).value(), FaultConfig{});
    auto b = make_transport(c);
    ASSERT_OK(b);
    rx_ = std::move(b).value();
  }

  // n datagrams of `len` bytes, the first 4 bytes holding the index.
  void make_payloads(uint32_t n, size_t len = 64) {
    payloads_.clear();
    for (uint32_t i = 0; i < n; ++i) {
      auto p = pattern(len, 500 + i);
      std::memcpy(p.data(), &i, sizeof i);
      payloads_.push_back(std::move(p));
    }
  }
  bool send_payloads(size_t from = 0, size_t count = SIZE_MAX) {
    std::vector<TxDatagram> pkts;
    for (size_t i = from; i < payloads_.size() && i - from < count; ++i)
      pkts.push_back(dgram(rx_->local_addr(), payloads_[i]));
    return send_all(*tx_, pkts);
  }
  // Loopback delivers synchronously: whatever was sent is already queued.
  std::vector<Received> drain() {
    std::vector<Received> got;
    std::vector<RxDatagram> buf(256);
    for (;;) {
      auto r = rx_->rx_burst(buf);
      if (!r.ok() || *r == 0) return got;
      for (size_t i = 0; i < *r; ++i)
        got.push_back({buf[i].src, {buf[i].data, buf[i].data + buf[i].len}});
    }
  }
  static uint32_t seq_of(const Received& r) {
    uint32_t s;
    std::memcpy(&s, r.data.data(), sizeof s);
    return s;
  }

  std::shared_ptr<LoopbackHub> hub_ = std::make_shared<LoopbackHub>();
  std::unique_ptr<FaultTransport> tx_;
  std::unique_ptr<Transport> rx_;
  std::vector<std::vector<uint8_t>> payloads_;
};

TEST_F(FaultTransportTest, PassThroughWithoutFaults) {
  make_payloads(20);
  ASSERT_TRUE(send_payloads());
  auto got = drain();
  ASSERT_EQ(got.size(), 20u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].data, payloads_[i]);
    EXPECT_EQ(got[i].src, tx_->local_addr());
  }
  EXPECT_EQ(tx_->kind(), TransportKind::kLoopback);
  EXPECT_EQ(tx_->stats().tx_packets, 20u);
  EXPECT_FALSE(tx_->has_pending());
}

TEST_F(FaultTransportTest, DropAllDeliversNothing) {
  tx_->set_faults({.drop_pct = 100});
  make_payloads(50);
  std::vector<TxDatagram> pkts;
  for (const auto& p : payloads_) pkts.push_back(dgram(rx_->local_addr(), p));
  auto r = tx_->tx_burst(pkts);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 50u);
  EXPECT_EQ(drain().size(), 0u);
  EXPECT_EQ(tx_->stats().fault_dropped, 50u);
  EXPECT_EQ(tx_->stats().tx_packets, 0u);
  EXPECT_FALSE(tx_->has_pending());
}

TEST_F(FaultTransportTest, DropThirtyPercentIsWithinBand) {
  tx_->set_faults({.drop_pct = 30, .seed = 42});
  constexpr uint32_t kN = 10000;
  make_payloads(kN, 16);
  size_t received = 0;
  std::set<uint32_t> seen;
  for (uint32_t off = 0; off < kN; off += 500) {  // drain as we go
    ASSERT_TRUE(send_payloads(off, 500));
    for (const auto& g : drain()) {
      EXPECT_EQ(g.data, payloads_[seq_of(g)]);
      EXPECT_TRUE(seen.insert(seq_of(g)).second);
      ++received;
    }
  }
  const double dropped = double(kN - received) / kN;
  EXPECT_GE(dropped, 0.25);
  EXPECT_LE(dropped, 0.35);
  EXPECT_EQ(tx_->stats().fault_dropped + received, kN);
}

TEST_F(FaultTransportTest, SameSeedSameDecisions) {
  auto run = [&](uint64_t seed) {
    tx_->set_faults({.drop_pct = 50, .seed = seed});
    make_payloads(1000, 8);
    EXPECT_TRUE(send_payloads());
    std::vector<uint32_t> order;
    for (const auto& g : drain()) order.push_back(seq_of(g));
    return order;
  };
  auto first = run(7), second = run(7), other = run(8);
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other);
}

TEST_F(FaultTransportTest, DuplicateDeliversEachTwice) {
  tx_->set_faults({.duplicate_pct = 100});
  make_payloads(100);
  ASSERT_TRUE(send_payloads());
  std::map<uint32_t, int> count;
  auto got = drain();
  ASSERT_EQ(got.size(), 200u);
  for (const auto& g : got) {
    EXPECT_EQ(g.data, payloads_[seq_of(g)]);
    ++count[seq_of(g)];
  }
  ASSERT_EQ(count.size(), 100u);
  for (const auto& [seq, n] : count) EXPECT_EQ(n, 2) << "seq " << seq;
  EXPECT_EQ(tx_->stats().fault_duplicated, 100u);
}

TEST_F(FaultTransportTest, CorruptChangesOneByteKeepsLength) {
  tx_->set_faults({.corrupt_pct = 100, .seed = 3});
  make_payloads(100);
  ASSERT_TRUE(send_payloads());
  auto got = drain();
  ASSERT_EQ(got.size(), 100u);
  for (size_t i = 0; i < got.size(); ++i) {  // loopback keeps order
    ASSERT_EQ(got[i].data.size(), payloads_[i].size());
    size_t diffs = 0;
    for (size_t j = 0; j < got[i].data.size(); ++j) diffs += got[i].data[j] != payloads_[i][j];
    EXPECT_EQ(diffs, 1u) << "datagram " << i;
  }
  EXPECT_EQ(tx_->stats().fault_corrupted, 100u);
}

// Three-part datagrams: the byte corrupt flips can lie in any part (here
// mostly in body2, which holds most of the bytes), and the length stays.
TEST_F(FaultTransportTest, CorruptReachesEveryPartOfAThreePartDatagram) {
  tx_->set_faults({.corrupt_pct = 100, .seed = 5});
  constexpr uint32_t kN = 300;
  auto head = pattern(4, 30), body = pattern(4, 31), body2 = pattern(56, 32);
  std::vector<TxDatagram> pkts;
  for (uint32_t i = 0; i < kN; ++i) {
    TxDatagram d{rx_->local_addr(), head.data(), 4, body.data(), 4};
    d.body2 = body2.data();
    d.body2_len = 56;
    pkts.push_back(d);
  }
  ASSERT_TRUE(send_all(*tx_, pkts));
  std::vector<uint8_t> whole = head;
  whole.insert(whole.end(), body.begin(), body.end());
  whole.insert(whole.end(), body2.begin(), body2.end());
  auto got = drain();
  ASSERT_EQ(got.size(), kN);
  size_t in_part[3] = {0, 0, 0};
  for (const auto& g : got) {
    ASSERT_EQ(g.data.size(), whole.size());
    size_t diffs = 0;
    for (size_t j = 0; j < whole.size(); ++j) {
      if (g.data[j] == whole[j]) continue;
      ++diffs;
      ++in_part[j < 4 ? 0 : j < 8 ? 1 : 2];
    }
    EXPECT_EQ(diffs, 1u);
  }
  EXPECT_GT(in_part[0], 0u);
  EXPECT_GT(in_part[1], 0u);
  EXPECT_GT(in_part[2], 0u);
}

// A held datagram (delay, reorder) is the fault layer's own copy of all
// three parts: the caller may reuse its buffers once tx_burst() returns.
TEST_F(FaultTransportTest, HeldThreePartDatagramsAreCopies) {
  tx_->set_faults({.reorder_pct = 50, .delay_pct = 50, .delay_us = 1000, .seed = 9});
  constexpr uint32_t kN = 40;
  std::vector<std::vector<uint8_t>> want;
  for (uint32_t i = 0; i < kN; ++i) {
    std::vector<uint8_t> head = pattern(10, 40 + i), body = pattern(20, 90 + i),
                         body2 = pattern(30, 140 + i);
    std::memcpy(head.data(), &i, sizeof i);
    TxDatagram d{rx_->local_addr(), head.data(), 10, body.data(), 20};
    d.body2 = body2.data();
    d.body2_len = 30;
    ASSERT_TRUE(send_all(*tx_, {&d, 1}));
    std::vector<uint8_t> w = head;
    w.insert(w.end(), body.begin(), body.end());
    w.insert(w.end(), body2.begin(), body2.end());
    want.push_back(std::move(w));
    // Scribble over the caller's buffers before they go out of scope.
    std::fill(head.begin(), head.end(), 0xee);
    std::fill(body.begin(), body.end(), 0xee);
    std::fill(body2.begin(), body2.end(), 0xee);
  }
  EXPECT_GT(tx_->stats().fault_delayed + tx_->stats().fault_reordered, 0u);
  auto got = receive(*rx_, kN, kTimeoutMs, tx_.get());
  ASSERT_EQ(got.size(), kN);
  std::set<uint32_t> seen;
  for (const auto& g : got) {
    ASSERT_EQ(g.data.size(), 60u);
    const uint32_t i = seq_of(g);
    ASSERT_LT(i, kN);
    EXPECT_EQ(g.data, want[i]) << "datagram " << i;
    seen.insert(i);
  }
  EXPECT_EQ(seen.size(), kN);
}

TEST_F(FaultTransportTest, DelayHoldsUntilDue) {
  constexpr uint32_t kDelayUs = 200'000;
  tx_->set_faults({.delay_pct = 100, .delay_us = kDelayUs});
  make_payloads(3);
  const uint64_t t0 = mono_ns();
  ASSERT_TRUE(send_payloads());
  EXPECT_TRUE(tx_->has_pending());
  EXPECT_EQ(tx_->stats().fault_delayed, 3u);
  // Calls before the delay has passed must not let anything out.
  (void)tx_->rx_burst({});
  auto early = drain();
  if (mono_ns() - t0 < uint64_t{kDelayUs} * 1000) {
    EXPECT_EQ(early.size(), 0u);
  }

  auto got = receive(*rx_, 3 - early.size(), kTimeoutMs, tx_.get());
  got.insert(got.begin(), early.begin(), early.end());
  EXPECT_GE(mono_ns() - t0, uint64_t{kDelayUs} * 1000);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i].data, payloads_[i]);
  EXPECT_FALSE(tx_->has_pending());
}

TEST_F(FaultTransportTest, ReorderSwapsNeighboursAndDeliversAll) {
  tx_->set_faults({.reorder_pct = 100, .delay_us = 60'000'000});
  make_payloads(10);
  ASSERT_TRUE(send_payloads());
  auto got = drain();
  ASSERT_EQ(got.size(), 10u);
  std::vector<uint32_t> order;
  for (const auto& g : got) {
    EXPECT_EQ(g.data, payloads_[seq_of(g)]);
    order.push_back(seq_of(g));
  }
  EXPECT_EQ(order, (std::vector<uint32_t>{1, 0, 3, 2, 5, 4, 7, 6, 9, 8}));
  EXPECT_EQ(tx_->stats().fault_reordered, 5u);
  EXPECT_FALSE(tx_->has_pending());
}

TEST_F(FaultTransportTest, ReorderHoldSpansBursts) {
  tx_->set_faults({.reorder_pct = 100, .delay_us = 60'000'000});
  make_payloads(2);
  ASSERT_TRUE(send_payloads(0, 1));
  EXPECT_TRUE(tx_->has_pending());
  EXPECT_EQ(drain().size(), 0u);
  ASSERT_TRUE(send_payloads(1, 1));
  auto got = drain();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, payloads_[1]);
  EXPECT_EQ(got[1].data, payloads_[0]);
  EXPECT_FALSE(tx_->has_pending());
}

TEST_F(FaultTransportTest, ReorderedTailIsFlushedAfterDelay) {
  tx_->set_faults({.reorder_pct = 100, .delay_us = 20'000});
  make_payloads(1);
  ASSERT_TRUE(send_payloads());
  EXPECT_TRUE(tx_->has_pending());
  auto got = receive(*rx_, 1, kTimeoutMs, tx_.get());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, payloads_[0]);
  EXPECT_FALSE(tx_->has_pending());
}

TEST_F(FaultTransportTest, FaultsSwitchAtRuntime) {
  make_payloads(2);
  tx_->set_faults({.drop_pct = 100});
  ASSERT_TRUE(send_payloads(0, 1));
  EXPECT_EQ(drain().size(), 0u);
  tx_->set_faults({});
  ASSERT_TRUE(send_payloads(1, 1));
  auto got = drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, payloads_[1]);
}

TEST(ParseFaultConfig, AcceptsEveryKey) {
  auto c = parse_fault_config("drop=10,dup=5,reorder=2,corrupt=1,delay=5,delay_us=2000,seed=7");
  ASSERT_OK(c);
  EXPECT_DOUBLE_EQ(c->drop_pct, 10);
  EXPECT_DOUBLE_EQ(c->duplicate_pct, 5);
  EXPECT_DOUBLE_EQ(c->reorder_pct, 2);
  EXPECT_DOUBLE_EQ(c->corrupt_pct, 1);
  EXPECT_DOUBLE_EQ(c->delay_pct, 5);
  EXPECT_EQ(c->delay_us, 2000u);
  EXPECT_EQ(c->seed, 7u);
  EXPECT_TRUE(c->any());
}

TEST(ParseFaultConfig, EmptyMeansNoFaults) {
  auto c = parse_fault_config("");
  ASSERT_OK(c);
  EXPECT_FALSE(c->any());
  auto f = parse_fault_config("drop=0.5");
  ASSERT_OK(f);
  EXPECT_DOUBLE_EQ(f->drop_pct, 0.5);
}

TEST(ParseFaultConfig, RejectsBadInputNamingTheKey) {
  for (const char* bad :
       {"drop=abc", "drop=101", "drop=-1", "drop=", "bogus=1", "drop", "delay_us=x", "seed=-3"}) {
    auto c = parse_fault_config(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.code(), Errc::kInvalid) << bad;
    std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(c.error().message.find("'" + key + "'"), std::string::npos) << c.error().message;
  }
  EXPECT_NE(parse_fault_config("drop=abc").error().message.find("percentage 0..100"),
            std::string::npos);
}

}  // namespace
}  // namespace lanefs::transport

// RttEstimator and CongestionWindow on a simulated clock: exact RFC 6298
// arithmetic, clamping, backoff, and the AIMD/delay/ECN window rules (one
// decrease per smoothed RTT, never below the minimum, never above credits).
#include "rpc/congestion.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace lanefs::rpc {
namespace {

// A simulated clock: packets are "sent" and "answered" at chosen instants and
// the estimator sees answer - send, as the client's loop does.
struct SimClock {
  uint64_t now = 1'000'000'000;
  uint64_t advance(uint64_t ns) { return now += ns; }
};

void exchange(SimClock& clock, RttEstimator& est, uint64_t rtt_ns) {
  const uint64_t sent = clock.now;
  clock.advance(rtt_ns);
  est.sample(clock.now - sent);
}

// No clamping in the way of the arithmetic checks.
constexpr RtoConfig kWide{.initial_ns = 20'000'000, .min_ns = 1, .max_ns = 1ull << 40};

TEST(RttEstimator, BeforeAnySampleUsesInitialTimeout) {
  RttEstimator est;
  EXPECT_FALSE(est.has_sample());
  EXPECT_EQ(est.srtt_ns(), 0u);
  EXPECT_EQ(est.rto_ns(), RtoConfig{}.initial_ns);
}

TEST(RttEstimator, FirstSampleSetsSrttAndHalfVariance) {
  SimClock clock;
  RttEstimator est(kWide);
  exchange(clock, est, 1'000'000);
  EXPECT_TRUE(est.has_sample());
  EXPECT_EQ(est.srtt_ns(), 1'000'000u);
  EXPECT_EQ(est.rttvar_ns(), 500'000u);
  EXPECT_EQ(est.min_rtt_ns(), 1'000'000u);
  EXPECT_EQ(est.rto_ns(), 1'000'000u + 4 * 500'000u);
}

TEST(RttEstimator, FurtherSamplesFollowRfc6298WithIntegerArithmetic) {
  SimClock clock;
  RttEstimator est(kWide);
  exchange(clock, est, 1000);
  // rttvar = (3*500 + |1000-1800|)/4 = 575; srtt = (7*1000 + 1800)/8 = 1100.
  exchange(clock, est, 1800);
  EXPECT_EQ(est.rttvar_ns(), 575u);
  EXPECT_EQ(est.srtt_ns(), 1100u);
  EXPECT_EQ(est.rto_ns(), 1100u + 4 * 575u);
  // rttvar uses the *old* srtt: (3*575 + |1100-600|)/4 = 2225/4 = 556;
  // srtt = (7*1100 + 600)/8 = 8300/8 = 1037.
  exchange(clock, est, 600);
  EXPECT_EQ(est.rttvar_ns(), 556u);
  EXPECT_EQ(est.srtt_ns(), 1037u);
  EXPECT_EQ(est.min_rtt_ns(), 600u);
  EXPECT_EQ(est.rto_ns(), 1037u + 4 * 556u);
  // A steady RTT converges: srtt toward it, rttvar toward 0 (integer
  // division leaves srtt up to 7 ns short, and rttvar at that difference).
  for (int i = 0; i < 200; ++i) exchange(clock, est, 2000);
  EXPECT_GE(est.srtt_ns(), 1993u);
  EXPECT_LE(est.srtt_ns(), 2000u);
  EXPECT_LE(est.rttvar_ns(), 7u);
  EXPECT_EQ(est.min_rtt_ns(), 600u);
}

TEST(RttEstimator, ZeroSampleCountsAsOneNanosecond) {
  RttEstimator est(kWide);
  est.sample(0);
  EXPECT_TRUE(est.has_sample());
  EXPECT_EQ(est.srtt_ns(), 1u);
  EXPECT_EQ(est.min_rtt_ns(), 1u);
}

TEST(RttEstimator, TimeoutIsClampedToConfiguredRange) {
  const RtoConfig cfg{.initial_ns = 20'000'000, .min_ns = 2'000'000, .max_ns = 500'000'000};
  SimClock clock;
  RttEstimator fast(cfg);
  exchange(clock, fast, 100'000);  // 100 us + 4*50 us = 300 us < min
  EXPECT_EQ(fast.srtt_ns(), 100'000u);
  EXPECT_EQ(fast.rto_ns(), cfg.min_ns);

  RttEstimator slow(cfg);
  exchange(clock, slow, 400'000'000);  // 400 ms + 4*200 ms > max
  EXPECT_EQ(slow.rto_ns(), cfg.max_ns);

  RttEstimator mid(cfg);
  exchange(clock, mid, 10'000'000);  // 10 ms + 20 ms, inside the range
  EXPECT_EQ(mid.rto_ns(), 30'000'000u);
}

TEST(RttEstimator, BackoffDoublesAndCaps) {
  const RtoConfig cfg{.initial_ns = 20'000'000, .min_ns = 2'000'000, .max_ns = 500'000'000};
  SimClock clock;
  RttEstimator est(cfg);
  exchange(clock, est, 10'000'000);
  const uint64_t base = est.rto_ns();
  ASSERT_EQ(base, 30'000'000u);
  EXPECT_EQ(est.rto_ns(0), base);
  EXPECT_EQ(est.rto_ns(1), 2 * base);
  EXPECT_EQ(est.rto_ns(2), 4 * base);
  EXPECT_EQ(est.rto_ns(4), 16 * base);    // 480 ms, still under the cap
  EXPECT_EQ(est.rto_ns(5), cfg.max_ns);   // 960 ms capped
  EXPECT_EQ(est.rto_ns(64), cfg.max_ns);  // no overflow for silly backoffs
  EXPECT_EQ(est.rto_ns(1000), cfg.max_ns);
  // Backoff applies to the initial timeout too.
  RttEstimator fresh(cfg);
  EXPECT_EQ(fresh.rto_ns(1), 2 * cfg.initial_ns);
}

constexpr uint64_t kSrtt = 100'000;  // 100 us

TEST(CongestionWindow, AdditiveIncreaseReachesCreditsAndStops) {
  WindowConfig cfg;
  cfg.initial = 4;
  cfg.max = 8;
  CongestionWindow cw(cfg);
  SimClock clock;
  EXPECT_EQ(cw.window(), 4u);
  // About one packet per window of answers: 4 answers are not yet a whole
  // packet (1/4 + 1/4.25 + ...), 5 are.
  for (int i = 0; i < 4; ++i) cw.on_ack(clock.advance(1000), 0, 0, kSrtt);
  EXPECT_EQ(cw.window(), 4u);
  EXPECT_GT(cw.cwnd(), 4.8);
  cw.on_ack(clock.advance(1000), 0, 0, kSrtt);
  EXPECT_EQ(cw.window(), 5u);
  for (int i = 0; i < 10'000; ++i) cw.on_ack(clock.advance(1000), 0, 0, kSrtt);
  EXPECT_EQ(cw.window(), 8u);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 8.0);
  EXPECT_EQ(cw.decreases(), 0u);
}

TEST(CongestionWindow, LossHalvesOncePerSmoothedRtt) {
  WindowConfig cfg;
  cfg.initial = 16;
  cfg.max = 32;
  CongestionWindow cw(cfg);
  SimClock clock;
  cw.on_loss(clock.now, kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 8.0);
  EXPECT_EQ(cw.decreases(), 1u);
  // Same flight: within one srtt of the last decrease, nothing happens.
  cw.on_loss(clock.advance(kSrtt / 2), kSrtt);
  cw.on_loss(clock.advance(kSrtt / 2 - 1), kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 8.0);
  EXPECT_EQ(cw.decreases(), 1u);
  // One srtt after the first decrease: a new congestion event.
  cw.on_loss(clock.advance(1), kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 4.0);
  EXPECT_EQ(cw.decreases(), 2u);
}

TEST(CongestionWindow, FirstDecreaseWorksAtTimeZero) {
  CongestionWindow cw(WindowConfig{});
  cw.on_loss(0, kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), WindowConfig{}.initial * 0.5);
}

TEST(CongestionWindow, DelayAboveThresholdDecreasesByFactor) {
  WindowConfig cfg;
  cfg.initial = 10;
  cfg.max = 32;
  cfg.delay_threshold_ns = 50'000;
  CongestionWindow cw(cfg);
  SimClock clock;
  const uint64_t min_rtt = 20'000;
  // Exactly at min_rtt + threshold is not congestion: the window grows.
  cw.on_ack(clock.advance(1000), min_rtt + cfg.delay_threshold_ns, min_rtt, kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 10.1);
  // Above it: x0.8, and no additive increase for that answer.
  cw.on_ack(clock.advance(1000), min_rtt + cfg.delay_threshold_ns + 1, min_rtt, kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 10.1 * 0.8);
  EXPECT_EQ(cw.decreases(), 1u);
  // rtt 0 means "no sample": never a delay signal.
  const double before = cw.cwnd();
  cw.on_ack(clock.advance(kSrtt), 0, min_rtt, kSrtt);
  EXPECT_GT(cw.cwnd(), before);
  // Without a min_rtt yet, nothing to compare against.
  CongestionWindow fresh(cfg);
  fresh.on_ack(clock.advance(1000), 10'000'000, 0, kSrtt);
  EXPECT_GT(fresh.cwnd(), 10.0);
}

TEST(CongestionWindow, NeverBelowMinimum) {
  WindowConfig cfg;
  cfg.initial = 16;
  CongestionWindow cw(cfg);
  SimClock clock;
  for (int i = 0; i < 50; ++i) cw.on_loss(clock.advance(kSrtt + 1), kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), cfg.min);
  EXPECT_EQ(cw.window(), 1u);
  for (int i = 0; i < 50; ++i) cw.on_ecn(clock.advance(kSrtt + 1), kSrtt);
  EXPECT_EQ(cw.window(), 1u);
  // And it recovers by additive increase afterwards.
  for (int i = 0; i < 10; ++i) cw.on_ack(clock.advance(1000), 0, 0, kSrtt);
  EXPECT_GE(cw.window(), 2u);
}

TEST(CongestionWindow, EcnDecreasesByDelayFactorOncePerRtt) {
  WindowConfig cfg;
  cfg.initial = 20;
  cfg.max = 32;
  CongestionWindow cw(cfg);
  SimClock clock;
  cw.on_ecn(clock.now, kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 16.0);
  cw.on_ecn(clock.advance(10), kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 16.0);
  cw.on_ecn(clock.advance(kSrtt), kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 16.0 * 0.8);
  EXPECT_EQ(cw.decreases(), 2u);
}

TEST(CongestionWindow, LossAndDelayShareTheOncePerRttGate) {
  WindowConfig cfg;
  cfg.initial = 16;
  CongestionWindow cw(cfg);
  SimClock clock;
  cw.on_loss(clock.now, kSrtt);
  ASSERT_DOUBLE_EQ(cw.cwnd(), 8.0);
  cw.on_ack(clock.advance(10), 10'000'000, 1000, kSrtt);  // delay signal, same event
  EXPECT_DOUBLE_EQ(cw.cwnd(), 8.0);
  cw.on_ecn(clock.advance(10), kSrtt);
  EXPECT_DOUBLE_EQ(cw.cwnd(), 8.0);
  EXPECT_EQ(cw.decreases(), 1u);
}

}  // namespace
}  // namespace lanefs::rpc

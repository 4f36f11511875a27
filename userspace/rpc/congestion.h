// Loss-recovery timing and congestion control for one RPC session. Pure
// logic: time is passed in (nanoseconds), so tests drive it with a simulated
// clock. Not thread-safe; owned by the session's event loop.
#pragma once

#include <algorithm>
#include <cstdint>

namespace lanefs::rpc {

struct RtoConfig {
  uint64_t initial_ns = 20'000'000;  // before the first sample (RFC 6298 says 1 s; LAN)
  // Floor: scheduling delays of a few ms are normal on busy hosts and must
  // not look like loss (eRPC uses a few ms as well).
  uint64_t min_ns = 5'000'000;
  uint64_t max_ns = 500'000'000;
};

// Jacobson/Karels RTT estimator (RFC 6298: alpha 1/8, beta 1/4, RTO = SRTT +
// 4 RTTVAR, clamped). Callers feed only unambiguous samples (Karn's rule: a
// packet answered after it was retransmitted gives no sample).
class RttEstimator {
 public:
  explicit RttEstimator(RtoConfig cfg = {}) : cfg_(cfg) {}
  void sample(uint64_t rtt_ns);
  // Current timeout, without backoff.
  uint64_t rto_ns() const;
  // Timeout after `backoff` consecutive expirations: rto << backoff, capped.
  uint64_t rto_ns(uint32_t backoff) const;
  uint64_t srtt_ns() const { return srtt_; }
  uint64_t rttvar_ns() const { return rttvar_; }
  uint64_t min_rtt_ns() const { return min_rtt_; }
  bool has_sample() const { return srtt_ != 0; }

 private:
  RtoConfig cfg_;
  uint64_t srtt_ = 0, rttvar_ = 0, min_rtt_ = 0;
};

struct WindowConfig {
  double initial = 16;      // packets
  double max = 32;          // the session's credits
  double min = 1;
  double loss_factor = 0.5;   // multiplicative decrease on loss
  double delay_factor = 0.8;  // decrease when delay rises
  // RTT above min_rtt + this = congestion. min_rtt comes from the smallest
  // packets while a 64 KiB datagram alone takes ~100-200 us more to copy on
  // loopback, so the threshold is a real queue (1 ms), not a packet size.
  uint64_t delay_threshold_ns = 1'000'000;
};

// AIMD window with a Timely-like delay signal and ECN: +1 packet per window
// of answers; x0.5 on loss, x0.8 on rising delay or ECN, each at most once
// per smoothed RTT so one burst of loss is one congestion event.
class CongestionWindow {
 public:
  explicit CongestionWindow(WindowConfig cfg = {}) : cfg_(cfg), cwnd_(cfg.initial) {}
  // An answered packet. rtt_ns = 0 when it gave no delay sample.
  void on_ack(uint64_t now_ns, uint64_t rtt_ns, uint64_t min_rtt_ns, uint64_t srtt_ns);
  void on_loss(uint64_t now_ns, uint64_t srtt_ns);
  void on_ecn(uint64_t now_ns, uint64_t srtt_ns);
  uint32_t window() const { return static_cast<uint32_t>(std::max(cfg_.min, cwnd_)); }
  double cwnd() const { return cwnd_; }
  uint64_t decreases() const { return decreases_; }

 private:
  void decrease(uint64_t now_ns, uint64_t srtt_ns, double factor);
  WindowConfig cfg_;
  double cwnd_;
  uint64_t last_decrease_ns_ = 0;
  bool decreased_once_ = false;
  uint64_t decreases_ = 0;
};

}  // namespace lanefs::rpc

#include "rpc/congestion.h"

namespace lanefs::rpc {

void RttEstimator::sample(uint64_t rtt) {
  if (rtt == 0) rtt = 1;
  if (min_rtt_ == 0 || rtt < min_rtt_) min_rtt_ = rtt;
  if (srtt_ == 0) {
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    return;
  }
  uint64_t diff = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
  rttvar_ = (3 * rttvar_ + diff) / 4;
  srtt_ = (7 * srtt_ + rtt) / 8;
}

uint64_t RttEstimator::rto_ns() const {
  uint64_t rto = srtt_ == 0 ? cfg_.initial_ns : srtt_ + 4 * rttvar_;
  return std::clamp(rto, cfg_.min_ns, cfg_.max_ns);
}

uint64_t RttEstimator::rto_ns(uint32_t backoff) const {
  uint64_t rto = rto_ns();
  for (uint32_t i = 0; i < backoff && rto < cfg_.max_ns; ++i) rto *= 2;
  return std::min(rto, cfg_.max_ns);
}

void CongestionWindow::on_ack(uint64_t now, uint64_t rtt, uint64_t min_rtt, uint64_t srtt) {
  if (rtt != 0 && min_rtt != 0 && rtt > min_rtt + cfg_.delay_threshold_ns) {
    decrease(now, srtt, cfg_.delay_factor);
    return;
  }
  cwnd_ = std::min(cfg_.max, cwnd_ + 1.0 / std::max(1.0, cwnd_));
}

void CongestionWindow::on_loss(uint64_t now, uint64_t srtt) { decrease(now, srtt, cfg_.loss_factor); }
void CongestionWindow::on_ecn(uint64_t now, uint64_t srtt) { decrease(now, srtt, cfg_.delay_factor); }

void CongestionWindow::decrease(uint64_t now, uint64_t srtt, double factor) {
  // One reaction per round trip: later signals from the same flight are the
  // same congestion event.
  if (decreased_once_ && now - last_decrease_ns_ < std::max<uint64_t>(srtt, 1)) return;
  decreased_once_ = true;
  last_decrease_ns_ = now;
  cwnd_ = std::max(cfg_.min, cwnd_ * factor);
  ++decreases_;
}

}  // namespace lanefs::rpc

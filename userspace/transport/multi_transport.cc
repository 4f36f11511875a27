#include "transport/multi_transport.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>

namespace lanefs::transport {

Result<std::unique_ptr<Transport>> MultiHomedTransport::create(std::vector<std::unique_ptr<Transport>> legs) {
  if (legs.empty()) return make_error(Errc::kInvalid, "multi-homed transport without legs");
  std::unique_ptr<MultiHomedTransport> t(new MultiHomedTransport());
  t->legs_ = std::move(legs);
  t->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (t->epoll_fd_ < 0) return sys_error("epoll_create1", errno);
  t->max_dgram_ = UINT32_MAX;
  for (auto& leg : t->legs_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (epoll_ctl(t->epoll_fd_, EPOLL_CTL_ADD, leg->notify_fd(), &ev) != 0)
      return sys_error("epoll_ctl " + leg->local_addr().to_string(), errno);
    t->max_dgram_ = std::min(t->max_dgram_, leg->max_datagram());
  }
  return std::unique_ptr<Transport>(std::move(t));
}

MultiHomedTransport::~MultiHomedTransport() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

std::vector<NetAddr> MultiHomedTransport::local_addrs() const {
  std::vector<NetAddr> out;
  for (const auto& leg : legs_) out.push_back(leg->local_addr());
  return out;
}

size_t MultiHomedTransport::leg_for(NetAddr src) const {
  if (src.ip == 0) return 0;
  for (size_t i = 0; i < legs_.size(); ++i) {
    NetAddr a = legs_[i]->local_addr();
    if (a.ip == src.ip && (src.port == 0 || a.port == src.port)) return i;
  }
  return 0;
}

Result<size_t> MultiHomedTransport::tx_burst(std::span<const TxDatagram> pkts) {
  // Runs of datagrams for the same leg go out as one burst (the RPC layer
  // sends a session's packets on one path at a time, so runs are long).
  size_t done = 0;
  while (done < pkts.size()) {
    size_t leg = leg_for(pkts[done].src);
    size_t end = done + 1;
    while (end < pkts.size() && leg_for(pkts[end].src) == leg) ++end;
    size_t want = end - done;
    LANEFS_ASSIGN_OR_RETURN(size_t n, legs_[leg]->tx_burst(pkts.subspan(done, want)));
    done += n;
    if (n < want) break;  // that leg's ring is full: the caller retries
  }
  return done;
}

Result<size_t> MultiHomedTransport::rx_burst(std::span<RxDatagram> out) {
  // Each leg's datagrams stay valid until that leg's next rx_burst, so one
  // call takes from one leg only (round-robin over calls, skipping idle legs).
  for (size_t tried = 0; tried < legs_.size(); ++tried) {
    size_t i = next_rx_;
    next_rx_ = (next_rx_ + 1) % legs_.size();
    LANEFS_ASSIGN_OR_RETURN(size_t n, legs_[i]->rx_burst(out));
    if (n == 0) continue;
    NetAddr dst = legs_[i]->local_addr();
    for (size_t k = 0; k < n; ++k) out[k].dst = dst;
    return n;
  }
  return size_t{0};
}

Status MultiHomedTransport::arm_notify() {
  for (auto& leg : legs_) LANEFS_TRY(leg->arm_notify());
  return ok_status();
}

bool MultiHomedTransport::has_pending() const noexcept {
  return std::any_of(legs_.begin(), legs_.end(), [](const auto& l) { return l->has_pending(); });
}

const TransportStats& MultiHomedTransport::stats() const noexcept {
  sum_ = TransportStats{};
  sum_.gso_active = sum_.gro_active = true;
  for (const auto& leg : legs_) {
    const auto& s = leg->stats();
    sum_.tx_packets += s.tx_packets;
    sum_.tx_bytes += s.tx_bytes;
    sum_.tx_dropped += s.tx_dropped;
    sum_.rx_packets += s.rx_packets;
    sum_.rx_bytes += s.rx_bytes;
    sum_.rx_truncated += s.rx_truncated;
    sum_.tx_gso_sends += s.tx_gso_sends;
    sum_.tx_gso_segments += s.tx_gso_segments;
    sum_.rx_gro_messages += s.rx_gro_messages;
    sum_.rx_gro_segments += s.rx_gro_segments;
    sum_.gso_fallbacks += s.gso_fallbacks;
    sum_.gso_active = sum_.gso_active && s.gso_active;
    sum_.gro_active = sum_.gro_active && s.gro_active;
  }
  return sum_;
}

}  // namespace lanefs::transport

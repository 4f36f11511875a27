// Data path of a DPDK endpoint: one (IP, UDP port) on a shared DpdkPort
// (dpdk_port.h), driven by its owning loop thread.
#include "transport/dpdk/dpdk_transport.h"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "transport/dpdk/dpdk_port.h"

namespace lanefs::transport::dpdk {
namespace {

constexpr uint32_t kBurst = 32;
constexpr size_t kPendingPerPeer = 64;
// Datagrams held for a peer that does not answer ARP are dropped after
// this (the RPC layer resends; has_pending() must go false for a dead peer).
constexpr uint64_t kPendingMaxNs = 3'000'000'000ull;

class Region final : public MemRegion {
 public:
  Region(void* a, size_t l) : MemRegion(a, l) {}
};

class DpdkTransport final : public Transport {
 public:
  ~DpdkTransport() override {
    if (attached_) port_->detach(&inbox_);
    free_held();
    for (const Delivered& d : inbox_.mbufs) rte_pktmbuf_free(d.mbuf);
    inbox_.mbufs.clear();
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (inbox_.event_fd >= 0) close(inbox_.event_fd);
    port_.reset();  // the last endpoint closes the port
  }

  Status init(const TransportConfig& config) {
    cfg_ = config.dpdk;
    if (cfg_.ip == 0) return make_error(Errc::kInvalid, "dpdk: no IP address for port " + cfg_.port);
    if (config.bind.ip != 0 && config.bind.ip != cfg_.ip)
      return make_error(Errc::kInvalid, "dpdk: bind address differs from the port's address");
    LANEFS_ASSIGN_OR_RETURN(port_, DpdkPort::acquire(cfg_));
    inbox_.ip = cfg_.ip;
    inbox_.prefix_bits = cfg_.prefix_bits;
    inbox_.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (inbox_.event_fd < 0) return sys_error("eventfd", errno);
    if (port_->interrupt_mode()) {
      // Sleep on the interrupts of the queues we serve (the port keeps
      // them in this set) and on our inbox (another endpoint may receive
      // our datagrams); an epoll fd is itself pollable.
      epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
      if (epoll_fd_ < 0) return sys_error("epoll_create1", errno);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = UINT32_MAX;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, inbox_.event_fd, &ev) != 0) return sys_error("epoll_ctl", errno);
      inbox_.epoll_fd = epoll_fd_;
    }
    // Polling: the owner polls the port itself, or sleeps on event_fd after
    // arm_notify() while another thread (the pool's dedicated core) polls.
    // A fixed port if asked; else the first free one from a per-process
    // start (several endpoints of one process share the address).
    uint16_t want = config.bind.port;
    Status st = make_error(Errc::kExists, "no free UDP port");
    for (uint32_t i = 0; i < (want ? 1u : 2000u); ++i) {
      inbox_.udp_port = want ? want : uint16_t(40000 + (getpid() * 7 + i) % 20000);
      st = port_->attach(&inbox_);
      if (st.ok() || want) break;
    }
    if (!st.ok()) {
      port_.reset();
      return st;
    }
    attached_ = true;
    local_ = NetAddr{cfg_.ip, inbox_.udp_port};
    uint32_t mtu = port_->mtu();
    max_dgram_ = config.mtu ? std::min<uint32_t>(config.mtu, mtu - 28u) : mtu - 28u;
    LOG_INFO("dpdk lane: {} on {} ({}) queue {} of {}, {} mode, max datagram {}", local_.to_string(),
             port_->name(), port_->driver(), inbox_.home_queue, port_->queues(),
             port_->interrupt_mode() ? "rx-interrupt" : "polling", max_dgram_);
    return ok_status();
  }

  TransportKind kind() const noexcept override { return TransportKind::kDpdk; }
  NetAddr local_addr() const noexcept override { return local_; }
  uint32_t max_datagram() const noexcept override { return max_dgram_; }
  int notify_fd() const noexcept override { return epoll_fd_ >= 0 ? epoll_fd_ : inbox_.event_fd; }
  bool has_pending() const noexcept override { return pending_count_ > 0; }
  bool busy_polls() const noexcept override { return !port_->interrupt_mode(); }
  const TransportStats& stats() const noexcept override {
    stats_.rx_off_queue = inbox_.off_queue.load(std::memory_order_relaxed);
    stats_.queue = inbox_.home_queue;
    stats_.queues = port_->queues();
    return stats_;
  }

  Status arm_notify() override {
    if (!port_->interrupt_mode()) {
      // From now on whoever polls the port wakes us; what already sits in
      // the inbox wakes us at once.
      inbox_.sleeping.store(true);
      bool waiting;
      {
        std::lock_guard lk(inbox_.mu);
        waiting = !inbox_.mbufs.empty();
      }
      if (waiting) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t w = write(inbox_.event_fd, &one, sizeof one);
      }
      return ok_status();
    }
    LANEFS_TRY(port_->arm(&inbox_));
    // A datagram that arrived before the interrupt was enabled raised none:
    // poll once more; if anything is ours, make our fd readable at once.
    // Frames taken here (ARP, another endpoint's) disabled the interrupt
    // again: go round once more, so it is re-armed before we sleep.
    bool waiting = port_->poll(&inbox_, mono_ns()) > 0;
    {
      std::lock_guard lk(inbox_.mu);
      waiting |= !inbox_.mbufs.empty();
    }
    if (waiting) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t w = write(inbox_.event_fd, &one, sizeof one);
    }
    return ok_status();
  }

  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override {
    if (addr == nullptr && len > 0) return make_error(Errc::kInvalid, "register_memory: null address");
    return std::unique_ptr<MemRegion>(new Region(addr, len));
  }

  Result<size_t> tx_burst(std::span<const TxDatagram> pkts) override {
    uint64_t now = mono_ns();
    flush_pending(now);
    rte_mbuf* out[kBurst];
    size_t taken = 0;
    while (taken < pkts.size()) {
      uint16_t n = 0;
      for (; taken < pkts.size() && n < kBurst; ++taken) {
        const TxDatagram& d = pkts[taken];
        const uint64_t len = d.size();
        if (len > max_dgram_) {
          ++stats_.tx_dropped;
          continue;
        }
        auto mac = port_->next_hop_mac(&inbox_, cfg_.ip, d.dst.ip, cfg_.prefix_bits, cfg_.gateway, now);
        if (!mac) {
          queue_pending(d, now);
          continue;
        }
        rte_mbuf* m = frame(*mac, d);
        if (!m) {
          ++stats_.tx_dropped;
          continue;
        }
        out[n++] = m;
        stats_.tx_packets++;
        stats_.tx_bytes += len;
      }
      send(out, n);
    }
    return taken;
  }

  Result<size_t> rx_burst(std::span<RxDatagram> out) override {
    free_held();
    uint64_t now = mono_ns();
    if (epoll_fd_ >= 0 || inbox_.sleeping.exchange(false)) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(inbox_.event_fd, &v, sizeof v);  // clear our wake-up
    }
    port_->poll(&inbox_, now);
    flush_pending(now);
    size_t want = std::min<size_t>(kBurst, out.size());
    if (want == 0) return size_t{0};
    Delivered mine[kBurst];
    size_t n = 0;
    bool more;
    {
      std::lock_guard lk(inbox_.mu);
      n = std::min(want, inbox_.mbufs.size());
      std::copy_n(inbox_.mbufs.begin(), n, mine);
      inbox_.mbufs.erase(inbox_.mbufs.begin(), inbox_.mbufs.begin() + long(n));
      more = !inbox_.mbufs.empty();
    }
    if (more && epoll_fd_ >= 0) {
      uint64_t one = 1;  // still datagrams for us: stay readable
      [[maybe_unused]] ssize_t w = write(inbox_.event_fd, &one, sizeof one);
    }
    for (size_t i = 0; i < n; ++i) {
      // Zero copy: the datagram stays in its mbuf until the next rx_burst.
      held_.push_back(mine[i].mbuf);
      out[i] = RxDatagram{mine[i].src, mine[i].payload, mine[i].len};
      stats_.rx_packets++;
      stats_.rx_bytes += mine[i].len;
    }
    return n;
  }

 private:
  // One linear mbuf: headers, then every part of the datagram (the caller
  // checked it is at most max_dgram_, which fits an mbuf).
  rte_mbuf* frame(const Mac& dst_mac, const TxDatagram& d) {
    const NetAddr dst = d.dst;
    const auto len = static_cast<uint32_t>(d.size());
    rte_mbuf* m = port_->alloc();
    if (!m) return nullptr;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(kUdpFrameOverhead + len)));
    if (!p) {
      rte_pktmbuf_free(m);
      return nullptr;
    }
    bool ip_off = port_->tx_ipv4_cksum_offload(), udp_off = port_->tx_udp_cksum_offload();
    build_udp_headers(dst_mac, port_->mac(), cfg_.ip, dst.ip, local_.port, dst.port, len, ip_id_++, p,
                      ip_off);
    copy_datagram(d, p + kUdpFrameOverhead);
    uint8_t* csum = p + kEthHeader + kIpHeader + 6;
    if (ip_off) {
      m->l2_len = kEthHeader;
      m->l3_len = kIpHeader;
      m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    }
    if (udp_off) {
      m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
      uint16_t ph = udp_pseudo_header_sum(cfg_.ip, dst.ip, kUdpHeader + len);
      csum[0] = uint8_t(ph >> 8);
      csum[1] = uint8_t(ph);
    } else {
      uint16_t c = udp_checksum(p, len);
      csum[0] = uint8_t(c >> 8);
      csum[1] = uint8_t(c);
    }
    return m;
  }

  void send(rte_mbuf** m, uint16_t n) {
    if (n == 0) return;
    stats_.tx_dropped += n - port_->send(&inbox_, m, n);
  }

  void queue_pending(const TxDatagram& d, uint64_t now) {
    uint32_t hop = port_->next_hop(cfg_.ip, d.dst.ip, cfg_.prefix_bits, cfg_.gateway);
    auto& q = pending_[hop];
    if (q.size() >= kPendingPerPeer) {
      ++stats_.tx_dropped;
      return;
    }
    Pending p{d.dst, std::vector<uint8_t>(d.size()), now};
    copy_datagram(d, p.bytes.data());
    stats_.tx_packets++;
    stats_.tx_bytes += p.bytes.size();
    q.push_back(std::move(p));
    ++pending_count_;
  }

  void flush_pending(uint64_t now) {
    if (pending_count_ == 0) return;
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto& q = it->second;
      auto mac = port_->lookup(it->first, now);
      if (!mac) {
        while (!q.empty() && now - q.front().queued_ns > kPendingMaxNs) {
          q.pop_front();
          --pending_count_;
          ++stats_.tx_dropped;
        }
        if (q.empty()) {
          it = pending_.erase(it);
          continue;
        }
        port_->request_if_due(&inbox_, cfg_.ip, it->first, now);
        ++it;
        continue;
      }
      for (auto& p : q) {
        TxDatagram d{p.dst, p.bytes.data(), uint32_t(p.bytes.size())};
        rte_mbuf* m = frame(*mac, d);
        if (m) send(&m, 1);
        else ++stats_.tx_dropped;
      }
      pending_count_ -= q.size();
      it = pending_.erase(it);
    }
  }

  void free_held() {
    for (rte_mbuf* m : held_) rte_pktmbuf_free(m);
    held_.clear();
  }

  struct Pending {
    NetAddr dst;
    std::vector<uint8_t> bytes;
    uint64_t queued_ns = 0;
  };
  DpdkConfig cfg_;
  std::shared_ptr<DpdkPort> port_;
  Inbox inbox_;
  bool attached_ = false;
  NetAddr local_;
  uint32_t max_dgram_ = 1472;
  int epoll_fd_ = -1;
  uint16_t ip_id_ = 1;
  std::map<uint32_t, std::deque<Pending>> pending_;
  size_t pending_count_ = 0;
  std::vector<rte_mbuf*> held_;
  mutable TransportStats stats_;
};

}  // namespace

Result<std::unique_ptr<Transport>> create_dpdk_transport(const TransportConfig& config) {
  auto t = std::make_unique<DpdkTransport>();
  LANEFS_TRY(t->init(config));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace lanefs::transport::dpdk

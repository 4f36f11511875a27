#include "transport/dpdk/dpdk_transport.h"

#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "transport/dpdk/frames.h"

namespace lanefs::transport::dpdk {
namespace {

constexpr uint16_t kRing = 512;
constexpr uint32_t kBurst = 32;
constexpr size_t kPendingPerPeer = 64;

Error dpdk_error(const std::string& call, int err) {
  if (err < 0) err = -err;
  return make_error(Errc::kSystem, "dpdk: " + call + ": " + rte_strerror(err));
}

// EAL once per process; the first config decides its memory options.
Status ensure_eal(const DpdkConfig& c) {
  static std::mutex mu;
  static bool done = false;
  static Status result;
  std::lock_guard lk(mu);
  if (done) return result;
  done = true;
  // One lcore (the loop thread drives the port; EAL starts no workers), no
  // runtime files shared with other DPDK processes.
  std::vector<std::string> args = {"lanefs", "-l", "0", "--no-pci", "--no-telemetry",
                                   "--log-level=lib.*:error", "-m", std::to_string(c.memory_mb)};
  if (c.no_huge) {
    args.push_back("--no-huge");
    args.push_back("--no-shconf");
  } else {
    args.push_back("--in-memory");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
    result = dpdk_error("rte_eal_init", rte_errno);
  return result;
}

class Region final : public MemRegion {
 public:
  Region(void* a, size_t l) : MemRegion(a, l) {}
};

class DpdkTransport final : public Transport {
 public:
  ~DpdkTransport() override {
    free_held();
    if (started_) {
      rte_eth_dev_stop(port_);
      rte_eth_dev_close(port_);
    }
    if (pool_) rte_mempool_free(pool_);
    if (poll_fd_ >= 0) close(poll_fd_);
  }

  Status init(const TransportConfig& config) {
    cfg_ = config.dpdk;
    if (cfg_.port.empty()) return make_error(Errc::kInvalid, "dpdk: no port given");
    if (cfg_.ip == 0) return make_error(Errc::kInvalid, "dpdk: no IP address for port " + cfg_.port);
    if (config.bind.ip != 0 && config.bind.ip != cfg_.ip)
      return make_error(Errc::kInvalid, "dpdk: bind address differs from the port's address");
    local_ = NetAddr{cfg_.ip, config.bind.port != 0 ? config.bind.port : uint16_t(40000 + (getpid() % 20000))};
    LANEFS_TRY(ensure_eal(cfg_));
    std::string name = cfg_.port.substr(0, cfg_.port.find(','));
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port_) != 0) {
      if (int rc = rte_dev_probe(cfg_.port.c_str()); rc < 0) return dpdk_error("rte_dev_probe " + cfg_.port, rc);
      if (rte_eth_dev_get_port_by_name(name.c_str(), &port_) != 0)
        return make_error(Errc::kNotFound, "dpdk: no ethdev named " + name + " after probing " + cfg_.port);
    }
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port_, &info); rc != 0) return dpdk_error("rte_eth_dev_info_get", rc);
    driver_ = info.driver_name ? info.driver_name : "?";
    rte_eth_conf conf{};
    conf.intr_conf.rxq = cfg_.interrupt_mode ? 1 : 0;
    if (int rc = rte_eth_dev_configure(port_, 1, 1, &conf); rc != 0) {
      if (cfg_.interrupt_mode)
        return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name +
                                                   " has no RX interrupts (" + rte_strerror(-rc) + ")");
      return dpdk_error("rte_eth_dev_configure", rc);
    }
    std::string pool_name = "lanefs_" + std::to_string(port_);
    pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), 4095, 128, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    static_cast<int>(rte_socket_id()));
    if (!pool_) return dpdk_error("rte_pktmbuf_pool_create", rte_errno);
    int socket = rte_eth_dev_socket_id(port_);
    if (int rc = rte_eth_rx_queue_setup(port_, 0, kRing, socket < 0 ? 0 : socket, nullptr, pool_); rc != 0)
      return dpdk_error("rte_eth_rx_queue_setup", rc);
    if (int rc = rte_eth_tx_queue_setup(port_, 0, kRing, socket < 0 ? 0 : socket, nullptr); rc != 0)
      return dpdk_error("rte_eth_tx_queue_setup", rc);
    if (int rc = rte_eth_dev_start(port_); rc != 0) return dpdk_error("rte_eth_dev_start", rc);
    started_ = true;
    rte_ether_addr mac;
    if (int rc = rte_eth_macaddr_get(port_, &mac); rc != 0) return dpdk_error("rte_eth_macaddr_get", rc);
    std::memcpy(mac_.data(), mac.addr_bytes, 6);
    uint16_t mtu = 1500;
    rte_eth_dev_get_mtu(port_, &mtu);
    max_dgram_ = config.mtu ? std::min<uint32_t>(config.mtu, mtu - 28u) : mtu - 28u;
    if (cfg_.interrupt_mode) {
      intr_fd_ = rte_eth_dev_rx_intr_ctl_q_get_fd(port_, 0);
      if (intr_fd_ < 0)
        return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name +
                                                   " has no RX interrupts (no interrupt fd for queue 0)");
      // Some drivers (net_tap: the fd is the tap device itself) signal
      // through the fd alone and have no enable/disable: -ENOTSUP there.
      int rc = rte_eth_dev_rx_intr_enable(port_, 0);
      if (rc != 0 && rc != -ENOTSUP)
        return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name +
                                                   " has no RX interrupts (rte_eth_dev_rx_intr_enable: " +
                                                   rte_strerror(-rc) + ")");
      intr_toggle_ = rc == 0;
      if (intr_toggle_) rte_eth_dev_rx_intr_disable(port_, 0);
    } else {
      poll_fd_ = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);  // always readable: the owner polls
      if (poll_fd_ < 0) return sys_error("eventfd", errno);
    }
    // Announce ourselves (gratuitous ARP): neighbours update their tables.
    send_arp(1, kBroadcastMac, mac_, cfg_.ip);
    LOG_INFO("dpdk lane: port {} ({}, driver {}) mac {} ip {}/{} {} mode, max datagram {}", port_, name,
             driver_, mac_string(mac_), NetAddr{cfg_.ip, 0}.ip_string(), cfg_.prefix_bits,
             cfg_.interrupt_mode ? "rx-interrupt" : "polling", max_dgram_);
    return ok_status();
  }

  TransportKind kind() const noexcept override { return TransportKind::kDpdk; }
  NetAddr local_addr() const noexcept override { return local_; }
  uint32_t max_datagram() const noexcept override { return max_dgram_; }
  int notify_fd() const noexcept override { return cfg_.interrupt_mode ? intr_fd_ : poll_fd_; }
  bool has_pending() const noexcept override { return pending_count_ > 0; }
  const TransportStats& stats() const noexcept override { return stats_; }

  Status arm_notify() override {
    if (!cfg_.interrupt_mode || !intr_toggle_ || armed_) return ok_status();
    if (int rc = rte_eth_dev_rx_intr_enable(port_, 0); rc != 0) return dpdk_error("rte_eth_dev_rx_intr_enable", rc);
    armed_ = true;
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
        uint32_t len = d.head_len + d.body_len;
        if (len > max_dgram_) {
          ++stats_.tx_dropped;
          continue;
        }
        auto mac = next_hop_mac(d.dst.ip, now);
        if (!mac) {
          queue_pending(d);
          continue;
        }
        rte_mbuf* m = frame(*mac, d.dst, d.head, d.head_len, d.body, d.body_len);
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
    if (armed_) {
      rte_eth_dev_rx_intr_disable(port_, 0);
      armed_ = false;
    }
    uint64_t now = mono_ns();
    flush_pending(now);
    size_t got = 0;
    rte_mbuf* in[kBurst];
    uint16_t want = static_cast<uint16_t>(std::min<size_t>(kBurst, out.size()));
    uint16_t n = want ? rte_eth_rx_burst(port_, 0, in, want) : 0;
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = in[i];
      std::span<const uint8_t> f(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
      if (auto arp = parse_arp(f)) {
        on_arp(*arp, now);
        rte_pktmbuf_free(m);
        continue;
      }
      auto u = parse_udp(f);
      if (!u || u->dst_ip != cfg_.ip || u->dst_port != local_.port || m->nb_segs != 1) {
        rte_pktmbuf_free(m);
        continue;
      }
      // A neighbour whose MAC changed is followed from its own traffic at
      // once (no need to wait for the entry to expire).
      if (on_subnet(u->src_ip)) {
        Mac src;
        std::memcpy(src.data(), f.data() + 6, 6);
        auto known = arp_.lookup(u->src_ip, now);
        if (known && *known != src) {
          arp_.learn(u->src_ip, src, now);
          LOG_INFO("dpdk lane: {} moved to {}", NetAddr{u->src_ip, 0}.ip_string(), mac_string(src));
        }
      }
      // Zero copy: the datagram stays in its mbuf until the next rx_burst.
      held_.push_back(m);
      out[got++] = RxDatagram{NetAddr{u->src_ip, u->src_port}, u->payload.data(),
                              static_cast<uint32_t>(u->payload.size())};
      stats_.rx_packets++;
      stats_.rx_bytes += u->payload.size();
    }
    flush_pending(now);
    return got;
  }

 private:
  bool on_subnet(uint32_t ip) const {
    uint32_t mask = cfg_.prefix_bits == 0 ? 0 : ~uint32_t{0} << (32 - cfg_.prefix_bits);
    return (ip & mask) == (cfg_.ip & mask);
  }

  std::optional<Mac> next_hop_mac(uint32_t ip, uint64_t now) {
    uint32_t hop = on_subnet(ip) || cfg_.gateway == 0 ? ip : cfg_.gateway;
    auto mac = arp_.lookup(hop, now);
    if (mac && arp_.should_refresh(hop, now)) send_arp(1, *mac, {}, hop);  // unicast refresh
    if (!mac && arp_.should_request(hop, now)) send_arp(1, kBroadcastMac, {}, hop);
    return mac;
  }

  void on_arp(const ArpPacket& a, uint64_t now) {
    // Learn from any ARP that names a neighbour (requests too): a peer
    // whose MAC changed is followed at once.
    if (a.sender_ip != 0 && a.sender_ip != cfg_.ip && on_subnet(a.sender_ip)) {
      if (arp_.learn(a.sender_ip, a.sender_mac, now))
        LOG_INFO("dpdk lane: {} is at {}", NetAddr{a.sender_ip, 0}.ip_string(), mac_string(a.sender_mac));
    }
    if (a.op == 1 && a.target_ip == cfg_.ip && a.sender_ip != cfg_.ip)
      send_arp(2, a.sender_mac, a.sender_mac, a.sender_ip);
  }

  // op 1: request for target_ip (eth to `eth_dst`); op 2: reply to target.
  void send_arp(uint16_t op, const Mac& eth_dst, const Mac& target_mac, uint32_t target_ip) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (!m) return;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 60));  // minimum frame
    std::memset(p, 0, 60);
    build_arp(op, eth_dst, mac_, cfg_.ip, target_mac, target_ip, p);
    send(&m, 1);
  }

  rte_mbuf* frame(const Mac& dst_mac, NetAddr dst, const uint8_t* head, uint32_t hl, const uint8_t* body,
                  uint32_t bl) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (!m) return nullptr;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(kUdpFrameOverhead + hl + bl)));
    if (!p) {
      rte_pktmbuf_free(m);
      return nullptr;
    }
    build_udp_headers(dst_mac, mac_, cfg_.ip, dst.ip, local_.port, dst.port, hl + bl, ip_id_++, p);
    if (hl) std::memcpy(p + kUdpFrameOverhead, head, hl);
    if (bl) std::memcpy(p + kUdpFrameOverhead + hl, body, bl);
    return m;
  }

  void send(rte_mbuf** m, uint16_t n) {
    uint16_t sent = 0;
    for (int tries = 0; sent < n && tries < 100; ++tries) sent += rte_eth_tx_burst(port_, 0, m + sent, n - sent);
    for (uint16_t i = sent; i < n; ++i) {
      rte_pktmbuf_free(m[i]);
      ++stats_.tx_dropped;
    }
  }

  void queue_pending(const TxDatagram& d) {
    uint32_t hop = on_subnet(d.dst.ip) || cfg_.gateway == 0 ? d.dst.ip : cfg_.gateway;
    auto& q = pending_[hop];
    if (q.size() >= kPendingPerPeer) {
      ++stats_.tx_dropped;
      return;
    }
    Pending p{d.dst, {}};
    p.bytes.assign(d.head, d.head + d.head_len);
    if (d.body_len) p.bytes.insert(p.bytes.end(), d.body, d.body + d.body_len);
    q.push_back(std::move(p));
    ++pending_count_;
    stats_.tx_packets++;
    stats_.tx_bytes += d.head_len + d.body_len;
  }

  void flush_pending(uint64_t now) {
    if (pending_count_ == 0) return;
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto mac = arp_.lookup(it->first, now);
      if (!mac) {
        if (arp_.should_request(it->first, now)) send_arp(1, kBroadcastMac, {}, it->first);
        ++it;
        continue;
      }
      for (auto& p : it->second) {
        rte_mbuf* m = frame(*mac, p.dst, p.bytes.data(), uint32_t(p.bytes.size()), nullptr, 0);
        if (m) send(&m, 1);
        else ++stats_.tx_dropped;
      }
      pending_count_ -= it->second.size();
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
  };
  DpdkConfig cfg_;
  NetAddr local_;
  uint16_t port_ = 0;
  std::string driver_;
  rte_mempool* pool_ = nullptr;
  bool started_ = false;
  Mac mac_{};
  uint32_t max_dgram_ = 1472;
  int intr_fd_ = -1, poll_fd_ = -1;
  bool armed_ = false;
  bool intr_toggle_ = false;  // the driver has rx_intr_enable/disable
  uint16_t ip_id_ = 1;
  ArpTable arp_;
  std::map<uint32_t, std::deque<Pending>> pending_;
  size_t pending_count_ = 0;
  std::vector<rte_mbuf*> held_;
  TransportStats stats_;
};

}  // namespace

Result<std::unique_ptr<Transport>> create_dpdk_transport(const TransportConfig& config) {
  auto t = std::make_unique<DpdkTransport>();
  LANEFS_TRY(t->init(config));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace lanefs::transport::dpdk

// Control path of the shared DPDK port (EAL, probe, configure, teardown) and
// its receive dispatch and ARP; the endpoints' data path is in
// dpdk_transport.cc.
#include "transport/dpdk/dpdk_port.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <sched.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "common/clock.h"
#include "common/log.h"

namespace lanefs::transport::dpdk {
namespace {

constexpr uint16_t kRing = 1024;
constexpr uint16_t kRxBurst = 32;
constexpr unsigned kPoolSize = 8191;

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
  // One lcore (loop threads drive the port; EAL starts no workers), no
  // runtime files shared with other DPDK processes.
  std::vector<std::string> args = {"lanefs", "-l", "0", "--no-pci", "--no-telemetry",
                                   "--log-level=lib.*:error", "-m", std::to_string(c.memory_mb)};
  if (c.no_huge) {
    LOG_WARN("dpdk: no free hugepages for {} MiB: DPDK memory is anonymous (--no-huge), slower than "
             "hugepages; reserve them for production (lanefs net check)", c.memory_mb);
    args.push_back("--no-huge");
    args.push_back("--no-shconf");
  } else {
    args.push_back("--in-memory");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  // rte_eal_init pins the calling thread to lcore 0, and every thread
  // created afterwards would inherit that: FUSE workers, loop threads and
  // backend workers all on one CPU. Give the thread its CPUs back; dedicated
  // cores are pinned explicitly (core=, --core).
  cpu_set_t before;
  bool saved = pthread_getaffinity_np(pthread_self(), sizeof before, &before) == 0;
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
    result = dpdk_error("rte_eal_init", rte_errno);
  if (saved) pthread_setaffinity_np(pthread_self(), sizeof before, &before);
  return result;
}

// The process's open ports by device name.
std::mutex g_ports_mu;
std::map<std::string, std::weak_ptr<DpdkPort>>& ports() {
  static std::map<std::string, std::weak_ptr<DpdkPort>> m;
  return m;
}

std::string device_name(const std::string& spec) { return spec.substr(0, spec.find(',')); }

}  // namespace

Result<std::shared_ptr<DpdkPort>> DpdkPort::acquire(const DpdkConfig& cfg) {
  if (cfg.port.empty()) return make_error(Errc::kInvalid, "dpdk: no port given");
  std::string name = device_name(cfg.port);
  std::lock_guard lk(g_ports_mu);
  if (auto p = ports()[name].lock()) {
    if (p->interrupt_mode_ != cfg.interrupt_mode)
      return make_error(Errc::kInvalid, "dpdk: port " + name + " is already open in " +
                                            (p->interrupt_mode_ ? "rx-interrupt" : "polling") +
                                            " mode (dedicated_mode must agree)");
    return p;
  }
  std::unique_ptr<DpdkPort> fresh(new DpdkPort());
  LANEFS_TRY(fresh->open(cfg));  // on failure it is torn down here, under the lock
  // The last endpoint out tears the port down under the registry lock, so
  // a concurrent acquire() never probes a device that is still going away.
  std::shared_ptr<DpdkPort> p(fresh.release(), [](DpdkPort* q) {
    std::lock_guard l(g_ports_mu);
    delete q;
  });
  ports()[name] = p;
  return p;
}

Status DpdkPort::open(const DpdkConfig& cfg) {
  spec_ = cfg.port;
  name_ = device_name(cfg.port);
  interrupt_mode_ = cfg.interrupt_mode;
  LANEFS_TRY(ensure_eal(cfg));
  if (rte_eth_dev_get_port_by_name(name_.c_str(), &port_) != 0) {
    if (int rc = rte_dev_probe(spec_.c_str()); rc < 0) return dpdk_error("rte_dev_probe " + spec_, rc);
    probed_ = true;
    if (rte_eth_dev_get_port_by_name(name_.c_str(), &port_) != 0)
      return make_error(Errc::kNotFound, "dpdk: no ethdev named " + name_ + " after probing " + spec_);
  }
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_, &info); rc != 0) return dpdk_error("rte_eth_dev_info_get", rc);
  driver_ = info.driver_name ? info.driver_name : "?";
  // One queue pair per frontend core, as many as the driver has. memif's
  // ring count is agreed with the peer (a server queue without a peer ring
  // aliases ring 0 in DPDK 22.11): one pair there.
  bool memif = driver_.find("memif") != std::string::npos;
  nq_ = std::max<uint16_t>(1, std::min({cfg.queues, info.max_rx_queues, info.max_tx_queues}));
  if (memif) nq_ = 1;
  if (nq_ < cfg.queues)
    LOG_INFO("dpdk: {} ({}) opens {} queue pair(s) for {} cores: datagrams of the others are handed over in "
             "software", name_, driver_, nq_, cfg.queues);
  q_ = std::make_unique<Queue[]>(nq_);
  rte_eth_conf conf{};
  conf.intr_conf.rxq = interrupt_mode_ ? 1 : 0;
  // Several queues on a NIC that hashes: spread by IP and UDP ports until a
  // flow rule steers an endpoint's datagrams (net_tap steers by itself).
  uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
  if (nq_ > 1 && rss != 0 && driver_.find("tap") == std::string::npos) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss;
  }
  // Checksum offload where the port has it; software otherwise.
  tx_ip_cksum_ = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
  tx_udp_cksum_ = tx_ip_cksum_ && (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
  if (tx_ip_cksum_) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
  if (tx_udp_cksum_) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
  // Received checksums: checked by the port where it can, else in software.
  constexpr uint64_t kRxCksum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  bool rx_cksum = (info.rx_offload_capa & kRxCksum) == kRxCksum;
  if (rx_cksum) conf.rxmode.offloads |= kRxCksum;
  // net_af_packet hands over frames of the host's own stack with a partial
  // UDP checksum (TP_STATUS_CSUMNOTREADY, which the PMD does not report):
  // no software check there (the RPC layer's CRC32C still covers the data).
  sw_rx_verify_ = driver_.find("af_packet") == std::string::npos;
  if (int rc = rte_eth_dev_configure(port_, nq_, nq_, &conf); rc != 0) {
    if (interrupt_mode_)
      return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name_ +
                                                 " has no RX interrupts (" + rte_strerror(-rc) + ")");
    return dpdk_error("rte_eth_dev_configure", rc);
  }
  static std::atomic<unsigned> serial{0};
  std::string pool_name = "lanefs_" + std::to_string(port_) + "_" + std::to_string(serial++);
  // Every queue's RX ring full, plus what endpoints hold and send.
  unsigned pool_size = std::max(kPoolSize, unsigned{kRing} * 2u * nq_ + 4095u);
  pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), pool_size, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                  static_cast<int>(rte_socket_id()));
  if (!pool_) return dpdk_error("rte_pktmbuf_pool_create", rte_errno);
  int socket = rte_eth_dev_socket_id(port_);
  if (socket < 0) socket = 0;
  rte_eth_txconf txc = info.default_txconf;
  txc.offloads = conf.txmode.offloads;
  for (uint16_t q = 0; q < nq_; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_, q, kRing, socket, nullptr, pool_); rc != 0)
      return dpdk_error("rte_eth_rx_queue_setup " + std::to_string(q), rc);
    if (int rc = rte_eth_tx_queue_setup(port_, q, kRing, socket, &txc); rc != 0)
      return dpdk_error("rte_eth_tx_queue_setup " + std::to_string(q), rc);
  }
  if (int rc = rte_eth_dev_start(port_); rc != 0) return dpdk_error("rte_eth_dev_start", rc);
  started_ = true;
  rte_ether_addr mac;
  if (int rc = rte_eth_macaddr_get(port_, &mac); rc != 0) return dpdk_error("rte_eth_macaddr_get", rc);
  std::memcpy(mac_.data(), mac.addr_bytes, 6);
  rte_eth_dev_get_mtu(port_, &mtu_);
  for (uint16_t q = 0; interrupt_mode_ && q < nq_; ++q) {
    int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(port_, q);
    if (fd < 0)
      return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name_ +
                                                 " has no RX interrupts (no interrupt fd for queue " +
                                                 std::to_string(q) + ")");
    q_[q].intr_fd = fd;
    // Some drivers (net_tap: the fd is the tap queue itself) signal through
    // the fd alone and have no enable/disable: -ENOTSUP there.
    int rc = rte_eth_dev_rx_intr_enable(port_, q);
    if (rc != 0 && rc != -ENOTSUP)
      return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name_ +
                                                 " has no RX interrupts (rte_eth_dev_rx_intr_enable: " +
                                                 rte_strerror(-rc) + ")");
    intr_toggle_ = rc == 0;
    q_[q].intr_enabled = intr_toggle_;
    // A toggling driver's fd is an event counter: it must be read to be
    // cleared, without blocking the loop.
    if (intr_toggle_) {
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
  }
  LOG_INFO("dpdk port {} ({}, driver {}) mac {} mtu {} {} queue pair(s) {} mode, tx checksum {}, rx checksum {}",
           port_, name_, driver_, mac_string(mac_), mtu_, nq_, interrupt_mode_ ? "rx-interrupt" : "polling",
           tx_udp_cksum_ ? "offloaded" : tx_ip_cksum_ ? "ip offloaded, udp software" : "software",
           rx_cksum ? "offloaded" : sw_rx_verify_ ? "software" : "not checked (af_packet)");
  return ok_status();
}

DpdkPort::~DpdkPort() {
  if (started_) {
    rte_flow_error err{};
    rte_flow_flush(port_, &err);  // endpoints destroyed theirs; nothing to do on failure at teardown
  }
  if (started_) rte_eth_dev_stop(port_);
  if (started_ || probed_) rte_eth_dev_close(port_);
  // A virtual device is removed too, so it can be created again by name.
  if (probed_ && spec_.rfind("net_", 0) == 0) rte_eal_hotplug_remove("vdev", name_.c_str());
  if (pool_) rte_mempool_free(pool_);
}

Status DpdkPort::attach(Inbox* in) {
  bool new_ip;
  {
    std::unique_lock lk(list_mu_);
    if (find_locked(in->ip, in->udp_port))
      return make_error(Errc::kExists, "dpdk: " + NetAddr{in->ip, in->udp_port}.to_string() +
                                           " is already open on port " + name_);
    if (interrupt_mode_ && in->epoll_fd < 0)
      return make_error(Errc::kInvalid, "dpdk: an endpoint in rx-interrupt mode needs an epoll fd");
    new_ip = !owns_ip_locked(in->ip);
    uint16_t home = 0;
    for (uint16_t q = 1; q < nq_; ++q)
      if (q_[q].homes < q_[home].homes) home = q;
    in->home_queue = home;
    ++q_[home].homes;
    in->off_queue.store(0, std::memory_order_relaxed);
    inboxes_.push_back(in);
    spread_queues_locked();
    if (in->serves.empty() || in->serves[0] != home) {
      lk.unlock();
      detach(in);
      return make_error(Errc::kSystem, "dpdk: " + name_ + ": cannot wait on the interrupt of queue " +
                                           std::to_string(home) + " (epoll_ctl)");
    }
    steer_locked(in);
  }
  // Announce the address (gratuitous ARP): neighbours update their tables.
  if (new_ip) send_arp(in->home_queue, 1, kBroadcastMac, in->ip, {}, in->ip);
  return ok_status();
}

void DpdkPort::detach(Inbox* in) {
  std::unique_lock lk(list_mu_);
  if (std::find(inboxes_.begin(), inboxes_.end(), in) == inboxes_.end()) return;
  std::erase(inboxes_, in);
  --q_[in->home_queue].homes;
  if (in->flow) {
    rte_flow_error err;
    rte_flow_destroy(port_, static_cast<rte_flow*>(in->flow), &err);
    in->flow = nullptr;
  }
  if (interrupt_mode_)
    for (uint16_t q : in->serves) epoll_ctl(in->epoll_fd, EPOLL_CTL_DEL, q_[q].intr_fd, nullptr);
  in->serves.clear();
  spread_queues_locked();
}

// Every endpoint serves its home queue; a queue that is nobody's home goes
// to the endpoint serving fewest, so no queue is left unpolled. Interrupt
// mode: each endpoint's epoll set follows what it serves.
void DpdkPort::spread_queues_locked() {
  std::vector<std::vector<uint16_t>> want(inboxes_.size());
  for (size_t i = 0; i < inboxes_.size(); ++i) want[i].push_back(inboxes_[i]->home_queue);
  for (uint16_t q = 0; q < nq_ && !inboxes_.empty(); ++q) {
    if (q_[q].homes > 0) continue;
    size_t least = 0;
    for (size_t i = 1; i < want.size(); ++i)
      if (want[i].size() < want[least].size()) least = i;
    want[least].push_back(q);
  }
  for (size_t i = 0; i < inboxes_.size(); ++i) {
    Inbox* in = inboxes_[i];
    if (interrupt_mode_) {
      auto has = [](const std::vector<uint16_t>& v, uint16_t q) { return std::find(v.begin(), v.end(), q) != v.end(); };
      for (uint16_t q : in->serves)
        if (!has(want[i], q)) epoll_ctl(in->epoll_fd, EPOLL_CTL_DEL, q_[q].intr_fd, nullptr);
      bool grew = false;
      std::vector<uint16_t> got;
      for (uint16_t q : want[i]) {
        if (!has(in->serves, q)) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u32 = q;
          if (epoll_ctl(in->epoll_fd, EPOLL_CTL_ADD, q_[q].intr_fd, &ev) != 0) {
            // Not served by this endpoint then (attach fails if it is its home).
            LOG_WARN("dpdk: {}: epoll_ctl add queue {}: {}", name_, q, std::strerror(errno));
            continue;
          }
          grew = true;
        }
        got.push_back(q);
      }
      want[i] = std::move(got);
      if (grew) {
        // A queue taken over may hold frames with its interrupt disabled by
        // its last poller: wake the endpoint so it polls and re-arms it.
        uint64_t one = 1;
        [[maybe_unused]] ssize_t w = write(in->event_fd, &one, sizeof one);
      }
    }
    in->serves = std::move(want[i]);
  }
}

// A flow rule sending the endpoint's datagrams (its IP and UDP port) to its
// home queue, where the driver has rte_flow; without it they still arrive
// (RSS or the device's own steering) and are handed over when off-queue.
void DpdkPort::steer_locked(Inbox* in) {
  if (nq_ < 2 || (steer_tried_ && !steer_.load(std::memory_order_relaxed))) return;
  if (driver_.find("tap") != std::string::npos) {
    // tun steers a flow to the queue it was last sent from; its TC-based
    // rte_flow needs kernel classifiers a host may lack.
    if (!steer_tried_) LOG_INFO("dpdk: {}: the kernel steers each flow to the queue it was sent from", name_);
    steer_tried_ = true;
    return;
  }
  rte_flow_attr attr{};
  attr.ingress = 1;
  rte_flow_item_ipv4 ip{}, ip_mask{};
  ip.hdr.dst_addr = rte_cpu_to_be_32(in->ip);
  ip_mask.hdr.dst_addr = UINT32_MAX;
  rte_flow_item_udp udp{}, udp_mask{};
  udp.hdr.dst_port = rte_cpu_to_be_16(in->udp_port);
  udp_mask.hdr.dst_port = UINT16_MAX;
  rte_flow_item pattern[] = {
      {RTE_FLOW_ITEM_TYPE_ETH, nullptr, nullptr, nullptr},
      {RTE_FLOW_ITEM_TYPE_IPV4, &ip, nullptr, &ip_mask},
      {RTE_FLOW_ITEM_TYPE_UDP, &udp, nullptr, &udp_mask},
      {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr},
  };
  rte_flow_action_queue to{in->home_queue};
  rte_flow_action actions[] = {{RTE_FLOW_ACTION_TYPE_QUEUE, &to}, {RTE_FLOW_ACTION_TYPE_END, nullptr}};
  rte_flow_error err{};
  rte_flow* f = rte_flow_create(port_, &attr, pattern, actions, &err);
  const char* why = err.message ? err.message : "rte_flow_create failed";
  if (!steer_tried_) {
    // The first rule tells whether the driver takes them at all.
    steer_tried_ = true;
    steer_.store(f != nullptr, std::memory_order_relaxed);
    if (f) LOG_INFO("dpdk: {}: flow rules steer each endpoint to its queue", name_);
    else
      LOG_INFO("dpdk: {} ({}): no flow rules ({}); off-queue datagrams are handed over in software", name_,
               driver_, why);
  } else if (!f) {
    LOG_WARN("dpdk: {}: no flow rule for {} ({}); its off-queue datagrams are handed over in software", name_,
             NetAddr{in->ip, in->udp_port}.to_string(), why);
  }
  in->flow = f;
}

Inbox* DpdkPort::find_locked(uint32_t ip, uint16_t udp_port) const {
  for (Inbox* in : inboxes_)
    if (in->ip == ip && in->udp_port == udp_port) return in;
  return nullptr;
}

bool DpdkPort::owns_ip_locked(uint32_t ip) const {
  for (Inbox* in : inboxes_)
    if (in->ip == ip) return true;
  return false;
}

uint32_t DpdkPort::poll(Inbox* self, uint64_t now) {
  std::shared_lock lk(list_mu_);
  uint32_t n = 0;
  for (uint16_t q : self->serves) n += poll_queue(q, now);
  return n;
}

// With list_mu_ held shared.
uint32_t DpdkPort::poll_queue(uint16_t q, uint64_t now) {
  Queue& qu = q_[q];
  std::unique_lock lk(qu.rx_mu, std::try_to_lock);
  if (!lk.owns_lock()) return 0;  // another endpoint is receiving for us
  if (intr_toggle_) {
    uint64_t v;
    [[maybe_unused]] ssize_t r = read(qu.intr_fd, &v, sizeof v);  // clear the event counter
  }
  rte_mbuf* in[kRxBurst];
  uint16_t n = rte_eth_rx_burst(port_, q, in, kRxBurst);
  if (n > 0 && intr_toggle_) {
    // Busy: no interrupts while we poll (l3fwd-power); re-armed before any
    // endpoint sleeps.
    std::lock_guard il(qu.intr_mu);
    if (qu.intr_enabled) {
      rte_eth_dev_rx_intr_disable(port_, q);
      qu.intr_enabled = false;
    }
  }
  Inbox* woken[kRxBurst];
  uint32_t nwoken = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = in[i];
    // A driver may chain a frame over several buffers; the lane reads
    // datagrams from one contiguous buffer.
    if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
      unclaimed_.fetch_add(1, std::memory_order_relaxed);
      rte_pktmbuf_free(m);
      continue;
    }
    std::span<const uint8_t> f(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
    if (auto arp = parse_arp(f)) {
      on_arp(q, *arp, now);
      rte_pktmbuf_free(m);
      continue;
    }
    // A frame the port found damaged is dropped; one it vouches for (or
    // marks as not yet summed, from a local sender) is not summed again;
    // the rest are checked in software (parse_udp), except on af_packet.
    uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD ||
        (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
      unclaimed_.fetch_add(1, std::memory_order_relaxed);
      rte_pktmbuf_free(m);
      continue;
    }
    auto u = parse_udp(f, sw_rx_verify_ && l4 == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN);
    Inbox* box = u ? find_locked(u->dst_ip, u->dst_port) : nullptr;
    if (!box) {
      unclaimed_.fetch_add(1, std::memory_order_relaxed);
      rte_pktmbuf_free(m);
      continue;
    }
    if (box->home_queue != q) box->off_queue.fetch_add(1, std::memory_order_relaxed);
    if (on_subnet_of_any(u->src_ip)) {
      // A neighbour whose MAC changed is followed from its own traffic at
      // once; any traffic shows the entry is alive.
      Mac src;
      std::memcpy(src.data(), f.data() + 6, 6);
      std::lock_guard al(arp_mu_);
      auto known = arp_.lookup(u->src_ip, now);
      if (known && *known != src) {
        arp_.learn(u->src_ip, src, now);
        LOG_INFO("dpdk lane: {} moved to {}", NetAddr{u->src_ip, 0}.ip_string(), mac_string(src));
      } else {
        arp_.heard(u->src_ip, now);
      }
    }
    {
      std::lock_guard bl(box->mu);
      box->mbufs.push_back({m, NetAddr{u->src_ip, u->src_port}, u->payload.data(),
                            static_cast<uint32_t>(u->payload.size())});
    }
    bool seen = false;
    for (uint32_t k = 0; k < nwoken; ++k) seen |= woken[k] == box;
    if (!seen) woken[nwoken++] = box;
  }
  for (uint32_t k = 0; k < nwoken; ++k) {
    if (!interrupt_mode_ && !woken[k]->sleeping.load()) continue;  // its owner polls
    uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(woken[k]->event_fd, &one, sizeof one);
  }
  return n;
}

uint16_t DpdkPort::send(const Inbox* self, rte_mbuf** m, uint16_t n) {
  // home_queue is fixed from attach to detach, which the owner alone calls.
  return send_on(self->home_queue, m, n);
}

uint16_t DpdkPort::send_on(uint16_t q, rte_mbuf** m, uint16_t n) {
  uint16_t sent = 0;
  {
    std::lock_guard lk(q_[q].tx_mu);
    for (int tries = 0; sent < n && tries < 100; ++tries) sent += rte_eth_tx_burst(port_, q, m + sent, n - sent);
  }
  for (uint16_t i = sent; i < n; ++i) rte_pktmbuf_free(m[i]);
  return sent;
}

Status DpdkPort::arm(Inbox* self) {
  if (!intr_toggle_) return ok_status();
  std::shared_lock lk(list_mu_);
  for (uint16_t q : self->serves) {
    std::lock_guard il(q_[q].intr_mu);
    if (q_[q].intr_enabled) continue;
    if (int rc = rte_eth_dev_rx_intr_enable(port_, q); rc != 0)
      return dpdk_error("rte_eth_dev_rx_intr_enable " + std::to_string(q), rc);
    q_[q].intr_enabled = true;
  }
  return ok_status();
}

bool DpdkPort::on_subnet_of_any(uint32_t ip) const {
  for (const Inbox* in : inboxes_) {
    uint32_t mask = in->prefix_bits == 0 ? 0 : ~uint32_t{0} << (32 - in->prefix_bits);
    if ((ip & mask) == (in->ip & mask)) return true;
  }
  return false;
}

uint32_t DpdkPort::next_hop(uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw) const {
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (dst_ip & mask) == (src_ip & mask) || gw == 0 ? dst_ip : gw;
}

std::optional<Mac> DpdkPort::lookup(uint32_t ip, uint64_t now) {
  std::lock_guard al(arp_mu_);
  return arp_.lookup(ip, now);
}

std::optional<Mac> DpdkPort::next_hop_mac(const Inbox* self, uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw,
                                          uint64_t now) {
  uint32_t hop = next_hop(src_ip, dst_ip, bits, gw);
  std::optional<Mac> mac;
  bool refresh = false, ask = false, probe = false;
  {
    std::lock_guard al(arp_mu_);
    mac = arp_.lookup(hop, now);
    if (mac) {
      refresh = arp_.should_refresh(hop, now);
      probe = !refresh && arp_.should_probe_silent(hop, now);
    } else {
      ask = arp_.should_request(hop, now);
    }
  }
  if (refresh) send_arp(self->home_queue, 1, *mac, src_ip, {}, hop);  // unicast refresh
  if (ask || probe) send_arp(self->home_queue, 1, kBroadcastMac, src_ip, {}, hop);
  return mac;
}

void DpdkPort::request_if_due(const Inbox* self, uint32_t src_ip, uint32_t ip, uint64_t now) {
  bool ask;
  {
    std::lock_guard al(arp_mu_);
    ask = arp_.should_request(ip, now);
  }
  if (ask) send_arp(self->home_queue, 1, kBroadcastMac, src_ip, {}, ip);
}

void DpdkPort::on_arp(uint16_t q, const ArpPacket& a, uint64_t now) {
  // Called with list_mu_ held (the endpoint list is stable).
  bool ours_sender = owns_ip_locked(a.sender_ip);
  // Learn from any ARP that names a neighbour (requests too): a peer whose
  // MAC changed is followed at once.
  if (a.sender_ip != 0 && !ours_sender && on_subnet_of_any(a.sender_ip)) {
    bool changed;
    {
      std::lock_guard al(arp_mu_);
      changed = arp_.learn(a.sender_ip, a.sender_mac, now);
    }
    if (changed)
      LOG_INFO("dpdk lane: {} is at {}", NetAddr{a.sender_ip, 0}.ip_string(), mac_string(a.sender_mac));
  }
  if (a.op == 1 && owns_ip_locked(a.target_ip) && !ours_sender)
    send_arp(q, 2, a.sender_mac, a.target_ip, a.sender_mac, a.sender_ip);
}

// op 1: request for target_ip (eth to `eth_dst`); op 2: reply to target.
void DpdkPort::send_arp(uint16_t q, uint16_t op, const Mac& eth_dst, uint32_t src_ip, const Mac& target_mac,
                        uint32_t target_ip) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) return;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 60));  // minimum frame
  std::memset(p, 0, 60);
  build_arp(op, eth_dst, mac_, src_ip, target_mac, target_ip, p);
  send_on(q, &m, 1);
}

}  // namespace lanefs::transport::dpdk

// Control path of the shared DPDK port (EAL, probe, configure, teardown) and
// its receive dispatch and ARP; the endpoints' data path is in
// dpdk_transport.cc.
#include "transport/dpdk/dpdk_port.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <unistd.h>

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
  rte_eth_conf conf{};
  conf.intr_conf.rxq = interrupt_mode_ ? 1 : 0;
  // Checksum offload where the port has it; software otherwise.
  tx_ip_cksum_ = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
  tx_udp_cksum_ = tx_ip_cksum_ && (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
  if (tx_ip_cksum_) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
  if (tx_udp_cksum_) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
  if (int rc = rte_eth_dev_configure(port_, 1, 1, &conf); rc != 0) {
    if (interrupt_mode_)
      return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name_ +
                                                 " has no RX interrupts (" + rte_strerror(-rc) + ")");
    return dpdk_error("rte_eth_dev_configure", rc);
  }
  static std::atomic<unsigned> serial{0};
  std::string pool_name = "lanefs_" + std::to_string(port_) + "_" + std::to_string(serial++);
  pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), kPoolSize, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                  static_cast<int>(rte_socket_id()));
  if (!pool_) return dpdk_error("rte_pktmbuf_pool_create", rte_errno);
  int socket = rte_eth_dev_socket_id(port_);
  if (socket < 0) socket = 0;
  if (int rc = rte_eth_rx_queue_setup(port_, 0, kRing, socket, nullptr, pool_); rc != 0)
    return dpdk_error("rte_eth_rx_queue_setup", rc);
  rte_eth_txconf txc = info.default_txconf;
  txc.offloads = conf.txmode.offloads;
  if (int rc = rte_eth_tx_queue_setup(port_, 0, kRing, socket, &txc); rc != 0)
    return dpdk_error("rte_eth_tx_queue_setup", rc);
  if (int rc = rte_eth_dev_start(port_); rc != 0) return dpdk_error("rte_eth_dev_start", rc);
  started_ = true;
  rte_ether_addr mac;
  if (int rc = rte_eth_macaddr_get(port_, &mac); rc != 0) return dpdk_error("rte_eth_macaddr_get", rc);
  std::memcpy(mac_.data(), mac.addr_bytes, 6);
  rte_eth_dev_get_mtu(port_, &mtu_);
  if (interrupt_mode_) {
    intr_fd_ = rte_eth_dev_rx_intr_ctl_q_get_fd(port_, 0);
    if (intr_fd_ < 0)
      return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name_ +
                                                 " has no RX interrupts (no interrupt fd for queue 0)");
    // Some drivers (net_tap: the fd is the tap device itself) signal through
    // the fd alone and have no enable/disable: -ENOTSUP there.
    int rc = rte_eth_dev_rx_intr_enable(port_, 0);
    if (rc != 0 && rc != -ENOTSUP)
      return make_error(Errc::kNotSupported, "dpdk: driver " + driver_ + " of " + name_ +
                                                 " has no RX interrupts (rte_eth_dev_rx_intr_enable: " +
                                                 rte_strerror(-rc) + ")");
    intr_toggle_ = rc == 0;
    intr_enabled_ = intr_toggle_;
    // A toggling driver's fd is an event counter: it must be read to be
    // cleared, without blocking the loop.
    if (intr_toggle_) {
      int fl = fcntl(intr_fd_, F_GETFL);
      if (fl >= 0) fcntl(intr_fd_, F_SETFL, fl | O_NONBLOCK);
    }
  }
  LOG_INFO("dpdk port {} ({}, driver {}) mac {} mtu {} {} mode, tx checksum {}", port_, name_, driver_,
           mac_string(mac_), mtu_, interrupt_mode_ ? "rx-interrupt" : "polling",
           tx_udp_cksum_ ? "offloaded" : tx_ip_cksum_ ? "ip offloaded, udp software" : "software");
  return ok_status();
}

DpdkPort::~DpdkPort() {
  if (started_) rte_eth_dev_stop(port_);
  if (started_ || probed_) rte_eth_dev_close(port_);
  // A virtual device is removed too, so it can be created again by name.
  if (probed_ && spec_.rfind("net_", 0) == 0) rte_eal_hotplug_remove("vdev", name_.c_str());
  if (pool_) rte_mempool_free(pool_);
}

Status DpdkPort::attach(Inbox* in) {
  bool new_ip;
  {
    std::lock_guard lk(rx_mu_);
    if (find_locked(in->ip, in->udp_port))
      return make_error(Errc::kExists, "dpdk: " + NetAddr{in->ip, in->udp_port}.to_string() +
                                           " is already open on port " + name_);
    new_ip = !owns_ip_locked(in->ip);
    inboxes_.push_back(in);
  }
  // Announce the address (gratuitous ARP): neighbours update their tables.
  if (new_ip) send_arp(1, kBroadcastMac, in->ip, {}, in->ip);
  return ok_status();
}

void DpdkPort::detach(Inbox* in) {
  std::lock_guard lk(rx_mu_);
  std::erase(inboxes_, in);
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

uint32_t DpdkPort::poll(uint64_t now) {
  std::unique_lock lk(rx_mu_, std::try_to_lock);
  if (!lk.owns_lock()) return 0;  // another endpoint is receiving for us
  if (intr_toggle_) {
    uint64_t v;
    [[maybe_unused]] ssize_t r = read(intr_fd_, &v, sizeof v);  // clear the event counter
  }
  rte_mbuf* in[kRxBurst];
  uint16_t n = rte_eth_rx_burst(port_, 0, in, kRxBurst);
  if (n > 0 && intr_toggle_) {
    // Busy: no interrupts while we poll (l3fwd-power); re-armed before any
    // endpoint sleeps.
    std::lock_guard il(intr_mu_);
    if (intr_enabled_) {
      rte_eth_dev_rx_intr_disable(port_, 0);
      intr_enabled_ = false;
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
      on_arp(*arp, now);
      rte_pktmbuf_free(m);
      continue;
    }
    auto u = parse_udp(f);
    Inbox* box = u ? find_locked(u->dst_ip, u->dst_port) : nullptr;
    if (!box) {
      unclaimed_.fetch_add(1, std::memory_order_relaxed);
      rte_pktmbuf_free(m);
      continue;
    }
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
  for (uint32_t k = 0; interrupt_mode_ && k < nwoken; ++k) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(woken[k]->event_fd, &one, sizeof one);
  }
  return n;
}

uint16_t DpdkPort::send(rte_mbuf** m, uint16_t n) {
  uint16_t sent = 0;
  {
    std::lock_guard lk(tx_mu_);
    for (int tries = 0; sent < n && tries < 100; ++tries) sent += rte_eth_tx_burst(port_, 0, m + sent, n - sent);
  }
  for (uint16_t i = sent; i < n; ++i) rte_pktmbuf_free(m[i]);
  return sent;
}

Status DpdkPort::arm() {
  if (!intr_toggle_) return ok_status();
  std::lock_guard il(intr_mu_);
  if (intr_enabled_) return ok_status();
  if (int rc = rte_eth_dev_rx_intr_enable(port_, 0); rc != 0) return dpdk_error("rte_eth_dev_rx_intr_enable", rc);
  intr_enabled_ = true;
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

std::optional<Mac> DpdkPort::next_hop_mac(uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw,
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
  if (refresh) send_arp(1, *mac, src_ip, {}, hop);  // unicast refresh
  if (ask || probe) send_arp(1, kBroadcastMac, src_ip, {}, hop);
  return mac;
}

void DpdkPort::request_if_due(uint32_t src_ip, uint32_t ip, uint64_t now) {
  bool ask;
  {
    std::lock_guard al(arp_mu_);
    ask = arp_.should_request(ip, now);
  }
  if (ask) send_arp(1, kBroadcastMac, src_ip, {}, ip);
}

void DpdkPort::on_arp(const ArpPacket& a, uint64_t now) {
  // Called with rx_mu_ held (the endpoint list is stable).
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
    send_arp(2, a.sender_mac, a.target_ip, a.sender_mac, a.sender_ip);
}

// op 1: request for target_ip (eth to `eth_dst`); op 2: reply to target.
void DpdkPort::send_arp(uint16_t op, const Mac& eth_dst, uint32_t src_ip, const Mac& target_mac,
                        uint32_t target_ip) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) return;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 60));  // minimum frame
  std::memset(p, 0, 60);
  build_arp(op, eth_dst, mac_, src_ip, target_mac, target_ip, p);
  send(&m, 1);
}

}  // namespace lanefs::transport::dpdk

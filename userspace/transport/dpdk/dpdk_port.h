// Internal to transport/dpdk/: one DPDK port shared by every DPDK transport
// (endpoint) of this process that names the same device.
//
// A frontend serves every mount through one port, and a backend serves
// clients and calls its peers through one port; each of those is an
// endpoint (an IP address and UDP port) with its own Transport object and
// loop thread. The port owns what must exist once per device: EAL (once per
// process), the probed device, its mbuf pool, its RX/TX queue pairs, the
// private ARP table and the set of addresses it answers ARP for.
//
// Queues: the port is opened with DpdkConfig::queues pairs (a frontend's
// num_cores), fewer if the driver has fewer. Each endpoint gets a home pair
// (the one with fewest endpoints): it transmits there and polls its RX
// queue. Replies come back on that queue where the device steers them: an
// rte_flow rule per endpoint (destination IP and UDP port to the home
// queue) where the driver takes one; on net_tap the kernel sends a flow's
// packets to the queue the flow was last sent from. A queue whose
// endpoints are gone is polled by the endpoint serving fewest queues.
//
// Receive: an endpoint polls each queue it serves (try-lock, never waits),
// answers/learns ARP, and hands each UDP datagram to the endpoint it is
// addressed to (an inbox of mbufs plus an eventfd that wakes that
// endpoint's loop); frames that arrive on another endpoint's queue (no
// steering, or a new flow) still reach the right endpoint this way.
// Transmit: under the home queue's lock (uncontended unless endpoints share
// a pair).
// RX interrupts (interrupt mode): a queue's interrupt is enabled while an
// endpoint serving it is about to sleep (arm) and disabled while it is
// busy; every endpoint sleeps on an epoll set holding the interrupt fds of
// the queues it serves (kept by the port) and its own eventfd.
//
// Thread-safety: every public method is thread-safe unless stated.
// Lifetime: endpoints hold a shared_ptr; the last one out stops and closes
// the port and removes a virtual device, so the same device can be opened
// again in the same process.
#pragma once

#include <rte_mbuf.h>

#include <atomic>
#include <shared_mutex>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transport/dpdk/frames.h"
#include "transport/transport.h"

namespace lanefs::transport::dpdk {

// One datagram handed to an endpoint: its mbuf (owned until freed by the
// endpoint) and what the port's parse found, so it is parsed once.
struct Delivered {
  rte_mbuf* mbuf = nullptr;
  NetAddr src;
  const uint8_t* payload = nullptr;  // into mbuf
  uint32_t len = 0;
};

// Where the port delivers one endpoint's datagrams. Owned by the endpoint;
// registered with the port for the endpoint's lifetime.
struct Inbox {
  uint32_t ip = 0;        // host order
  uint16_t udp_port = 0;  // host order
  uint8_t prefix_bits = 24;
  int event_fd = -1;      // written when mbufs are added (interrupt mode, or `sleeping`)
  // Polling mode: the owner sleeps on event_fd (another thread polls the
  // port for it); set before it sleeps, cleared when it receives again.
  std::atomic<bool> sleeping{false};
  int epoll_fd = -1;      // interrupt mode: the port keeps its queues' fds in it
  std::mutex mu;
  std::vector<Delivered> mbufs;  // guarded by mu; validated UDP datagrams for (ip, udp_port)
  // Set by the port while attached (under its endpoint lock): the home
  // queue pair, and every RX queue this endpoint polls (home first).
  uint16_t home_queue = 0;
  std::vector<uint16_t> serves;
  void* flow = nullptr;  // the rte_flow steering to the home queue, if any
  // Datagrams for this endpoint that arrived on a queue other than its home.
  std::atomic<uint64_t> off_queue{0};
};

class DpdkPort {
 public:
  // The port for cfg.port: opened on first use (EAL once, the device probed,
  // configured and started), shared afterwards. Fails with kInvalid when the
  // port is already open in the other mode (polling vs interrupts), and with
  // kNotSupported when interrupts are asked and the driver has none.
  static Result<std::shared_ptr<DpdkPort>> acquire(const DpdkConfig& cfg);
  ~DpdkPort();

  DpdkPort(const DpdkPort&) = delete;
  DpdkPort& operator=(const DpdkPort&) = delete;

  // Registers an inbox: datagrams to (ip, udp_port) go there; ARP requests
  // for ip are answered. Picks its home queue pair (and, in interrupt mode,
  // adds the queues it serves to inbox->epoll_fd, which must be open).
  // kExists when the pair is taken. Sends a gratuitous ARP for an address
  // new to the port.
  Status attach(Inbox* inbox);
  // Unregisters; its queues pass to the other endpoints. The inbox's mbufs
  // stay with its owner to free.
  void detach(Inbox* inbox);

  // Polls each RX queue `self` serves once, skipping one another thread is
  // polling; dispatches what it got. Returns frames taken off the queues.
  uint32_t poll(Inbox* self, uint64_t now_ns);
  // Sends n frames on `self`'s home queue (taking ownership); frees and
  // counts the ones the ring would not take. Returns frames sent.
  uint16_t send(const Inbox* self, rte_mbuf** m, uint16_t n);
  rte_mbuf* alloc() { return rte_pktmbuf_alloc(pool_); }

  // ARP: the next-hop MAC for ip as seen from endpoint `self` (address
  // src_ip, prefix `bits`, gateway `gw`); sends requests and refreshes on
  // its home queue as needed. nullopt while unresolved.
  std::optional<Mac> next_hop_mac(const Inbox* self, uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw,
                                  uint64_t now_ns);
  uint32_t next_hop(uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw) const;
  std::optional<Mac> lookup(uint32_t ip, uint64_t now_ns);
  void request_if_due(const Inbox* self, uint32_t src_ip, uint32_t ip, uint64_t now_ns);

  // Interrupt mode only: enable the interrupts of the queues `self` serves
  // before it sleeps.
  Status arm(Inbox* self);
  bool interrupt_mode() const { return interrupt_mode_; }
  // RX/TX queue pairs the port was opened with; whether rte_flow rules
  // steer endpoints' datagrams to their home queues.
  uint16_t queues() const { return nq_; }
  bool steered() const { return steer_.load(std::memory_order_relaxed); }

  const Mac& mac() const { return mac_; }
  uint16_t mtu() const { return mtu_; }
  const std::string& name() const { return name_; }
  const std::string& driver() const { return driver_; }
  // TX checksum offload the port does (IPv4 header, UDP): else software.
  bool tx_ipv4_cksum_offload() const { return tx_ip_cksum_; }
  bool tx_udp_cksum_offload() const { return tx_udp_cksum_; }
  // Frames dropped on receive: damaged (IPv4 or UDP checksum, lengths) or
  // for no registered endpoint.
  uint64_t unclaimed() const { return unclaimed_.load(std::memory_order_relaxed); }

 private:
  DpdkPort() = default;
  Status open(const DpdkConfig& cfg);
  struct Queue {
    std::mutex rx_mu;  // the RX queue (try-lock)
    std::mutex tx_mu;  // the TX queue
    std::mutex intr_mu;
    bool intr_enabled = false;  // guarded by intr_mu
    int intr_fd = -1;           // interrupt mode: the queue's epoll-able fd
    uint32_t homes = 0;         // endpoints whose home it is (under list_mu_)
  };
  uint32_t poll_queue(uint16_t q, uint64_t now_ns);
  uint16_t send_on(uint16_t q, rte_mbuf** m, uint16_t n);
  void on_arp(uint16_t q, const ArpPacket& a, uint64_t now_ns);
  void send_arp(uint16_t q, uint16_t op, const Mac& eth_dst, uint32_t src_ip, const Mac& target_mac,
                uint32_t target_ip);
  bool on_subnet_of_any(uint32_t ip) const;
  Inbox* find_locked(uint32_t ip, uint16_t udp_port) const;
  bool owns_ip_locked(uint32_t ip) const;
  void steer_locked(Inbox* in);
  void spread_queues_locked();

  std::string spec_, name_, driver_;
  uint16_t port_ = 0;
  bool probed_ = false, started_ = false;
  rte_mempool* pool_ = nullptr;
  Mac mac_{};
  uint16_t mtu_ = 1500;
  bool interrupt_mode_ = false;
  bool intr_toggle_ = false;  // the driver has rx_intr_enable/disable
  bool tx_ip_cksum_ = false, tx_udp_cksum_ = false;
  bool sw_rx_verify_ = true;  // UDP checksums the port did not check are checked in software
  uint16_t nq_ = 1;
  std::unique_ptr<Queue[]> q_;
  std::atomic<bool> steer_{false};
  bool steer_tried_ = false;  // under list_mu_

  // The endpoint list and every Inbox's home_queue/serves/flow: shared to
  // dispatch, exclusive to attach and detach.
  mutable std::shared_mutex list_mu_;
  std::vector<Inbox*> inboxes_;
  std::mutex arp_mu_;  // arp_
  ArpTable arp_;
  std::atomic<uint64_t> unclaimed_{0};
};

}  // namespace lanefs::transport::dpdk

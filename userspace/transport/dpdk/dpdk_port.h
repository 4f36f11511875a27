// Internal to transport/dpdk/: one DPDK port shared by every DPDK transport
// (endpoint) of this process that names the same device.
//
// A frontend serves every mount through one port, and a backend serves
// clients and calls its peers through one port; each of those is an
// endpoint (an IP address and UDP port) with its own Transport object and
// loop thread. The port owns what must exist once per device: EAL (once per
// process), the probed device, its mbuf pool, its single RX/TX queue pair,
// the private ARP table and the set of addresses it answers ARP for.
//
// Receive: whichever endpoint polls takes the RX queue (try-lock, never
// waits), answers/learns ARP, and hands each UDP datagram to the endpoint it
// is addressed to (an inbox of mbufs plus an eventfd that wakes that
// endpoint's loop). Transmit: under a short lock, on the same queue.
// RX interrupts (interrupt mode): the queue's interrupt is enabled while some
// endpoint is about to sleep (arm) and disabled while endpoints are busy
// receiving; every endpoint sleeps on an epoll set holding the queue's
// interrupt fd and its own eventfd.
//
// Thread-safety: every public method is thread-safe unless stated.
// Lifetime: endpoints hold a shared_ptr; the last one out stops and closes
// the port and removes a virtual device, so the same device can be opened
// again in the same process.
#pragma once

#include <rte_mbuf.h>

#include <atomic>
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
  int event_fd = -1;      // written when mbufs are added (interrupt mode)
  std::mutex mu;
  std::vector<Delivered> mbufs;  // guarded by mu; validated UDP datagrams for (ip, udp_port)
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
  // for ip are answered. kExists when the pair is taken. Sends a gratuitous
  // ARP for an address new to the port.
  Status attach(Inbox* inbox);
  // Unregisters; the inbox's mbufs stay with its owner to free.
  void detach(Inbox* inbox);

  // Polls the RX queue once if no other thread is (returns at once
  // otherwise); dispatches what it got. Returns frames taken off the queue.
  uint32_t poll(uint64_t now_ns);
  // Sends n frames (taking ownership); frees and counts the ones the ring
  // would not take. Returns frames sent.
  uint16_t send(rte_mbuf** m, uint16_t n);
  rte_mbuf* alloc() { return rte_pktmbuf_alloc(pool_); }

  // ARP: the next-hop MAC for ip as seen from an endpoint on `subnet_of`
  // with prefix `bits` and gateway `gw`; sends requests and refreshes as
  // needed. nullopt while unresolved.
  std::optional<Mac> next_hop_mac(uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw,
                                  uint64_t now_ns);
  uint32_t next_hop(uint32_t src_ip, uint32_t dst_ip, uint8_t bits, uint32_t gw) const;
  std::optional<Mac> lookup(uint32_t ip, uint64_t now_ns);
  void request_if_due(uint32_t src_ip, uint32_t ip, uint64_t now_ns);

  // Interrupt mode only: enable the queue's interrupt before an endpoint
  // sleeps. The epoll-able fd of the queue (-1 in polling mode).
  Status arm();
  int interrupt_fd() const { return intr_fd_; }
  bool interrupt_mode() const { return interrupt_mode_; }

  const Mac& mac() const { return mac_; }
  uint16_t mtu() const { return mtu_; }
  const std::string& name() const { return name_; }
  const std::string& driver() const { return driver_; }
  // TX checksum offload the port does (IPv4 header, UDP): else software.
  bool tx_ipv4_cksum_offload() const { return tx_ip_cksum_; }
  bool tx_udp_cksum_offload() const { return tx_udp_cksum_; }
  // Frames received for no registered endpoint (dropped).
  uint64_t unclaimed() const { return unclaimed_.load(std::memory_order_relaxed); }

 private:
  DpdkPort() = default;
  Status open(const DpdkConfig& cfg);
  void on_arp(const ArpPacket& a, uint64_t now_ns);
  void send_arp(uint16_t op, const Mac& eth_dst, uint32_t src_ip, const Mac& target_mac,
                uint32_t target_ip);
  bool on_subnet_of_any(uint32_t ip) const;
  Inbox* find_locked(uint32_t ip, uint16_t udp_port) const;
  bool owns_ip_locked(uint32_t ip) const;

  std::string spec_, name_, driver_;
  uint16_t port_ = 0;
  bool probed_ = false, started_ = false;
  rte_mempool* pool_ = nullptr;
  Mac mac_{};
  uint16_t mtu_ = 1500;
  bool interrupt_mode_ = false;
  int intr_fd_ = -1;
  bool intr_toggle_ = false;  // the driver has rx_intr_enable/disable
  bool tx_ip_cksum_ = false, tx_udp_cksum_ = false;

  std::mutex rx_mu_;  // the RX queue and the endpoint list
  std::vector<Inbox*> inboxes_;
  std::mutex tx_mu_;   // the TX queue
  std::mutex arp_mu_;  // arp_
  ArpTable arp_;
  std::mutex intr_mu_;
  bool intr_enabled_ = false;
  std::atomic<uint64_t> unclaimed_{0};
};

}  // namespace lanefs::transport::dpdk

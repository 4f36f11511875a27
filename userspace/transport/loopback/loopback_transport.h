// The in-process loopback lane: transports attached to one LoopbackHub
// exchange datagrams by copying them into each other's receive queues. Used
// by tests (many endpoints in one process, deterministic delivery) and by
// single-process demos.
//
// Semantics follow the UDP lane: datagrams up to max_datagram() bytes, no
// reliability; an unknown destination, a full destination queue or an
// oversized datagram is dropped and counted in the *sender's* tx_dropped; a
// datagram larger than the receiver's max_datagram() is dropped and counted
// in the receiver's rx_truncated. Delivery between two endpoints is in order.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

#include "transport/transport.h"

namespace lanefs::transport {

class LoopbackPort;  // one endpoint's receive queue (loopback_transport.cc)

// The in-process network. Shared by its transports (they keep it alive).
// Thread-safe: transports on different threads may send concurrently.
class LoopbackHub {
 public:
  // Datagrams a receive queue holds before further ones are dropped.
  static constexpr size_t kDefaultQueueLimit = 64 * 1024;
  // First port handed out for "port 0" binds (the Linux ephemeral range).
  static constexpr uint16_t kFirstEphemeralPort = 32768;

  explicit LoopbackHub(size_t queue_limit = kDefaultQueueLimit) : queue_limit_(queue_limit) {}
  LoopbackHub(const LoopbackHub&) = delete;
  LoopbackHub& operator=(const LoopbackHub&) = delete;

  size_t queue_limit() const { return queue_limit_; }
  // Number of attached transports.
  size_t endpoints() const;

 private:
  friend class LoopbackTransport;
  // Claims `want` (port 0: a free port on want.ip) for `port`.
  // kExists when the address is taken, kBusy when no port is free.
  Result<NetAddr> attach(NetAddr want, LoopbackPort* port);
  void detach(NetAddr addr);

  const size_t queue_limit_;
  mutable std::mutex mu_;  // guards ports_; held while copying into a port
  std::map<NetAddr, LoopbackPort*> ports_;
  uint16_t next_port_ = kFirstEphemeralPort;
};

class LoopbackTransport final : public Transport {
 public:
  // Default datagram size: the same as the UDP lane so the RPC layer behaves
  // the same over both.
  static constexpr uint32_t kDefaultDatagram = 1472;
  static constexpr uint32_t kMaxDatagram = 65507;

  // Attaches to config.hub at config.bind (ip 0 becomes 127.0.0.1, port 0 a
  // free port). kInvalid without a hub, kExists when the address is taken,
  // a system error when the eventfd cannot be created.
  static Result<std::unique_ptr<LoopbackTransport>> create(const TransportConfig& config);
  // Detaches from the hub: later datagrams to this address are dropped.
  ~LoopbackTransport() override;
  LoopbackTransport(const LoopbackTransport&) = delete;
  LoopbackTransport& operator=(const LoopbackTransport&) = delete;

  TransportKind kind() const noexcept override { return TransportKind::kLoopback; }
  NetAddr local_addr() const noexcept override { return local_; }
  uint32_t max_datagram() const noexcept override { return max_datagram_; }
  // Always takes every datagram (delivered or dropped-and-counted).
  Result<size_t> tx_burst(std::span<const TxDatagram> pkts) override;
  Result<size_t> rx_burst(std::span<RxDatagram> out) override;
  // An eventfd that is readable exactly while the receive queue is non-empty.
  int notify_fd() const noexcept override;
  // The eventfd is level-triggered by construction: nothing to re-arm.
  Status arm_notify() override { return ok_status(); }
  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override;
  const TransportStats& stats() const noexcept override { return stats_; }

 private:
  LoopbackTransport() = default;

  std::shared_ptr<LoopbackHub> hub_;
  std::unique_ptr<LoopbackPort> port_;
  NetAddr local_;
  uint32_t max_datagram_ = kDefaultDatagram;
  bool attached_ = false;
  TransportStats stats_;
};

}  // namespace lanefs::transport

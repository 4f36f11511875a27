// MultiHomedTransport: several transports of one kind, one per local
// address (HA legs: one per NIC), behind the one Transport interface.
//
// tx_burst() sends each datagram through the leg whose address its `src`
// names (the primary, legs[0], when src is 0 or unknown); rx_burst() takes
// from every leg in turn and fills each datagram's `dst` with the leg it
// arrived on. notify_fd() is an epoll set of the legs' fds; arm_notify()
// arms every leg. Stats are the legs' sums (gso_active / gro_active: on
// every leg).
//
// Ownership: owns its legs. Threading: one owning thread, as every
// Transport. Blocking: never.
#pragma once

#include <memory>
#include <vector>

#include "transport/transport.h"

namespace lanefs::transport {

class MultiHomedTransport final : public Transport {
 public:
  // legs must not be empty; kInvalid otherwise. Errors from epoll name the call.
  static Result<std::unique_ptr<Transport>> create(std::vector<std::unique_ptr<Transport>> legs);
  ~MultiHomedTransport() override;

  TransportKind kind() const noexcept override { return legs_[0]->kind(); }
  NetAddr local_addr() const noexcept override { return legs_[0]->local_addr(); }
  std::vector<NetAddr> local_addrs() const override;
  // The smallest of the legs' (a datagram must fit whichever leg it takes).
  uint32_t max_datagram() const noexcept override { return max_dgram_; }
  Result<size_t> tx_burst(std::span<const TxDatagram> pkts) override;
  Result<size_t> rx_burst(std::span<RxDatagram> out) override;
  int notify_fd() const noexcept override { return epoll_fd_; }
  Status arm_notify() override;
  bool has_pending() const noexcept override;
  bool busy_polls() const noexcept override { return legs_[0]->busy_polls(); }
  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override {
    return legs_[0]->register_memory(addr, len);
  }
  const TransportStats& stats() const noexcept override;

 private:
  MultiHomedTransport() = default;
  size_t leg_for(NetAddr src) const;

  std::vector<std::unique_ptr<Transport>> legs_;
  int epoll_fd_ = -1;
  uint32_t max_dgram_ = 0;
  size_t next_rx_ = 0;
  std::vector<TxDatagram> scratch_;
  mutable TransportStats sum_;
};

}  // namespace lanefs::transport

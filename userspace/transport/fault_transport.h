// Fault injection as a Transport decorator: wraps any transport and applies a
// FaultConfig to the datagrams it sends (drop, duplicate, corrupt, delay,
// reorder). Used by tests and `lanefsd --fault`; with no faults configured
// and nothing held it forwards every call unchanged.
//
// Rules, per datagram sent (decisions drawn from a PRNG seeded by
// FaultConfig::seed, so a run is reproducible):
//   drop       discarded; fault_dropped.
//   corrupt    a copy with one byte changed is sent instead (same length);
//              the byte may lie in any part (head, body, body2); empty
//              datagrams are left alone. fault_corrupted.
//   duplicate  sent twice back to back. fault_duplicated.
//   delay      held for delay_us, then sent by the first tx_burst() or
//              rx_burst() after that time. fault_delayed.
//   reorder    held until the next datagram has been sent, then sent right
//              after it; at most one datagram is held this way at a time, and
//              it is sent after delay_us even if no other datagram follows,
//              so nothing stays stuck. fault_reordered.
// A held datagram is the layer's own copy of every part (head, body, body2),
// so callers may reuse their buffers once tx_burst() returns.
// has_pending() is true while anything is held: the owner must keep calling
// rx_burst() (or tx_burst()) to let held datagrams out.
//
// While faults are on (or datagrams are held) tx_burst() takes every
// datagram; any the inner transport refuses because its ring stays full are
// dropped and counted in tx_dropped rather than handed back.
//
// Ownership: owns the inner transport. Threading: one owning thread, like
// every Transport; set_faults() must be called from that thread too.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "transport/transport.h"

namespace lanefs::transport {

class FaultTransport final : public Transport {
 public:
  FaultTransport(std::unique_ptr<Transport> inner, const FaultConfig& faults);

  // Replaces the fault settings and reseeds the PRNG from faults.seed.
  // Datagrams already held are still released on their schedule.
  void set_faults(const FaultConfig& faults);
  const FaultConfig& faults() const { return faults_; }
  Transport& inner() { return *inner_; }

  TransportKind kind() const noexcept override { return inner_->kind(); }
  NetAddr local_addr() const noexcept override { return inner_->local_addr(); }
  std::vector<NetAddr> local_addrs() const override { return inner_->local_addrs(); }
  uint32_t max_datagram() const noexcept override { return inner_->max_datagram(); }
  Result<size_t> tx_burst(std::span<const TxDatagram> pkts) override;
  // Releases due held datagrams, then receives from the inner transport.
  Result<size_t> rx_burst(std::span<RxDatagram> out) override;
  int notify_fd() const noexcept override { return inner_->notify_fd(); }
  Status arm_notify() override { return inner_->arm_notify(); }
  bool has_pending() const noexcept override { return !held_.empty() || inner_->has_pending(); }
  bool busy_polls() const noexcept override { return inner_->busy_polls(); }
  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override {
    return inner_->register_memory(addr, len);
  }
  // The inner transport's counters plus the fault_* counters.
  const TransportStats& stats() const noexcept override;

 private:
  struct Held {
    NetAddr dst;
    uint64_t due_ns = 0;
    bool after_next = false;  // reorder: goes out after the next sent datagram
    std::vector<uint8_t> data;
    NetAddr src;  // the leg to send from (multi-homed transports), as given
  };

  uint64_t next_random();
  bool roll(double pct);
  std::vector<uint8_t> take_buffer();
  std::vector<uint8_t> copy_of(const TxDatagram& d);
  // Queues held datagrams that are due (or, with after_next, all reorder holds).
  void release_held(uint64_t now_ns, bool after_next);
  // Sends out_, recycles the buffers it pointed into.
  Status flush();

  std::unique_ptr<Transport> inner_;
  FaultConfig faults_;
  uint64_t rng_ = 0;
  std::vector<Held> held_;
  // Scratch reused across calls so steady state allocates nothing.
  std::vector<TxDatagram> out_;
  std::vector<std::vector<uint8_t>> in_flight_;  // buffers out_ points into
  std::vector<std::vector<uint8_t>> spare_;
  uint64_t refused_ = 0;  // datagrams the inner transport did not take
  TransportStats faults_stats_;
  mutable TransportStats merged_;
};

}  // namespace lanefs::transport

// Internal to rpc/: the event-loop plumbing shared by RpcClient and RpcServer
// — transport ownership, cross-thread wake-up (eventfd), batched transmit of
// protocol packets, receive with header validation and drop counters.
// Everything here runs on the owning loop thread except wake().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "proto/wire.h"
#include "rpc/rpc.h"
#include "transport/fault_transport.h"

namespace lanefs::rpc {

class LoopCore {
 public:
  static Result<std::unique_ptr<LoopCore>> create(const transport::TransportConfig& cfg,
                                                  RpcCounters* counters);
  ~LoopCore();

  transport::Transport& transport() { return *transport_; }
  transport::FaultTransport& faults() { return *transport_; }
  // Payload bytes per packet: max_datagram - header.
  uint32_t payload_per_packet() const { return payload_per_packet_; }

  // Queues one packet; `body` must stay valid until flush(). Flushes when the
  // batch is full. `src`: the local address (leg) to send from; 0 = primary.
  void send(NetAddr dst, const proto::PacketHeader& h, std::span<const uint8_t> body = {},
            NetAddr src = {});
  void flush();

  // Receives a burst and calls on_packet(src, dst, header, payload,
  // bad_version) for each valid packet (dst: the local address it arrived
  // on, 0 on single-address transports); invalid ones are counted and
  // dropped. Returns packets seen.
  template <class F>
  size_t receive(F&& on_packet);

  // Sleeps until the transport or wake() signals, or timeout_ns passes.
  void wait(uint64_t timeout_ns);
  // Thread-safe: interrupts wait().
  void wake();

 private:
  LoopCore() = default;
  size_t rx_raw();
  std::unique_ptr<transport::FaultTransport> transport_;
  RpcCounters* counters_ = nullptr;
  uint32_t payload_per_packet_ = 0;
  int wake_fd_ = -1;
  static constexpr size_t kBatch = 64;
  std::vector<transport::TxDatagram> tx_;
  std::vector<std::array<uint8_t, proto::kHeaderSize>> tx_hdrs_;
  std::vector<transport::RxDatagram> rx_;
  size_t rx_count_ = 0;
};

template <class F>
size_t LoopCore::receive(F&& on_packet) {
  size_t n = rx_raw();
  for (size_t i = 0; i < n; ++i) {
    const auto& d = rx_[i];
    proto::PacketHeader h;
    std::span<const uint8_t> payload;
    auto err = proto::decode_packet({d.data, d.len}, &h, &payload);
    if (err != proto::DecodeError::kOk) {
      counters_->rx_invalid[static_cast<int>(err)].fetch_add(1, std::memory_order_relaxed);
      if (err == proto::DecodeError::kBadVersion) on_packet(d.src, d.dst, h, std::span<const uint8_t>{}, true);
      continue;
    }
    counters_->rx_packets.fetch_add(1, std::memory_order_relaxed);
    on_packet(d.src, d.dst, h, payload, false);
  }
  return n;
}

RpcStatsSnapshot snapshot_counters(const RpcCounters& c);

// Pins thread t to `cpu` (no-op for -1); kInvalid naming the CPU and the
// CPUs this process may use when that fails.
Status pin_thread(std::thread& t, int cpu);

// Number of packets a message of `len` bytes needs (at least one).
inline uint32_t packets_for(size_t len, uint32_t per_packet) {
  return len == 0 ? 1 : static_cast<uint32_t>((len + per_packet - 1) / per_packet);
}

}  // namespace lanefs::rpc

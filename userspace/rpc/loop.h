// Internal to rpc/: the plumbing shared by client endpoints and server
// loops — transport ownership, batched transmit of protocol packets,
// receive with header validation and drop counters, sleeping on the
// transport (and optionally one more fd) with a cross-thread wake-up.
// Everything here runs on the thread that currently owns the LoopCore
// except wake().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "proto/packet_mac.h"
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

  // Queues one packet whose payload is a ++ b, both sent in place (the
  // transport gathers header, a and b). Both must stay valid until flush().
  // Flushes when the batch is full. `single`: the peer reads raw frames
  // (transport::TxDatagram::single).
  // `src`: the local address (leg) to send from; 0 = primary.
  // `mac`: the session's: the packet carries a MAC under its key (h.seq
  // set by the caller) instead of a CRC.
  void send(NetAddr dst, const proto::PacketHeader& h, std::span<const uint8_t> a = {},
            std::span<const uint8_t> b = {}, NetAddr src = {}, bool single = false,
            proto::SessionMac* mac = nullptr);
  void flush();
  bool pending_tx() const { return !tx_.empty(); }
  // Packets handed to the transport so far (flushed; a caller compares two
  // readings to learn whether it sent anything in between).
  uint64_t sent() const { return sent_; }
  // Keyed packets leave once this many payload bytes are queued, so the
  // peer checks their MACs while the next ones are sealed (pipelining the
  // MAC at both ends; a large request or response otherwise waits to be
  // sealed whole before its first packet leaves). bench/auth_ab.sh, 1 MiB
  // at 1 in flight on loopback (one ~64 KiB datagram each time): writes
  // 0.85x -> 0.98-1.03x and reads 0.84x -> 1.03x of the unkeyed run. On
  // 1472-byte datagrams: a send call per ~22 packets instead of per 64.
  static constexpr size_t kPipelineBytes = 32 << 10;
  void flush_at(size_t bytes) {
    if (tx_bytes_ >= bytes) flush();
  }

  // Whether a received packet of a keyed session carries a MAC under its
  // key and a sequence number `window` has not seen (then recorded); a packet
  // that fails is counted (rx_invalid bad_mac / replayed) and must be
  // dropped unread.
  bool authentic(proto::SessionMac& mac, proto::ReplayWindow& window, const proto::PacketHeader& h,
                 std::span<const uint8_t> payload);
  // A keyed packet reaching a session without a key, or the reverse.
  void count_bad_mac() { counters_->rx_invalid[int(proto::DecodeError::kBadMac)].fetch_add(1, std::memory_order_relaxed); }

  // Receives a burst and calls on_packet(src, dst, header, payload,
  // bad_version) for each valid packet (dst: the local address it arrived
  // on, 0 on single-address transports); invalid ones are counted and
  // dropped. Payloads stay valid until the next receive(). Returns packets seen.
  template <class F>
  size_t receive(F&& on_packet);

  // Sleeps until the transport, `extra_fd` (>= 0) or wake() signals, or
  // timeout_ns passes. On a busy-polling transport it only yields the CPU.
  void wait(uint64_t timeout_ns, int extra_fd = -1);
  // Sleeps on the transport's notify fd even on a busy-polling transport
  // (whose datagrams another thread polls and hands over: a DPDK endpoint
  // while its port's dedicated core polls).
  void sleep(uint64_t timeout_ns);
  // Thread-safe: interrupts wait().
  void wake();
  // For an outside event loop that sleeps for this core: re-arms the
  // transport's wake-up, shortens *timeout_ns as wait() would, and returns
  // the fds to poll (transport, wake-up). Call drain_wake() when the
  // second one fired.
  std::array<int, 2> arm(uint64_t* timeout_ns);
  void drain_wake();
  bool busy_polls() const { return transport_->busy_polls(); }
  // True when this side parses raw frames itself (DPDK): peers must send it
  // plain datagrams, never coalesced ones (announced at connect).
  bool reads_raw_frames() const;

 private:
  LoopCore() = default;
  size_t rx_raw();
  std::unique_ptr<transport::FaultTransport> transport_;
  RpcCounters* counters_ = nullptr;
  uint32_t payload_per_packet_ = 0;
  int wake_fd_ = -1;
  static constexpr size_t kBatch = 64;
  size_t tx_bytes_ = 0;  // payload bytes in tx_
  uint64_t sent_ = 0;
  std::vector<transport::TxDatagram> tx_;
  std::vector<std::array<uint8_t, proto::kHeaderSize>> tx_hdrs_;
  std::vector<transport::RxDatagram> rx_;
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
// CPUs this process may run on.
uint32_t usable_cpus();

// Number of packets a message of `len` bytes needs (at least one).
inline uint32_t packets_for(size_t len, uint32_t per_packet) {
  return len == 0 ? 1 : static_cast<uint32_t>((len + per_packet - 1) / per_packet);
}

// The bytes [off, off+n) of the message a ++ b, as at most two spans (the
// part in a, the part in b).
struct MsgSlice {
  std::span<const uint8_t> a, b;
};
inline MsgSlice slice_of(std::span<const uint8_t> a, std::span<const uint8_t> b, size_t off, size_t n) {
  MsgSlice s;
  if (off < a.size()) {
    size_t k = std::min(n, a.size() - off);
    s.a = a.subspan(off, k);
    n -= k;
    off = a.size();
  }
  if (n > 0) s.b = b.subspan(off - a.size(), std::min(n, b.size() - std::min(b.size(), off - a.size())));
  return s;
}

}  // namespace lanefs::rpc

// The kernel UDP lane ("UDP mode"): one non-blocking AF_INET datagram socket,
// batched with sendmmsg/recvmmsg and the kernel's UDP offloads.
//
// Ownership: owns its socket and its receive buffers. Threading: as every
// Transport, driven by one thread only. Blocking: never (MSG_DONTWAIT).
//
// Limits: datagrams larger than max_datagram() are dropped at send time and
// counted in tx_dropped (every lane behaves the same, so the RPC layer cannot
// come to depend on the kernel accepting bigger ones); received datagrams
// larger than max_datagram() are dropped and counted in rx_truncated.
//
// Send (udp_transport_datapath.cc): one sendmmsg per batch; inside it, a run
// of datagrams that qualifies for GSO (TransportConfig::gso) is one message
// with a UDP_SEGMENT control message, every other datagram a message of its
// own, all in input order. If the kernel refuses a GSO message for good
// (EIO, EINVAL) the socket stops using GSO, resends those datagrams plainly,
// logs once and counts a gso_fallback; EMSGSIZE (a route with a smaller MTU
// than the segment) resends plainly and keeps GSO for smaller segments only.
//
// Receive: one recvmmsg of up to rx_batch messages. With GRO a message may
// hold several datagrams (UDP_GRO control message: the segment size); they
// are returned as separate RxDatagrams. When `out` is too small for all of
// them the rest stay in the receive buffers and the next rx_burst() returns
// them before receiving anything new; has_pending() is true meanwhile (the
// socket need not be readable then). Every datagram returned stays valid
// until the next rx_burst(), as the seam requires: buffers are only reused
// by a later recvmmsg, which happens only once everything was handed out.
//
// Reuseport groups (TransportConfig::reuseport_group): SO_REUSEPORT before
// bind; member 0 attaches a classic BPF program that returns
// (payload byte kSteerOffset) % group, so the kernel picks the socket by
// session id (udp_transport.cc says why the offset is the UDP payload's).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <memory>
#include <vector>

#include "transport/transport.h"

namespace lanefs::transport {

class UdpTransport final : public Transport {
 public:
  // Messages per sendmmsg call, and the default receive batch.
  static constexpr size_t kBatch = 64;
  // iovecs one sendmmsg may use (three per datagram at most).
  static constexpr size_t kTxIov = 1024;
  // Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP).
  static constexpr uint32_t kMaxUdpPayload = 65507;
  // Default datagram size: fits a 1500-byte Ethernet MTU.
  static constexpr uint32_t kDefaultDatagram = 1472;
  // Segments one GSO send may carry: the kernel's UDP_MAX_SEGMENTS, 64
  // until "net: change maximum number of UDP segments to 128" (6.9, April
  // 2024, also in stable kernels); 64 works on every kernel.
  static constexpr uint32_t kMaxGsoSegments = 64;
  // A receive slot when GRO is on: the largest message the kernel can
  // coalesce (one IPv4 packet, 65507 payload bytes) plus one spare byte.
  static constexpr uint32_t kGroSlot = 64 * 1024;

  // Opens and binds the socket per config.bind / mtu / socket_buffer / gso /
  // gro / rx_batch / reuseport_*. Errors name the failing call
  // ("bind 127.0.0.1:14000: Address in use").
  static Result<std::unique_ptr<UdpTransport>> create(const TransportConfig& config);
  ~UdpTransport() override;
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;

  TransportKind kind() const noexcept override { return TransportKind::kUdp; }
  NetAddr local_addr() const noexcept override { return local_; }
  uint32_t max_datagram() const noexcept override { return max_datagram_; }
  Result<size_t> tx_burst(std::span<const TxDatagram> pkts) override;
  Result<size_t> rx_burst(std::span<RxDatagram> out) override;
  // The socket itself: readable when datagrams wait.
  int notify_fd() const noexcept override { return fd_; }
  // Level-triggered socket readiness needs no re-arming.
  Status arm_notify() override { return ok_status(); }
  // True while datagrams of the last GRO message wait to be returned.
  bool has_pending() const noexcept override { return rx_next_ < rx_count_; }
  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override;
  const TransportStats& stats() const noexcept override { return stats_; }

 private:
  // Where one sendmmsg message's datagrams sit in the batch being sent.
  struct TxMsg {
    uint32_t first = 0;  // index in the tx_burst() input
    uint32_t count = 0;  // datagrams (segments); > 1 only for a GSO message
    uint64_t bytes = 0;
  };
  // Room for one UDP_SEGMENT (u16) or UDP_GRO (int) control message.
  union Ctrl {
    cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  };

  UdpTransport() = default;
  Status open(const TransportConfig& config);
  Status attach_steering(uint32_t group);
  void setup_offloads(const TransportConfig& config);
  void setup_rx(uint32_t rx_batch);

  // Data path (udp_transport_datapath.cc).
  // Fills tx_msgs_ from pkts[from...]; GSO only at indices >= plain_until.
  // Returns messages queued; *scanned: input datagrams consumed (oversized
  // ones at the start included).
  size_t plan_batch(std::span<const TxDatagram> pkts, size_t from, size_t plain_until,
                    size_t* scanned);
  // Length of the GSO run starting at pkts[i] (1: no run).
  size_t gso_run(std::span<const TxDatagram> pkts, size_t i, size_t iov_left) const;
  void add_message(const TxDatagram* d, size_t count, uint32_t first, size_t* iov);
  void disable_gso(const char* why, int err);
  // Moves the receive cursor over the last recvmmsg's messages into out.
  size_t drain_rx(std::span<RxDatagram> out);

  int fd_ = -1;
  NetAddr local_;
  uint32_t max_datagram_ = kDefaultDatagram;
  // Largest segment a GSO send may use: the bound interface's MTU minus 28
  // header bytes (Ethernet-sized when unknown), lowered when a route says
  // EMSGSIZE.
  uint32_t gso_max_seg_ = kDefaultDatagram;
  bool gso_ = false, gro_ = false;
  bool gso_size_warned_ = false;
  TransportStats stats_;

  // Preallocated per-batch message headers so the data path never allocates.
  std::array<mmsghdr, kBatch> tx_msgs_{};
  std::array<sockaddr_in, kBatch> tx_addr_{};
  std::array<TxMsg, kBatch> tx_info_{};
  size_t tx_msgs_count_ = 0;  // messages planned in tx_msgs_
  std::array<Ctrl, kBatch> tx_ctrl_{};
  std::array<iovec, kTxIov> tx_iov_{};

  // Receive side: rx_batch_ slots of rx_slot_ bytes (max_datagram_ + 1, or
  // kGroSlot with GRO); the spare byte detects datagrams that are too big
  // even when the kernel would not flag MSG_TRUNC.
  size_t rx_batch_ = kBatch;
  size_t rx_slot_ = 0;
  std::unique_ptr<uint8_t[]> rx_buf_;  // not zero-filled: pages fill as used
  std::vector<mmsghdr> rx_msgs_;
  std::vector<iovec> rx_iov_;
  std::vector<sockaddr_in> rx_addr_;
  std::vector<Ctrl> rx_ctrl_;
  // Cursor over the last recvmmsg: message rx_next_ of rx_count_, byte
  // rx_off_ within it; rx_seg_[i] is message i's GRO segment size (0: one
  // datagram).
  size_t rx_count_ = 0, rx_next_ = 0;
  uint32_t rx_off_ = 0;
  std::vector<uint32_t> rx_seg_;
};

}  // namespace lanefs::transport

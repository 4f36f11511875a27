// The kernel UDP lane ("UDP mode"): one non-blocking AF_INET datagram socket,
// batched with sendmmsg/recvmmsg.
//
// Ownership: owns its socket and its receive buffers. Threading: as every
// Transport, driven by one thread only. Blocking: never (MSG_DONTWAIT).
//
// Limits: datagrams larger than max_datagram() are dropped at send time and
// counted in tx_dropped (every lane behaves the same, so the RPC layer cannot
// come to depend on the kernel accepting bigger ones); received datagrams
// larger than max_datagram() are dropped and counted in rx_truncated.
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
  // Datagrams per sendmmsg/recvmmsg call.
  static constexpr size_t kBatch = 64;
  // Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP).
  static constexpr uint32_t kMaxUdpPayload = 65507;
  // Default datagram size: fits a 1500-byte Ethernet MTU.
  static constexpr uint32_t kDefaultDatagram = 1472;

  // Opens and binds the socket per config.bind / mtu / socket_buffer.
  // Errors name the failing call ("bind 127.0.0.1:14000: Address in use").
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
  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override;
  const TransportStats& stats() const noexcept override { return stats_; }

 private:
  UdpTransport() = default;
  Status open(const TransportConfig& config);

  int fd_ = -1;
  NetAddr local_;
  uint32_t max_datagram_ = kDefaultDatagram;
  TransportStats stats_;

  // Preallocated per-batch message headers so the data path never allocates.
  std::array<mmsghdr, kBatch> tx_msgs_{};
  std::array<iovec, 3 * kBatch> tx_iov_{};
  std::array<sockaddr_in, kBatch> tx_addr_{};
  std::array<mmsghdr, kBatch> rx_msgs_{};
  std::array<iovec, kBatch> rx_iov_{};
  std::array<sockaddr_in, kBatch> rx_addr_{};
  // kBatch slots of max_datagram_ + 1 bytes: one spare byte detects datagrams
  // that are too big even when the kernel would not flag MSG_TRUNC.
  std::vector<uint8_t> rx_buf_;
};

}  // namespace lanefs::transport

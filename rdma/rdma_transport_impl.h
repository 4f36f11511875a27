// RdmaTransport: make_transport(kRdma), datagrams as SEND/RECV over RC QPs
// (internal). Control path in rdma_transport.cc (setup, the rdma_cm thread),
// data path in rdma_transport_datapath.cc (tx_burst, rx_burst, arm_notify).
//
// Design (documented in rdma/README.md):
//  - config.bind is the rdma_cm listening address (port 0: the real port
//    after rdma_bind_addr). One connection per peer listening address, made
//    on the first datagram to it; an accepted connection also carries our
//    datagrams back to its peer.
//  - The connecting side sends its listening address and its receive limit
//    in the connect private data (WireHello), the acceptor answers with its
//    limit: received datagrams report src = the sender's local_addr().
//  - max_datagram = config.mtu, default kDefaultMaxDatagram (4096). Every
//    SEND carries the datagram length as immediate data; a datagram above
//    the receiver's limit travels as an empty SEND, so the receiver counts
//    rx_truncated instead of its QP failing with a length error.
//  - Two CQs: receives on the completion channel (notify_fd), sends polled
//    by tx_burst/rx_burst, so a sender is not woken by its own completions.
//  - rdma_cm runs on an internal thread (connection setup needs progress
//    while the owning loop sleeps); it shares mu_ with the owner's calls.
//    Datagrams to a peer still connecting are queued (kMaxPending per peer),
//    beyond that dropped and counted.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rdma/rdma_util.h"

namespace lanefs::transport::rdma {

constexpr uint32_t kDefaultMaxDatagram = 4096;

class RdmaTransport final : public Transport {
 public:
  static Result<std::unique_ptr<Transport>> create(const TransportConfig& config);
  ~RdmaTransport() override;

  TransportKind kind() const noexcept override { return TransportKind::kRdma; }
  NetAddr local_addr() const noexcept override { return local_; }
  uint32_t max_datagram() const noexcept override { return max_dgram_; }
  Result<size_t> tx_burst(std::span<const TxDatagram> pkts) override;
  Result<size_t> rx_burst(std::span<RxDatagram> out) override;
  int notify_fd() const noexcept override { return recv_comp_->fd; }
  Status arm_notify() override;
  Result<std::unique_ptr<MemRegion>> register_memory(void* addr, size_t len) override;
  const TransportStats& stats() const noexcept override { return stats_; }

 private:
  static constexpr uint32_t kRecvDepth = 128;  // receive buffers per connection
  static constexpr uint32_t kSendDepth = 256;  // send WRs per connection
  static constexpr uint32_t kSendBufs = 1024;  // registered send buffers (all peers)
  static constexpr uint32_t kMaxConns = 64;    // recv CQ sized for this many
  static constexpr size_t kMaxPending = 256;   // datagrams queued while connecting
  // Address resolution: per attempt, and attempts (a cold soft-RoCE
  // neighbour entry may only resolve when the first attempt times out).
  static constexpr int kResolveMs = 2000;
  static constexpr uint32_t kResolveTries = 3;

  enum class State : uint8_t { kConnecting, kUp, kDown };
  struct Conn {
    ~Conn();
    rdma_cm_id* id = nullptr;
    uint64_t serial = 0;       // the id's context: events of freed ids never alias
    NetAddr peer;              // the peer's listening address
    State state = State::kConnecting;
    uint64_t down_ns = 0;
    uint32_t peer_max = 0;     // the peer's receive limit
    uint32_t sq_outstanding = 0;
    uint32_t resolve_tries = 0;
    uint8_t* recv_mem = nullptr;
    ibv_mr* recv_mr = nullptr;
    std::deque<std::vector<uint8_t>> pending;
  };

  explicit RdmaTransport(const TransportConfig& config);
  Status init();

  // rdma_cm thread.
  void run() noexcept;
  void on_cm_event(rdma_cm_event* ev);
  void on_connect_request(rdma_cm_event* ev);
  Status setup_qp(const std::shared_ptr<Conn>& c);
  rdma_conn_param conn_param(const WireHello* hello) const;

  // Under mu_.
  std::shared_ptr<Conn> find_locked(Conn* raw) const;
  std::shared_ptr<Conn> by_context_locked(void* context) const;
  std::shared_ptr<Conn> new_conn_locked(rdma_cm_id* id);
  std::shared_ptr<Conn> start_connect_locked(NetAddr peer);
  bool resolve_locked(Conn& c);
  void drop_locked(const std::shared_ptr<Conn>& c, const char* why);
  void bury_locked(const std::shared_ptr<Conn>& c);
  void flush_pending_locked(Conn& c);
  // Copies every part of `d` into a send buffer and posts it (false: ring full).
  bool post_send_locked(Conn& c, const TxDatagram& d);
  void reap_sends_locked();
  void repost_recv_locked(Conn& c, uint32_t index);

  TransportConfig config_;
  NetAddr local_;
  uint32_t max_dgram_;
  uint8_t rd_depth_ = 1;

  EventChannelPtr cm_channel_;
  rdma_cm_id* listen_id_ = nullptr;
  ibv_context* ctx_ = nullptr;
  PdPtr pd_;
  CompChannelPtr recv_comp_;
  CqPtr recv_cq_, send_cq_;
  int wake_fd_ = -1;

  uint8_t* send_mem_ = nullptr;
  MrPtr send_mr_;
  std::vector<uint32_t> send_free_;

  mutable std::mutex mu_;
  std::map<NetAddr, std::shared_ptr<Conn>> by_peer_;
  std::unordered_map<uint32_t, std::shared_ptr<Conn>> by_qp_;
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> by_serial_;  // not yet dropped
  uint64_t next_serial_ = 1;
  std::vector<Conn*> with_pending_;
  // Receive buffers handed out by the last rx_burst, reposted by the next.
  std::vector<std::pair<std::shared_ptr<Conn>, uint32_t>> held_;
  TransportStats stats_;

  std::atomic<bool> stop_{false};
  std::thread thread_;
  Reaper reaper_;  // declared last: destroyed (drained) first
};

}  // namespace lanefs::transport::rdma

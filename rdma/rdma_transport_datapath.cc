// RdmaTransport data path: tx_burst (SEND with the length as immediate
// data), rx_burst (receive CQ), arm_notify (completion channel).
#include <arpa/inet.h>

#include <cstring>

#include "common/clock.h"
#include "common/log.h"
#include "rdma/rdma_transport_impl.h"

namespace lanefs::transport::rdma {

void RdmaTransport::repost_recv_locked(Conn& c, uint32_t index) {
  if (c.state == State::kDown || c.id == nullptr || c.id->qp == nullptr) return;
  ibv_sge sge{};
  sge.addr = reinterpret_cast<uint64_t>(c.recv_mem + size_t(index) * max_dgram_);
  sge.length = max_dgram_;
  sge.lkey = c.recv_mr->lkey;
  ibv_recv_wr wr{};
  ibv_recv_wr* bad = nullptr;
  wr.wr_id = index;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  if (int rc = ibv_post_recv(c.id->qp, &wr, &bad); rc != 0)
    LOG_WARN("rdma transport: ibv_post_recv: {}", strerror(rc));
}

bool RdmaTransport::post_send_locked(Conn& c, const TxDatagram& d) {
  if (send_free_.empty() || c.sq_outstanding >= kSendDepth) return false;
  const auto len = static_cast<uint32_t>(d.size());  // the caller checked max_dgram_
  const uint32_t buf = send_free_.back();
  uint8_t* p = send_mem_ + size_t(buf) * max_dgram_;
  // Above the receiver's limit: an empty SEND whose immediate says the real
  // length, counted as rx_truncated there (a long SEND would fail its QP).
  const uint32_t wire_len = len <= c.peer_max ? len : 0;
  if (wire_len > 0) copy_datagram(d, p);
  ibv_sge sge{};
  sge.addr = reinterpret_cast<uint64_t>(p);
  sge.length = wire_len;
  sge.lkey = send_mr_->lkey;
  ibv_send_wr wr{};
  ibv_send_wr* bad = nullptr;
  wr.wr_id = buf;
  wr.sg_list = wire_len ? &sge : nullptr;
  wr.num_sge = wire_len ? 1 : 0;
  wr.opcode = IBV_WR_SEND_WITH_IMM;
  wr.imm_data = htonl(len);
  wr.send_flags = IBV_SEND_SIGNALED;
  if (int rc = ibv_post_send(c.id->qp, &wr, &bad); rc != 0) {
    LOG_WARN("rdma transport: ibv_post_send to {}: {}", c.peer.to_string(), strerror(rc));
    return false;
  }
  send_free_.pop_back();
  ++c.sq_outstanding;
  return true;
}

void RdmaTransport::flush_pending_locked(Conn& c) {
  while (!c.pending.empty() && c.state == State::kUp) {
    const auto& d = c.pending.front();
    const TxDatagram one{c.peer, d.data(), static_cast<uint32_t>(d.size())};
    if (!post_send_locked(c, one)) break;
    c.pending.pop_front();
  }
  if (!c.pending.empty() && c.state == State::kUp) with_pending_.push_back(&c);
}

void RdmaTransport::reap_sends_locked() {
  ibv_wc wc[32];
  for (;;) {
    const int n = ibv_poll_cq(send_cq_.get(), 32, wc);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) {
      send_free_.push_back(static_cast<uint32_t>(wc[i].wr_id));
      auto it = by_qp_.find(wc[i].qp_num);
      if (it == by_qp_.end()) continue;
      auto c = it->second;
      if (c->sq_outstanding > 0) --c->sq_outstanding;
      if (wc[i].status != IBV_WC_SUCCESS) {
        // Flush: the connection is shutting down in order; anything else broke it.
        if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
          LOG_WARN("rdma transport: send to {}: {}", c->peer.to_string(),
                   ibv_wc_status_str(wc[i].status));
        drop_locked(c, ibv_wc_status_str(wc[i].status));
      }
    }
  }
}

Result<size_t> RdmaTransport::tx_burst(std::span<const TxDatagram> pkts) {
  std::lock_guard lk(mu_);
  reap_sends_locked();
  if (!with_pending_.empty()) {
    auto list = std::move(with_pending_);
    with_pending_.clear();
    for (Conn* c : list)
      if (find_locked(c)) flush_pending_locked(*c);
  }
  size_t taken = 0;
  for (const TxDatagram& d : pkts) {
    const uint64_t len = d.size();
    if (len > max_dgram_) {
      ++stats_.tx_dropped;
      ++taken;
      continue;
    }
    std::shared_ptr<Conn> c;
    if (auto it = by_peer_.find(d.dst); it != by_peer_.end()) c = it->second;
    if (c && c->state == State::kDown && mono_ns() - c->down_ns > 1'000'000'000ull) c = nullptr;
    if (!c) c = start_connect_locked(d.dst);
    if (c->state == State::kDown) {
      ++stats_.tx_dropped;
    } else if (c->state == State::kConnecting || !c->pending.empty()) {
      if (c->pending.size() >= kMaxPending) {
        ++stats_.tx_dropped;
      } else {
        std::vector<uint8_t> copy(len);
        copy_datagram(d, copy.data());
        c->pending.push_back(std::move(copy));
        ++stats_.tx_packets;
        stats_.tx_bytes += len;
      }
    } else if (!post_send_locked(*c, d)) {
      break;  // send ring full: the caller retries the rest
    } else {
      ++stats_.tx_packets;
      stats_.tx_bytes += len;
    }
    ++taken;
  }
  return taken;
}

Result<size_t> RdmaTransport::rx_burst(std::span<RxDatagram> out) {
  std::lock_guard lk(mu_);
  for (auto& [c, index] : held_) repost_recv_locked(*c, index);
  held_.clear();
  reap_sends_locked();
  size_t n = 0;
  ibv_wc wc[32];
  while (n < out.size()) {
    const int want = static_cast<int>(std::min<size_t>(32, out.size() - n));
    const int got = ibv_poll_cq(recv_cq_.get(), want, wc);
    if (got < 0) return make_error(Errc::kIo, "rdma: ibv_poll_cq (receive) failed");
    if (got == 0) break;
    for (int i = 0; i < got; ++i) {
      auto it = by_qp_.find(wc[i].qp_num);
      if (it == by_qp_.end()) continue;  // a dropped connection's flushed receive
      auto c = it->second;
      const auto index = static_cast<uint32_t>(wc[i].wr_id);
      if (wc[i].status != IBV_WC_SUCCESS) {
        if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
          LOG_WARN("rdma transport: receive from {}: {}", c->peer.to_string(),
                   ibv_wc_status_str(wc[i].status));
        drop_locked(c, ibv_wc_status_str(wc[i].status));
        continue;
      }
      const uint32_t len = wc[i].byte_len;
      const uint32_t sent =
          (wc[i].wc_flags & IBV_WC_WITH_IMM) ? ntohl(wc[i].imm_data) : len;
      if (sent != len) {
        ++stats_.rx_truncated;
        repost_recv_locked(*c, index);
        continue;
      }
      out[n++] = RxDatagram{c->peer, c->recv_mem + size_t(index) * max_dgram_, len};
      held_.emplace_back(c, index);
      ++stats_.rx_packets;
      stats_.rx_bytes += len;
    }
  }
  return n;
}

// Consumes the completion events that fired (so the fd goes quiet), acks
// them and re-arms the receive CQ: rping's get -> ack -> re-arm, with the
// drain left to the caller's next rx_burst().
Status RdmaTransport::arm_notify() {
  ibv_cq* cq = nullptr;
  void* ctx = nullptr;
  unsigned events = 0;
  while (ibv_get_cq_event(recv_comp_.get(), &cq, &ctx) == 0) ++events;
  if (events > 0) ibv_ack_cq_events(recv_cq_.get(), events);
  if (int rc = ibv_req_notify_cq(recv_cq_.get(), 0); rc != 0)
    return call_error("ibv_req_notify_cq", rc);
  return ok_status();
}

}  // namespace lanefs::transport::rdma

// RdmaLane data path: the registered buffer pool, one-sided READ/WRITE with a
// per-op waiter, completion handling on the lane thread, the MR cache.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "rdma/rdma_lane_impl.h"

namespace lanefs::transport::rdma {
namespace {

class LeasedBuffer final : public RdmaBuffer {
 public:
  LeasedBuffer(RdmaLaneImpl* lane, uint32_t index, uint8_t* data, size_t size, uint32_t rkey)
      : lane_(lane), index_(index), data_(data), size_(size), rkey_(rkey) {}
  ~LeasedBuffer() override { lane_->release_buffer(index_); }
  uint8_t* data() noexcept override { return data_; }
  size_t size() const noexcept override { return size_; }
  RemoteBuffer remote(uint32_t len) const noexcept override {
    return RemoteBuffer{reinterpret_cast<uint64_t>(data_), rkey_,
                        static_cast<uint32_t>(std::min<size_t>(len, size_))};
  }

 private:
  RdmaLaneImpl* lane_;
  uint32_t index_;
  uint8_t* data_;
  size_t size_;
  uint32_t rkey_;
};

using Clock = std::chrono::steady_clock;

}  // namespace

Result<std::unique_ptr<RdmaBuffer>> RdmaLaneImpl::lease(size_t len) { return lease_within(len, config_.timeout_ms); }

Result<std::unique_ptr<RdmaBuffer>> RdmaLaneImpl::try_lease(size_t len) { return lease_within(len, 0); }

Result<std::unique_ptr<RdmaBuffer>> RdmaLaneImpl::lease_within(size_t len, uint32_t wait_ms) {
  if (len > config_.buffer_bytes)
    return make_error(Errc::kInvalid, "rdma lease: " + std::to_string(len) + " bytes > buffer_bytes " +
                                          std::to_string(config_.buffer_bytes));
  std::unique_lock lk(pool_mu_);
  if (!pool_cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] { return !pool_free_.empty(); }))
    return make_error(Errc::kBusy, "rdma lease: all " + std::to_string(config_.max_buffers) +
                                       " registered buffers in use");
  const uint32_t i = pool_free_.back();
  pool_free_.pop_back();
  return std::unique_ptr<RdmaBuffer>(std::make_unique<LeasedBuffer>(
      this, i, pool_mem_ + size_t(i) * config_.buffer_bytes, config_.buffer_bytes,
      pool_mr_->rkey));
}

void RdmaLaneImpl::release_buffer(uint32_t index) noexcept {
  {
    std::lock_guard lk(pool_mu_);
    pool_free_.push_back(index);
  }
  pool_cv_.notify_one();
}

Status RdmaLaneImpl::write_remote(uint64_t token, const RdmaBuffer& local, uint32_t len,
                                  const RemoteBuffer& dst) {
  return one_sided(IBV_WR_RDMA_WRITE, token, local, len, dst);
}

Status RdmaLaneImpl::read_remote(uint64_t token, RdmaBuffer& local, uint32_t len,
                                 const RemoteBuffer& src) {
  return one_sided(IBV_WR_RDMA_READ, token, local, len, src);
}

Status RdmaLaneImpl::one_sided(ibv_wr_opcode op, uint64_t token, const RdmaBuffer& local,
                               uint32_t len, const RemoteBuffer& remote) {
  const char* what = op == IBV_WR_RDMA_WRITE ? "rdma write_remote" : "rdma read_remote";
  // The local buffer must be one of this lane's leases: found by address in
  // the pool (no downcast), so its lkey is the pool's.
  auto* data = const_cast<RdmaBuffer&>(local).data();
  if (data < pool_mem_ || data + len > pool_mem_ + pool_bytes_ || len > local.size())
    return make_error(Errc::kInvalid, std::string(what) + ": local buffer is not a lease of this lane");
  if (len > remote.len)
    return make_error(Errc::kInvalid, std::string(what) + ": " + std::to_string(len) +
                                          " bytes > remote buffer " + std::to_string(remote.len));
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.timeout_ms);
  std::unique_lock lk(mu_);
  if (dead_) return make_error(Errc::kUnreachable, dead_why_);
  auto it = by_token_.find(token);
  if (it == by_token_.end())
    return make_error(Errc::kUnreachable, std::string(what) + ": no live connection with token " +
                                              std::to_string(token));
  std::shared_ptr<Conn> c = it->second;
  // An accepted connection may still wait for its ESTABLISHED event.
  if (!conn_cv_.wait_until(lk, deadline, [&] { return c->state != ConnState::kConnecting; })) {
    ++n_.op_errors;
    return make_error(Errc::kTimeout, std::string(what) + ": connection not established in time");
  }
  if (c->state != ConnState::kUp)
    return make_error(Errc::kUnreachable, std::string(what) + ": connection dropped: " + c->why);

  Slot* slot = nullptr;
  uint32_t index = 0;
  auto find_slot = [&] {
    for (uint32_t i = 0; i < num_slots_; ++i)
      if (!slots_[i].busy) {
        slot = &slots_[i];
        index = i;
        return true;
      }
    return false;
  };
  if (!slot_cv_.wait_until(lk, deadline, find_slot)) {
    ++n_.op_errors;
    return make_error(Errc::kBusy, std::string(what) + ": too many one-sided ops in flight");
  }
  ++slot->gen;
  slot->busy = true;
  slot->done = false;
  slot->conn = c.get();
  auto free_slot = [&] {
    ++slot->gen;  // a late completion of this op is now stale
    slot->busy = false;
    slot->conn = nullptr;
    slot_cv_.notify_one();
  };

  // Large RDMA READs go as several work requests of at most kMaxReadWr
  // bytes: soft-RoCE loses part of a multi-megabyte read response burst
  // and then waits a whole RC timeout (ib_read_bw: 1 MB/s at 1 MiB, 40 MB/s
  // at 256 KiB under qemu). Only the last one is signaled; an error in any
  // of them completes with the same wr_id.
  const uint32_t piece = op == IBV_WR_RDMA_READ ? kMaxReadWr : len;
  const uint32_t n = len == 0 ? 1 : (len + piece - 1) / piece;
  std::vector<ibv_sge> sges(n);
  std::vector<ibv_send_wr> wrs(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t off = i * piece;
    sges[i].addr = reinterpret_cast<uint64_t>(data) + off;
    sges[i].length = std::min(piece, len - off);
    sges[i].lkey = pool_mr_->lkey;
    ibv_send_wr& wr = wrs[i];
    wr.wr_id = (uint64_t{slot->gen} << 32) | index;
    wr.sg_list = &sges[i];
    wr.num_sge = 1;
    wr.opcode = op;
    wr.send_flags = i + 1 == n ? IBV_SEND_SIGNALED : 0;
    wr.wr.rdma.remote_addr = remote.addr + off;
    wr.wr.rdma.rkey = remote.rkey;
    wr.next = i + 1 < n ? &wrs[i + 1] : nullptr;
  }
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(c->id->qp, wrs.data(), &bad); rc != 0) {
    // Some pieces may be in flight: the QP goes to error first.
    if (bad != wrs.data()) drop_locked(c, "ibv_post_send failed midway");
    free_slot();
    ++n_.op_errors;
    return call_error("ibv_post_send", rc);
  }
  if (!slot->cv.wait_until(lk, deadline, [&] { return slot->done; })) {
    free_slot();
    ++n_.op_errors;
    // The op may still be in flight: the QP goes to error before the buffer
    // can be reused, so the HCA never touches it after we return.
    drop_locked(c, std::string(what) + " timed out");
    return make_error(Errc::kTimeout, std::string(what) + ": no completion within " +
                                          std::to_string(config_.timeout_ms) + " ms");
  }
  const ibv_wc_status status = slot->status;
  free_slot();
  if (status == IBV_WC_SUCCESS) {
    if (op == IBV_WR_RDMA_WRITE) {
      ++n_.writes;
      n_.write_bytes += len;
    } else {
      ++n_.reads;
      n_.read_bytes += len;
    }
    return ok_status();
  }
  ++n_.op_errors;
  if (status == IBV_WC_WR_FLUSH_ERR)
    return make_error(Errc::kUnreachable, std::string(what) + ": connection shut down" +
                                              (c->why.empty() ? "" : ": " + c->why));
  return make_error(Errc::kIo, std::string(what) + ": work completion " +
                                   ibv_wc_status_str(status));
}

// Lane thread: completes the waiters. Flush errors are the orderly end of a
// connection whose QP went to the error state; other errors drop it.
void RdmaLaneImpl::drain_cq() {
  ibv_wc wc[16];
  for (;;) {
    const int n = ibv_poll_cq(cq_.get(), 16, wc);
    if (n < 0) {
      LOG_ERROR("rdma lane: ibv_poll_cq failed ({})", n);
      return;
    }
    if (n == 0) return;
    std::lock_guard lk(mu_);
    for (int i = 0; i < n; ++i) {
      const uint32_t index = static_cast<uint32_t>(wc[i].wr_id);
      const uint32_t gen = static_cast<uint32_t>(wc[i].wr_id >> 32);
      if (index >= num_slots_) continue;
      Slot& s = slots_[index];
      if (!s.busy || s.gen != gen || s.done) continue;  // stale: its waiter gave up
      s.done = true;
      s.status = wc[i].status;
      s.cv.notify_all();
      if (wc[i].status != IBV_WC_SUCCESS) {
        std::shared_ptr<Conn> c;
        for (auto& [serial, conn] : by_serial_)
          if (conn.get() == s.conn) c = conn;
        if (wc[i].status == IBV_WC_WR_FLUSH_ERR) {
          if (c) drop_locked(c, "QP flushed (connection shutting down)");
        } else {
          LOG_WARN("rdma lane: work completion error {} on connection {}",
                   ibv_wc_status_str(wc[i].status), c ? c->token : 0);
          if (c) drop_locked(c, std::string("work completion ") + ibv_wc_status_str(wc[i].status));
        }
      }
    }
  }
}

Result<std::shared_ptr<MemRegion>> RdmaLaneImpl::register_cached(void* addr, size_t len) {
  bool hit = false;
  LANEFS_ASSIGN_OR_RETURN(auto region, mr_cache_->get(addr, len, &hit));
  if (hit) {
    ++n_.mr_cache_hits;
  } else {
    ++n_.mr_registrations;
  }
  return region;
}

Result<std::shared_ptr<MemRegion>> RdmaLaneImpl::register_region(void* addr, size_t len, int dmabuf_fd,
                                                                uint64_t dmabuf_offset) {
  if (addr == nullptr || len == 0) return make_error(Errc::kInvalid, "register_region: empty range");
  ibv_mr* raw = dmabuf_fd < 0 ? ibv_reg_mr(pd_.get(), addr, len, kMrAccess)
                              : ibv_reg_dmabuf_mr(pd_.get(), dmabuf_offset, len, reinterpret_cast<uint64_t>(addr),
                                                  dmabuf_fd, kMrAccess);
  if (raw == nullptr) {
    const int err = errno;
    if (dmabuf_fd >= 0 && (err == EOPNOTSUPP || err == ENOSYS || err == EPROTONOSUPPORT || err == EINVAL))
      return make_error(Errc::kNotSupported, device_.device + " cannot register dma-buf memory (ibv_reg_dmabuf_mr: " +
                                                 std::strerror(err) + ")");
    return call_error(dmabuf_fd < 0 ? "ibv_reg_mr" : "ibv_reg_dmabuf_mr", err);
  }
  ++n_.mr_registrations;
  return std::shared_ptr<MemRegion>(std::make_shared<RdmaRegion>(addr, len, std::shared_ptr<ibv_mr>(raw, MrDeleter())));
}

RemoteBuffer RdmaLaneImpl::remote_of(const MemRegion& region, const void* addr, uint32_t len) const {
  // Every MemRegion this lane hands out is an RdmaRegion (its own type).
  const auto& r = static_cast<const RdmaRegion&>(region);
  return RemoteBuffer{reinterpret_cast<uint64_t>(addr), r.rkey(), len};
}

}  // namespace lanefs::transport::rdma

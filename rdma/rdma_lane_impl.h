// RdmaLaneImpl: the RdmaLane of rdma/ (internal). Control path in
// rdma_lane.cc (setup, the lane thread, rdma_cm events, connect), data path
// in rdma_lane_datapath.cc (buffer pool, one-sided ops, completions).
//
// One lane = one device: a PD, one CQ on one completion channel, one rdma_cm
// event channel, all driven by the lane's own thread, which waits on the
// completion channel, the event channel and a wake-up eventfd.
//
// Locking: mu_ guards connections, the op slots and posting to QPs (so a QP
// is never destroyed under a poster); pool_mu_ guards the buffer free list;
// the MR cache has its own lock. rdma_cm ids are destroyed only on the lane
// the Reaper thread (rdma_destroy_id may block through CM timewait), once
// the connection is kDown so nobody posts to its QP any more.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rdma/mr_cache.h"
#include "rdma/rdma_util.h"

namespace lanefs::transport::rdma {

// Largest RDMA READ work request (larger reads are split; see one_sided).
inline constexpr uint32_t kMaxReadWr = 256 * 1024;

class RdmaLaneImpl final : public RdmaLane {
 public:
  static Result<std::unique_ptr<RdmaLane>> create(const RdmaLaneConfig& config);
  ~RdmaLaneImpl() override;

  const RdmaDeviceInfo& device() const noexcept override { return device_; }
  NetAddr local_addr() const noexcept override { return local_; }
  Result<uint64_t> connect(NetAddr peer) override;
  void disconnect(NetAddr peer) override;
  Result<std::unique_ptr<RdmaBuffer>> lease(size_t len) override;
  Result<std::unique_ptr<RdmaBuffer>> try_lease(size_t len) override;
  Status write_remote(uint64_t token, const RdmaBuffer& local, uint32_t len,
                      const RemoteBuffer& dst) override;
  Status read_remote(uint64_t token, RdmaBuffer& local, uint32_t len,
                     const RemoteBuffer& src) override;
  Result<std::shared_ptr<MemRegion>> register_cached(void* addr, size_t len) override;
  Result<std::shared_ptr<MemRegion>> register_region(void* addr, size_t len, int dmabuf_fd,
                                                     uint64_t dmabuf_offset) override;
  RemoteBuffer remote_of(const MemRegion& region, const void* addr, uint32_t len) const override;
  RdmaLaneStats stats() const override;
  bool alive() const noexcept override {
    std::lock_guard lk(mu_);
    return !dead_;
  }

  // Returns a leased buffer to the pool (called by the buffer's destructor).
  void release_buffer(uint32_t index) noexcept;
  Result<std::unique_ptr<RdmaBuffer>> lease_within(size_t len, uint32_t wait_ms);

 private:
  enum class ConnState : uint8_t { kConnecting, kUp, kDown };
  struct Conn {
    rdma_cm_id* id = nullptr;
    uint64_t serial = 0;    // the id's context: events of freed ids never alias
    uint64_t deadline_ns = 0;  // outgoing: address resolution is retried until then
    uint64_t token = 0;
    NetAddr peer;
    bool outgoing = false;
    ConnState state = ConnState::kConnecting;
    std::string why;  // set when kDown
  };
  // One in-flight one-sided op; wr_id = gen << 32 | index, so a completion
  // that arrives after its waiter gave up (stale gen) is ignored.
  struct Slot {
    uint32_t gen = 0;
    bool busy = false, done = false;
    Conn* conn = nullptr;
    ibv_wc_status status = IBV_WC_SUCCESS;
    std::condition_variable cv;
  };
  struct Counters {
    std::atomic<uint64_t> connections{0}, connection_errors{0}, reads{0}, read_bytes{0},
        writes{0}, write_bytes{0}, op_errors{0}, mr_registrations{0}, mr_cache_hits{0};
  };

  explicit RdmaLaneImpl(const RdmaLaneConfig& config) : config_(config) {}
  Status init();
  Status init_verbs();

  // Lane thread.
  void run() noexcept;
  void on_cm_event(rdma_cm_event* ev);
  void on_connect_request(rdma_cm_event* ev);
  Status create_qp(rdma_cm_id* id);
  rdma_conn_param conn_param(const WireHello* hello) const;
  void bury_locked(const std::shared_ptr<Conn>& c);
  void wake() noexcept;
  void drain_cq();

  // Under mu_: marks `c` down, fails its waiters, moves its QP to the error
  // state and hands its id to the lane thread for destruction.
  void drop_locked(const std::shared_ptr<Conn>& c, std::string why);
  void fail_connect_locked(const std::shared_ptr<Conn>& c, std::string why);
  std::shared_ptr<Conn> find_locked(void* context) const;
  std::shared_ptr<Conn> new_conn_locked(rdma_cm_id* id);
  uint64_t new_token_locked();
  Status one_sided(ibv_wr_opcode op, uint64_t token, const RdmaBuffer& local, uint32_t len,
                   const RemoteBuffer& remote);

  RdmaLaneConfig config_;
  RdmaDeviceInfo device_;
  NetAddr local_;
  uint8_t rd_depth_ = 1;

  EventChannelPtr cm_channel_;
  rdma_cm_id* listen_id_ = nullptr;
  ibv_context* ctx_ = nullptr;
  PdPtr pd_;
  CompChannelPtr comp_;
  CqPtr cq_;
  int wake_fd_ = -1;

  // Registered buffer pool: max_buffers slices of buffer_bytes.
  uint8_t* pool_mem_ = nullptr;
  size_t pool_bytes_ = 0;
  MrPtr pool_mr_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<uint32_t> pool_free_;
  std::unique_ptr<MrCache> mr_cache_;

  mutable std::mutex mu_;
  std::condition_variable conn_cv_;
  std::condition_variable slot_cv_;
  std::map<NetAddr, std::shared_ptr<Conn>> by_peer_;           // outgoing
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> by_token_;  // both directions
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> by_serial_;  // live ones
  uint64_t next_serial_ = 1;
  std::unique_ptr<Slot[]> slots_;
  uint32_t num_slots_ = 0;
  bool dead_ = false;  // device removed
  std::string dead_why_;

  std::atomic<bool> stop_{false};
  std::thread thread_;
  Counters n_;
  Reaper reaper_;  // declared last: destroyed (drained) first
};

}  // namespace lanefs::transport::rdma

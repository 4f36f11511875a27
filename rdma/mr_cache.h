// Memory-registration cache of one lane: registering memory is expensive
// (pins pages, a syscall), so registrations are kept and reused for any
// range they cover. Thread-safe (one mutex; registration happens under it so
// two callers never register the same range twice).
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "common/result.h"
#include "transport/transport.h"

namespace lanefs::transport::rdma {

// A registered memory region (opaque to callers as a MemRegion); keeps the
// cache entry alive while held.
class RdmaRegion : public MemRegion {
 public:
  RdmaRegion(void* addr, size_t len, std::shared_ptr<ibv_mr> mr)
      : MemRegion(addr, len), mr_(std::move(mr)) {}
  uint32_t lkey() const { return mr_->lkey; }
  uint32_t rkey() const { return mr_->rkey; }

 private:
  std::shared_ptr<ibv_mr> mr_;
};

class MrCache {
 public:
  // Entries beyond `max_entries` are evicted (oldest first) once no handle
  // holds them.
  MrCache(ibv_pd* pd, size_t max_entries) : pd_(pd), max_entries_(max_entries) {}

  // A region covering [addr, addr+len): a cached registration when one covers
  // it (*hit = true), else a new one. Errors name ibv_reg_mr.
  Result<std::shared_ptr<MemRegion>> get(void* addr, size_t len, bool* hit);
  size_t size() const;

 private:
  void evict_unused_locked();

  ibv_pd* pd_;
  size_t max_entries_;
  mutable std::mutex mu_;
  // start address -> registration; a lookup checks the nearest start below.
  std::map<uintptr_t, std::shared_ptr<ibv_mr>> entries_;
};

// Access rights every lanefs registration carries: the peer reads and writes
// it one-sidedly.
constexpr int kMrAccess =
    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;

}  // namespace lanefs::transport::rdma

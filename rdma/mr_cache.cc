#include "rdma/mr_cache.h"

#include "rdma/rdma_util.h"

namespace lanefs::transport::rdma {

Result<std::shared_ptr<MemRegion>> MrCache::get(void* addr, size_t len, bool* hit) {
  if (addr == nullptr || len == 0) return make_error(Errc::kInvalid, "register_cached: empty range");
  const auto start = reinterpret_cast<uintptr_t>(addr);
  std::lock_guard lk(mu_);
  // Registrations may overlap; check every one starting at or below addr
  // (few entries: the cache is small by design).
  for (auto it = entries_.upper_bound(start); it != entries_.begin();) {
    --it;
    const auto& mr = it->second;
    const auto mr_start = reinterpret_cast<uintptr_t>(mr->addr);
    if (mr_start <= start && start + len <= mr_start + mr->length) {
      *hit = true;
      return std::shared_ptr<MemRegion>(std::make_shared<RdmaRegion>(addr, len, mr));
    }
  }
  *hit = false;
  ibv_mr* raw = ibv_reg_mr(pd_, addr, len, kMrAccess);
  if (raw == nullptr) return call_error("ibv_reg_mr", errno);
  std::shared_ptr<ibv_mr> mr(raw, MrDeleter());
  entries_[start] = mr;  // a replaced smaller entry lives on in its handles only
  evict_unused_locked();
  return std::shared_ptr<MemRegion>(std::make_shared<RdmaRegion>(addr, len, mr));
}

size_t MrCache::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

void MrCache::evict_unused_locked() {
  for (auto it = entries_.begin(); it != entries_.end() && entries_.size() > max_entries_;) {
    if (it->second.use_count() == 1) {
      it = entries_.erase(it);  // deregisters: no handle holds it
    } else {
      ++it;
    }
  }
}

}  // namespace lanefs::transport::rdma

// What one direct-API application registered with the frontend: its
// buffers and files (direct_server.h), and the tables that hand them to
// the threads serving its rings without a lock per IO.
//
// Threading: a Table is changed by the control thread and read by ring
// threads. A ring thread keeps a View and refreshes it only when the
// table's version moved (one relaxed load per IO; the lock is taken only
// after a change). An item stays alive while any view or IO holds it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "client/mount_fs.h"

namespace lanefs::direct {

// A registered memory region, mapped into the frontend.
struct Buffer {
  uint8_t* addr = nullptr;  // the frontend's mapping (null: not mappable, RDMA only)
  size_t size = 0;
  size_t map_len = 0;   // what to munmap
  size_t map_skew = 0;  // addr - mapping start (a dma-buf offset not on a page)
  bool device = false;      // a dma-buf (device memory), not a host memfd
  int fd = -1;  // dma-bufs: kept for DMA_BUF_IOCTL_SYNC and RDMA registration
  uint64_t dmabuf_offset = 0;
  std::atomic<uint32_t> inflight{0};
  // Registered once with the RDMA lane of the first ring that plans an RDMA
  // IO on it (again if that lane changes); rdma_refused: the lane could
  // not register it (a dma-buf the device cannot take). Under rdma_mu (taken only by IOs that plan
  // RDMA: 32 KiB and more).
  std::mutex rdma_mu;
  client::RegisteredMem rdma;  // replaced region first, then lane (the region needs its lane)
  std::atomic<const void*> rdma_refused{nullptr};  // the lane that refused
  ~Buffer();
};

// A file the application opened through a mount and handed over.
struct File {
  int fd = -1;  // the frontend's copy of the application's descriptor (same open file)
  uint64_t nodeid = 0;
  dev_t dev = 0;
  bool readable = false, writable = false;
  bool append = false;      // O_APPEND: direct writes (explicit offsets) are refused
  bool kill_privs = false;  // registered by a non-root user: a write clears set-user-ID/set-group-ID
  std::shared_ptr<client::MountFs> fs;
  ~File();
};

template <class T>
class Table {
 public:
  // An id is a slot (low 16 bits, from 1) and the slot's generation (high
  // 16 bits): an id of an item since removed never names its successor.
  // kLimit items at most (add returns 0: the caller answers -EMFILE).
  static constexpr size_t kLimit = 4096;
  uint32_t add(std::shared_ptr<T> item) {
    std::lock_guard lk(mu_);
    size_t i = 0;
    while (i < items_.size() && items_[i].item) ++i;
    if (i == kLimit) return 0;
    if (i == items_.size()) items_.emplace_back();
    Entry& e = items_[i];
    e.gen = static_cast<uint16_t>(e.gen + 1);
    e.item = std::move(item);
    version_.fetch_add(1, std::memory_order_release);
    return (uint32_t{e.gen} << 16) | static_cast<uint32_t>(i + 1);
  }
  std::shared_ptr<T> get(uint32_t id) const {
    std::lock_guard lk(mu_);
    const Entry* e = find(items_, id);
    return e ? e->item : nullptr;
  }
  std::shared_ptr<T> remove(uint32_t id) {
    std::lock_guard lk(mu_);
    Entry* e = const_cast<Entry*>(find(items_, id));
    if (!e) return nullptr;
    std::shared_ptr<T> out = std::move(e->item);
    version_.fetch_add(1, std::memory_order_release);
    return out;
  }
  size_t count() const {
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (const auto& e : items_) n += e.item != nullptr;
    return n;
  }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  template <class F>
  void for_each(F f) const {
    std::lock_guard lk(mu_);
    for (const auto& e : items_)
      if (e.item) f(*e.item);
  }

 private:
  struct Entry {
    std::shared_ptr<T> item;
    uint16_t gen = 0;
  };
  static const Entry* find(const std::vector<Entry>& v, uint32_t id) {
    const uint32_t slot = id & 0xffff;
    if (slot == 0 || slot > v.size()) return nullptr;
    const Entry& e = v[slot - 1];
    return e.item && e.gen == (id >> 16) ? &e : nullptr;
  }

 public:
  // A ring thread's copy of the table.
  class View {
   public:
    // A reference for one IO (an atomic increment, no lock): the item
    // outlives a refresh that drops it while the IO is parked.
    std::shared_ptr<T> get(const Table& t, uint32_t id) {
      sync(t);
      const Entry* e = find(items_, id);
      return e ? e->item : nullptr;
    }
    // Refreshed if the table changed (drops what it removed); the version seen.
    uint64_t sync(const Table& t) {
      if (t.version_.load(std::memory_order_acquire) != version_) {
        std::lock_guard lk(t.mu_);
        items_ = t.items_;
        version_ = t.version_.load(std::memory_order_relaxed);
      }
      return version_;
    }
    void clear() { items_.clear(); }

   private:
    uint64_t version_ = ~uint64_t{0};
    std::vector<Entry> items_;
  };

 private:
  mutable std::mutex mu_;
  std::vector<Entry> items_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace lanefs::direct

// Which filesystem an inode whose record lives on another backend belongs
// to, as its metadata owner said (backend check_scope: a data op of a
// session whose token names filesystems, on a chunk owner that holds no
// record of the inode). An inode number is never reused and never changes
// filesystem, so an entry never goes stale; the cache is bounded by
// dropping a full shard's entries.
//
// Thread-safe: one mutex per shard (64), held for one hash lookup or insert
// (the lock that remains on the data path of such sessions; loops of
// different cores rarely meet on one shard).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace lanefs::backend {

class InoFsCache {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kPerShard = 16384;  // ~1M inodes in all

  std::optional<uint32_t> find(uint64_t ino) const {
    const Shard& s = shard(ino);
    std::lock_guard lk(s.mu);
    auto it = s.fs.find(ino);
    if (it == s.fs.end()) return std::nullopt;
    return it->second;
  }
  void put(uint64_t ino, uint32_t fs_id) {
    Shard& s = shard(ino);
    std::lock_guard lk(s.mu);
    if (s.fs.size() >= kPerShard) s.fs.clear();
    s.fs[ino] = fs_id;
  }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, uint32_t> fs;
  };
  Shard& shard(uint64_t ino) { return shards_[(ino * 0x9E3779B97F4A7C15ull) >> 58]; }
  const Shard& shard(uint64_t ino) const { return shards_[(ino * 0x9E3779B97F4A7C15ull) >> 58]; }
  std::array<Shard, kShards> shards_;
};

}  // namespace lanefs::backend

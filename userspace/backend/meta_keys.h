// Internal to the metadata store (meta_store.cc, meta_store_ino.cc): how
// records are keyed in RocksDB, and a scan over one key prefix.
//
// Keys: a one-character tag, then big-endian numbers (so a prefix scan
// walks one inode's or one directory's records in order), then a name.
#pragma once

#include <rocksdb/db.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backend/ino_cipher.h"
#include "common/result.h"

namespace lanefs::backend::meta_keys {

inline constexpr char kInode = 'I';
inline constexpr char kSymlink = 'S';
inline constexpr char kDirent = 'D';
inline constexpr char kCookie = 'C';
inline constexpr char kXattr = 'X';
inline constexpr char kKv = 'K';
inline constexpr char kOrphan = 'O';
inline constexpr char kHandle = 'H';
inline constexpr char kDone = 'R';

inline void put_be64(std::string* s, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) s->push_back(static_cast<char>(v >> shift));
}

inline uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

inline std::string key1(char tag, uint64_t a) {
  std::string k(1, tag);
  put_be64(&k, a);
  return k;
}

inline std::string key_name(char tag, uint64_t a, std::string_view name) {
  std::string k = key1(tag, a);
  k.append(name);
  return k;
}

inline std::string key2(char tag, uint64_t a, uint64_t b) {
  std::string k = key1(tag, a);
  put_be64(&k, b);
  return k;
}

inline std::string kv_key(std::string_view key) {
  std::string k(1, kKv);
  k.append(key);
  return k;
}

// Smallest key greater than every key starting with `prefix` (empty: none).
inline std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

// Iterates the keys that start with `prefix`, all reads at one snapshot.
class PrefixScan {
 public:
  PrefixScan(rocksdb::DB* db, std::string prefix)
      : db_(db), prefix_(std::move(prefix)), upper_(prefix_end(prefix_)) {
    snap_ = db_->GetSnapshot();
    opts_.snapshot = snap_;
    // Both bounds, so SeekToFirst/SeekToLast stay inside the prefix.
    lower_slice_ = rocksdb::Slice(prefix_);
    opts_.iterate_lower_bound = &lower_slice_;
    if (!upper_.empty()) {
      upper_slice_ = rocksdb::Slice(upper_);
      opts_.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(db_->NewIterator(opts_));
  }
  ~PrefixScan() {
    it_.reset();  // an iterator must not outlive its snapshot
    db_->ReleaseSnapshot(snap_);
  }
  PrefixScan(const PrefixScan&) = delete;
  PrefixScan& operator=(const PrefixScan&) = delete;

  rocksdb::Iterator* it() { return it_.get(); }
  const rocksdb::ReadOptions& opts() const { return opts_; }
  size_t prefix_len() const { return prefix_.size(); }

 private:
  rocksdb::DB* db_;
  std::string prefix_;
  std::string upper_;
  rocksdb::Slice lower_slice_;
  rocksdb::Slice upper_slice_;
  const rocksdb::Snapshot* snap_ = nullptr;
  rocksdb::ReadOptions opts_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// The shard's inode number key (meta_store_ino.cc): made the first time a
// store is opened, then read at every open.
Result<InoCipher::Key> load_ino_key(rocksdb::DB* db, const std::string& path);

}  // namespace lanefs::backend::meta_keys

// MetaStore: the record layer of one backend's metadata shard, on RocksDB.
//
// It stores typed records and nothing more; POSIX semantics (link counts,
// rename rules, permission checks) live in meta_service.cc, which composes
// reads and a Batch of writes under lock().
//
// Records (all keys binary, big-endian integers so RocksDB orders them):
//   inode   'I' ino                      -> InodeAttr
//   symlink 'S' ino                      -> target bytes
//   dirent  'D' parent name              -> {ino u64, type u32, cookie u64}
//   cookie  'C' parent cookie            -> name  (readdir order + resume)
//   xattr   'X' ino name                 -> value
//   kv      'K' key                      -> value (management: cluster map, counters)
//
// Threading: all methods are thread-safe. Readers see committed state. A
// read-modify-write must hold lock() from its first read to commit().
// Durability: commit() writes with sync=true (WAL fsync) before returning,
// so a committed batch survives kill -9 and power loss of the process.
// Errors: kNotFound for missing records; kIo with RocksDB's status text.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proto/types.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace lanefs::backend {

struct DirentValue {
  uint64_t ino = 0;
  uint32_t type = 0;    // S_IFMT bits
  uint64_t cookie = 0;  // this entry's readdir cookie within its directory
};

class MetaStore {
 public:
  // Opens (creating if missing) the database in directory `path`.
  static Result<std::unique_ptr<MetaStore>> open(const std::string& path);
  ~MetaStore();
  MetaStore(const MetaStore&) = delete;
  MetaStore& operator=(const MetaStore&) = delete;

  // Serializes read-modify-write sequences on this shard.
  std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(mu_); }

  Result<proto::InodeAttr> get_inode(uint64_t ino) const;
  Result<std::string> get_symlink(uint64_t ino) const;
  Result<DirentValue> get_dirent(uint64_t parent, std::string_view name) const;
  // Entries of `parent` with cookie > after_cookie, in cookie order, at most
  // `max` of them (and at most `max_bytes` of names, approx.). Sets *eof when
  // no entry follows the last one returned.
  Result<std::vector<proto::Dirent>> list_dirents(uint64_t parent, uint64_t after_cookie,
                                                  size_t max, bool* eof) const;
  bool dir_empty(uint64_t parent) const;
  Result<std::string> get_xattr(uint64_t ino, std::string_view name) const;
  Result<std::vector<std::string>> list_xattrs(uint64_t ino) const;
  Result<std::string> get_kv(std::string_view key) const;
  // Every inode record whose fs_id matches (for `fs delete` and statfs).
  Result<std::vector<uint64_t>> inodes_of_fs(uint32_t fs_id) const;
  // Number of inode records in this shard.
  uint64_t inode_count() const;

  // A set of writes applied atomically by commit().
  class Batch {
   public:
    Batch();
    ~Batch();
    void put_inode(const proto::InodeAttr& a);
    void delete_inode(uint64_t ino);  // also use delete_symlink/xattrs as needed
    void put_symlink(uint64_t ino, std::string_view target);
    void delete_symlink(uint64_t ino);
    void put_dirent(uint64_t parent, std::string_view name, const DirentValue& v);
    void delete_dirent(uint64_t parent, std::string_view name, uint64_t cookie);
    void put_xattr(uint64_t ino, std::string_view name, std::string_view value);
    void delete_xattr(uint64_t ino, std::string_view name);
    void put_kv(std::string_view key, std::string_view value);
    void delete_kv(std::string_view key);
    bool empty() const;

   private:
    friend class MetaStore;
    std::unique_ptr<rocksdb::WriteBatch> wb_;
  };
  Status commit(Batch& batch);

  // Next inode sequence number of this shard (persisted counter, never
  // reused, starts at 16). Call under lock(); the counter update is written
  // into `batch`, so it becomes durable with the batch that uses the number.
  uint64_t next_ino_seq(Batch& batch);

 private:
  explicit MetaStore(rocksdb::DB* db);
  rocksdb::DB* db_;
  std::mutex mu_;
  uint64_t ino_seq_ = 0;  // last handed out (cached; guarded by mu_)
};

}  // namespace lanefs::backend

// MetaStore: the record layer of one backend's metadata shard, on RocksDB.
//
// It stores typed records and nothing more; POSIX semantics (link counts,
// rename rules, permission checks) live in meta_ops.cc, which composes reads
// and a Batch of writes under lock().
//
// Records (all keys binary, big-endian integers so RocksDB orders them):
//   inode   'I' ino                      -> InodeAttr
//   symlink 'S' ino                      -> target bytes
//   dirent  'D' parent name              -> {ino u64, type u32, cookie u64}
//   cookie  'C' parent cookie            -> name  (readdir order + resume)
//   xattr   'X' ino name                 -> value
//   kv      'K' key                      -> value (management: cluster map, counters)
//   orphan  'O' ino                      -> (empty) an inode with no names
//                                           kept while clients hold it open
//   handle  'H' client ino               -> seq (an open handle, open_handles.h;
//                                           written without a sync: kept across
//                                           a restart of the process)
//   done    'R' client request           -> {wall secs u64, ino u64}: a namespace
//                                           change this request made, in the
//                                           change's own batch (meta_replay.cc)
//
// Ownership: the store owns its RocksDB instance; Batch owns its pending
// writes until commit. Nothing returned refers into the store.
//
// Threading: all methods are thread-safe. Readers see applied state. A
// read-modify-write holds lock() from its first read until its batch is
// applied; commit(batch, lock) applies, releases the lock and only then waits
// for durability, so the WAL sync is not done under the lock.
//
// Commits and durability (group commit):
//   apply(batch)        RocksDB Write with sync=false: atomic, visible at once
//                       to every later read (under lock() or not), in the WAL
//                       file in the page cache (survives kill -9 of this
//                       process, not yet power loss). Returns a Ticket.
//   make_durable(t)     returns once every batch applied up to t is on stable
//                       storage: one caller runs DB::SyncWAL() for everyone
//                       whose apply() returned before that sync started, the
//                       others wait for it (or for the next one). Never call
//                       it holding lock().
//   commit(batch, lk)   apply + unlock lk + make_durable: what a metadata op
//                       calls, before it replies (and before any peer call
//                       that must come after its change, see meta_ops.cc).
//   commit(batch)       apply + make_durable, for callers that hold no lock
//                       or whose own lock must cover the sync.
// Why this is consistent: the WAL is one sequence in apply order, and a
// SyncWAL makes all of it that was written before the sync durable. So when
// batch A is durable, so is every batch applied before A — in particular any
// batch B whose state A's op read under lock() (B was applied before A's op
// took the lock). A change never becomes durable without the changes it was
// built on, and nobody is told "done" before make_durable. A pure reader (getattr,
// lookup, readdir) may see a batch whose sync is still running; if the
// backend dies in that window (~one WAL sync) the change is gone although it
// was read — its writer was never acknowledged, so no acknowledged change is
// lost. A failed SyncWAL poisons the store: every later make_durable() of a
// batch it did not cover fails (kIo) until the store is reopened.
// Blocking: reads and apply() are RocksDB calls without a sync (memtable,
// block cache, maybe a disk read); make_durable() and commit() wait for an
// fsync of the WAL.
// Errors: kNotFound for missing records; kIo with RocksDB's status text.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/ino_cipher.h"
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
  // Inodes recorded as orphans (put_orphan), in ino order.
  Result<std::vector<uint64_t>> orphans() const;
  // Open handle records (put_handle).
  struct HandleRecord {
    uint64_t client = 0, ino = 0, seq = 0;
  };
  Result<std::vector<HandleRecord>> handles() const;
  // The 'R' record of (client, request): the inode it named.
  struct DoneRecord {
    uint64_t wall_secs = 0, ino = 0;
  };
  Result<DoneRecord> get_done(uint64_t client, uint64_t request) const;
  // Removes 'R' records written before `wall_secs`; returns how many.
  Result<uint64_t> prune_done(uint64_t before_wall_secs);
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
    void put_orphan(uint64_t ino);
    void put_handle(uint64_t client, uint64_t ino, uint64_t seq);
    void delete_handle(uint64_t client, uint64_t ino);
    void delete_orphan(uint64_t ino);
    void put_done(uint64_t client, uint64_t request, const DoneRecord& d);
    void put_kv(std::string_view key, std::string_view value);
    void delete_kv(std::string_view key);
    bool empty() const;

   private:
    friend class MetaStore;
    std::unique_ptr<rocksdb::WriteBatch> wb_;
  };
  // Names a batch applied to the store; seq 0 (an empty batch) needs no sync.
  struct [[nodiscard]] Ticket {
    uint64_t seq = 0;
  };
  Result<Ticket> apply(Batch& batch);
  Status make_durable(Ticket t);
  // apply(batch), unlock `held` (the caller's lock(); unlocked on return in
  // every case), make_durable(): durable on return.
  Status commit(Batch& batch, std::unique_lock<std::mutex>& held);
  // apply(batch) and make_durable(): durable on return.
  Status commit(Batch& batch);

  struct Stats {
    uint64_t commits = 0;    // non-empty batches applied
    uint64_t wal_syncs = 0;  // DB::SyncWAL calls (each covers every batch applied before it)
  };
  Stats stats() const;

  // This shard's next inode number (proto::make_ino(shard, low)): the low
  // 48 bits are a persisted counter (starts at 16) through the shard's
  // keyed permutation (ino_cipher.h), so numbers are unique and cannot be
  // guessed from one another. Call under lock(). Never reused, even when the batch that uses it is lost
  // in a crash after a reader saw it: counter values come from a reserved
  // range whose end is written with sync=true before the first is handed
  // out (one synced write per 1024 numbers; a restart skips the rest of
  // the range). If that write fails the counter goes into `batch` instead.
  Result<uint64_t> next_ino(uint32_t shard, Batch& batch);

 private:
  MetaStore(rocksdb::DB* db, const InoCipher::Key& ino_key);
  // The highest counter behind this shard's inode records (a full scan).
  Result<uint64_t> top_counter() const;
  rocksdb::DB* db_;
  const InoCipher ino_cipher_;  // the shard's inode number permutation (key kept in the store)
  std::mutex mu_;
  uint64_t ino_seq_ = 0;       // last handed out (cached; guarded by mu_)
  uint64_t ino_reserved_ = 0;  // durable end of the reserved range (guarded by mu_)

  // Group commit. applied_ counts applied batches (a batch's ticket is the
  // count after its Write returned); the rest is guarded by sync_mu_.
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> wal_syncs_{0};
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  uint64_t synced_ = 0;  // tickets covered by a finished SyncWAL
  bool syncing_ = false;
  std::string sync_failed_;  // non-empty: a SyncWAL failed (its text)
};

}  // namespace lanefs::backend

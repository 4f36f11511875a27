// ChunkFiles: the chunk store's cache of open chunk files (an fd cache).
//
// Chunk files stay open between IOs: get() returns a counted reference to
// the open file of chunk (ino, index), opening it on a miss (and creating it
// with its inode directory when asked). At most about `max_open` files stay
// cached; the least recently used one is evicted when a miss needs room. An
// evicted file stays open until its last reference is dropped, so an fd is
// never closed under a user.
//
// Deletion: unlink() and remove_from() evict a chunk and unlink its path
// while holding the inode's namespace lock, which a miss also takes to open
// or create the path. So a get() that starts after a deletion returned opens
// (or creates) the new path, never the unlinked file; an IO that got its
// reference before the deletion may still land in the unlinked file, which is
// an order the two concurrent requests could have had anyway.
//
// Durability helpers shared by the blocking and the io_uring paths:
//  - a newly created chunk's directory entry is durable only after its inode
//    directory is fsynced: dir_durable() says whether that happened (for this
//    file and every creation in that directory before it was opened),
//    sync_dir() does it (blocking), dir_sync_begin()/dir_sync_end() bracket an
//    fsync done elsewhere (through a DiskRing);
//  - sync_written(): blocking group commit of the writes made through one
//    ChunkFile (concurrent writers share one fdatasync);
//  - ChunkFile::rings: per-DiskRing group-commit state for the io_uring path
//    (chunk_store_async.cc).
// After a failed fdatasync the file is poisoned (sync_errno): every later
// sync through it fails and the cache drops it, so the error (which the
// kernel reports once per fd) is never mistaken for a success.
//
// Threading: all ChunkFiles methods are thread-safe. A ChunkFile's fields are
// guarded as noted on each. Blocking: get() on a miss, unlink(),
// remove_from() and sync_dir() do file-system calls (a miss is rare: the
// cache holds the working set); a hit takes one short mutex.
// Errors: the failing call and path ("open /d/chunks/…/3: …").
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace lanefs::backend {

class DiskRing;
struct AsyncWrite;  // one io_uring chunk write (chunk_store_async.cc)

// Group-commit state of one chunk file on one DiskRing. Claimed by a ring's
// thread (owner), then only that thread touches the rest until it releases
// the slot (reset, owner = nullptr) when no write of its own is pending.
struct RingSync {
  std::atomic<const DiskRing*> owner{nullptr};
  uint32_t users = 0;      // writes of this ring not yet acknowledged
  uint32_t writing = 0;    // of those, writes whose bytes are not all in the file yet
  uint64_t completed = 0;  // writes whose bytes reached the file, numbered 1..completed
  uint64_t durable = 0;    // completed writes covered by a finished fdatasync
  bool sync_inflight = false;
  bool sync_scheduled = false;    // a sync start is posted (runs after this poll's completions)
  int64_t blocks = 0;             // st_blocks last reported to this ring's writers
  AsyncWrite* waiters = nullptr;  // completed writes waiting for durability (FIFO)
  AsyncWrite* waiters_tail = nullptr;
};

struct ChunkFile {
  static constexpr int kRingSlots = 4;  // more rings on one file: they sync on their own

  uint64_t ino = 0;
  uint64_t index = 0;
  std::string path;  // for error texts, built once at open
  int fd = -1;
  std::atomic<uint32_t> refs{0};        // the cache holds one while the file is cached
  std::atomic<int> sync_errno{0};       // sticky: a failed fdatasync poisons the fd
  std::atomic<bool> dir_durable{true};  // cached answer of ChunkFiles::dir_durable()
  uint64_t dir_gen = 0;                 // directory generation that must be synced

  // Blocking group commit (sync_written), guarded by sync_mu.
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  uint64_t written = 0;
  uint64_t durable = 0;
  bool syncing = false;

  // Serializes changes of the file's data with its block CRCs (block_crc.h):
  // held across the CRC read-modify-write and the data write, by writers,
  // punch and truncate, and by a reader re-checking a mismatch.
  std::mutex crc_mu;

  RingSync rings[kRingSlots];
  // The calling ring's slot (claiming a free one), or nullptr when every
  // slot is owned by another ring.
  RingSync* claim_ring(const DiskRing* ring);

  // LRU links and cache membership, guarded by the shard's map mutex.
  ChunkFile* lru_prev = nullptr;
  ChunkFile* lru_next = nullptr;
  bool cached = false;
};

class ChunkFiles {
 public:
  // A counted reference to an open chunk file (empty: no file).
  class Ref {
   public:
    Ref() = default;
    explicit Ref(ChunkFile* f) noexcept : f_(f) {}  // adopts one reference
    Ref(const Ref& o) noexcept;
    Ref& operator=(const Ref& o) noexcept;
    Ref(Ref&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
    Ref& operator=(Ref&& o) noexcept;
    ~Ref() { reset(); }
    void reset() noexcept;
    explicit operator bool() const noexcept { return f_ != nullptr; }
    ChunkFile* get() const noexcept { return f_; }
    ChunkFile* operator->() const noexcept { return f_; }
    ChunkFile& operator*() const noexcept { return *f_; }
    int fd() const noexcept { return f_->fd; }

   private:
    ChunkFile* f_ = nullptr;
  };

  // Creates DIR/chunks (syncing each new directory's parent). The cache must
  // fit RLIMIT_NOFILE with 1024 fds to spare: the soft limit is raised
  // towards the hard one when it is lower (process-wide), else at most half
  // the limit is cached.
  static Result<std::unique_ptr<ChunkFiles>> open(const std::string& dir, size_t max_open);
  ~ChunkFiles();  // drops the cache's references; files still referenced close later
  ChunkFiles(const ChunkFiles&) = delete;
  ChunkFiles& operator=(const ChunkFiles&) = delete;

  // The open chunk file (read-write). A missing file gives an empty Ref, or
  // with `create` is created (with its inode directory); *created (optional)
  // says that this call created it.
  Result<Ref> get(uint64_t ino, uint64_t index, bool create, bool* created = nullptr);
  // Evicts and unlinks chunk (ino, index), then syncs its directory. A
  // missing file is not an error.
  Status unlink(uint64_t ino, uint64_t index);
  // Evicts and unlinks every chunk of ino with index >= first_index (names
  // that are not chunk indexes are left alone) and removes the inode
  // directory when it becomes empty; durable on return.
  Status remove_from(uint64_t ino, uint64_t first_index);

  bool dir_durable(ChunkFile& f);
  uint64_t dir_sync_begin(const ChunkFile& f);
  void dir_sync_end(ChunkFile& f, uint64_t gen);
  Status sync_dir(ChunkFile& f);
  // Blocking group commit: call after this thread's write through `f`
  // reached the file; returns once an fdatasync that started after that
  // write is done (sharing it with concurrent callers). *synced (optional)
  // says whether this caller issued the fdatasync.
  Status sync_written(ChunkFile& f, bool* synced = nullptr);

  std::string path_of(uint64_t ino, uint64_t index) const;
  std::string ino_dir(uint64_t ino) const;
  const std::string& root() const { return root_; }
  // Chunk files in the cache now (each holds an fd).
  size_t cached() const;
  // Test hook: runs inside unlink()/remove_from() after a chunk was evicted
  // and before its path is unlinked (set before any concurrent use).
  void set_evict_hook_for_test(std::function<void()> hook) { evict_hook_ = std::move(hook); }

 private:
  struct Key {
    uint64_t ino, index;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  struct DirGen {
    uint64_t created = 0;  // creations of chunk files in this inode directory
    uint64_t synced = 0;   // creations covered by a finished directory fsync
  };
  struct Shard {
    std::mutex ns_mu;           // open-on-miss vs evict+unlink (held across the syscalls)
    mutable std::mutex map_mu;  // map, LRU and dirs (held briefly)
    std::unordered_map<Key, ChunkFile*, KeyHash> map;
    ChunkFile* lru_head = nullptr;  // most recently used
    ChunkFile* lru_tail = nullptr;
    std::unordered_map<uint64_t, DirGen> dirs;  // inode dirs with unsynced creations
  };

  ChunkFiles(std::string root, size_t max_open);
  Shard& shard_of(uint64_t ino);
  ChunkFile* lookup_locked(Shard& s, const Key& k);  // bumps LRU, adds a reference
  ChunkFile* detach_locked(Shard& s, const Key& k);  // removes from the cache
  static void lru_unlink(Shard& s, ChunkFile* f);
  static void release(ChunkFile* f) noexcept;

  std::string root_;  // DIR/chunks
  size_t per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::function<void()> evict_hook_;
};

}  // namespace lanefs::backend

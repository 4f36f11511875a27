#include "backend/chunk_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <string_view>
#include <utility>

namespace lanefs::backend {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status fsync_dir(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return sys_error("open " + path, errno);
  if (::fsync(fd.get()) != 0) return sys_error("fsync " + path, errno);
  return ok_status();
}

// Makes a deletion in inode directory `dir` durable. The directory itself
// may be gone by now (a concurrent remove_from() emptied and removed it):
// then syncing its parent makes that removal, and with it ours, durable.
Status sync_deletion(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return fsync_dir(parent_of(dir));
    return sys_error("open " + dir, errno);
  }
  if (::fsync(fd.get()) != 0) return sys_error("fsync " + dir, errno);
  return ok_status();
}

// Creates `path` if missing. A new directory entry is only durable once its
// parent directory is synced, so do that whenever we created one.
Status ensure_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return fsync_dir(parent_of(path));
  if (errno == EEXIST) return ok_status();
  return sys_error("mkdir " + path, errno);
}

Status mkdir_p(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1))
    LANEFS_TRY(ensure_dir(path.substr(0, pos)));
  return ensure_dir(path);
}

}  // namespace

RingSync* ChunkFile::claim_ring(const DiskRing* ring) {
  for (RingSync& s : rings)
    if (s.owner.load(std::memory_order_acquire) == ring) return &s;
  for (RingSync& s : rings) {
    const DiskRing* none = nullptr;
    if (s.owner.compare_exchange_strong(none, ring, std::memory_order_acq_rel)) return &s;
  }
  return nullptr;
}

// ------------------------------------------------------------------ Ref
ChunkFiles::Ref::Ref(const Ref& o) noexcept : f_(o.f_) {
  if (f_) f_->refs.fetch_add(1, std::memory_order_relaxed);
}

ChunkFiles::Ref& ChunkFiles::Ref::operator=(const Ref& o) noexcept {
  if (this != &o) {
    reset();
    f_ = o.f_;
    if (f_) f_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  return *this;
}

ChunkFiles::Ref& ChunkFiles::Ref::operator=(Ref&& o) noexcept {
  if (this != &o) {
    reset();
    f_ = std::exchange(o.f_, nullptr);
  }
  return *this;
}

void ChunkFiles::Ref::reset() noexcept {
  if (f_) ChunkFiles::release(std::exchange(f_, nullptr));
}

void ChunkFiles::release(ChunkFile* f) noexcept {
  if (f->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  ::close(f->fd);  // close(2) of a regular file: no error worth reporting here
  delete f;
}

// ------------------------------------------------------------ ChunkFiles
size_t ChunkFiles::KeyHash::operator()(const Key& k) const noexcept {
  return static_cast<size_t>((k.ino * 0x9e3779b97f4a7c15ull) ^ (k.index * 0xc2b2ae3d27d4eb4full));
}

namespace {
// The cache must fit the process's fd limit with room for sockets, RocksDB
// and the rest: raise the soft limit towards the hard one if needed (1024 is
// a common default), else cache at most half of what is allowed.
size_t fit_fd_limit(size_t max_open) {
  constexpr size_t kReserve = 1024;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return max_open;
  if (rl.rlim_cur < max_open + kReserve && rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = rl;
    want.rlim_cur = rl.rlim_max == RLIM_INFINITY
                        ? max_open + kReserve
                        : std::min<rlim_t>(rl.rlim_max, max_open + kReserve);
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  if (rl.rlim_cur >= max_open + kReserve) return max_open;
  return std::min<size_t>(max_open, std::max<size_t>(16, rl.rlim_cur / 2));
}
}  // namespace

Result<std::unique_ptr<ChunkFiles>> ChunkFiles::open(const std::string& dir, size_t max_open) {
  if (max_open == 0) return make_error(Errc::kInvalid, "chunk file cache of 0 files");
  max_open = fit_fd_limit(max_open);
  std::string root = dir + "/chunks";
  LANEFS_TRY(mkdir_p(root));
  return std::unique_ptr<ChunkFiles>(new ChunkFiles(std::move(root), max_open));
}

ChunkFiles::ChunkFiles(std::string root, size_t max_open) : root_(std::move(root)) {
  // Shards keep the hit path's mutex uncontended; small caches keep one so
  // the bound is exact.
  size_t shards = std::clamp<size_t>(max_open / 256, 1, 16);
  per_shard_ = (max_open + shards - 1) / shards;
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

ChunkFiles::~ChunkFiles() {
  for (auto& s : shards_) {
    for (auto& [key, f] : s->map) {
      f->cached = false;
      release(f);
    }
    s->map.clear();
  }
}

ChunkFiles::Shard& ChunkFiles::shard_of(uint64_t ino) {
  // Every chunk of an inode in one shard: remove_from() locks one namespace.
  return *shards_[((ino * 0x9e3779b97f4a7c15ull) >> 32) % shards_.size()];
}

std::string ChunkFiles::ino_dir(uint64_t ino) const {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016" PRIx64, ino);
  return root_ + "/" + hex;
}

std::string ChunkFiles::path_of(uint64_t ino, uint64_t index) const {
  return ino_dir(ino) + "/" + std::to_string(index);
}

size_t ChunkFiles::cached() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lk(s->map_mu);
    n += s->map.size();
  }
  return n;
}

void ChunkFiles::lru_unlink(Shard& s, ChunkFile* f) {
  if (f->lru_prev)
    f->lru_prev->lru_next = f->lru_next;
  else
    s.lru_head = f->lru_next;
  if (f->lru_next)
    f->lru_next->lru_prev = f->lru_prev;
  else
    s.lru_tail = f->lru_prev;
  f->lru_prev = f->lru_next = nullptr;
}

ChunkFile* ChunkFiles::lookup_locked(Shard& s, const Key& k) {
  auto it = s.map.find(k);
  if (it == s.map.end()) return nullptr;
  ChunkFile* f = it->second;
  if (s.lru_head != f) {
    lru_unlink(s, f);
    f->lru_next = s.lru_head;
    if (s.lru_head) s.lru_head->lru_prev = f;
    s.lru_head = f;
    if (!s.lru_tail) s.lru_tail = f;
  }
  f->refs.fetch_add(1, std::memory_order_relaxed);
  return f;
}

ChunkFile* ChunkFiles::detach_locked(Shard& s, const Key& k) {
  auto it = s.map.find(k);
  if (it == s.map.end()) return nullptr;
  ChunkFile* f = it->second;
  s.map.erase(it);
  lru_unlink(s, f);
  f->cached = false;
  return f;  // the cache's reference, for the caller to release
}

Result<ChunkFiles::Ref> ChunkFiles::get(uint64_t ino, uint64_t index, bool create, bool* created) {
  if (created) *created = false;
  Shard& s = shard_of(ino);
  Key key{ino, index};
  ChunkFile* poisoned = nullptr;
  {
    std::lock_guard lk(s.map_mu);
    if (ChunkFile* f = lookup_locked(s, key)) {
      if (f->sync_errno.load(std::memory_order_relaxed) == 0) return Ref(f);
      // A failed sync poisons the fd: drop it and open the file afresh.
      release(f);
      poisoned = detach_locked(s, key);
    }
  }
  if (poisoned) release(poisoned);

  std::lock_guard ns(s.ns_mu);
  {
    std::lock_guard lk(s.map_mu);
    if (ChunkFile* f = lookup_locked(s, key)) return Ref(f);  // opened meanwhile
  }
  std::string path = path_of(ino, index);
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  bool made = false;
  if (fd.get() < 0) {
    if (errno != ENOENT) return sys_error("open " + path, errno);
    if (!create) return Ref();
    // The namespace lock keeps remove_from() from removing the directory
    // between these two calls.
    LANEFS_TRY(ensure_dir(ino_dir(ino)));
    fd = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return sys_error("open " + path, errno);
    made = true;
  }
  auto* f = new ChunkFile();
  f->ino = ino;
  f->index = index;
  f->path = path;
  f->fd = fd.release();
  f->refs.store(2, std::memory_order_relaxed);  // the cache's and the caller's
  ChunkFile* victim = nullptr;
  {
    std::lock_guard lk(s.map_mu);
    // A file opened while its directory has unsynced creations (its own or
    // an evicted sibling's) is not acknowledged before the directory is.
    if (made) ++s.dirs[ino].created;
    if (auto it = s.dirs.find(ino); it != s.dirs.end() && it->second.synced < it->second.created) {
      f->dir_gen = it->second.created;
      f->dir_durable.store(false, std::memory_order_relaxed);
    }
    s.map.emplace(key, f);
    f->cached = true;
    f->lru_next = s.lru_head;
    if (s.lru_head) s.lru_head->lru_prev = f;
    s.lru_head = f;
    if (!s.lru_tail) s.lru_tail = f;
    if (s.map.size() > per_shard_) {
      ChunkFile* old = s.lru_tail;
      victim = detach_locked(s, Key{old->ino, old->index});
    }
  }
  if (victim) release(victim);  // closes now unless an IO still holds it
  if (created) *created = made;
  return Ref(f);
}

Status ChunkFiles::unlink(uint64_t ino, uint64_t index) {
  Shard& s = shard_of(ino);
  std::string path = path_of(ino, index);
  {
    std::lock_guard ns(s.ns_mu);
    ChunkFile* victim;
    {
      std::lock_guard lk(s.map_mu);
      victim = detach_locked(s, Key{ino, index});
    }
    if (victim) release(victim);
    if (evict_hook_) evict_hook_();
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return ok_status();
      return sys_error("unlink " + path, errno);
    }
  }
  return sync_deletion(ino_dir(ino));
}

Status ChunkFiles::remove_from(uint64_t ino, uint64_t first_index) {
  Shard& s = shard_of(ino);
  std::string idir = ino_dir(ino);
  std::string to_sync;
  {
    std::lock_guard ns(s.ns_mu);
    std::vector<uint64_t> doomed;
    size_t kept = 0;
    {
      DirPtr d(::opendir(idir.c_str()));
      if (!d) {
        if (errno == ENOENT) return ok_status();
        return sys_error("opendir " + idir, errno);
      }
      while (dirent* e = ::readdir(d.get())) {
        std::string_view name(e->d_name);
        if (name == "." || name == "..") continue;
        uint64_t index = 0;
        auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
        if (ec != std::errc() || end != name.data() + name.size() || index < first_index ||
            std::to_string(index) != name) {
          ++kept;  // foreign names are left alone (and keep the directory)
          continue;
        }
        doomed.push_back(index);
      }
    }
    for (uint64_t index : doomed) {
      ChunkFile* victim;
      {
        std::lock_guard lk(s.map_mu);
        victim = detach_locked(s, Key{ino, index});
      }
      if (victim) release(victim);
      if (evict_hook_) evict_hook_();
      std::string path = idir + "/" + std::to_string(index);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error("unlink " + path, errno);
    }
    if (kept > 0) {
      if (doomed.empty()) return ok_status();
      to_sync = idir;
    } else if (::rmdir(idir.c_str()) == 0) {
      std::lock_guard lk(s.map_mu);
      s.dirs.erase(ino);  // nothing left whose name needs syncing
      to_sync = root_;
    } else if (errno == ENOENT) {
      return ok_status();
    } else if (errno == ENOTEMPTY || errno == EEXIST) {
      to_sync = idir;  // something appeared that is not ours to remove
    } else {
      return sys_error("rmdir " + idir, errno);
    }
  }
  return to_sync == root_ ? fsync_dir(root_) : sync_deletion(to_sync);
}

bool ChunkFiles::dir_durable(ChunkFile& f) {
  if (f.dir_durable.load(std::memory_order_acquire)) return true;
  Shard& s = shard_of(f.ino);
  std::lock_guard lk(s.map_mu);
  auto it = s.dirs.find(f.ino);
  bool durable = it == s.dirs.end() || it->second.synced >= f.dir_gen;
  if (durable) f.dir_durable.store(true, std::memory_order_release);
  return durable;
}

uint64_t ChunkFiles::dir_sync_begin(const ChunkFile& f) {
  Shard& s = shard_of(f.ino);
  std::lock_guard lk(s.map_mu);
  auto it = s.dirs.find(f.ino);
  return it == s.dirs.end() ? f.dir_gen : std::max(f.dir_gen, it->second.created);
}

void ChunkFiles::dir_sync_end(ChunkFile& f, uint64_t gen) {
  Shard& s = shard_of(f.ino);
  {
    std::lock_guard lk(s.map_mu);
    auto it = s.dirs.find(f.ino);
    if (it != s.dirs.end()) {
      it->second.synced = std::max(it->second.synced, gen);
      if (it->second.synced >= it->second.created) s.dirs.erase(it);
    }
  }
  if (gen >= f.dir_gen) f.dir_durable.store(true, std::memory_order_release);
}

Status ChunkFiles::sync_dir(ChunkFile& f) {
  if (dir_durable(f)) return ok_status();
  uint64_t gen = dir_sync_begin(f);
  std::string dir = ino_dir(f.ino);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    // The directory is gone: remove_from() took the chunk with it and made
    // that durable; this write is ordered before the removal.
    if (errno != ENOENT) return sys_error("open " + dir, errno);
  } else if (::fsync(fd.get()) != 0) {
    return sys_error("fsync " + dir, errno);
  }
  dir_sync_end(f, gen);
  return ok_status();
}

Status ChunkFiles::sync_written(ChunkFile& f, bool* synced) {
  if (synced) *synced = false;
  std::unique_lock lk(f.sync_mu);
  uint64_t mine = ++f.written;
  for (;;) {
    if (f.durable >= mine) return ok_status();
    if (int err = f.sync_errno.load(std::memory_order_relaxed))
      return sys_error("fdatasync " + path_of(f.ino, f.index), err);
    if (!f.syncing) {
      // Leader: one fdatasync for every write that reached the file before
      // it starts (ours included); later writers wait for the next one.
      f.syncing = true;
      uint64_t cover = f.written;
      lk.unlock();
      int rc = ::fdatasync(f.fd);
      int err = errno;
      if (synced) *synced = true;
      lk.lock();
      f.syncing = false;
      if (rc == 0)
        f.durable = std::max(f.durable, cover);
      else
        f.sync_errno.store(err, std::memory_order_relaxed);
      f.sync_cv.notify_all();
      continue;
    }
    f.sync_cv.wait(lk);
  }
}

}  // namespace lanefs::backend

// The io_uring half of ChunkStore: read_async/write_async on a DiskRing, with
// group commit per (chunk file, ring). Everything here runs on the ring's
// thread; the only shared state it touches is the fd cache (thread-safe), a
// file's RingSync slot, which belongs to this ring while it is claimed, and
// the file's crc_mu.
//
// Writes put their bytes (and block CRCs) into the page cache inline, under
// the file's crc_mu (block_crc.h: a partial block's CRC reads its other bytes,
// which must not change meanwhile); only the fdatasync and the directory
// fsync go through the ring. Reads go through the ring (or inline when
// cached) and check the blocks' CRCs on this thread when their bytes are in.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "backend/chunk_store_internal.h"
#include "backend/disk_ring.h"
#include "common/clock.h"

namespace lanefs::backend {

// One write_async() from call to acknowledgement.
struct AsyncWrite {
  ChunkStore* store = nullptr;
  DiskRing* ring = nullptr;
  ChunkFiles::Ref file;
  RingSync* slot = nullptr;    // nullptr: more rings than slots, syncs on its own
  AsyncWrite* next = nullptr;  // the slot's waiter list, or the pool's freelist
  struct iovec iov[2] = {};
  unsigned iovcnt = 0;
  uint64_t seq = 0;           // position among the slot's completed writes
  uint64_t reached_ns = 0;    // when its bytes were all in the file
  int64_t blocks_before = 0;  // slot-less writes: st_blocks before
  int dir_fd = -1;
  uint64_t dir_gen = 0;
  Error error;  // a failure found before any IO was queued
  ChunkStore::WriteDone done;
};

namespace {

using Impl = ChunkStore::Impl;

// How long the first write of a group may wait for writes of the same file
// that are still being written before its sync starts anyway.
constexpr uint64_t kGroupWaitNs = 200'000;

struct AsyncRead {
  ChunkStore* store = nullptr;
  DiskRing* ring = nullptr;
  ChunkFiles::Ref file;
  AsyncRead* next = nullptr;
  uint8_t* dst = nullptr;
  uint32_t len = 0;
  uint32_t got = 0;
  uint64_t off = 0;
  bool failed = false;
  bool checked = false;  // its blocks' CRCs were checked as it was read
  Error error;
  ChunkStore::ReadDone done;
};

// Operation contexts are reused per thread (the ring's thread allocates and
// frees them): no allocation per IO once the loop's depth is reached.
template <class T>
class Pool {
 public:
  static T* get() {
    Pool& p = local();
    if (T* t = p.free_) {
      p.free_ = t->next;
      t->next = nullptr;
      return t;
    }
    return new T();
  }
  static void put(T* t) {
    Pool& p = local();
    t->next = p.free_;
    p.free_ = t;
  }

 private:
  ~Pool() {
    while (free_) delete std::exchange(free_, free_->next);
  }
  static Pool& local() {
    thread_local Pool pool;
    return pool;
  }
  T* free_ = nullptr;
};

// ------------------------------------------------------------------ reads
void finish_read(AsyncRead* r) {
  if (!r->failed && !r->checked && r->file && r->len > 0) {
    // Synchronous preads of the CRC slots (and of a partial block's other
    // bytes) on the loop's thread: page-cache hits once the file is warm.
    if (Status c = Impl::check_read(*r->store, *r->file, static_cast<uint32_t>(r->off), r->len, r->dst); !c.ok()) {
      r->failed = true;
      r->error = std::move(c).error();
    }
  }
  ChunkStore::ReadDone done = std::move(r->done);
  Status st = r->failed ? Status(std::move(r->error)) : ok_status();
  r->file.reset();
  r->failed = r->checked = false;
  Pool<AsyncRead>::put(r);
  done(std::move(st));
}

void issue_read(AsyncRead* r);

void on_read(AsyncRead* r, int32_t res) {
  if (res == -EINTR || res == -EAGAIN) return issue_read(r);
  if (res < 0) {
    r->failed = true;
    r->error = sys_error("pread " + r->file->path, -res);
    return finish_read(r);
  }
  if (res == 0) {  // EOF: beyond the chunk file's end reads as zeros
    std::memset(r->dst + r->got, 0, r->len - r->got);
    return finish_read(r);
  }
  r->got += static_cast<uint32_t>(res);
  if (r->got < r->len) return issue_read(r);  // short read: continue
  finish_read(r);
}

void issue_read(AsyncRead* r) {
  r->ring->read(r->file.fd(), r->dst + r->got, r->len - r->got, r->off + r->got,
                [r](int32_t res) { on_read(r, res); });
}

// ----------------------------------------------------------------- writes
void release_slot(RingSync* s) {
  s->completed = s->durable = 0;
  s->writing = 0;
  s->sync_inflight = s->sync_scheduled = false;
  s->blocks = 0;
  s->waiters = s->waiters_tail = nullptr;
  s->owner.store(nullptr, std::memory_order_release);
}

void finish_write(AsyncWrite* w, Result<int64_t> r) {
  ChunkStore::WriteDone done = std::move(w->done);
  if (RingSync* s = w->slot; s != nullptr && --s->users == 0) release_slot(s);
  w->slot = nullptr;
  w->file.reset();
  if (w->dir_fd >= 0) ::close(std::exchange(w->dir_fd, -1));
  Pool<AsyncWrite>::put(w);
  done(std::move(r));
}

// Durable, directory entry included: report the allocation change.
void ack(AsyncWrite* w) {
  struct stat st;
  if (::fstat(w->file.fd(), &st) != 0)
    return finish_write(w, sys_error("fstat " + w->file->path, errno));
  auto now = static_cast<int64_t>(st.st_blocks);
  int64_t delta;
  if (RingSync* s = w->slot) {
    // Telescoping per slot: writes acknowledged together never count the
    // same blocks twice.
    delta = now - s->blocks;
    s->blocks = now;
  } else {
    delta = now - w->blocks_before;
  }
  finish_write(w, delta);
}

// The data is durable; a new chunk file's name needs its directory synced.
void durable(AsyncWrite* w) {
  ChunkFiles& files = Impl::files(*w->store);
  if (files.dir_durable(*w->file)) return ack(w);
  Impl::dir_syncs(*w->store).fetch_add(1, std::memory_order_relaxed);
  w->dir_gen = files.dir_sync_begin(*w->file);
  std::string dir = files.ino_dir(w->file->ino);
  w->dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->dir_fd < 0) {
    // Gone: remove_from() deleted the chunk durably after this write.
    if (errno != ENOENT) return finish_write(w, sys_error("open " + dir, errno));
    files.dir_sync_end(*w->file, w->dir_gen);
    return ack(w);
  }
  w->ring->fsync(w->dir_fd, [w](int32_t res) {
    ChunkFiles& files = Impl::files(*w->store);
    if (res < 0) return finish_write(w, sys_error("fsync " + files.ino_dir(w->file->ino), -res));
    files.dir_sync_end(*w->file, w->dir_gen);
    ack(w);
  });
}

void fail_sync(AsyncWrite* w, int err) {
  finish_write(w, sys_error("fdatasync " + w->file->path, err));
}

void maybe_sync(ChunkStore* cs, DiskRing* ring, ChunkFile* f, RingSync* s);

void sync_done(ChunkStore* cs, DiskRing* ring, ChunkFile* f, RingSync* s, uint64_t cover,
               int32_t res) {
  s->sync_inflight = false;
  if (res < 0)
    f->sync_errno.store(-res, std::memory_order_relaxed);  // poisoned: see chunk_files.h
  else
    s->durable = cover;
  // Take the covered writes off the list before acknowledging any: an
  // acknowledgement may queue new writes on this slot.
  AsyncWrite* covered = nullptr;
  AsyncWrite** tail = &covered;
  while (s->waiters != nullptr && s->waiters->seq <= cover) {
    AsyncWrite* w = s->waiters;
    s->waiters = w->next;
    w->next = nullptr;
    *tail = w;
    tail = &w->next;
  }
  if (s->waiters == nullptr)
    s->waiters_tail = nullptr;
  else
    maybe_sync(cs, ring, f, s);  // they completed while this sync ran
  while (covered != nullptr) {
    AsyncWrite* w = std::exchange(covered, covered->next);
    w->next = nullptr;
    if (res < 0)
      fail_sync(w, -res);
    else
      durable(w);
  }
}

void start_sync(ChunkStore* cs, DiskRing* ring, ChunkFile* f, RingSync* s) {
  s->sync_scheduled = false;
  if (s->sync_inflight || s->durable >= s->completed) return;
  if (int err = f->sync_errno.load(std::memory_order_relaxed)) {
    // Poisoned by a failed sync (maybe on another thread): a new fdatasync
    // could report success for data the kernel already dropped.
    while (AsyncWrite* w = s->waiters) {
      s->waiters = w->next;
      w->next = nullptr;
      if (s->waiters == nullptr) s->waiters_tail = nullptr;
      fail_sync(w, err);
    }
    return;
  }
  s->sync_inflight = true;
  // Covers every write of this ring that completed before now: the SQE is
  // queued after their completions were reaped.
  uint64_t cover = s->completed;
  Impl::syncs(*cs).fetch_add(1, std::memory_order_relaxed);
  ring->fdatasync(f->fd,
                  [cs, ring, f, s, cover](int32_t res) { sync_done(cs, ring, f, s, cover, res); });
}

// Starts a sync for the waiting writes unless one is in flight or they
// had better wait: while writes of this file issued on this ring are still
// being written (an io-wq worker may finish them a little later), the group
// waits for them, up to kGroupWaitNs, so one sync covers them all. Every
// write completion or failure calls this again, so a waiting group is never
// forgotten.
void maybe_sync(ChunkStore* cs, DiskRing* ring, ChunkFile* f, RingSync* s) {
  if (s->sync_inflight || s->sync_scheduled || s->waiters == nullptr) return;
  if (s->writing > 0 && mono_ns() - s->waiters->reached_ns < kGroupWaitNs) return;
  s->sync_scheduled = true;
  // Posted, so it starts after the rest of this poll()'s completions: writes
  // that finished in the same batch share it.
  ring->post([cs, ring, f, s](int32_t) { start_sync(cs, ring, f, s); });
}

// All bytes are in the file (page cache): now they need a sync that starts
// after this point.
void reached_file(AsyncWrite* w) {
  ChunkFile& f = *w->file;
  Impl::writes(*w->store).fetch_add(1, std::memory_order_relaxed);
  RingSync* s = w->slot;
  if (s) --s->writing;
  if (int err = f.sync_errno.load(std::memory_order_relaxed)) {
    if (s) maybe_sync(w->store, w->ring, &f, s);
    return fail_sync(w, err);
  }
  if (s == nullptr) {
    Impl::syncs(*w->store).fetch_add(1, std::memory_order_relaxed);
    w->ring->fdatasync(f.fd, [w](int32_t res) {
      if (res < 0) {
        w->file->sync_errno.store(-res, std::memory_order_relaxed);
        return fail_sync(w, -res);
      }
      durable(w);
    });
    return;
  }
  w->seq = ++s->completed;
  w->reached_ns = mono_ns();
  w->next = nullptr;
  if (s->waiters_tail)
    s->waiters_tail->next = w;
  else
    s->waiters = w;
  s->waiters_tail = w;
  maybe_sync(w->store, w->ring, &f, s);
}

// Joins this ring's group on the file (or notes st_blocks for a slot-less
// write) before the bytes go out.
Status begin_write(AsyncWrite* w) {
  ChunkFile& f = *w->file;
  RingSync* s = f.claim_ring(w->ring);
  if (s == nullptr || s->users == 0) {
    struct stat st;
    if (::fstat(f.fd, &st) != 0) {
      int err = errno;
      if (s) release_slot(s);
      return sys_error("fstat " + f.path, err);
    }
    if (s)
      s->blocks = st.st_blocks;
    else
      w->blocks_before = st.st_blocks;
  }
  if (s) {
    ++s->users;
    ++s->writing;
  }
  w->slot = s;
  return ok_status();
}

// Reads what is already in the page cache without a round trip through
// io_uring (whose worker thread a page-cache hit would otherwise cost), with
// RWF_NOWAIT. True when the read is complete (or failed); false: continue
// with the ring from r->got. (A memory-backed store reads with
// Impl::read_checked instead.)
bool read_inline(AsyncRead* r) {
  while (r->got < r->len) {
    struct iovec io = {r->dst + r->got, r->len - r->got};
    ssize_t n = ::preadv2(r->file.fd(), &io, 1, static_cast<off_t>(r->off + r->got), RWF_NOWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EOPNOTSUPP) return false;  // not cached: the ring waits for it
      r->failed = true;
      r->error = sys_error("pread " + r->file->path, errno);
      return true;
    }
    if (n == 0) {  // EOF: beyond the chunk file's end reads as zeros
      std::memset(r->dst + r->got, 0, r->len - r->got);
      return true;
    }
    r->got += static_cast<uint32_t>(n);
    if (r->got < r->len) return false;  // partly cached
  }
  return true;
}

// A memory-backed store: the write is done inline (nothing to wait for, no
// stable storage to sync); the allocation change is measured around it.
Result<int64_t> write_inline(ChunkStore& cs, ChunkFile& f, uint32_t off, const struct iovec* iov, unsigned iovcnt,
                             size_t total) {
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return sys_error("fstat " + f.path, errno);
  int64_t before = st.st_blocks;
  LANEFS_TRY(Impl::write_data(cs, f, off, iov, iovcnt, total));
  Impl::writes(cs).fetch_add(1, std::memory_order_relaxed);
  if (::fstat(f.fd, &st) != 0) return sys_error("fstat " + f.path, errno);
  return int64_t{st.st_blocks} - before;
}

}  // namespace

void ChunkStore::read_async(DiskRing& ring, uint64_t ino, uint64_t index, uint32_t off,
                            uint32_t len, uint8_t* dst, ReadDone done) {
  AsyncRead* r = Pool<AsyncRead>::get();
  r->store = this;
  r->ring = &ring;
  r->dst = dst;
  r->len = len;
  r->got = 0;
  r->off = off;
  r->done = std::move(done);
  Status st = chunk_internal::check_range(chunk_size_, off, len);
  if (st.ok()) {
    auto f = files_->get(ino, index, /*create=*/false);
    if (f.ok())
      r->file = std::move(*f);
    else
      st = std::move(f).error();
  }
  if (!st.ok()) {
    r->failed = true;
    r->error = std::move(st).error();
  } else if (!r->file || len == 0) {
    std::memset(dst, 0, len);  // never written: a hole
  } else if (memory_backed_) {
    // Nothing to wait for: read and checked here, slice by slice.
    r->checked = true;
    if (Status c = Impl::read_checked(*this, *r->file, off, len, dst); !c.ok()) {
      r->failed = true;
      r->error = std::move(c).error();
    }
  } else if (!read_inline(r)) {
    return issue_read(r);  // not all in memory: the rest through the ring
  }
  ring.post([r](int32_t) { finish_read(r); });
}

void ChunkStore::write_async(DiskRing& ring, uint64_t ino, uint64_t index, uint32_t off,
                             std::span<const uint8_t> a, std::span<const uint8_t> b,
                             WriteDone done) {
  AsyncWrite* w = Pool<AsyncWrite>::get();
  w->store = this;
  w->ring = &ring;
  w->done = std::move(done);
  size_t total = a.size() + b.size();
  Status st = chunk_internal::check_range(chunk_size_, off, total);
  if (st.ok()) {
    auto f = files_->get(ino, index, /*create=*/true);
    if (f.ok())
      w->file = std::move(*f);
    else
      st = std::move(f).error();
  }
  if (st.ok() && memory_backed_) {
    w->iovcnt = 0;
    for (auto part : {a, b})
      if (!part.empty()) w->iov[w->iovcnt++] = {const_cast<uint8_t*>(part.data()), part.size()};
    Result<int64_t> r = total == 0 ? Result<int64_t>(int64_t{0}) : write_inline(*this, *w->file, off, w->iov, w->iovcnt, total);
    // Delivered from the ring's next poll, like every completion.
    if (r.ok()) {
      w->blocks_before = *r;
      ring.post([w](int32_t) { finish_write(w, w->blocks_before); });
    } else {
      w->error = std::move(r).error();
      ring.post([w](int32_t) { finish_write(w, std::move(w->error)); });
    }
    return;
  }
  if (st.ok()) st = begin_write(w);
  if (st.ok() && total > 0) {
    w->iovcnt = 0;
    for (auto part : {a, b})
      if (!part.empty()) w->iov[w->iovcnt++] = {const_cast<uint8_t*>(part.data()), part.size()};
    st = Impl::write_data(*this, *w->file, off, w->iov, w->iovcnt, total);
    if (!st.ok() && w->slot != nullptr) --w->slot->writing;
  }
  if (!st.ok()) {
    w->error = std::move(st).error();
    ring.post([w](int32_t) { finish_write(w, std::move(w->error)); });
    return;
  }
  // In the file (even when nothing was written, the maybe new file is made
  // durable); from the next poll on, the group commit below.
  ring.post([w](int32_t) { reached_file(w); });
}

}  // namespace lanefs::backend

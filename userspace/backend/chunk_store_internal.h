// Internal to the chunk store's .cc files: what chunk_store.cc and
// chunk_store_async.cc share. Not an interface.
#pragma once

#include <sys/uio.h>

#include "backend/block_crc.h"
#include "backend/chunk_files.h"
#include "backend/chunk_store.h"

namespace lanefs::backend {

namespace chunk_internal {
// kInvalid unless [offset, offset+len) lies inside a chunk.
Status check_range(uint32_t chunk_size, uint64_t offset, uint64_t len);
// pwritev of every byte of iov (short writes continued).
Status pwritev_all(int fd, const struct iovec* iov, unsigned iovcnt, uint64_t off, size_t total,
                   const std::string& path);
}  // namespace chunk_internal

struct ChunkStore::Impl {
  // Group commit of a blocking write through f, then its directory entry.
  static Status sync_blocking(ChunkStore& cs, ChunkFile& f);
  static ChunkFiles& files(ChunkStore& cs) { return *cs.files_; }
  static std::atomic<uint64_t>& writes(ChunkStore& cs) { return cs.writes_; }
  static std::atomic<uint64_t>& syncs(ChunkStore& cs) { return cs.syncs_; }
  static std::atomic<uint64_t>& dir_syncs(ChunkStore& cs) { return cs.dir_syncs_; }

  // Changes [off, off + len) of f's data with `change` (which writes `data`
  // there, or zeros when data is null) and keeps the block CRCs in step:
  // under f.crc_mu, new CRCs staged, the change, the CRCs settled
  // (block_crc.h). The one lock on the write path: per chunk file, held for
  // page-cache writes only (the fdatasync comes after).
  template <class Change>
  static Status update(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, const struct iovec* data,
                       unsigned iovcnt, Change&& change) {
    thread_local BlockCrc::Update u;  // per thread: no allocation once warm
    std::lock_guard lk(f.crc_mu);
    LANEFS_TRY(cs.crc_.compute(f.fd, off, len, data, iovcnt, &u, f.path));
    LANEFS_TRY(cs.crc_.stage(f.fd, u, f.path));
    if (Status st = change(); !st.ok()) {
      // Part of it may have landed (a write cut short by ENOSPC): the slots
      // follow what the file holds now. Best effort: the error is the
      // change's.
      if (cs.crc_.resync(f.fd, off, len, &u, f.path).ok() && cs.crc_.stage(f.fd, u, f.path).ok())
        (void)cs.crc_.settle(f.fd, u, f.path);
      return st;
    }
    return cs.crc_.settle(f.fd, u, f.path);
  }
  // Writes iov (total bytes) at off with its CRCs.
  static Status write_data(ChunkStore& cs, ChunkFile& f, uint32_t off, const struct iovec* iov, unsigned iovcnt,
                           size_t total) {
    return update(cs, f, off, static_cast<uint32_t>(total), iov, iovcnt, [&] {
      return chunk_internal::pwritev_all(f.fd, iov, iovcnt, off, total, f.path);
    });
  }
  // After [off, off + len) of f was read into dst: checks the blocks' CRCs
  // (a mismatch is checked again, data re-read, under f.crc_mu). A damaged
  // block is logged with the chunk's path, counted, and kCorrupt.
  static Status check_read(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, uint8_t* dst);
  // Reads [off, off + len) of f into dst (beyond its end: zeros) and checks
  // it as it arrives (BlockCrc::read_checked), with check_read's outcomes.
  static Status read_checked(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, uint8_t* dst);
  // A mismatch seen without the lock: checked again under f.crc_mu with the
  // data re-read; still there, it is logged, counted and kCorrupt.
  static Status confirm_damage(ChunkStore& cs, ChunkFile& f, uint32_t off, uint32_t len, uint8_t* dst);
};

}  // namespace lanefs::backend

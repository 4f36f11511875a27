// Internal to the chunk store's .cc files: what chunk_store.cc and
// chunk_store_async.cc share. Not an interface.
#pragma once

#include "backend/chunk_files.h"
#include "backend/chunk_store.h"

namespace lanefs::backend {

namespace chunk_internal {
// kInvalid unless [offset, offset+len) lies inside a chunk.
Status check_range(uint32_t chunk_size, uint64_t offset, uint64_t len);
}  // namespace chunk_internal

struct ChunkStore::Impl {
  // Group commit of a blocking write through f, then its directory entry.
  static Status sync_blocking(ChunkStore& cs, ChunkFile& f);
  static ChunkFiles& files(ChunkStore& cs) { return *cs.files_; }
  static std::atomic<uint64_t>& writes(ChunkStore& cs) { return cs.writes_; }
  static std::atomic<uint64_t>& syncs(ChunkStore& cs) { return cs.syncs_; }
  static std::atomic<uint64_t>& dir_syncs(ChunkStore& cs) { return cs.dir_syncs_; }
};

}  // namespace lanefs::backend

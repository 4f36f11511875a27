// ChunkStore: the DRIVES role of a backend, durable fixed-size chunks on the
// local disk.
//
// A file's data is split into chunks of `chunk_size` bytes (1 MiB default);
// chunk (ino, index) covers bytes [index*chunk_size, (index+1)*chunk_size).
// Each chunk is one sparse file under DIR/chunks/<ino hex>/<index>; holes
// (never-written ranges, missing chunk files) read as zeros.
//
// Open files: chunk files stay open in an fd cache (ChunkFiles, at most
// `max_open_files`, LRU) shared by every thread and both APIs below; deleting
// a chunk (truncate to 0, remove_from) evicts it first, so later IO reopens or
// recreates the path.
//
// Two APIs over the same files:
//  - blocking methods (write, read, truncate, punch, sealed variants, ...),
//    for worker threads;
//  - read_async()/write_async() on a DiskRing, for an event loop that must
//    never wait for a device: reads, fdatasyncs and directory fsyncs are
//    io_uring SQEs whose completions run from the ring's poll() on the
//    loop's thread; a write's bytes go into the page cache inline (with
//    their block CRCs, under the file's crc_mu), only its sync is queued.
//
// Durability: a write is acknowledged (write() returns, write_async()'s done
// runs with a value) only after an fdatasync that was *submitted after the
// write's bytes reached the file* has completed, and, when the chunk file was
// created recently, after its inode directory was fsynced too. So an
// acknowledged write survives kill -9 and a restart (and power loss, as far as
// the disk honours flushes).
// Group commit: concurrent writers of one chunk file share fdatasyncs. On the
// blocking path every thread writing through the same open file joins the
// sync in flight or the next one; on a DiskRing, writes of one file on that
// ring share one fdatasync at a time (see write_async). stats() counts
// writes and syncs, so the grouping can be seen.
//
// Threading: all methods are thread-safe; the async methods must be called on
// the thread that drives `ring`. Concurrent writes to the same chunk range are
// applied in some order (last writer wins per byte).
// Errors: kInvalid for ranges outside a chunk; kNoSpace/kIo (etc., from
// errno) from the disk with the failing call and path named ("pwrite
// /d/chunks/00…0a/3: No space left on device"); the async methods deliver the
// same errors, with the same texts, to their callback.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/block_crc.h"
#include "common/inline_fn.h"
#include "common/result.h"

namespace lanefs::backend {

struct ChunkFile;
class ChunkFiles;
class DiskRing;

class ChunkStore {
 public:
  static constexpr size_t kDefaultMaxOpenFiles = 4096;
  static Result<std::unique_ptr<ChunkStore>> open(const std::string& dir, uint32_t chunk_size,
                                                  size_t max_open_files = kDefaultMaxOpenFiles);
  // Closes every cached file. Async operations must have completed (their
  // rings polled until inflight() is 0) before the store is destroyed.
  ~ChunkStore();

  uint32_t chunk_size() const { return chunk_size_; }
  // True when the store lives on memory (tmpfs, ramfs): there is no stable
  // storage to sync to (fdatasync is a no-op there), and IO never waits for a
  // device, so the async methods do it inline on the loop's thread instead of
  // handing it to io_uring's worker threads (which that filesystem would
  // need: it has no non-blocking reads or writes).
  bool memory_backed() const { return memory_backed_; }

  // Writes `data` at `offset` within chunk (ino, index); offset + size must
  // not exceed chunk_size. Durable on return.
  Status write(uint64_t ino, uint64_t index, uint32_t offset, std::span<const uint8_t> data);
  // Reads len bytes at offset within the chunk into out (resized to len);
  // bytes never written read as zeros. offset + len <= chunk_size.
  Status read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len, std::vector<uint8_t>* out);
  // Same, into caller memory of at least len bytes (an RDMA buffer).
  Status read_into(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len, uint8_t* dst);
  // Cuts chunk (ino, index) to `len` bytes (0 removes it). Durable on return.
  Status truncate(uint64_t ino, uint64_t index, uint32_t len);
  // Deallocates [offset, offset+len) inside a chunk (reads as zeros after).
  Status punch(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len);
  // Removes every chunk of ino with index >= first_index held here.
  Status remove_from(uint64_t ino, uint64_t first_index);
  // 512-byte blocks allocated on disk for chunk (ino, index); 0 if absent.
  Result<uint64_t> chunk_blocks(uint64_t ino, uint64_t index);
  // 512-byte blocks allocated on disk for ino's chunks held here.
  Result<uint64_t> allocated_blocks(uint64_t ino);
  // Space of the filesystem holding the store (statvfs).
  Status space(uint64_t* total_bytes, uint64_t* free_bytes, uint64_t* avail_bytes);
  // Bytes of chunk data stored here (allocated blocks * 512), for status.
  uint64_t stored_bytes();

  // ---- asynchronous IO on a DiskRing (the event loop's data path)
  // Both validate like their blocking versions and deliver every outcome,
  // errors included, to `done` from ring.poll(); done never runs inside the
  // call itself. dst must stay valid until done has run. A cache miss
  // opens (or creates) the chunk file synchronously, which is rare.
  using ReadDone = InlineFn<void(Status), 64>;
  // Reads len bytes at `off` of chunk (ino, index) into dst; holes and bytes
  // beyond the chunk file's end read as zeros. Short reads are continued.
  void read_async(DiskRing& ring, uint64_t ino, uint64_t index, uint32_t off, uint32_t len,
                  uint8_t* dst, ReadDone done);
  // The allocation change of the chunk in 512-byte blocks, as data_ops.cc
  // reports it (st_blocks after the write minus before; writes of one file
  // in flight together on one ring split the change between them without
  // counting it twice).
  using WriteDone = InlineFn<void(Result<int64_t>), 64>;
  // Writes a ++ b at `off` (off + a.size() + b.size() <= chunk_size) and
  // makes it durable before done runs: group commit. The bytes (and their
  // block CRCs) reach the file inside the call; a and b are not used after
  // it returns. The write is acknowledged only after an fdatasync submitted
  // after that has completed; at most one fdatasync per file per ring is in
  // flight, writes made meanwhile wait for the next one, which covers all of
  // them. Writes issued in the same poll share one sync (it starts after
  // that poll's completions).
  // A chunk file created by this write (or recently, by another) also has
  // its inode directory fsynced through the ring (an IORING_OP_FSYNC on the
  // directory) before done; creating a new inode directory (mkdir + fsync of
  // its parent) happens synchronously inside the call (the first write of a
  // file to this backend). More than ChunkFile::kRingSlots rings writing one
  // file at once: the extra rings' writes sync one by one.
  void write_async(DiskRing& ring, uint64_t ino, uint64_t index, uint32_t off,
                   std::span<const uint8_t> a, std::span<const uint8_t> b, WriteDone done);

  struct Stats {
    uint64_t writes = 0;      // data writes that reached a chunk file (blocking + async)
    uint64_t syncs = 0;       // fdatasyncs issued to make data writes durable
    uint64_t dir_syncs = 0;   // inode directory fsyncs for new chunk files
    uint64_t open_files = 0;  // chunk files in the fd cache now
    uint64_t corrupt_blocks = 0;  // reads (and scrubs) that found a block failing its CRC
  };
  Stats stats() const;

  struct Impl;  // internal: helpers of the store's .cc files (chunk_store_internal.h)

  // ---- sealed chunks (encrypted filesystems)
  // A sealed chunk file holds ciphertext at [0, chunk_size) and, after it,
  // one kSealBytes seal (nonce, tag) per kSealBlock block at
  // chunk_size + block_in_chunk * kSealBytes. The store never interprets
  // seals; an all-zero seal is how the client recognizes a hole. Offsets and
  // lengths are block-aligned (kInvalid otherwise, or when chunk_size is not
  // a multiple of kSealBlock).
  static constexpr uint32_t kSealBlock = 4096;
  static constexpr uint32_t kSealBytes = 32;
  // Largest byte offset a chunk file can reach: data area plus seal area.
  uint64_t max_chunk_bytes() const { return uint64_t{chunk_size_} + uint64_t{chunk_size_} / kSealBlock * kSealBytes; }
  // Writes data at offset and the blocks' seals (data.size()/4096*32 bytes),
  // then one fdatasync: durable on return.
  Status write_sealed(uint64_t ino, uint64_t index, uint32_t offset, std::span<const uint8_t> data,
                      std::span<const uint8_t> seals);
  // out = len bytes of data followed by len/4096*32 bytes of seals (zeros
  // where nothing was written).
  Status read_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len, std::vector<uint8_t>* out);
  // Deallocates [offset, offset+len) and zeroes those blocks' seals.
  Status punch_sealed(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len);
  // Keeps the blocks that start before `len` (data and seals) and drops the
  // rest of the chunk; 0 removes the chunk. Durable on return.
  Status truncate_sealed(uint64_t ino, uint64_t index, uint32_t len);

  // ---- checksums at rest (block_crc.h)
  // Every block of every chunk carries a CRC32C, kept by every write, punch
  // and truncate (plain and sealed) and checked by every read: a block that
  // fails is kCorrupt ("chunk /d/chunks/…/3 block 5 (byte 20480 of the
  // chunk) fails its CRC32C"), logged and counted, and never returned.
  // Inode numbers with chunk files here (names that are not inode
  // directories are skipped).
  Result<std::vector<uint64_t>> stored_inos();
  struct Damage {
    uint64_t ino = 0, index = 0;
    uint32_t block = 0;  // block within the chunk (4 KiB each)
    std::string path;
  };
  struct ScrubTally {
    uint64_t chunks = 0, blocks = 0;
    std::vector<Damage> damaged;
  };
  // Checks every block of ino's chunk files held here, adding to *t.
  // Blocking; IO errors other than damage are returned.
  Status scrub_ino(uint64_t ino, ScrubTally* t);

 private:
  ChunkStore(std::string dir, uint32_t chunk_size, std::unique_ptr<ChunkFiles> files);
  std::string path_of(uint64_t ino, uint64_t index) const;
  // fdatasync of a cached file outside the write path (truncate, punch); a
  // failure poisons the file (ChunkFiles).
  Status datasync(ChunkFile& f);
  std::string dir_;
  uint32_t chunk_size_;
  bool memory_backed_ = false;
  std::unique_ptr<ChunkFiles> files_;
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> dir_syncs_{0};
  std::atomic<uint64_t> corrupt_blocks_{0};
  BlockCrc crc_;
};

}  // namespace lanefs::backend

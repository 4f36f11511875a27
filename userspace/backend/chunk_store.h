// ChunkStore: the DRIVES role of a backend, durable fixed-size chunks on the
// local disk.
//
// A file's data is split into chunks of `chunk_size` bytes (1 MiB default);
// chunk (ino, index) covers bytes [index*chunk_size, (index+1)*chunk_size).
// Each chunk is one sparse file under DIR/chunks/<ino hex>/<index>; holes
// (never-written ranges, missing chunk files) read as zeros.
//
// Durability: write() returns only after the data and the file's metadata
// are on stable storage (pwrite + fdatasync, and an fsync of the directory
// when the chunk file was created), so an acknowledged write survives kill -9
// and a restart.
//
// Threading: all methods are thread-safe; concurrent writes to the same
// chunk range are applied in some order (last writer wins per byte).
// Errors: kInvalid for ranges outside a chunk; kNoSpace/kIo from the disk
// with the failing call named.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace lanefs::backend {

class ChunkStore {
 public:
  static Result<std::unique_ptr<ChunkStore>> open(const std::string& dir, uint32_t chunk_size);
  ~ChunkStore();

  uint32_t chunk_size() const { return chunk_size_; }

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

 private:
  ChunkStore(std::string dir, uint32_t chunk_size);
  std::string path_of(uint64_t ino, uint64_t index) const;
  std::string dir_;
  uint32_t chunk_size_;
};

}  // namespace lanefs::backend

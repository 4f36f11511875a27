// BlockCrc: the CRC32C of every 4 KiB block of a chunk file's data area,
// stored in the chunk file itself (docs/security.md, "Data at rest").
//
// Layout: a chunk file holds its data at [0, chunk_size), the seals of an
// encrypted chunk after it (ChunkStore), and from `base` (page aligned, after
// the seal area) two CRC slots per block: slot A of block b at base + 4b,
// slot B at base + 4n + 4b (n blocks per chunk). A block is sound when the
// CRC32C of its bytes (beyond the file's end: zeros) equals A or B, or when
// a slot is 0 and the block is all zeros (a hole: never written, or its
// first write was cut short before reaching it).
//
// Update order, so a crash (kill -9) between any two steps leaves every
// block sound: stage() writes the new CRCs to the B slots, then the caller
// changes the data, then settle() writes them to the A slots. Before the
// data changes, A still matches the old bytes; after, B matches the new.
// After a power loss a block whose write was never acknowledged can fail
// (its pages may reach the disk in any order); an acknowledged write was
// synced with its slots.
//
// Callers serialize updates of one chunk file (ChunkFile::crc_mu): a partial
// block's new CRC covers bytes read from the file, which a concurrent write
// to the same block would change underneath. Readers take no lock; a reader
// that finds a mismatch checks again under the lock before calling the block
// damaged (a write may have been between its data and its slots).
//
// Thread-safety: stateless functions; an Update belongs to one caller.
// Blocking: pread/pwrite on the chunk file (page-cache hits on the hot path).
// Errors: the failing call and path, as ChunkStore's.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace lanefs::backend {

class BlockCrc {
 public:
  static constexpr uint32_t kBlock = 4096;

  // `base`: file offset of the first slot (page aligned, past any seals).
  BlockCrc(uint32_t chunk_size, uint64_t base) : chunk_size_(chunk_size), base_(base) {}
  uint32_t blocks() const { return (chunk_size_ + kBlock - 1) / kBlock; }
  uint64_t base() const { return base_; }
  // Bytes of block b (the last one may be short).
  uint32_t block_len(uint32_t b) const;

  // New CRCs of blocks [first, first + crcs.size()), between stage() and
  // settle(). The vector's capacity is kept: no allocation once warm.
  struct Update {
    uint32_t first = 0;
    std::vector<uint32_t> crcs;
  };
  // The CRCs the blocks overlapping [off, off + len) will have once `data`
  // (iovecs of len bytes in total; nullptr/0: zeros, as a punch leaves) is
  // written there. Partial blocks read their other bytes from fd.
  Status compute(int fd, uint32_t off, uint32_t len, const struct iovec* data, unsigned iovcnt,
                 Update* u, const std::string& path) const;
  // The CRCs the blocks overlapping [off, off + len) have now, read from
  // fd: after a change that failed part way (ENOSPC, EIO), so the slots
  // match whatever reached the file.
  Status resync(int fd, uint32_t off, uint32_t len, Update* u, const std::string& path) const;
  Status stage(int fd, const Update& u, const std::string& path) const;
  Status settle(int fd, const Update& u, const std::string& path) const;

  // Checks the blocks overlapping [off, off + len), whose bytes in that range
  // are `data` as the caller read them; a partial block is read whole from
  // fd, and its bytes in the range are copied into `data` once checked (so
  // only checked bytes are returned). Returns the first unsound block, or -1.
  Result<int64_t> check(int fd, uint32_t off, uint32_t len, uint8_t* data, const std::string& path) const;
  // Reads [off, off + len) from fd into data (beyond the file's end: zeros)
  // and checks it, slice by slice as it arrives; same answer as check().
  Result<int64_t> read_checked(int fd, uint32_t off, uint32_t len, uint8_t* data, const std::string& path) const;

 private:
  struct Slots {
    uint32_t first = 0;
    std::vector<uint32_t> a, b;
  };
  // The slots of the blocks overlapping [off, off + len) (len > 0).
  Status read_slots(int fd, uint32_t off, uint32_t len, Slots* s, const std::string& path) const;
  Result<int64_t> check_blocks(int fd, uint32_t off, uint32_t len, uint8_t* data, const Slots& slots,
                               const std::string& path) const;
  uint32_t chunk_size_;
  uint64_t base_;
};

}  // namespace lanefs::backend

// SealedIo: file data IO of an encrypted filesystem. Data is sealed on the
// client (crypto.h: AES-256-GCM per 4 KiB block) before it leaves the host;
// backends store ciphertext plus each block's seal and never see the key.
//
// Every backend transfer is whole blocks: a write that does not cover a
// whole block reads, verifies and decrypts the old block, merges, and seals
// it again (read-modify-write); truncating to an unaligned size first
// re-seals the last block with zeros beyond the new size, so a later
// extension reads zeros; punching a hole zeroes the seals of whole blocks
// (they read as holes) and re-seals partial edge blocks.
//
// Errors: kCorrupt when a block fails authentication (logged with inode and
// offset; EIO for applications); otherwise the errors of the RPCs.
// Threading: thread-safe. Writes that need read-modify-write, truncates and
// punches exclude other IO to the same file on this client (striped locks);
// block-aligned writes run concurrently. Concurrent partial-block writes to
// the same block from different hosts can lose one of them (no distributed
// lock yet). Blocking: every call waits for its RPCs.
#pragma once

#include <array>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <vector>

#include "client/cluster_client.h"
#include "client/crypto.h"
#include "proto/messages.h"

namespace lanefs::client {

class SealedIo {
 public:
  // `cluster` must outlive this object.
  SealedIo(ClusterClient& cluster, uint32_t fs_id, crypto::FsKey key);

  // Seals and writes data at offset (any alignment); durable on return.
  // *blocks_delta gets the allocation change (512-byte blocks).
  Status write_data(uint64_t ino, uint64_t offset, std::span<const uint8_t> data, int64_t* blocks_delta);
  // write_data + commit of size/mtime/blocks on the inode's owner.
  Result<proto::InodeAttr> write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data);
  // Reads, verifies and decrypts [offset, offset+len); holes read as zeros.
  // Does not clamp to the file size.
  Result<std::vector<uint8_t>> read_data(uint64_t ino, uint64_t offset, uint32_t len);
  // read_data clamped to the file's size.
  Result<std::vector<uint8_t>> read(uint64_t ino, uint64_t offset, uint32_t len);
  // setattr that may change the size (kSetSize): re-seals the new last
  // block first, then lets the backends cut the data.
  // `cred`: the caller, as ClusterClient::setattr.
  Result<proto::InodeAttr> setattr(uint64_t ino, const proto::SetAttr& attr, const proto::Cred& cred = {});
  // Deallocates [offset, offset+len) (reads as zeros after); returns the
  // allocation change. The caller clamps the range to the file size.
  Result<int64_t> punch(uint64_t ino, uint64_t offset, uint64_t len);

 private:
  std::shared_mutex& stripe(uint64_t ino) { return stripes_[(ino * 0x9e3779b97f4a7c15ull) >> 58]; }
  // Plaintext of blocks [first, first+count), verified.
  Result<std::vector<uint8_t>> read_blocks(uint64_t ino, uint64_t first, uint64_t count);
  // Seals plaintext (whole blocks) and writes it at block `first`.
  Status write_blocks(uint64_t ino, uint64_t first, std::span<const uint8_t> plain, int64_t* blocks_delta);
  // Sealed punch of whole blocks [first, first+count).
  Result<int64_t> punch_blocks(uint64_t ino, uint64_t first, uint64_t count);
  // Zeroes [from, to) inside block `block` (re-seals it, or punches it when
  // it becomes all zeros).
  Result<int64_t> zero_in_block(uint64_t ino, uint64_t block, uint32_t from, uint32_t to);

  ClusterClient& cluster_;
  uint32_t fs_id_;
  crypto::FsKey key_;
  std::array<std::shared_mutex, 64> stripes_;
};

}  // namespace lanefs::client

// Client-side encryption of an encrypted filesystem's data (OpenSSL EVP).
//
// Keys: a key file holds the 256-bit filesystem key, either as 32 raw bytes
// or as 64 hexadecimal characters (a trailing newline is allowed). The file
// must not be accessible by group or others (mode & 077 == 0): a broader
// mode is refused, like ssh refuses a private key. The key never leaves the
// client; the filesystem record on the backends holds only a key check
// value (HMAC-SHA256(key, "lanefs-key-check" || fs name), first 16 bytes),
// which tells a wrong key from the right one without revealing it.
//
// Blocks: file data is encrypted in 4 KiB blocks with AES-256-GCM. Every
// sealing draws a fresh random 96-bit nonce; the additional authenticated
// data is (fs id, inode, block number), so a block cannot be replayed at
// another position or in another file or filesystem. Each block's 32-byte
// seal (nonce 12 | tag 16 | 4 zero bytes) is stored next to the ciphertext;
// an all-zero seal marks a hole (reads as zeros).
//
// Threading: all functions are thread-safe (no shared mutable state; each
// call uses its own cipher context). Errors: kNotFound / kInvalid /
// kPermission for key files (one line naming the path), kCorrupt when a
// block fails authentication, kInternal when an OpenSSL call fails (named).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lanefs::client::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kBlockBytes = 4096;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kSealBytes = 32;  // nonce | tag | zero padding
inline constexpr size_t kKeyCheckBytes = 16;

// The filesystem key. Wiped from memory on destruction.
class FsKey {
 public:
  FsKey() = default;
  explicit FsKey(std::span<const uint8_t, kKeyBytes> bytes);
  ~FsKey();
  FsKey(const FsKey& o);
  FsKey& operator=(const FsKey& o);
  const uint8_t* data() const { return bytes_.data(); }

 private:
  std::array<uint8_t, kKeyBytes> bytes_{};
};

// Parses key file contents (32 raw bytes, or 64 hex characters with an
// optional trailing newline). `path` only names the file in errors.
Result<FsKey> parse_key(std::span<const uint8_t> contents, const std::string& path);
// Reads and parses a key file; refuses files readable by group/others.
Result<FsKey> load_key_file(const std::string& path);

// Key check value stored in the filesystem record (kKeyCheckBytes bytes).
Result<std::string> key_check(const FsKey& key, std::string_view fs_name);

// Where a block lives: bound into its authentication tag.
struct BlockId {
  uint32_t fs_id = 0;
  uint64_t ino = 0;
  uint64_t block = 0;  // file offset / kBlockBytes
};

// Encrypts one block: plain and cipher are kBlockBytes; seal receives
// kSealBytes (fresh random nonce, tag, zero padding).
Status seal_block(const FsKey& key, const BlockId& id, std::span<const uint8_t> plain,
                  std::span<uint8_t> cipher, std::span<uint8_t> seal);
// Decrypts and verifies one block. A hole seal (all zero) yields zeros.
// kCorrupt when the ciphertext, seal or position does not authenticate.
Status open_block(const FsKey& key, const BlockId& id, std::span<const uint8_t> cipher,
                  std::span<const uint8_t> seal, std::span<uint8_t> plain);
// True for the all-zero seal of a never-written (or punched) block.
bool seal_is_hole(std::span<const uint8_t> seal);

}  // namespace lanefs::client::crypto

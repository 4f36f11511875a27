// Filesystem value types shared by the backend stores, the RPC messages and
// the client: inode attributes, directory entries, setattr masks, statfs.
// Plain values; encode()/decode() use common/codec.h (little-endian).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec.h"

namespace lanefs::proto {

// Inode numbers are cluster-wide: the top 16 bits name the metadata shard
// that owns the inode record, the low 48 bits a per-shard counter through
// the shard's keyed permutation (backend/ino_cipher.h: not guessable).
inline constexpr int kShardShift = 48;
inline uint32_t ino_shard(uint64_t ino) { return static_cast<uint32_t>(ino >> kShardShift); }
inline uint64_t make_ino(uint32_t shard, uint64_t seq) {
  return (uint64_t{shard} << kShardShift) | (seq & ((uint64_t{1} << kShardShift) - 1));
}

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};
Timespec now_timespec();

struct InodeAttr {
  uint64_t ino = 0;
  uint32_t fs_id = 0;     // filesystem this inode belongs to
  uint32_t mode = 0;      // S_IFMT type bits + permission bits
  uint32_t uid = 0, gid = 0;
  uint32_t nlink = 0;
  uint32_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;    // 512-byte blocks actually stored (st_blocks)
  Timespec atime, mtime, ctime, btime;
  uint64_t parent = 0;    // directories: parent directory inode ("..")
  uint64_t next_cookie = 3;  // directories: next readdir cookie to hand out
  bool operator==(const InodeAttr&) const = default;

  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// What CREATE and LINK answer: the new entry's attributes and, after them,
// its directory's attributes as the same change left them (has_dir false
// when the backend did not send them). A client that caches attributes
// keeps the directory's without asking again; one that decodes only an
// InodeAttr ignores the tail.
struct EntryResp {
  InodeAttr attr;
  bool has_dir = false;
  InodeAttr dir;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct Dirent {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;      // S_IFMT bits of the child
  uint64_t cookie = 0;    // resume readdir after this entry with this cookie
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// setattr valid bits (mirrors FUSE_SET_ATTR_* meaning, own values)
enum SetAttrMask : uint32_t {
  kSetMode = 1u << 0,
  kSetUid = 1u << 1,
  kSetGid = 1u << 2,
  kSetSize = 1u << 3,
  kSetAtime = 1u << 4,
  kSetMtime = 1u << 5,
  kSetAtimeNow = 1u << 6,
  kSetMtimeNow = 1u << 7,
  kSetCtime = 1u << 8,
  // Clear set-user-ID, and set-group-ID when group execute is set (a
  // write, truncate or chown by a user without CAP_FSETID), on the mode the
  // owner holds, after any kSetMode of the same call.
  kSetKillSuidgid = 1u << 9,
  // The change comes through an open file (ftruncate, futimens): the
  // opener's access was checked at open, so a size change needs no write
  // permission now (a file created 0444 can still be truncated through the
  // descriptor that created it).
  kSetByHandle = 1u << 10,
};

// The bits kSetKillSuidgid clears from `mode`: set-user-ID, and set-group-ID
// when group execute is set (without it, it means mandatory locking and
// stays), as the kernel's should_remove_suid(); none on a directory.
uint32_t suidgid_to_kill(uint32_t mode);

struct SetAttr {
  uint32_t mask = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  Timespec atime, mtime, ctime;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct StatFs {
  uint64_t total_bytes = 0, free_bytes = 0, avail_bytes = 0;
  uint64_t total_inodes = 0, free_inodes = 0;
  uint32_t block_size = 4096;
  uint32_t name_max = 255;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// rename flags (same values as Linux RENAME_*)
inline constexpr uint32_t kRenameNoReplace = 1;
inline constexpr uint32_t kRenameExchange = 2;

inline constexpr uint32_t kNameMax = 255;
// A filesystem name: 1-64 characters of [A-Za-z0-9._-], not "." or "..".
bool valid_fs_name(std::string_view n);
inline constexpr const char* kFsNameRule = "must be 1-64 characters of [A-Za-z0-9._-]";
inline constexpr uint32_t kXattrNameMax = 255;
inline constexpr uint32_t kXattrValueMax = 65536;
inline constexpr uint64_t kMaxFileSize = uint64_t{1} << 50;  // 1 PiB

}  // namespace lanefs::proto

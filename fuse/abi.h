// The FUSE kernel protocol, as lanefs speaks it on /dev/fuse (and later on
// the io_uring queues): the subset of <linux/fuse.h> 7.45 we use, restated
// because Debian's header is 7.38 (it lacks FUSE_DIRECT_IO_ALLOW_MMAP and
// the ring ABI). Sizes are checked against the kernel's (static_assert);
// layouts are the kernel's, little-endian, naturally aligned.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lanefs::fuse::abi {

inline constexpr uint32_t kKernelVersion = 7;
inline constexpr uint32_t kMinorWanted = 45;  // what we answer at most
inline constexpr uint32_t kMinorNeeded = 31;  // FUSE_MAX_PAGES, HANDLE_KILLPRIV_V2 (Linux 5.11)
inline constexpr uint64_t kRootId = 1;
inline constexpr size_t kMinReadBuffer = 8192;

enum Opcode : uint32_t {
  kLookup = 1, kForget = 2, kGetattr = 3, kSetattr = 4, kReadlink = 5, kSymlink = 6, kMknod = 8,
  kMkdir = 9, kUnlink = 10, kRmdir = 11, kRename = 12, kLink = 13, kOpen = 14, kRead = 15,
  kWrite = 16, kStatfs = 17, kRelease = 18, kFsync = 20, kSetxattr = 21, kGetxattr = 22,
  kListxattr = 23, kRemovexattr = 24, kFlush = 25, kInit = 26, kOpendir = 27, kReaddir = 28,
  kReleasedir = 29, kFsyncdir = 30, kAccess = 34, kCreate = 35, kInterrupt = 36, kDestroy = 38,
  kBatchForget = 42, kFallocate = 43, kReaddirplus = 44, kRename2 = 45,
};

// fuse_init_in/out flags (flags2 holds bits 32..63 when kInitExt is set).
inline constexpr uint64_t kAsyncRead = 1ull << 0;
inline constexpr uint64_t kPosixLocks = 1ull << 1;
inline constexpr uint64_t kAtomicOTrunc = 1ull << 3;
inline constexpr uint64_t kBigWrites = 1ull << 5;
inline constexpr uint64_t kAutoInvalData = 1ull << 12;
inline constexpr uint64_t kFlockLocks = 1ull << 10;
inline constexpr uint64_t kDoReaddirplus = 1ull << 13;
inline constexpr uint64_t kReaddirplusAuto = 1ull << 14;
inline constexpr uint64_t kAsyncDio = 1ull << 15;
inline constexpr uint64_t kWritebackCache = 1ull << 16;
inline constexpr uint64_t kParallelDirops = 1ull << 18;
inline constexpr uint64_t kMaxPages = 1ull << 22;
inline constexpr uint64_t kHandleKillprivV2 = 1ull << 28;
inline constexpr uint64_t kInitExt = 1ull << 30;
inline constexpr uint64_t kDirectIoAllowMmap = 1ull << 36;
inline constexpr uint64_t kOverIoUring = 1ull << 41;

// fuse_setattr_in.valid
inline constexpr uint32_t kAttrMode = 1u << 0, kAttrUid = 1u << 1, kAttrGid = 1u << 2, kAttrSize = 1u << 3,
                          kAttrAtime = 1u << 4, kAttrMtime = 1u << 5, kAttrFh = 1u << 6, kAttrAtimeNow = 1u << 7,
                          kAttrMtimeNow = 1u << 8, kAttrCtime = 1u << 10, kAttrKillSuidgid = 1u << 11;
// fuse_open_out.open_flags
inline constexpr uint32_t kOpenDirectIo = 1u << 0, kOpenKeepCache = 1u << 1;
// fuse_open_in.open_flags
inline constexpr uint32_t kOpenKillSuidgid = 1u << 0;
// fuse_write_in.write_flags
inline constexpr uint32_t kWriteKillSuidgid = 1u << 2;

enum NotifyCode : int32_t { kNotifyInvalInode = 2, kNotifyInvalEntry = 3, kNotifyStore = 4 };

struct InHeader {
  uint32_t len, opcode;
  uint64_t unique, nodeid;
  uint32_t uid, gid, pid;
  uint16_t total_extlen, padding;
};
struct OutHeader {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};
struct Attr {
  uint64_t ino, size, blocks, atime, mtime, ctime;
  uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};
struct EntryOut {
  uint64_t nodeid, generation, entry_valid, attr_valid;
  uint32_t entry_valid_nsec, attr_valid_nsec;
  Attr attr;
};
struct AttrOut {
  uint64_t attr_valid;
  uint32_t attr_valid_nsec, dummy;
  Attr attr;
};
struct InitIn {
  uint32_t major, minor, max_readahead, flags, flags2, unused[11];
};
struct InitOut {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, unused[7];
};
struct ForgetIn { uint64_t nlookup; };
struct ForgetOne { uint64_t nodeid, nlookup; };
struct BatchForgetIn { uint32_t count, dummy; };
struct GetattrIn { uint32_t getattr_flags, dummy; uint64_t fh; };
struct SetattrIn {
  uint32_t valid, padding;
  uint64_t fh, size, lock_owner, atime, mtime, ctime;
  uint32_t atimensec, mtimensec, ctimensec, mode, unused4, uid, gid, unused5;
};
struct MknodIn { uint32_t mode, rdev, umask, padding; };
struct MkdirIn { uint32_t mode, umask; };
struct RenameIn { uint64_t newdir; };
struct Rename2In { uint64_t newdir; uint32_t flags, padding; };
struct LinkIn { uint64_t oldnodeid; };
struct OpenIn { uint32_t flags, open_flags; };
struct CreateIn { uint32_t flags, mode, umask, open_flags; };
struct OpenOut { uint64_t fh; uint32_t open_flags, padding; };
struct ReleaseIn { uint64_t fh; uint32_t flags, release_flags; uint64_t lock_owner; };
struct FlushIn { uint64_t fh; uint32_t unused, padding; uint64_t lock_owner; };
struct ReadIn { uint64_t fh, offset; uint32_t size, read_flags; uint64_t lock_owner; uint32_t flags, padding; };
struct WriteIn { uint64_t fh, offset; uint32_t size, write_flags; uint64_t lock_owner; uint32_t flags, padding; };
struct WriteOut { uint32_t size, padding; };
struct FsyncIn { uint64_t fh; uint32_t fsync_flags, padding; };
struct SetxattrIn { uint32_t size, flags; };  // without FUSE_SETXATTR_EXT (not negotiated)
struct GetxattrIn { uint32_t size, padding; };
struct GetxattrOut { uint32_t size, padding; };
struct FallocateIn { uint64_t fh, offset, length; uint32_t mode, padding; };
struct Kstatfs {
  uint64_t blocks, bfree, bavail, files, ffree;
  uint32_t bsize, namelen, frsize, padding, spare[6];
};
struct Dirent {
  uint64_t ino, off;
  uint32_t namelen, type;
  // name follows, padded to 8 bytes
};
struct NotifyInvalInodeOut { uint64_t ino; int64_t off, len; };
struct NotifyStoreOut { uint64_t nodeid, offset; uint32_t size, padding; };

static_assert(sizeof(InHeader) == 40 && sizeof(OutHeader) == 16);
static_assert(sizeof(Attr) == 88 && sizeof(EntryOut) == 128 && sizeof(AttrOut) == 104);
static_assert(sizeof(InitIn) == 64 && sizeof(InitOut) == 64);
static_assert(sizeof(SetattrIn) == 88 && sizeof(GetattrIn) == 16 && sizeof(MknodIn) == 16);
static_assert(sizeof(ReadIn) == 40 && sizeof(WriteIn) == 40 && sizeof(ReleaseIn) == 24 && sizeof(FlushIn) == 24);
static_assert(sizeof(OpenOut) == 16 && sizeof(CreateIn) == 16 && sizeof(FallocateIn) == 32);
static_assert(sizeof(Kstatfs) == 80 && sizeof(Dirent) == 24 && sizeof(ForgetOne) == 16);
static_assert(sizeof(NotifyInvalInodeOut) == 24 && sizeof(NotifyStoreOut) == 24);

// FUSE over io_uring (7.42+): an entry's header buffer (iov[0] of
// REGISTER) and the command in the SQE's cmd area (IORING_OP_URING_CMD,
// rings with IORING_SETUP_SQE128).
inline constexpr uint32_t kUringCmdRegister = 1, kUringCmdCommitAndFetch = 2;
struct UringEntInOut {
  uint64_t flags, commit_id;
  uint32_t payload_sz, padding;  // request: bytes in the payload; reply: bytes of the reply's arguments
  uint64_t reserved;
};
struct UringReqHeader {
  uint8_t in_out[128];  // fuse_in_header, then the reply's fuse_out_header
  uint8_t op_in[128];   // in_args[0], the per-op header
  UringEntInOut ent;
};
struct UringCmdReq {
  uint64_t flags, commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
static_assert(sizeof(UringEntInOut) == 32 && sizeof(UringReqHeader) == 288 && sizeof(UringCmdReq) == 24);

// A directory record's size: header + name, rounded up to 8 bytes.
constexpr size_t dirent_size(size_t namelen) { return (sizeof(Dirent) + namelen + 7) & ~size_t{7}; }
constexpr size_t direntplus_size(size_t namelen) {
  return (sizeof(EntryOut) + sizeof(Dirent) + namelen + 7) & ~size_t{7};
}

// ioctl on a /dev/fuse fd: attach it to the connection of another one
// (_IOR(229, 0, uint32_t)).
inline constexpr unsigned long kDevIocClone = 0x8004e500ul;

}  // namespace lanefs::fuse::abi

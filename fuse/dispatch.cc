// The channel-neutral FUSE dispatcher: one request, as any channel
// delivers it (fuse_in_header + per-op header + payload), decoded and
// handed to its handler (ops_*.cc). A request too short for what its
// opcode carries is answered EINVAL; an opcode lanefs does not serve is
// answered ENOSYS, which tells the kernel not to send it again (access,
// locks, ioctl, lseek, copy_file_range...: the kernel does them itself).
#include <fcntl.h>

#include <cstring>
#include <fstream>
#include <span>

#include "common/log.h"
#include "fuse/ops.h"

namespace lanefs::fuse {
namespace {

// A request's arguments as the kernel splits them for the io_uring
// channel: the per-op header (in_args[0], e.g. fuse_read_in) and the
// payload (names, write data); the classic channel splits its one buffer
// the same way (op_in_size).
class Args {
 public:
  Args(std::span<const uint8_t> op, std::span<const uint8_t> payload)
      : op_(op.data()), opn_(op.size()), p_(payload.data()), n_(payload.size()) {}
  // The per-op header.
  template <class T>
  bool take(T* out) {
    if (opn_ < sizeof(T)) return false;
    std::memcpy(out, op_, sizeof(T));
    op_ += sizeof(T);
    opn_ -= sizeof(T);
    return true;
  }
  // A record of the payload (batch forget).
  template <class T>
  bool next(T* out) {
    if (n_ < sizeof(T)) return false;
    std::memcpy(out, p_, sizeof(T));
    p_ += sizeof(T);
    n_ -= sizeof(T);
    return true;
  }
  // A NUL-terminated string (a name) of the payload; null when there is none.
  const char* str() {
    const void* end = n_ ? std::memchr(p_, 0, n_) : nullptr;
    if (end == nullptr) return nullptr;
    const char* s = reinterpret_cast<const char*>(p_);
    size_t len = static_cast<size_t>(static_cast<const uint8_t*>(end) - p_) + 1;
    p_ += len;
    n_ -= len;
    return s;
  }
  const uint8_t* rest() const { return p_; }
  size_t left() const { return n_; }

 private:
  const uint8_t* op_;
  size_t opn_;
  const uint8_t* p_;
  size_t n_;
};

bool serve(const Req& r, const abi::InHeader& h, Args a) {
  const uint64_t ino = h.nodeid;
  switch (h.opcode) {
    case abi::kLookup: {
      const char* name = a.str();
      if (!name) return false;
      op_lookup(r, ino, name);
      return true;
    }
    case abi::kForget: {
      abi::ForgetIn in;
      if (a.take(&in)) op_forget(r, ino, in.nlookup);
      return true;  // never answered
    }
    case abi::kBatchForget: {
      abi::BatchForgetIn in;
      if (!a.take(&in)) return true;
      abi::ForgetOne one;
      for (uint32_t i = 0; i < in.count && a.next(&one); ++i) mount_of(r).forget(one.nodeid, one.nlookup);
      return true;
    }
    case abi::kGetattr:
      op_getattr(r, ino);
      return true;
    case abi::kSetattr: {
      abi::SetattrIn in;
      if (!a.take(&in)) return false;
      op_setattr(r, ino, in);
      return true;
    }
    case abi::kReadlink:
      op_readlink(r, ino);
      return true;
    case abi::kSymlink: {
      const char* name = a.str();
      const char* link = name ? a.str() : nullptr;
      if (!link) return false;
      op_symlink(r, link, ino, name);
      return true;
    }
    case abi::kMknod: {
      abi::MknodIn in;
      const char* name = a.take(&in) ? a.str() : nullptr;
      if (!name) return false;
      op_mknod(r, ino, name, in.mode, in.rdev);
      return true;
    }
    case abi::kMkdir: {
      abi::MkdirIn in;
      const char* name = a.take(&in) ? a.str() : nullptr;
      if (!name) return false;
      op_mkdir(r, ino, name, in.mode);
      return true;
    }
    case abi::kUnlink:
    case abi::kRmdir: {
      const char* name = a.str();
      if (!name) return false;
      if (h.opcode == abi::kUnlink) op_unlink(r, ino, name);
      else op_rmdir(r, ino, name);
      return true;
    }
    case abi::kRename:
    case abi::kRename2: {
      abi::Rename2In in{};
      abi::RenameIn old{};
      bool ok = h.opcode == abi::kRename2 ? a.take(&in) : a.take(&old);
      if (h.opcode == abi::kRename) in.newdir = old.newdir;
      const char* name = ok ? a.str() : nullptr;
      const char* newname = name ? a.str() : nullptr;
      if (!newname) return false;
      op_rename(r, ino, name, in.newdir, newname, in.flags);
      return true;
    }
    case abi::kLink: {
      abi::LinkIn in;
      const char* name = a.take(&in) ? a.str() : nullptr;
      if (!name) return false;
      op_link(r, in.oldnodeid, ino, name);
      return true;
    }
    case abi::kOpen:
    case abi::kOpendir: {
      abi::OpenIn in;
      if (!a.take(&in)) return false;
      FileInfo fi;
      fi.flags = in.flags;
      fi.kill_suidgid = (in.open_flags & abi::kOpenKillSuidgid) != 0;
      if (h.opcode == abi::kOpen) op_open(r, ino, fi);
      else op_opendir(r, ino, fi);
      return true;
    }
    case abi::kCreate: {
      abi::CreateIn in;
      const char* name = a.take(&in) ? a.str() : nullptr;
      if (!name) return false;
      FileInfo fi;
      fi.flags = in.flags;
      fi.kill_suidgid = (in.open_flags & abi::kOpenKillSuidgid) != 0;  // O_TRUNC of a file that exists
      op_create(r, ino, name, in.mode, fi);
      return true;
    }
    case abi::kRead:
    case abi::kReaddir:
    case abi::kReaddirplus: {
      abi::ReadIn in;
      if (!a.take(&in)) return false;
      if (h.opcode == abi::kRead) op_read(r, ino, in.size, in.offset);
      else op_readdir(r, ino, in.size, in.offset, h.opcode == abi::kReaddirplus);
      return true;
    }
    case abi::kWrite: {
      abi::WriteIn in;
      if (!a.take(&in) || a.left() < in.size) return false;
      // HANDLE_KILLPRIV_V2: the kernel flags a write by a user without
      // CAP_FSETID (every cache mode; writecache writes such a file through)
      // and leaves clearing set-user-ID/set-group-ID to us.
      op_write(r, ino, a.rest(), in.size, in.offset, (in.write_flags & abi::kWriteKillSuidgid) != 0);
      return true;
    }
    case abi::kStatfs:
      op_statfs(r, ino);
      return true;
    case abi::kRelease:
    case abi::kReleasedir: {
      abi::ReleaseIn in;
      if (!a.take(&in)) return false;
      FileInfo fi;
      fi.flags = in.flags;
      if (h.opcode == abi::kRelease) op_release(r, ino, fi);
      else op_releasedir(r, ino);
      return true;
    }
    case abi::kFlush:
      op_flush(r, ino);
      return true;
    case abi::kFsync:
      op_fsync(r, ino);
      return true;
    case abi::kFsyncdir:
      op_fsyncdir(r, ino);
      return true;
    case abi::kFallocate: {
      abi::FallocateIn in;
      if (!a.take(&in)) return false;
      op_fallocate(r, ino, static_cast<int>(in.mode), in.offset, in.length);
      return true;
    }
    case abi::kSetxattr: {
      abi::SetxattrIn in;
      const char* name = a.take(&in) ? a.str() : nullptr;
      if (!name || a.left() < in.size) return false;
      op_setxattr(r, ino, name, reinterpret_cast<const char*>(a.rest()), in.size, static_cast<int>(in.flags));
      return true;
    }
    case abi::kGetxattr: {
      abi::GetxattrIn in;
      const char* name = a.take(&in) ? a.str() : nullptr;
      if (!name) return false;
      op_getxattr(r, ino, name, in.size);
      return true;
    }
    case abi::kListxattr: {
      abi::GetxattrIn in;
      if (!a.take(&in)) return false;
      op_listxattr(r, ino, in.size);
      return true;
    }
    case abi::kRemovexattr: {
      const char* name = a.str();
      if (!name) return false;
      op_removexattr(r, ino, name);
      return true;
    }
    case abi::kInterrupt:
      return true;  // handlers run to completion; never answered
    case abi::kDestroy:
      reply_err(r, 0);
      return true;
    default:
      reply_err(r, ENOSYS);
      return true;
  }
}

}  // namespace

size_t op_in_size(uint32_t opcode) {
  switch (opcode) {
    case abi::kForget: return sizeof(abi::ForgetIn);
    case abi::kBatchForget: return sizeof(abi::BatchForgetIn);
    case abi::kGetattr: return sizeof(abi::GetattrIn);
    case abi::kSetattr: return sizeof(abi::SetattrIn);
    case abi::kMknod: return sizeof(abi::MknodIn);
    case abi::kMkdir: return sizeof(abi::MkdirIn);
    case abi::kRename: return sizeof(abi::RenameIn);
    case abi::kRename2: return sizeof(abi::Rename2In);
    case abi::kLink: return sizeof(abi::LinkIn);
    case abi::kOpen:
    case abi::kOpendir: return sizeof(abi::OpenIn);
    case abi::kCreate: return sizeof(abi::CreateIn);
    case abi::kRead:
    case abi::kReaddir:
    case abi::kReaddirplus: return sizeof(abi::ReadIn);
    case abi::kWrite: return sizeof(abi::WriteIn);
    case abi::kRelease:
    case abi::kReleasedir: return sizeof(abi::ReleaseIn);
    case abi::kFlush: return sizeof(abi::FlushIn);
    case abi::kFsync:
    case abi::kFsyncdir: return sizeof(abi::FsyncIn);
    case abi::kSetxattr: return sizeof(abi::SetxattrIn);
    case abi::kGetxattr:
    case abi::kListxattr: return sizeof(abi::GetxattrIn);
    case abi::kFallocate: return sizeof(abi::FallocateIn);
    case abi::kInit: return sizeof(abi::InitIn);
    case abi::kInterrupt: return 8;
    case abi::kAccess: return 8;
    default: return 0;  // lookup, unlink, rmdir, symlink, readlink, statfs, removexattr...
  }
}

void dispatch(const Req& r, const abi::InHeader& h, std::span<const uint8_t> op_in,
              std::span<const uint8_t> payload) noexcept {
  if (!serve(r, h, Args(op_in, payload))) {
    LOG_WARN("FUSE request opcode {} of {} bytes is malformed", h.opcode, h.len);
    reply_err(r, EINVAL);
  }
}

uint64_t init_flags(const client::MountFs& m, client::FuseChannel channel, uint64_t offered) {
  // Reads of one file in flight together (readahead + the application's);
  // O_DIRECT with io_submit/io_uring keeps many requests in flight (rand
  // read QD16); lookups and readdirs in one directory do not serialize in
  // the kernel; open(O_TRUNC) truncates in open; readdirplus fills the
  // dentry cache while listing (ls -l, find); 1 MiB requests. The kernel
  // revalidates cached pages against mtime/size on reads (AUTO_INVAL_DATA).
  // No lock forwarding: advisory locks stay in this host's kernel.
  uint64_t want = abi::kAsyncRead | abi::kAsyncDio | abi::kParallelDirops | abi::kAtomicOTrunc |
                  abi::kDoReaddirplus | abi::kReaddirplusAuto | abi::kBigWrites | abi::kMaxPages |
                  abi::kAutoInvalData | abi::kInitExt;
  // Set-user-ID/set-group-ID cleared by us on write, truncate and chown, in
  // the same call where we can (the kernel sends no extra SETATTR for it,
  // and flags what CAP_FSETID it saw instead of us guessing from the uid).
  want |= abi::kHandleKillprivV2;
  // writecache: the kernel's write-back cache batches small writes into
  // large ones and owns size/mtime until it flushes. Other modes write through.
  if (m.options().cache == client::CacheMode::kWriteCache) want |= abi::kWritebackCache;
  // forcedirect: MAP_SHARED works on direct-IO files (through the page
  // cache for the mapping only).
  if (m.options().cache == client::CacheMode::kForceDirect) want |= abi::kDirectIoAllowMmap;
  // Requests on per-CPU io_uring queues (channel_uring.h).
  if (channel != client::FuseChannel::kClassic) want |= abi::kOverIoUring;
  return want & offered;
}

std::string uring_unavailable_reason() {
  std::ifstream in("/sys/module/fuse/parameters/enable_uring");
  std::string v;
  if (!in || !std::getline(in, v))
    return "this kernel has no FUSE over io_uring (Linux 6.14+ built with CONFIG_FUSE_IO_URING)";
  if (v.empty() || (v[0] != 'Y' && v[0] != '1'))
    return "the kernel's fuse.enable_uring is off (turn it on with `lanefs local setup fuse-uring on`; it "
           "applies to mounts made afterwards)";
  return "the kernel did not offer FUSE over io_uring at INIT";
}

}  // namespace lanefs::fuse

// File handlers: create, open, read, write, flush, release, fsync, fallocate.
#include <fcntl.h>
#include <sys/stat.h>

#include "common/msg_buffer.h"
#include "fuse/ops.h"

namespace lanefs::fuse {
namespace {

// Page cache policy per mount mode: forcedirect bypasses it; readcache and
// writecache both drop a file's cached pages at open (keep_cache = 0), so
// a file reopened after another client's close sees that client's data
// (close-to-open); writecache differs in how writes reach the backend
// (the kernel's write-back cache, which also keeps its own size: open
// checks it against the backend first, MountFs::open_file).
void set_cache_flags(const client::MountFs& m, FileInfo& fi) {
  fi.direct_io = m.options().cache == client::CacheMode::kForceDirect;
  fi.keep_cache = false;
}

bool writable(const FileInfo& fi) { return (fi.flags & O_ACCMODE) != O_RDONLY; }

// What an open asks for, as the backend checks it (proto::kMayRead,
// kMayWrite; an exec's open, __FMODE_EXEC in the flags, only kMayExec).
uint8_t access_of(const FileInfo& fi) {
  constexpr int kFmodeExec = 0x20;
  if (fi.flags & kFmodeExec) return proto::kMayExec;
  switch (fi.flags & O_ACCMODE) {
    case O_RDONLY: return proto::kMayRead;
    case O_WRONLY: return proto::kMayWrite;
    default: return proto::kMayRead | proto::kMayWrite;
  }
}

// open(O_TRUNC) of a file that exists: size 0, and set-user-ID/set-group-ID
// cleared when the kernel says the opener lacks CAP_FSETID.
Status truncate_at_open(const Req& req, client::MountFs& m, uint64_t ino, const FileInfo& fi) {
  proto::SetAttr sa;
  sa.mask = proto::kSetSize;
  if (fi.kill_suidgid) sa.mask |= proto::kSetKillSuidgid;
  auto t = m.setattr(ino, sa, cred_of(req));
  return t.ok() ? ok_status() : Status(t.error());
}

}  // namespace

void op_create(const Req& req, uint64_t parent, const char* name, uint32_t mode, FileInfo& fi) noexcept {
  auto& m = mount_of(req);
  auto r = m.create_open(parent, name, S_IFREG | (mode & 07777), cred_of(req), (fi.flags & O_EXCL) != 0,
                         writable(fi), access_of(fi));
  if (!r.ok()) {
    reply_error(req, r.error());
    return;
  }
  if ((fi.flags & O_TRUNC) && r->size > 0) {  // it existed (another client made it meanwhile)
    if (Status t = truncate_at_open(req, m, r->ino, fi); !t.ok()) {
      (void)m.released(r->ino, writable(fi));
      reply_error(req, t.error());
      return;
    }
  }
  set_cache_flags(m, fi);
  // An opener interrupted meanwhile never gets the file, so the kernel
  // never releases it: the open is undone here.
  if (reply_create(req, *r, fi) == -ENOENT) (void)m.released(r->ino, writable(fi));
}

void op_open(const Req& req, uint64_t ino, FileInfo& fi) noexcept {
  auto& m = mount_of(req);
  if (m.options().read_only && (fi.flags & O_ACCMODE) != O_RDONLY) {
    reply_error(req, make_error(Errc::kReadOnly, "read-only mount"));
    return;
  }
  const bool trunc = (fi.flags & O_TRUNC) != 0;
  if (trunc) {
    if (Status t = truncate_at_open(req, m, ino, fi); !t.ok()) {
      reply_node_error(req, t.error());
      return;
    }
  }
  // Registers the open handle; without O_TRUNC also close-to-open (ESTALE:
  // changed elsewhere, look the name up again).
  if (Status s = m.open_file(ino, writable(fi), !trunc, access_of(fi), cred_of(req)); !s.ok()) {
    reply_node_error(req, s.error());
    return;
  }
  set_cache_flags(m, fi);
  if (reply_open(req, fi) == -ENOENT) (void)m.released(ino, writable(fi));  // opener interrupted
}

void op_read(const Req& req, uint64_t ino, size_t size, uint64_t off) noexcept {
  // The data lands straight from the packets in the buffer the kernel
  // takes the reply from: the io_uring entry's payload (Req::out), or on
  // the classic channel this thread's buffer, which writev hands over (the
  // one user-space copy of a read). No allocation, no zero-fill. Not a
  // thread_local on the ring: its entries' fibers share the thread.
  thread_local MsgBuffer classic_buf;
  std::span<uint8_t> into;
  if (req.out != nullptr && req.out_cap >= size) {
    into = {req.out, size};
  } else {
    classic_buf.resize_uninit(size);
    into = classic_buf.span();
  }
  auto r = mount_of(req).read_into(ino, off, into);
  if (!r.ok()) {
    reply_error(req, r.error());
    return;
  }
  reply_buf(req, into.data(), *r);
}

void op_write(const Req& req, uint64_t ino, const uint8_t* buf, size_t size, uint64_t off, bool kill_privs) noexcept {
  // The data is written from the request buffer the channel read it into.
  auto& m = mount_of(req);
  auto r = m.write(ino, off, {buf, size}, kill_privs);
  if (!r.ok()) {
    reply_error(req, r.error());
    return;
  }
  reply_write(req, static_cast<uint32_t>(size));
}

void op_flush(const Req& req, uint64_t ino) noexcept {
  // The kernel has written back this file's dirty pages before FLUSH, and
  // every write we acknowledged is durable: only sync_on_close adds a barrier.
  auto& m = mount_of(req);
  if (m.options().sync_on_close) {
    reply_status(req, m.fsync(ino));
    return;
  }
  reply_err(req, 0);
}

void op_release(const Req& req, uint64_t ino, const FileInfo& fi) noexcept {
  // The last close of a file whose names were all removed drops it now.
  reply_status(req, mount_of(req).released(ino, writable(fi)));
}

void op_fsync(const Req& req, uint64_t ino) noexcept { reply_status(req, mount_of(req).fsync(ino)); }

void op_fallocate(const Req& req, uint64_t ino, int mode, uint64_t offset, uint64_t length) noexcept {
  reply_status(req, mount_of(req).fallocate(ino, mode, offset, length));
}

}  // namespace lanefs::fuse

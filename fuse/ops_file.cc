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
void set_cache_flags(const client::MountFs& m, fuse_file_info* fi) {
  switch (m.options().cache) {
    case client::CacheMode::kForceDirect:
      fi->direct_io = 1;
      break;
    case client::CacheMode::kReadCache:
      fi->keep_cache = 0;
      break;
    case client::CacheMode::kWriteCache:
      fi->keep_cache = 0;
      break;
  }
}

bool writable(const fuse_file_info* fi) { return (fi->flags & O_ACCMODE) != O_RDONLY; }

}  // namespace

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  auto& m = mount_of(req);
  auto r = m.create_open(parent, name, S_IFREG | (mode & 07777), cred_of(req), (fi->flags & O_EXCL) != 0,
                         writable(fi));
  if (!r.ok()) return reply_error(req, r.error());
  if ((fi->flags & O_TRUNC) && r->size > 0) {
    proto::SetAttr sa;
    sa.mask = proto::kSetSize;
    auto t = m.setattr(r->ino, sa);
    if (!t.ok()) {
      (void)m.released(r->ino, writable(fi));
      return reply_error(req, t.error());
    }
  }
  set_cache_flags(m, fi);
  fuse_entry_param e{};
  e.ino = r->ino;
  e.generation = m.generation(r->ino);
  e.attr = to_stat(*r);
  e.attr_timeout = attr_timeout(m);
  e.entry_timeout = entry_timeout(m);
  // An opener interrupted meanwhile never gets the file, so the kernel
  // never releases it: the open is undone here.
  if (fuse_reply_create(req, &e, fi) == -ENOENT) (void)m.released(r->ino, writable(fi));
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto& m = mount_of(req);
  if (m.options().read_only && (fi->flags & O_ACCMODE) != O_RDONLY)
    return reply_error(req, make_error(Errc::kReadOnly, "read-only mount"));
  const bool trunc = (fi->flags & O_TRUNC) != 0;
  if (trunc) {
    proto::SetAttr sa;
    sa.mask = proto::kSetSize;
    auto t = m.setattr(ino, sa);
    if (!t.ok()) return reply_node_error(req, t.error());
  }
  // Registers the open handle; without O_TRUNC also close-to-open (ESTALE:
  // changed elsewhere, look the name up again).
  if (Status s = m.open_file(ino, writable(fi), !trunc); !s.ok()) return reply_node_error(req, s.error());
  set_cache_flags(m, fi);
  if (fuse_reply_open(req, fi) == -ENOENT) (void)m.released(ino, writable(fi));  // opener interrupted
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  // The data lands in this thread's buffer straight from the packets and
  // goes to the kernel from there (the one user-space copy of a read); the
  // buffer is reused by the thread's next read: no allocation, no zero-fill.
  thread_local MsgBuffer buf;
  buf.resize_uninit(size);
  auto r = mount_of(req).read_into(ino, static_cast<uint64_t>(off), buf.span());
  if (!r.ok()) return reply_error(req, r.error());
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *r);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info*) {
  // Direct IO (forcedirect) bypasses the kernel's file_remove_privs(): a
  // writer without CAP_FSETID (approximated: not root) clears the
  // set-user-ID/set-group-ID bits through us.
  auto& m = mount_of(req);
  const bool kill_privs = m.options().cache == client::CacheMode::kForceDirect && fuse_req_ctx(req)->uid != 0;
  auto r = m.write(ino, static_cast<uint64_t>(off),
                               {reinterpret_cast<const uint8_t*>(buf), size}, kill_privs);
  if (!r.ok()) return reply_error(req, r.error());
  fuse_reply_write(req, size);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  // The kernel has written back this file's dirty pages before FLUSH, and
  // every write we acknowledged is durable: only sync_on_close adds a barrier.
  auto& m = mount_of(req);
  if (m.options().sync_on_close) return reply_status(req, m.fsync(ino));
  fuse_reply_err(req, 0);
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // The last close of a file whose names were all removed drops it now.
  reply_status(req, mount_of(req).released(ino, writable(fi)));
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  reply_status(req, mount_of(req).fsync(ino));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info*) {
  reply_status(req, mount_of(req).fallocate(ino, mode, static_cast<uint64_t>(offset),
                                            static_cast<uint64_t>(length)));
}

}  // namespace lanefs::fuse

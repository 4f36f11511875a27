// Entry and attribute handlers: init, lookup, forget, getattr, setattr.
#include "fuse/ops.h"

namespace lanefs::fuse {

void op_init(void* userdata, fuse_conn_info* conn) {
  auto* m = static_cast<client::MountFs*>(userdata);
  // 1 MiB requests: one chunk per FUSE write/read, the protocol's sweet spot.
  conn->max_write = 1 << 20;
  conn->max_readahead = m->options().readahead_kb * 1024u;
  // Reads of one file may be in flight together (readahead + app reads).
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // O_DIRECT with io_submit/io_uring keeps many requests in flight instead
  // of one per thread (rand read QD16).
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  // Enough background requests for readahead and async direct IO at depth.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  // Lookups and readdirs in one directory need not serialize in the kernel.
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // open(O_TRUNC) is handled in open(), saving a separate setattr.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // readdirplus fills the dentry cache while listing (ls -l, find).
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  // writecache: the kernel's write-back cache batches small writes into
  // large ones and owns size/mtime until it flushes. Other modes write through.
  if (m->options().cache == client::CacheMode::kWriteCache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // No advisory lock forwarding: locks stay local to this host's kernel.
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto& m = mount_of(req);
  auto r = m.lookup(parent, name);
  if (r.ok()) return reply_entry(req, *r);
  if (r.code() == Errc::kNotFound && m.options().dentry_max_age_negative_ms > 0) {
    // A negative entry (ino 0) is cached for dentry_max_age_negative.
    fuse_entry_param e{};
    e.entry_timeout = m.options().dentry_max_age_negative_ms / 1000.0;
    fuse_reply_entry(req, &e);
    return;
  }
  reply_error(req, r.error());
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  mount_of(req).forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  auto& m = mount_of(req);
  for (size_t i = 0; i < count; ++i) m.forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto r = mount_of(req).getattr(ino);
  if (r.ok()) reply_attr(req, *r);
  else reply_node_error(req, r.error());
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  proto::SetAttr sa;
  if (to_set & FUSE_SET_ATTR_MODE) { sa.mask |= proto::kSetMode; sa.mode = attr->st_mode; }
  if (to_set & FUSE_SET_ATTR_UID) { sa.mask |= proto::kSetUid; sa.uid = attr->st_uid; }
  if (to_set & FUSE_SET_ATTR_GID) { sa.mask |= proto::kSetGid; sa.gid = attr->st_gid; }
  if (to_set & FUSE_SET_ATTR_SIZE) { sa.mask |= proto::kSetSize; sa.size = static_cast<uint64_t>(attr->st_size); }
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) sa.mask |= proto::kSetAtimeNow;
  else if (to_set & FUSE_SET_ATTR_ATIME) {
    sa.mask |= proto::kSetAtime;
    sa.atime = {attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) sa.mask |= proto::kSetMtimeNow;
  else if (to_set & FUSE_SET_ATTR_MTIME) {
    sa.mask |= proto::kSetMtime;
    sa.mtime = {attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_CTIME) {
    sa.mask |= proto::kSetCtime;
    sa.ctime = {attr->st_ctim.tv_sec, static_cast<uint32_t>(attr->st_ctim.tv_nsec)};
  }
  auto r = mount_of(req).setattr(ino, sa);
  if (r.ok()) reply_attr(req, *r);
  else reply_node_error(req, r.error());
}

}  // namespace lanefs::fuse

#include <sys/stat.h>

#include <cstring>

#include "common/log.h"
#include "fuse/ops.h"

namespace lanefs::fuse {

namespace {

class FuseKernelCache final : public client::KernelCache {
 public:
  explicit FuseKernelCache(::fuse_session* se) : se_(se) {}
  void file_changed(uint64_t nodeid, uint64_t new_size, std::optional<uint8_t> last) noexcept override {
    // Every cached page and the attributes; then the last byte stored at
    // the new end, which sets the larger size.
    int rc = fuse_lowlevel_notify_inval_inode(se_, nodeid, 0, 0);
    if (rc == 0 && last && new_size > 0) {
      uint8_t byte = *last;
      fuse_bufvec one = FUSE_BUFVEC_INIT(1);
      one.buf[0].mem = &byte;
      rc = fuse_lowlevel_notify_store(se_, nodeid, static_cast<off_t>(new_size - 1), &one, fuse_buf_copy_flags{});
    }
    if (rc != 0 && rc != -ENOENT) LOG_WARN("refreshing node {} in the kernel's cache: {}", nodeid, strerror(-rc));
  }
  void attrs_changed(uint64_t nodeid) noexcept override {
    int rc = fuse_lowlevel_notify_inval_inode(se_, nodeid, -1, 0);
    if (rc != 0 && rc != -ENOENT) LOG_WARN("dropping node {}'s attributes in the kernel: {}", nodeid, strerror(-rc));
  }

 private:
  ::fuse_session* se_;
};

}  // namespace

std::unique_ptr<client::KernelCache> make_kernel_cache(::fuse_session* se) {
  return std::make_unique<FuseKernelCache>(se);
}

client::MountFs& mount_of(fuse_req_t req) {
  return *static_cast<client::MountFs*>(fuse_req_userdata(req));
}

void reply_error(fuse_req_t req, const Error& e) {
  int err = to_errno(e.code);
  if (err == EIO) LOG_WARN("I/O error: {}", e.to_string());
  fuse_reply_err(req, err);
}

void reply_node_error(fuse_req_t req, const Error& e) {
  if (e.code != Errc::kNotFound) return reply_error(req, e);
  // The inode behind this node id is gone on the backend (another client
  // removed it or renamed a file over its name): ESTALE makes the kernel
  // look the name up again (LOOKUP_REVAL) instead of failing the open or
  // stat with ENOENT while the name exists.
  fuse_reply_err(req, ESTALE);
}

void reply_status(fuse_req_t req, const Status& s) {
  if (s.ok()) fuse_reply_err(req, 0);
  else reply_error(req, s.error());
}

double entry_timeout(const client::MountFs& m) { return m.options().dentry_max_age_positive_ms / 1000.0; }

double attr_timeout(const client::MountFs& m) {
  // Without the write-back cache, another client's changes must be seen at
  // the next open/stat: attributes are not cached.
  if (m.options().cache != client::CacheMode::kWriteCache) return 0;
  return m.options().dentry_max_age_positive_ms / 1000.0;
}

struct stat to_stat(const proto::InodeAttr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_blksize = 1 << 20;
  st.st_atim = {a.atime.sec, a.atime.nsec};
  st.st_mtim = {a.mtime.sec, a.mtime.nsec};
  st.st_ctim = {a.ctime.sec, a.ctime.nsec};
  return st;
}

void reply_entry(fuse_req_t req, const proto::InodeAttr& a) {
  auto& m = mount_of(req);
  fuse_entry_param e{};
  e.ino = a.ino;
  e.generation = m.generation(a.ino);
  e.attr = to_stat(a);
  e.attr_timeout = attr_timeout(m);
  e.entry_timeout = entry_timeout(m);
  fuse_reply_entry(req, &e);
}

void reply_attr(fuse_req_t req, const proto::InodeAttr& a) {
  struct stat st = to_stat(a);
  fuse_reply_attr(req, &st, attr_timeout(mount_of(req)));
}

proto::Cred cred_of(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return {c->uid, c->gid};
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.create = op_create;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.fallocate = op_fallocate;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  return ops;
}

}  // namespace lanefs::fuse

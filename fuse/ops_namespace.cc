// Namespace handlers: mknod, mkdir, unlink, rmdir, symlink, rename, link, readlink.
#include <sys/stat.h>

#include "fuse/ops.h"

namespace lanefs::fuse {
namespace {
void reply_entry_result(const Req& req, const Result<proto::InodeAttr>& r) {
  if (r.ok()) reply_entry(req, *r);
  else reply_error(req, r.error());
}
}  // namespace

void op_readlink(const Req& req, uint64_t ino) noexcept {
  auto r = mount_of(req).readlink(ino);
  if (r.ok()) reply_buf(req, r->data(), r->size());
  else reply_error(req, r.error());
}

void op_mknod(const Req& req, uint64_t parent, const char* name, uint32_t mode, uint32_t rdev) noexcept {
  // The kernel applied the umask already.
  reply_entry_result(req, mount_of(req).create(parent, name, mode, rdev, cred_of(req), true));
}

void op_mkdir(const Req& req, uint64_t parent, const char* name, uint32_t mode) noexcept {
  reply_entry_result(req, mount_of(req).create(parent, name, S_IFDIR | (mode & 07777), 0, cred_of(req), true));
}

void op_unlink(const Req& req, uint64_t parent, const char* name) noexcept {
  reply_status(req, mount_of(req).unlink(parent, name, cred_of(req)));
}

void op_rmdir(const Req& req, uint64_t parent, const char* name) noexcept {
  reply_status(req, mount_of(req).rmdir(parent, name, cred_of(req)));
}

void op_symlink(const Req& req, const char* link, uint64_t parent, const char* name) noexcept {
  reply_entry_result(req, mount_of(req).symlink(parent, name, link, cred_of(req)));
}

void op_rename(const Req& req, uint64_t parent, const char* name, uint64_t newparent, const char* newname,
               uint32_t flags) noexcept {
  reply_status(req, mount_of(req).rename(parent, name, newparent, newname, flags, cred_of(req)));
}

void op_link(const Req& req, uint64_t ino, uint64_t newparent, const char* newname) noexcept {
  reply_entry_result(req, mount_of(req).link(ino, newparent, newname, cred_of(req)));
}

}  // namespace lanefs::fuse

// Namespace handlers: mknod, mkdir, unlink, rmdir, symlink, rename, link, readlink.
#include <sys/stat.h>

#include "fuse/ops.h"

namespace lanefs::fuse {
namespace {
void reply_entry_result(fuse_req_t req, const Result<proto::InodeAttr>& r) {
  if (r.ok()) reply_entry(req, *r);
  else reply_error(req, r.error());
}
}  // namespace

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = mount_of(req).readlink(ino);
  if (r.ok()) fuse_reply_readlink(req, r->c_str());
  else reply_error(req, r.error());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  // The kernel applied the umask already.
  reply_entry_result(req, mount_of(req).create(parent, name, mode, static_cast<uint32_t>(rdev),
                                               cred_of(req), true));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply_entry_result(req, mount_of(req).create(parent, name, S_IFDIR | (mode & 07777), 0,
                                               cred_of(req), true));
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, mount_of(req).unlink(parent, name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, mount_of(req).rmdir(parent, name));
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  reply_entry_result(req, mount_of(req).symlink(parent, name, link, cred_of(req)));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
  reply_status(req, mount_of(req).rename(parent, name, newparent, newname, flags));
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  reply_entry_result(req, mount_of(req).link(ino, newparent, newname));
}

}  // namespace lanefs::fuse

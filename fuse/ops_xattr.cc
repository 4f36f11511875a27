// statfs and extended attributes.
#include <sys/xattr.h>

#include "fuse/ops.h"

namespace lanefs::fuse {

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto r = mount_of(req).statfs();
  if (!r.ok()) return reply_error(req, r.error());
  struct statvfs s {};
  s.f_bsize = r->block_size;
  s.f_frsize = r->block_size;
  s.f_blocks = r->total_bytes / r->block_size;
  s.f_bfree = r->free_bytes / r->block_size;
  s.f_bavail = r->avail_bytes / r->block_size;
  s.f_files = r->total_inodes;
  s.f_ffree = r->free_inodes;
  s.f_favail = r->free_inodes;
  s.f_namemax = r->name_max;
  fuse_reply_statfs(req, &s);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  uint32_t f = 0;
  if (flags & XATTR_CREATE) f |= proto::kXattrCreate;
  if (flags & XATTR_REPLACE) f |= proto::kXattrReplace;
  reply_status(req, mount_of(req).setxattr(ino, name, std::string(value, size), f));
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto r = mount_of(req).getxattr(ino, name);
  if (!r.ok()) return reply_error(req, r.error());
  if (size == 0) return (void)fuse_reply_xattr(req, r->size());
  if (r->size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, r->data(), r->size());
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto r = mount_of(req).listxattr(ino);
  if (!r.ok()) return reply_error(req, r.error());
  std::string all;
  for (const auto& n : *r) {
    all += n;
    all.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, all.size());
  if (all.size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, all.data(), all.size());
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  reply_status(req, mount_of(req).removexattr(ino, name));
}

}  // namespace lanefs::fuse

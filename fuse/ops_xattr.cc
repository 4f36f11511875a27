// statfs and extended attributes.
#include <sys/xattr.h>

#include "fuse/ops.h"

namespace lanefs::fuse {
namespace {

// getxattr/listxattr with size 0 ask for the size; a value larger than the
// caller's buffer is ERANGE.
void reply_sized(const Req& req, const std::string& value, size_t size) {
  if (size == 0) {
    abi::GetxattrOut o{static_cast<uint32_t>(value.size()), 0};
    reply_buf(req, &o, sizeof o);
  } else if (value.size() > size) {
    reply_err(req, ERANGE);
  } else {
    reply_buf(req, value.data(), value.size());
  }
}

}  // namespace

void op_statfs(const Req& req, uint64_t) noexcept {
  auto r = mount_of(req).statfs();
  if (!r.ok()) {
    reply_error(req, r.error());
    return;
  }
  abi::Kstatfs s{};
  s.bsize = r->block_size;
  s.frsize = r->block_size;
  s.blocks = r->total_bytes / r->block_size;
  s.bfree = r->free_bytes / r->block_size;
  s.bavail = r->avail_bytes / r->block_size;
  s.files = r->total_inodes;
  s.ffree = r->free_inodes;
  s.namelen = r->name_max;
  reply_buf(req, &s, sizeof s);
}

void op_setxattr(const Req& req, uint64_t ino, const char* name, const char* value, size_t size, int flags) noexcept {
  uint32_t f = 0;
  if (flags & XATTR_CREATE) f |= proto::kXattrCreate;
  if (flags & XATTR_REPLACE) f |= proto::kXattrReplace;
  reply_status(req, mount_of(req).setxattr(ino, name, std::string(value, size), f, cred_of(req)));
}

void op_getxattr(const Req& req, uint64_t ino, const char* name, size_t size) noexcept {
  auto r = mount_of(req).getxattr(ino, name, cred_of(req));
  if (!r.ok()) {
    reply_error(req, r.error());
    return;
  }
  reply_sized(req, *r, size);
}

void op_listxattr(const Req& req, uint64_t ino, size_t size) noexcept {
  auto r = mount_of(req).listxattr(ino, cred_of(req));
  if (!r.ok()) {
    reply_error(req, r.error());
    return;
  }
  std::string all;
  for (const auto& n : *r) {
    all += n;
    all.push_back('\0');
  }
  reply_sized(req, all, size);
}

void op_removexattr(const Req& req, uint64_t ino, const char* name) noexcept {
  reply_status(req, mount_of(req).removexattr(ino, name, cred_of(req)));
}

}  // namespace lanefs::fuse

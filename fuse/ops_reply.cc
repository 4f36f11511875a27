// Reply encoding (fuse/abi.h) and the mount's kernel-cache notifications.
#include <sys/stat.h>

#include <cmath>
#include <cstring>

#include "common/errors.h"
#include "common/log.h"
#include "fuse/ops.h"

namespace lanefs::fuse {

namespace {

class FuseKernelCache final : public client::KernelCache {
 public:
  explicit FuseKernelCache(Session& se) : se_(se) {}
  void file_changed(uint64_t nodeid, uint64_t new_size, std::optional<uint8_t> last) noexcept override {
    // Every cached page and the attributes; then the last byte stored at
    // the new end, which sets the larger size.
    abi::NotifyInvalInodeOut inval{nodeid, 0, 0};
    iovec v{&inval, sizeof inval};
    int rc = se_.notify(abi::kNotifyInvalInode, &v, 1);
    if (rc == 0 && last && new_size > 0) {
      uint8_t byte = *last;
      abi::NotifyStoreOut store{nodeid, new_size - 1, 1, 0};
      iovec parts[2] = {{&store, sizeof store}, {&byte, 1}};
      rc = se_.notify(abi::kNotifyStore, parts, 2);
    }
    if (rc != 0 && rc != -ENOENT) LOG_WARN("refreshing node {} in the kernel's cache: {}", nodeid, strerror(-rc));
  }
  void attrs_changed(uint64_t nodeid) noexcept override {
    abi::NotifyInvalInodeOut inval{nodeid, -1, 0};  // off -1: attributes only
    iovec v{&inval, sizeof inval};
    int rc = se_.notify(abi::kNotifyInvalInode, &v, 1);
    if (rc != 0 && rc != -ENOENT) LOG_WARN("dropping node {}'s attributes in the kernel: {}", nodeid, strerror(-rc));
  }

 private:
  Session& se_;
};

void split_timeout(double secs, uint64_t* s, uint32_t* ns) {
  if (secs <= 0) {
    *s = 0;
    *ns = 0;
    return;
  }
  *s = static_cast<uint64_t>(secs);
  *ns = static_cast<uint32_t>(std::lround((secs - double(*s)) * 1e9) % 1'000'000'000);
}

uint32_t open_flags(const FileInfo& fi) {
  return (fi.direct_io ? abi::kOpenDirectIo : 0) | (fi.keep_cache ? abi::kOpenKeepCache : 0);
}

}  // namespace

std::unique_ptr<client::KernelCache> make_kernel_cache(Session& se) { return std::make_unique<FuseKernelCache>(se); }

int reply_err(const Req& req, int err) { return req.se->reply(req, err, nullptr, 0); }

int reply_error(const Req& req, const Error& e) {
  int err = to_errno(e.code);
  if (err == EIO) LOG_WARN("I/O error: {}", e.to_string());
  return reply_err(req, err);
}

int reply_node_error(const Req& req, const Error& e) {
  if (e.code != Errc::kNotFound) return reply_error(req, e);
  // The inode behind this node id is gone on the backend (another client
  // removed it or renamed a file over its name): ESTALE makes the kernel
  // look the name up again (LOOKUP_REVAL) instead of failing the open or
  // stat with ENOENT while the name exists.
  return reply_err(req, ESTALE);
}

int reply_status(const Req& req, const Status& s) { return s.ok() ? reply_err(req, 0) : reply_error(req, s.error()); }

double entry_timeout(const client::MountFs& m) { return m.options().dentry_max_age_positive_ms / 1000.0; }

double attr_timeout(const client::MountFs& m) {
  // Without the write-back cache, another client's changes must be seen at
  // the next open/stat: attributes are not cached.
  if (m.options().cache != client::CacheMode::kWriteCache) return 0;
  return m.options().dentry_max_age_positive_ms / 1000.0;
}

void fill_attr(abi::Attr* out, const proto::InodeAttr& a) {
  *out = abi::Attr{};
  out->ino = a.ino;
  out->mode = a.mode;
  out->nlink = a.nlink;
  out->uid = a.uid;
  out->gid = a.gid;
  out->rdev = a.rdev;
  out->size = a.size;
  out->blocks = a.blocks;
  out->blksize = 1 << 20;
  out->atime = static_cast<uint64_t>(a.atime.sec);
  out->atimensec = a.atime.nsec;
  out->mtime = static_cast<uint64_t>(a.mtime.sec);
  out->mtimensec = a.mtime.nsec;
  out->ctime = static_cast<uint64_t>(a.ctime.sec);
  out->ctimensec = a.ctime.nsec;
}

void fill_entry(abi::EntryOut* out, const client::MountFs& m, const proto::InodeAttr& a) {
  *out = abi::EntryOut{};
  out->nodeid = a.ino;
  out->generation = m.generation(a.ino);
  split_timeout(entry_timeout(m), &out->entry_valid, &out->entry_valid_nsec);
  split_timeout(attr_timeout(m), &out->attr_valid, &out->attr_valid_nsec);
  fill_attr(&out->attr, a);
}

int reply_entry(const Req& req, const proto::InodeAttr& a) {
  abi::EntryOut e;
  fill_entry(&e, mount_of(req), a);
  iovec v{&e, sizeof e};
  return req.se->reply(req, 0, &v, 1);
}

int reply_negative_entry(const Req& req, uint32_t timeout_ms) {
  // Node id 0 with a timeout: the kernel caches the name's absence.
  abi::EntryOut e{};
  split_timeout(timeout_ms / 1000.0, &e.entry_valid, &e.entry_valid_nsec);
  iovec v{&e, sizeof e};
  return req.se->reply(req, 0, &v, 1);
}

int reply_attr(const Req& req, const proto::InodeAttr& a) {
  abi::AttrOut o{};
  split_timeout(attr_timeout(mount_of(req)), &o.attr_valid, &o.attr_valid_nsec);
  fill_attr(&o.attr, a);
  iovec v{&o, sizeof o};
  return req.se->reply(req, 0, &v, 1);
}

int reply_open(const Req& req, const FileInfo& fi) {
  abi::OpenOut o{};
  o.open_flags = open_flags(fi);
  iovec v{&o, sizeof o};
  return req.se->reply(req, 0, &v, 1);
}

int reply_create(const Req& req, const proto::InodeAttr& a, const FileInfo& fi) {
  abi::EntryOut e;
  fill_entry(&e, mount_of(req), a);
  abi::OpenOut o{};
  o.open_flags = open_flags(fi);
  iovec v[2] = {{&e, sizeof e}, {&o, sizeof o}};
  return req.se->reply(req, 0, v, 2);
}

int reply_buf(const Req& req, const void* data, size_t size) {
  iovec v{const_cast<void*>(data), size};
  return req.se->reply(req, 0, &v, size ? 1 : 0);
}

int reply_write(const Req& req, uint32_t size) {
  abi::WriteOut o{size, 0};
  iovec v{&o, sizeof o};
  return req.se->reply(req, 0, &v, 1);
}

int reply_none(const Req&) { return 0; }

}  // namespace lanefs::fuse

// The FUSE request handlers, channel-neutral: the dispatcher (dispatch.cc)
// decodes a request, whichever channel carried it, and calls one of these;
// they call the client core (client::MountFs) and reply through the Req.
// reply_error() holds the one Errc -> errno mapping for replies. Handlers
// are grouped by family in ops_*.cc. Every handler replies exactly once
// (forget: never) and throws nothing.
#pragma once

#include <string_view>

#include "client/mount_fs.h"
#include "fuse/session.h"

namespace lanefs::fuse {

// What a handler sets on an opened file (fuse_open_out.open_flags).
struct FileInfo {
  uint32_t flags = 0;  // the open(2) flags
  bool direct_io = false, keep_cache = false;
  bool kill_suidgid = false;  // open(O_TRUNC) by a user without CAP_FSETID (HANDLE_KILLPRIV_V2)
};

// The KernelCache of a mount: notifications (inval_inode, store) written
// on its session's /dev/fuse (ops_reply.cc).
std::unique_ptr<client::KernelCache> make_kernel_cache(Session& se);

// ---- reply helpers (ops_reply.cc); each returns 0 or -errno (-ENOENT:
// the request was interrupted, nobody gets the answer)
inline client::MountFs& mount_of(const Req& req) { return req.se->fs(); }
int reply_err(const Req& req, int err);
int reply_error(const Req& req, const Error& e);
// For an operation on a node id the kernel holds (getattr, setattr, open,
// opendir): kNotFound means a stale node and is answered ESTALE.
int reply_node_error(const Req& req, const Error& e);
int reply_status(const Req& req, const Status& s);
void fill_attr(abi::Attr* out, const proto::InodeAttr& a);
void fill_entry(abi::EntryOut* out, const client::MountFs& m, const proto::InodeAttr& a);
int reply_entry(const Req& req, const proto::InodeAttr& a);
int reply_negative_entry(const Req& req, uint32_t timeout_ms);
int reply_attr(const Req& req, const proto::InodeAttr& a);
int reply_open(const Req& req, const FileInfo& fi);
int reply_create(const Req& req, const proto::InodeAttr& a, const FileInfo& fi);
int reply_buf(const Req& req, const void* data, size_t size);
int reply_write(const Req& req, uint32_t size);
int reply_none(const Req& req);  // forget: the kernel wants no answer
double entry_timeout(const client::MountFs& m);
double attr_timeout(const client::MountFs& m);
// The caller as its kernel names it; supplementary groups are read from
// its pid only when a backend refuses without them (ClusterClient).
inline proto::Cred cred_of(const Req& req) { return {req.uid, req.gid, {}, req.pid}; }

// ---- families
void op_lookup(const Req& req, uint64_t parent, const char* name) noexcept;
void op_forget(const Req& req, uint64_t ino, uint64_t nlookup) noexcept;
void op_getattr(const Req& req, uint64_t ino) noexcept;
void op_setattr(const Req& req, uint64_t ino, const abi::SetattrIn& in) noexcept;

void op_readlink(const Req& req, uint64_t ino) noexcept;
void op_mknod(const Req& req, uint64_t parent, const char* name, uint32_t mode, uint32_t rdev) noexcept;
void op_mkdir(const Req& req, uint64_t parent, const char* name, uint32_t mode) noexcept;
void op_unlink(const Req& req, uint64_t parent, const char* name) noexcept;
void op_rmdir(const Req& req, uint64_t parent, const char* name) noexcept;
void op_symlink(const Req& req, const char* link, uint64_t parent, const char* name) noexcept;
void op_rename(const Req& req, uint64_t parent, const char* name, uint64_t newparent, const char* newname,
               uint32_t flags) noexcept;
void op_link(const Req& req, uint64_t ino, uint64_t newparent, const char* newname) noexcept;

void op_create(const Req& req, uint64_t parent, const char* name, uint32_t mode, FileInfo& fi) noexcept;
void op_open(const Req& req, uint64_t ino, FileInfo& fi) noexcept;
void op_read(const Req& req, uint64_t ino, size_t size, uint64_t off) noexcept;
void op_write(const Req& req, uint64_t ino, const uint8_t* buf, size_t size, uint64_t off, bool kill_privs) noexcept;
void op_flush(const Req& req, uint64_t ino) noexcept;
void op_release(const Req& req, uint64_t ino, const FileInfo& fi) noexcept;
void op_fsync(const Req& req, uint64_t ino) noexcept;
void op_fallocate(const Req& req, uint64_t ino, int mode, uint64_t offset, uint64_t length) noexcept;

void op_opendir(const Req& req, uint64_t ino, FileInfo& fi) noexcept;
void op_readdir(const Req& req, uint64_t ino, size_t size, uint64_t off, bool plus) noexcept;
void op_releasedir(const Req& req, uint64_t ino) noexcept;
void op_fsyncdir(const Req& req, uint64_t ino) noexcept;

void op_statfs(const Req& req, uint64_t ino) noexcept;
void op_setxattr(const Req& req, uint64_t ino, const char* name, const char* value, size_t size, int flags) noexcept;
void op_getxattr(const Req& req, uint64_t ino, const char* name, size_t size) noexcept;
void op_listxattr(const Req& req, uint64_t ino, size_t size) noexcept;
void op_removexattr(const Req& req, uint64_t ino, const char* name) noexcept;

}  // namespace lanefs::fuse

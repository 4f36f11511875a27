// The FUSE low-level front-end. Handlers are thin: translate the kernel's
// request, call the channel-independent client core (client::MountFs), and
// reply. reply_error() holds the one Errc -> errno mapping for replies.
// Handlers are grouped by family in ops_*.cc; make_ops() assigns the whole
// table in one place.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "client/mount_fs.h"

namespace lanefs::fuse {

// The ops table for libfuse (userdata of the session: client::MountFs*).
fuse_lowlevel_ops make_ops();

// The FUSE channel's client::KernelCache: notifications (inval_inode,
// store) written on the session's /dev/fuse (ops_reply.cc).
std::unique_ptr<client::KernelCache> make_kernel_cache(::fuse_session* se);

// ---- reply helpers (ops_reply.cc)
client::MountFs& mount_of(fuse_req_t req);
void reply_error(fuse_req_t req, const Error& e);
// For an operation on a node id the kernel holds (getattr, setattr, open,
// opendir): kNotFound means a stale node and is answered ESTALE.
void reply_node_error(fuse_req_t req, const Error& e);
void reply_status(fuse_req_t req, const Status& s);
struct stat to_stat(const proto::InodeAttr& a);
void reply_entry(fuse_req_t req, const proto::InodeAttr& a);
void reply_attr(fuse_req_t req, const proto::InodeAttr& a);
double entry_timeout(const client::MountFs& m);
double attr_timeout(const client::MountFs& m);
proto::Cred cred_of(fuse_req_t req);

// ---- families
void op_init(void* userdata, fuse_conn_info* conn);
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets);
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);

void op_readlink(fuse_req_t req, fuse_ino_t ino);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi);

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

void op_statfs(fuse_req_t req, fuse_ino_t ino);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags);
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name);

}  // namespace lanefs::fuse

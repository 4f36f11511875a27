// Permission checks of metadata requests (docs/security.md, "Permissions").
// A request carries its caller's credentials (proto::Cred); the backend that
// owns the inodes it names decides, from their mode, owner and group, what
// those credentials may do, as a local filesystem would: search (x) on a
// directory to look a name up, write and search to add or remove a name
// (and, in a sticky directory, ownership of the name or the directory to
// remove one), read to list a directory, the open's access to open a file,
// ownership to chmod, root to chown. Before the check, a session whose
// token squashes root runs uid 0 as nobody (65534).
//
// Who is not checked: other backends (peer primitives) and calls without a
// session (info null: this backend itself). The mounting host's kernel
// checks too (default_permissions); these checks hold when it does not,
// and they are the only place root squashing applies.
//
// Thread-safety: stateless; reads inode records (and, for an inode on
// another shard, asks its owner: only from the workers, never the loop).
#pragma once

#include <cstdint>
#include <span>

#include "common/result.h"
#include "proto/auth.h"
#include "proto/messages.h"
#include "proto/permission.h"
#include "rpc/rpc.h"

namespace lanefs::backend {

class BackendCore;


// The credentials a request runs as: `c`, or nobody (uid and gid 65534, no
// groups) when c is root and the session's token squashes root.
proto::Cred effective_cred(const rpc::RequestInfo* info, proto::Cred c);

// What `op` needs of the inodes this backend owns, checked for the
// request's effective credentials: ok, kPermission (EACCES: mode bits),
// kNotPermitted (EPERM: owner only, root only, sticky directory), or the
// error of reading an inode. Ops that need nothing, requests that do not
// decode, and inodes this backend does not own pass (the op itself
// answers). Lookup and open read only local records (the loop runs them
// inline); unlink, rmdir and rename in a sticky directory, and a rename
// moving a directory, may ask another backend for the inode moved or
// removed (workers only).
Status admit(BackendCore& b, proto::Op op, std::span<const uint8_t> req, const rpc::RequestInfo* info);
// admit() of a lookup and of an open the loop has decoded already.
Status admit_lookup(BackendCore& b, const proto::NameAtReq& r, const rpc::RequestInfo* info);
Status admit_open(BackendCore& b, const proto::HandleReq& r, const rpc::RequestInfo* info);

// A new inode `a` made in directory `dir` by `creator`: in a
// set-group-ID directory it takes the directory's group, a new directory
// keeps the bit, and a new group-executable set-group-ID file loses it
// when its creator is neither root nor in that group (as Linux 6.0 on).
void inherit_setgid(const proto::InodeAttr& dir, proto::InodeAttr& a, const proto::Cred& creator);

}  // namespace lanefs::backend

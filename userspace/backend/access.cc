// Permission checks of metadata requests (backend/access.h).
#include "backend/access.h"

#include <sys/stat.h>

#include <algorithm>
#include <string>

#include "backend/backend_core.h"

namespace lanefs::backend {
namespace {

using proto::Cred;
using proto::in_group;
using proto::may_access;
using proto::InodeAttr;
using proto::kMayExec;
using proto::kMayRead;
using proto::kMayWrite;
using proto::Op;

Error not_permitted(const Cred& c, const std::string& what) {
  return make_error(Errc::kNotPermitted, "operation not permitted: uid " + std::to_string(c.uid) + " " + what);
}

// The record of a local inode; nullopt when this backend does not own it
// or it does not exist (the op answers that itself).
std::optional<InodeAttr> local_inode(BackendCore& b, const proto::ClusterMap& m, uint64_t ino) {
  const proto::Member* owner = proto::meta_owner(m, ino);
  if (owner == nullptr || !b.is_self(*owner)) return std::nullopt;
  auto a = b.meta().get_inode(ino);
  if (!a.ok()) return std::nullopt;
  return *a;
}

// The inode a name of local directory `parent` points to, wherever its
// record lives (workers only: may ask its owner).
std::optional<InodeAttr> named_inode(BackendCore& b, const proto::ClusterMap& m, uint64_t parent,
                                     const std::string& name) {
  auto d = b.meta().get_dirent(parent, name);
  if (!d.ok()) return std::nullopt;
  if (auto a = local_inode(b, m, d->ino)) return a;
  const proto::Member* owner = proto::meta_owner(m, d->ino);
  if (owner == nullptr) return std::nullopt;
  auto a = b.call_member<InodeAttr>(*owner, Op::kGetattr, proto::InoReq{d->ino});
  if (!a.ok()) return std::nullopt;
  return *a;
}

// Directory `parent` (local) must grant `mask`. Not a directory: the op
// answers ENOTDIR, as path resolution does before any permission.
Status dir_grants(BackendCore& b, const proto::ClusterMap& m, uint64_t parent, const Cred& c, uint8_t mask) {
  if (c.uid == 0) return ok_status();  // root may write and search any directory
  auto dir = local_inode(b, m, parent);
  if (!dir || !S_ISDIR(dir->mode)) return ok_status();
  return may_access(*dir, c, mask);
}

// Removing (or renaming away) `name` from local directory `parent`: write
// and search on it, and in a sticky directory ownership of the name or of
// the directory.
Status may_remove(BackendCore& b, const proto::ClusterMap& m, uint64_t parent, const std::string& name,
                  const Cred& c) {
  if (c.uid == 0) return ok_status();  // root: any directory, sticky or not
  auto dir = local_inode(b, m, parent);
  if (!dir || !S_ISDIR(dir->mode)) return ok_status();
  LANEFS_TRY(may_access(*dir, c, kMayWrite | kMayExec));
  if (!(dir->mode & S_ISVTX) || c.uid == 0 || c.uid == dir->uid) return ok_status();
  auto victim = named_inode(b, m, parent, name);
  if (!victim || victim->uid == c.uid) return ok_status();
  return not_permitted(c, "may not remove '" + name + "' from a sticky directory (owned by uid " +
                              std::to_string(victim->uid) + ")");
}

Status may_setattr(const InodeAttr& a, const proto::SetAttr& sa, const Cred& c) {
  if (c.uid == 0) return ok_status();
  const bool owner = c.uid == a.uid;
  if ((sa.mask & proto::kSetMode) && !owner) return not_permitted(c, "may not change the mode of a file it does not own");
  if ((sa.mask & proto::kSetUid) && sa.uid != a.uid) return not_permitted(c, "may not change a file's owner");
  if ((sa.mask & proto::kSetGid) && sa.gid != a.gid && !(owner && in_group(c, sa.gid)))
    return not_permitted(c, "may not give a file to group " + std::to_string(sa.gid));
  if ((sa.mask & proto::kSetSize) && !(sa.mask & proto::kSetByHandle)) LANEFS_TRY(may_access(a, c, kMayWrite));
  // Times: the owner, or anyone who may write the file, or through an open
  // file (the kernel flushes cached mtimes as whoever writes back). (A
  // local filesystem allows a non-owner only "now"; the kernel enforces
  // that for utimensat.)
  const uint32_t times = proto::kSetAtime | proto::kSetMtime | proto::kSetAtimeNow | proto::kSetMtimeNow;
  if ((sa.mask & times) && !owner && !(sa.mask & proto::kSetByHandle)) LANEFS_TRY(may_access(a, c, kMayWrite));
  return ok_status();
}

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// write: set or remove (remove: only a remove).
Status may_xattr(const InodeAttr& a, const std::string& name, const Cred& c, bool write, bool remove) {
  if (starts_with(name, "user.")) {
    if (!S_ISREG(a.mode) && !S_ISDIR(a.mode))
      return not_permitted(c, "user.* attributes exist only on regular files and directories");
    return may_access(a, c, write ? kMayWrite : kMayRead);
  }
  if (starts_with(name, "trusted.") && c.uid != 0) return not_permitted(c, "trusted.* attributes are root's");
  // security.*: root's to set; a writer drops file capabilities (the kernel
  // removes security.capability before a write, as the writer).
  if (write && starts_with(name, "security.") && c.uid != 0) {
    if (remove && name == "security.capability") return may_access(a, c, kMayWrite);
    return not_permitted(c, "security.* attributes are root's to change");
  }
  if (write && starts_with(name, "system.") && c.uid != 0 && c.uid != a.uid)
    return not_permitted(c, "may not change system.* attributes of a file it does not own");
  return ok_status();
}

// Backends (peer primitives) and calls without a session are not checked.
bool exempt(const rpc::RequestInfo* info) {
  if (info == nullptr) return true;
  const proto::UserRecord* who = info->principal;
  return who != nullptr && (who->role == proto::Role::kBackend || who->role == proto::Role::kJoining);
}

template <class Req>
std::optional<Req> decoded(std::span<const uint8_t> raw) {
  auto r = proto::decode_msg<Req>(raw);
  if (!r.ok()) return std::nullopt;
  return std::move(*r);
}

}  // namespace

Cred effective_cred(const rpc::RequestInfo* info, Cred c) {
  const proto::UserRecord* who = info ? info->principal : nullptr;
  if (who == nullptr || !who->root_squash) return c;
  if (c.uid == 0) {
    c.uid = c.gid = proto::kNobody;
    c.groups.clear();
  } else {
    // Group 0 is root's too (as nfsd squashes it).
    if (c.gid == 0) c.gid = proto::kNobody;
    std::replace(c.groups.begin(), c.groups.end(), 0u, proto::kNobody);
  }
  return c;
}

void inherit_setgid(const InodeAttr& dir, InodeAttr& a, const Cred& creator) {
  if (!(dir.mode & S_ISGID)) return;
  a.gid = dir.gid;
  if (S_ISDIR(a.mode)) {
    a.mode |= S_ISGID;
  } else if ((a.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && creator.uid != 0 && !in_group(creator, a.gid)) {
    a.mode &= ~S_ISGID;  // a set-group-ID file of a group its creator is not in
  }
}

Status admit_lookup(BackendCore& b, const proto::NameAtReq& r, const rpc::RequestInfo* info) {
  if (exempt(info)) return ok_status();
  return dir_grants(b, *b.map_ptr(), r.parent, effective_cred(info, r.cred), kMayExec);
}

Status admit_open(BackendCore& b, const proto::HandleReq& r, const rpc::RequestInfo* info) {
  if (exempt(info) || !r.open || r.access == 0) return ok_status();
  const Cred c = effective_cred(info, r.cred);
  if (c.uid == 0 && !(r.access & kMayExec)) return ok_status();
  auto a = local_inode(b, *b.map_ptr(), r.ino);
  return a ? may_access(*a, c, r.access) : ok_status();
}

Status admit(BackendCore& b, Op op, std::span<const uint8_t> raw, const rpc::RequestInfo* info) {
  if (exempt(info)) return ok_status();
  auto m = b.map_ptr();
  switch (op) {
    case Op::kLookup: {
      auto r = decoded<proto::NameAtReq>(raw);
      return r ? admit_lookup(b, *r, info) : ok_status();
    }
    case Op::kCreate: {
      auto r = decoded<proto::CreateReq>(raw);
      if (!r) return ok_status();
      return dir_grants(b, *m, r->parent, effective_cred(info, r->cred), kMayWrite | kMayExec);
    }
    case Op::kLink: {
      auto r = decoded<proto::LinkReq>(raw);
      if (!r) return ok_status();
      return dir_grants(b, *m, r->new_parent, effective_cred(info, r->cred), kMayWrite | kMayExec);
    }
    case Op::kUnlink:
    case Op::kRmdir: {
      auto r = decoded<proto::NameAtReq>(raw);
      if (!r) return ok_status();
      return may_remove(b, *m, r->parent, r->name, effective_cred(info, r->cred));
    }
    case Op::kRename: {
      auto r = decoded<proto::RenameReq>(raw);
      if (!r) return ok_status();
      const Cred c = effective_cred(info, r->cred);
      LANEFS_TRY(may_remove(b, *m, r->parent, r->name, c));
      if (b.meta().get_dirent(r->new_parent, r->new_name).ok())
        LANEFS_TRY(may_remove(b, *m, r->new_parent, r->new_name, c));
      else
        LANEFS_TRY(dir_grants(b, *m, r->new_parent, c, kMayWrite | kMayExec));
      // A directory moving to another parent changes its "..": write on it
      // (both of them when they trade places).
      if (r->parent != r->new_parent && c.uid != 0) {
        if (auto moved = named_inode(b, *m, r->parent, r->name); moved && S_ISDIR(moved->mode))
          LANEFS_TRY(may_access(*moved, c, kMayWrite));
        if (r->flags & proto::kRenameExchange)
          if (auto other = named_inode(b, *m, r->new_parent, r->new_name); other && S_ISDIR(other->mode))
            LANEFS_TRY(may_access(*other, c, kMayWrite));
      }
      return ok_status();
    }
    case Op::kReaddir: {
      auto r = decoded<proto::ReaddirReq>(raw);
      if (!r) return ok_status();
      return dir_grants(b, *m, r->ino, effective_cred(info, r->cred), kMayRead);
    }
    case Op::kSetattr: {
      auto r = decoded<proto::SetattrReq>(raw);
      if (!r) return ok_status();
      const Cred c = effective_cred(info, r->cred);
      if (c.uid == 0) return ok_status();
      auto a = local_inode(b, *m, r->ino);
      return a ? may_setattr(*a, r->attr, c) : ok_status();
    }
    case Op::kOpenHandle: {
      auto r = decoded<proto::HandleReq>(raw);
      return r ? admit_open(b, *r, info) : ok_status();
    }
    case Op::kGetxattr:
    case Op::kRemovexattr: {
      auto r = decoded<proto::XattrReq>(raw);
      if (!r) return ok_status();
      auto a = local_inode(b, *m, r->ino);
      const bool remove = op == Op::kRemovexattr;
      return a ? may_xattr(*a, r->name, effective_cred(info, r->cred), remove, remove) : ok_status();
    }
    case Op::kSetxattr: {
      auto r = decoded<proto::XattrSetReq>(raw);
      if (!r) return ok_status();
      auto a = local_inode(b, *m, r->ino);
      return a ? may_xattr(*a, r->name, effective_cred(info, r->cred), true, false) : ok_status();
    }
    default:
      return ok_status();
  }
}

}  // namespace lanefs::backend

// Entry and attribute handlers: lookup, forget, getattr, setattr.
#include "fuse/ops.h"

namespace lanefs::fuse {

void op_lookup(const Req& req, uint64_t parent, const char* name) noexcept {
  auto& m = mount_of(req);
  auto r = m.lookup(parent, name, cred_of(req));
  if (r.ok()) {
    reply_entry(req, *r);
    return;
  }
  if (r.code() == Errc::kNotFound && m.options().dentry_max_age_negative_ms > 0) {
    // A negative entry (ino 0) is cached for dentry_max_age_negative.
    reply_negative_entry(req, m.options().dentry_max_age_negative_ms);
    return;
  }
  reply_error(req, r.error());
}

void op_forget(const Req& req, uint64_t ino, uint64_t nlookup) noexcept {
  mount_of(req).forget(ino, nlookup);
  reply_none(req);
}

void op_getattr(const Req& req, uint64_t ino) noexcept {
  auto r = mount_of(req).getattr(ino);
  if (r.ok()) reply_attr(req, *r);
  else reply_node_error(req, r.error());
}

void op_setattr(const Req& req, uint64_t ino, const abi::SetattrIn& in) noexcept {
  proto::SetAttr sa;
  if (in.valid & abi::kAttrMode) { sa.mask |= proto::kSetMode; sa.mode = in.mode; }
  if (in.valid & abi::kAttrUid) { sa.mask |= proto::kSetUid; sa.uid = in.uid; }
  if (in.valid & abi::kAttrGid) { sa.mask |= proto::kSetGid; sa.gid = in.gid; }
  if (in.valid & abi::kAttrSize) { sa.mask |= proto::kSetSize; sa.size = in.size; }
  if (in.valid & abi::kAttrAtimeNow) sa.mask |= proto::kSetAtimeNow;
  else if (in.valid & abi::kAttrAtime) {
    sa.mask |= proto::kSetAtime;
    sa.atime = {static_cast<int64_t>(in.atime), in.atimensec};
  }
  if (in.valid & abi::kAttrMtimeNow) sa.mask |= proto::kSetMtimeNow;
  else if (in.valid & abi::kAttrMtime) {
    sa.mask |= proto::kSetMtime;
    sa.mtime = {static_cast<int64_t>(in.mtime), in.mtimensec};
  }
  // HANDLE_KILLPRIV_V2: truncate by a user without CAP_FSETID, or chown.
  if (in.valid & abi::kAttrKillSuidgid) sa.mask |= proto::kSetKillSuidgid;
  if (in.valid & abi::kAttrCtime) {
    sa.mask |= proto::kSetCtime;
    sa.ctime = {static_cast<int64_t>(in.ctime), in.ctimensec};
  }
  if (in.valid & abi::kAttrFh) sa.mask |= proto::kSetByHandle;
  auto r = mount_of(req).setattr(ino, sa, cred_of(req));
  if (r.ok()) reply_attr(req, *r);
  else reply_node_error(req, r.error());
}

}  // namespace lanefs::fuse

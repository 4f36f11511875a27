// COMPUTE role, metadata: extended attributes, on the inode's owner
// (records 'X' ino name -> value; a change updates the inode's ctime).
#include "backend/access.h"
#include "backend/backend_core.h"

namespace lanefs::backend {
namespace {

Status setxattr(MetaStore& store, BackendCore& b, const proto::XattrSetReq& r) {
  LANEFS_TRY(require_inode_owner(b, r.ino));
  if (r.name.empty() || r.name.size() > proto::kXattrNameMax) return make_error(Errc::kRange, "bad attribute name length");
  if (r.value.size() > proto::kXattrValueMax) return make_error(Errc::kTooBig, "attribute value too large");
  auto lk = store.lock();
  LANEFS_ASSIGN_OR_RETURN(auto a, store.get_inode(r.ino));
  bool exists = store.get_xattr(r.ino, r.name).ok();
  if ((r.flags & proto::kXattrCreate) && exists) return make_error(Errc::kExists, "attribute exists");
  if ((r.flags & proto::kXattrReplace) && !exists) return make_error(Errc::kNoAttr, "no such attribute");
  MetaStore::Batch batch;
  batch.put_xattr(r.ino, r.name, r.value);
  a.ctime = proto::now_timespec();
  batch.put_inode(a);
  return store.commit(batch, lk);
}

Result<rpc::Bytes> getxattr(MetaStore& store, BackendCore& b, const proto::XattrReq& r) {
  LANEFS_TRY(require_inode_owner(b, r.ino));
  LANEFS_TRY(store.get_inode(r.ino));
  auto v = store.get_xattr(r.ino, r.name);
  if (!v.ok()) return v.code() == Errc::kNotFound ? make_error(Errc::kNoAttr, "no such attribute") : v.error();
  return rpc::Bytes{rpc::Buffer(v->begin(), v->end())};
}

// As a local filesystem lists them: trusted.* names only for root (the
// kernel's CAP_SYS_ADMIN; root squashed is nobody and does not see them).
Result<proto::StringList> listxattr(MetaStore& store, BackendCore& b, uint64_t ino, const proto::Cred& cred) {
  LANEFS_TRY(require_inode_owner(b, ino));
  LANEFS_TRY(store.get_inode(ino));
  LANEFS_ASSIGN_OR_RETURN(auto names, store.list_xattrs(ino));
  if (cred.uid != 0) std::erase_if(names, [](const std::string& n) { return n.starts_with("trusted."); });
  return proto::StringList{std::move(names)};
}

Status removexattr(MetaStore& store, BackendCore& b, const proto::XattrReq& r) {
  LANEFS_TRY(require_inode_owner(b, r.ino));
  auto lk = store.lock();
  LANEFS_ASSIGN_OR_RETURN(auto a, store.get_inode(r.ino));
  if (!store.get_xattr(r.ino, r.name).ok()) return make_error(Errc::kNoAttr, "no such attribute");
  MetaStore::Batch batch;
  batch.delete_xattr(r.ino, r.name);
  a.ctime = proto::now_timespec();
  batch.put_inode(a);
  return store.commit(batch, lk);
}

}  // namespace

rpc::Buffer handle_xattr(BackendCore& b, proto::Op op, std::span<const uint8_t> raw, const rpc::RequestInfo* info) {
  MetaStore& store = b.meta();
  auto status_reply = [](const Status& s) { return s.ok() ? reply_empty() : reply_error(s.error()); };
  switch (op) {
    case proto::Op::kSetxattr:
      return with<proto::XattrSetReq>(raw, [&](auto& r) { return status_reply(setxattr(store, b, r)); });
    case proto::Op::kGetxattr:
      return with<proto::XattrReq>(raw, [&](auto& r) { return reply_result(getxattr(store, b, r)); });
    case proto::Op::kListxattr:
      // XattrReq (name unused) with the caller's cred; a bare InoReq (an
      // older client) lists as root, squashed like any request.
      if (raw.size() == 8)
        return with<proto::InoReq>(raw, [&](auto& r) {
          return reply_result(listxattr(store, b, r.ino, effective_cred(info, {})));
        });
      return with<proto::XattrReq>(raw, [&](auto& r) {
        return reply_result(listxattr(store, b, r.ino, effective_cred(info, r.cred)));
      });
    default:
      return with<proto::XattrReq>(raw, [&](auto& r) { return status_reply(removexattr(store, b, r)); });
  }
}

}  // namespace lanefs::backend

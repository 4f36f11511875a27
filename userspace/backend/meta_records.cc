// COMPUTE role, metadata: single-inode requests that need nothing of the
// namespace logic in meta_ops.cc — readlink, a write's size/mtime commit,
// and the peer primitives a composite op on another backend calls here
// (inode put, is-this-directory-empty, set parent). Local shard only; none
// of them calls another backend.
#include <sys/stat.h>

#include "backend/backend_core.h"

namespace lanefs::backend {
namespace {

using proto::InodeAttr;
using proto::Op;

Result<rpc::Bytes> readlink(BackendCore& b, uint64_t ino) {
  LANEFS_TRY(require_inode_owner(b, ino));
  MetaStore& store = b.meta();
  LANEFS_ASSIGN_OR_RETURN(auto a, store.get_inode(ino));
  if (!S_ISLNK(a.mode)) return make_error(Errc::kInvalid, "not a symbolic link");
  LANEFS_ASSIGN_OR_RETURN(auto t, store.get_symlink(ino));
  return rpc::Bytes{rpc::Buffer(t.begin(), t.end())};
}

Result<InodeAttr> commit_write(BackendCore& b, const proto::CommitWriteReq& r) {
  LANEFS_TRY(require_inode_owner(b, r.ino));
  LANEFS_ASSIGN_OR_RETURN(auto applied, b.apply_write_commit(r.ino, r.end_offset, r.blocks_delta, r.mtime));
  LANEFS_TRY(b.meta().make_durable(applied.second));
  return applied.first;
}

Result<InodeAttr> inode_put(BackendCore& b, const proto::InodePutReq& r) {
  MetaStore& store = b.meta();
  auto lk = store.lock();
  MetaStore::Batch batch;
  InodeAttr a = r.attr;
  if (a.ino == 0) {
    LANEFS_ASSIGN_OR_RETURN(a.ino, store.next_ino(b.self_member()->shard, batch));
  } else {
    LANEFS_TRY(require_inode_owner(b, a.ino));
  }
  if (a.parent == 0 && S_ISDIR(a.mode)) a.parent = a.ino;  // a root is its own parent
  batch.put_inode(a);
  if (!r.symlink_target.empty()) batch.put_symlink(a.ino, r.symlink_target);
  LANEFS_TRY(store.commit(batch, lk));
  return a;
}

Result<rpc::U8> dir_empty(BackendCore& b, uint64_t ino) {
  LANEFS_TRY(require_inode_owner(b, ino));
  return rpc::U8{static_cast<uint8_t>(b.meta().dir_empty(ino) ? 1 : 0)};
}

Status set_parent(BackendCore& b, const proto::InodeSetParentReq& r) {
  LANEFS_TRY(require_inode_owner(b, r.ino));
  MetaStore& store = b.meta();
  auto lk = store.lock();
  LANEFS_ASSIGN_OR_RETURN(auto a, store.get_inode(r.ino));
  a.parent = r.parent;
  a.ctime = proto::now_timespec();
  MetaStore::Batch batch;
  batch.put_inode(a);
  return store.commit(batch, lk);
}

}  // namespace

rpc::Buffer handle_inode_records(BackendCore& b, Op op, std::span<const uint8_t> raw) {
  switch (op) {
    case Op::kReadlink:
      return with<proto::InoReq>(raw, [&](auto& r) { return reply_result(readlink(b, r.ino)); });
    case Op::kCommitWrite:
      return with<proto::CommitWriteReq>(raw, [&](auto& r) { return reply_result(commit_write(b, r)); });
    case Op::kInodePut:
      return with<proto::InodePutReq>(raw, [&](auto& r) { return reply_result(inode_put(b, r)); });
    case Op::kDirEmpty:
      return with<proto::InoReq>(raw, [&](auto& r) { return reply_result(dir_empty(b, r.ino)); });
    case Op::kInodeSetParent:
      return with<proto::InodeSetParentReq>(raw, [&](auto& r) {
        Status s = set_parent(b, r);
        return s.ok() ? reply_empty() : reply_error(s.error());
      });
    default:
      return reply_error(make_error(Errc::kNotSupported, "not an inode record opcode"));
  }
}

}  // namespace lanefs::backend

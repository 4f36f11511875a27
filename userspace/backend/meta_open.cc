// COMPUTE role, metadata: open handles and orphans (backend/open_handles.h).
// kOpenHandle and kHandleRenew run on the inode's owner; an orphan (no
// names left, kept for its holders) is removed at its last release, when
// its holders' leases run out, or at the next sweep when nobody
// held it (sweep_open_handles, from the backend's refresh loop).
#include <sys/stat.h>

#include "backend/backend_core.h"
#include "common/clock.h"
#include "common/log.h"

namespace lanefs::backend {
namespace {

using proto::InodeAttr;
using proto::Op;

// Removes orphan `ino` if nothing keeps it any more (a name, a handle):
// its records under the store lock, then its data on every member.
void reap_if_unheld(BackendCore& b, uint64_t ino) {
  MetaStore& store = b.meta();
  {
    auto lk = store.lock();
    MetaStore::Batch batch;
    auto a = store.get_inode(ino);
    if (a.ok() && (a->nlink != 0 || b.handles().held(ino))) {
      if (a->nlink == 0) return;  // still held open
      batch.delete_orphan(ino);   // linked again: an ordinary inode
      (void)store.commit(batch, lk);
      return;
    }
    batch.delete_orphan(ino);
    if (a.ok()) {
      batch.delete_inode(ino);
      batch.delete_symlink(ino);
      if (auto xs = store.list_xattrs(ino); xs.ok())
        for (const auto& x : *xs) batch.delete_xattr(ino, x);
    }
    if (Status s = store.commit(batch, lk); !s.ok()) {
      LOG_WARN("removing orphan inode {:#x}: {}", ino, s.error().to_string());
      return;
    }
    if (!a.ok()) return;
  }
  drop_inode_data(b, ino);
}

bool is_orphan(BackendCore& b, uint64_t ino) {
  auto a = b.meta().get_inode(ino);
  return a.ok() && a->nlink == 0;
}

// Writes handle records without waiting for a sync (they only need to
// outlive the process; a lost one is taken up again by the next renewal).
void persist(BackendCore& b, MetaStore::Batch& batch) {
  if (batch.empty()) return;
  if (auto t = b.meta().apply(batch); !t.ok()) LOG_WARN("recording open handles: {}", t.error().to_string());
}

Result<InodeAttr> open_handle(BackendCore& b, const proto::HandleReq& r) {
  LANEFS_TRY(require_inode_owner(b, r.ino));
  if (r.client == 0) return make_error(Errc::kInvalid, "open handle without a client id");
  if (r.open) return register_open_handle(b, r);
  MetaStore& store = b.meta();
  MetaStore::Batch batch;
  {
    auto lk = store.lock();
    if (b.handles().release(r.client, r.ino, r.seq, mono_ns())) {
      batch.delete_handle(r.client, r.ino);
      persist(b, batch);
    }
  }
  auto a = store.get_inode(r.ino);
  if (a.ok() && a->nlink == 0 && !b.handles().held(r.ino)) reap_if_unheld(b, r.ino);
  if (!a.ok() && a.code() == Errc::kNotFound) return InodeAttr{};  // gone already: released
  return a;
}

Status renew_handles(BackendCore& b, const proto::HandleRenewReq& r) {
  if (r.client == 0) return make_error(Errc::kInvalid, "handle renewal without a client id");
  // Only inodes that exist here are taken up (one deleted meanwhile is not).
  std::vector<uint64_t> live;
  live.reserve(r.inos.size());
  OpenHandles::Renewal changed;
  {
    auto lk = b.meta().lock();
    for (uint64_t ino : r.inos)
      if (b.owns_inode(ino) && b.meta().get_inode(ino).ok()) live.push_back(ino);
    changed = b.handles().renew(r.client, r.seq, live, mono_ns());
    MetaStore::Batch batch;
    for (uint64_t ino : changed.added) batch.put_handle(r.client, ino, r.seq);
    for (uint64_t ino : changed.dropped) batch.delete_handle(r.client, ino);
    persist(b, batch);
  }
  for (uint64_t ino : changed.dropped)
    if (!b.handles().held(ino) && is_orphan(b, ino)) reap_if_unheld(b, ino);
  return ok_status();
}

}  // namespace

Result<InodeAttr> register_open_handle(BackendCore& b, const proto::HandleReq& r) {
  if (r.client == 0) return make_error(Errc::kInvalid, "open handle without a client id");
  MetaStore& store = b.meta();
  // Under the store lock: an unlink's link-count change either sees this
  // handle or ran before (then the inode is gone and the open fails).
  auto lk = store.lock();
  LANEFS_ASSIGN_OR_RETURN(auto a, store.get_inode(r.ino));
  // An orphan is kept for those who hold it, not opened anew: a client
  // whose cached name still leads here must look the name up again. That
  // holds for a client that still holds it too: it registers only when no
  // file of it has the inode open, so its handle is one whose release is
  // on the way (batched) and its name is stale.
  if (a.nlink == 0 && !S_ISDIR(a.mode))
    return make_error(Errc::kNotFound, "inode " + std::to_string(r.ino) + " has no name any more");
  b.handles().open(r.client, r.ino, r.seq, mono_ns());
  MetaStore::Batch batch;
  batch.put_handle(r.client, r.ino, r.seq);
  persist(b, batch);
  return a;
}

void drop_inode_data(BackendCore& b, uint64_t ino) {
  auto map = b.map_ptr();
  for (const auto& m : map->members) {
    auto r = b.call_member<rpc::Empty>(m, Op::kChunkRemoveAll, proto::InoList{{ino}});
    if (!r.ok()) LOG_WARN("removing data of inode {:#x} on {}: {}", ino, m.addr.to_string(), r.error().to_string());
  }
}

Status load_open_handles(BackendCore& b) {
  LANEFS_ASSIGN_OR_RETURN(auto records, b.meta().handles());
  const uint64_t now = mono_ns();
  for (const auto& h : records) b.handles().open(h.client, h.ino, h.seq, now);
  if (!records.empty()) LOG_INFO("open handles: {} kept from before the restart", records.size());
  return ok_status();
}

void sweep_open_handles(BackendCore& b) {
  auto expired = b.handles().expire(mono_ns());
  if (!expired.empty()) {
    LOG_INFO("open handles: {} released by clients whose lease ran out", expired.size());
    MetaStore::Batch batch;
    for (const auto& [client, ino] : expired) batch.delete_handle(client, ino);
    persist(b, batch);
  }
  // Orphans nobody holds (their holders' leases ran out, or a release was
  // lost with a crash).
  auto orphans = b.meta().orphans();
  if (!orphans.ok()) {
    LOG_WARN("listing orphan inodes: {}", orphans.error().to_string());
    return;
  }
  for (uint64_t ino : *orphans)
    if (!b.handles().held(ino)) reap_if_unheld(b, ino);
}

rpc::Buffer handle_open_files(BackendCore& b, proto::Op op, std::span<const uint8_t> raw) {
  if (op == Op::kOpenHandle)
    return with<proto::HandleReq>(raw, [&](auto& r) { return reply_result(open_handle(b, r)); });
  return with<proto::HandleRenewReq>(raw, [&](auto& r) {
    Status s = renew_handles(b, r);
    return s.ok() ? reply_empty() : reply_error(s.error());
  });
}

}  // namespace lanefs::backend

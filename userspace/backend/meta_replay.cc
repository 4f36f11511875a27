// COMPUTE role, metadata: namespace changes resent after a restart.
//
// The RPC layer runs each request once per session: a resent packet of a
// request that already ran is answered from the session's reply cache. A
// backend that restarts (kill -9, crash, upgrade) loses its sessions and
// that cache; the client reconnects and sends its unanswered requests again
// (RequestInfo::resent), with the same client id and request id. For reads,
// writes (data at an offset) and setattr, running again is harmless. A
// create, link, unlink, rmdir or rename that had committed before the
// restart would fail the second time (EEXIST, ENOENT) although it
// succeeded, and the application would see an error for its own change.
//
// So these ops write an 'R' record (client id, request id -> the inode
// they named) in the batch of the change itself (MetaOps::mark_done): the
// record is durable exactly when the change is. A resent request whose
// record exists is answered from it and the current state (the entry's
// attributes) without running again; one without a record never committed
// and runs normally.
//
// Records are kept kResendWindowSecs and pruned by the refresh loop once a
// minute. A client resends only while it reconnects (its connect_timeout_secs,
// default 10 s), so the window covers any outage a mount waits out with
// the defaults; a resend later than that runs again (and may fail as above).
#include "backend/backend_core.h"
#include "common/clock.h"
#include "common/log.h"

namespace lanefs::backend {
namespace {

using proto::Op;

constexpr uint64_t kResendWindowSecs = 15 * 60;

Result<proto::InodeAttr> attr_of(BackendCore& b, uint64_t ino) {
  if (b.owns_inode(ino)) return b.meta().get_inode(ino);
  auto m = b.map_ptr();
  const proto::Member* owner = proto::meta_owner(*m, ino);
  if (owner == nullptr) return make_error(Errc::kNotFound, "inode's shard unknown");
  return b.call_member<proto::InodeAttr>(*owner, Op::kGetattr, proto::InoReq{ino});
}

// The entry reply of a create or link that ran before the restart: the
// inode it made or linked and its parent directory, as they are now.
rpc::Buffer entry_reply(BackendCore& b, uint64_t ino, uint64_t parent) {
  auto a = attr_of(b, ino);
  if (!a.ok()) return reply_error(a.error());
  auto dir = b.meta().get_inode(parent);
  if (!dir.ok()) return reply(proto::EntryResp{*a, false, {}});
  return reply(proto::EntryResp{*a, true, *dir});
}

}  // namespace

uint64_t wall_secs() { return wall_ns() / 1'000'000'000ull; }

RequestTag replay_tag(Op op, const rpc::RequestInfo* info) {
  if (info == nullptr || info->client_id == 0) return {};
  switch (op) {
    case Op::kCreate:
    case Op::kLink:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
      return {info->client_id, info->request_id};
    default:
      return {};
  }
}

std::optional<rpc::Buffer> answer_resent(BackendCore& b, Op op, std::span<const uint8_t> raw, RequestTag tag) {
  auto done = b.meta().get_done(tag.client, tag.request);
  if (!done.ok()) return std::nullopt;  // never committed (or unreadable): runs normally
  LOG_INFO("request {} of client {:#x} (opcode {}) ran before the restart: answered from its record", tag.request,
           tag.client, static_cast<int>(op));
  switch (op) {
    case Op::kCreate:
      return with<proto::CreateReq>(raw, [&](auto& r) { return entry_reply(b, done->ino, r.parent); });
    case Op::kLink:
      return with<proto::LinkReq>(raw, [&](auto& r) { return entry_reply(b, done->ino, r.new_parent); });
    default:
      return reply_empty();  // unlink, rmdir, rename: done
  }
}

void prune_request_records(BackendCore& b) {
  const uint64_t now = wall_secs();
  if (now < kResendWindowSecs) return;
  auto n = b.meta().prune_done(now - kResendWindowSecs);
  if (!n.ok()) LOG_WARN("pruning request records: {}", n.error().to_string());
}

}  // namespace lanefs::backend

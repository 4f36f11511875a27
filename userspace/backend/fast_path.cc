// The requests a backend answers on the loop that received them, without a
// worker hand-off: plain data reads and writes (their IO and syncs on the
// loop's io_uring, completing later on the same loop), getattr, and lookups
// whose inode lives here. Everything else — and anything here that turns out to need a peer
// or a sync — is deferred to the worker pools (BackendCore::handle).
//
// Responses are built in place in the call's response buffer: a read's
// data is read from the chunk file straight after the 4-byte status (the
// one copy, from the page cache), nothing is zero-filled, nothing copied
// after.
#include <sys/stat.h>

#include <array>

#include "backend/access.h"
#include "backend/backend_core.h"

namespace lanefs::backend {
namespace {

using proto::Op;

// Encodes status 0 + body into the call's response without allocating.
template <class T>
bool respond(rpc::ServerCall& c, const T& body) {
  std::array<uint8_t, 1024> tmp;
  Encoder e{std::span<uint8_t>(tmp)};
  e.i32(0);
  body.encode(e);
  if (!e.ok()) return false;
  c.response().assign(std::span<const uint8_t>(tmp.data(), e.size()));
  c.finish();
  return true;
}

void respond_error(rpc::ServerCall& c, const Error& err) {
  c.response().assign(proto::error_response(err));
  c.finish();
}

bool owns(BackendCore& b, const proto::Member* m) { return m != nullptr && b.is_self(*m); }

}  // namespace

bool BackendCore::serve_read(rpc::ServerCall& c) {
  DiskRing* ring = rings_[c.loop_index()];
  if (ring == nullptr) return false;
  auto req = proto::decode_msg<proto::ReadReq>(c.request());
  if (!req.ok() || req->sealed || req->rdma.present()) return false;  // the workers answer those
  auto m = map_ptr();
  const uint32_t cs = chunks_->chunk_size();
  const uint64_t index = req->offset / cs;
  const uint32_t off = static_cast<uint32_t>(req->offset % cs);
  if (req->len > cs - off) {
    respond_error(c, make_error(Errc::kInvalid, "read crosses a chunk boundary"));
    return true;
  }
  if (!owns(*this, proto::chunk_owner(*m, req->ino, index))) {
    respond_error(c, make_error(Errc::kWrongOwner, "chunk is not on this backend"));
    return true;
  }
  MsgBuffer& out = c.response();
  out.resize_uninit(4 + size_t{req->len});
  const int32_t ok = 0;
  std::memcpy(out.data(), &ok, 4);
  const uint32_t len = req->len;
  // The data goes from the page cache straight after the status; the reply
  // leaves from this buffer.
  chunks_->read_async(*ring, req->ino, index, off, len, out.data() + 4, [this, &c, len](Status st) {
    if (!st.ok()) return respond_error(c, st.error());
    data_read_bytes.fetch_add(len, std::memory_order_relaxed);
    c.finish();
  });
  return true;
}

bool BackendCore::serve_write(rpc::ServerCall& c) {
  DiskRing* ring = rings_[c.loop_index()];
  if (ring == nullptr) return false;
  auto req = proto::decode_msg<proto::WriteReq>(c.request());
  if (!req.ok() || !req->seals.empty() || req->rdma.present()) return false;  // the workers answer those
  auto m = map_ptr();
  const uint32_t cs = chunks_->chunk_size();
  const uint64_t index = req->offset / cs;
  const uint32_t off = static_cast<uint32_t>(req->offset % cs);
  const size_t n = req->data.size();
  if (n > cs - off) {
    respond_error(c, make_error(Errc::kInvalid, "write crosses a chunk boundary"));
    return true;
  }
  if (req->offset + n > proto::kMaxFileSize) {
    respond_error(c, make_error(Errc::kTooBig, "write beyond the maximum file size"));
    return true;
  }
  if (!owns(*this, proto::chunk_owner(*m, req->ino, index))) {
    respond_error(c, make_error(Errc::kWrongOwner, "chunk is not on this backend"));
    return true;
  }
  // The data is written from the request buffer (where the packets were
  // reassembled) and synced with the other writes of the file (group commit).
  const bool commit = req->commit && owns(*this, proto::meta_owner(*m, req->ino));
  const uint64_t ino = req->ino, end = req->offset + n;
  const proto::Timespec mtime = req->mtime;
  chunks_->write_async(*ring, ino, index, off, req->data, {},
                       [this, &c, n, commit, ino, end, mtime](Result<int64_t> delta) {
                         if (!delta.ok()) return respond_error(c, delta.error());
                         data_written_bytes.fetch_add(n, std::memory_order_relaxed);
                         if (!commit) {
                           respond(c, proto::WriteResp{*delta});
                           return;
                         }
                         finish_write_commit(c, ino, end, *delta, mtime);
                       });
  return true;
}

// The size/blocks/mtime of a written inode held here, in the same request.
// The change is applied on the loop (the metadata lock is held for a
// memtable write only); making it durable waits for a WAL sync, which runs
// on a worker (grouped with every other metadata change) unless the WAL is
// on memory, where a sync is a no-op.
void BackendCore::finish_write_commit(rpc::ServerCall& c, uint64_t ino, uint64_t end, int64_t delta,
                                      proto::Timespec mtime) {
  auto applied = apply_write_commit(ino, end, delta, mtime);
  if (!applied.ok()) return respond_error(c, applied.error());
  proto::WriteResp resp{delta, true, applied->first};
  std::array<uint8_t, 1024> tmp;
  Encoder e{std::span<uint8_t>(tmp)};
  e.i32(0);
  resp.encode(e);
  c.response().assign(std::span<const uint8_t>(tmp.data(), e.size()));
  const MetaStore::Ticket t = applied->second;
  if (meta_memory_backed_) {
    if (Status st = meta_->make_durable(t); !st.ok()) c.response().assign(proto::error_response(st.error()));
    return c.finish();
  }
  c.defer(true, [this, t](rpc::ServerCall& call) {
    if (Status st = meta_->make_durable(t); !st.ok()) call.response().assign(proto::error_response(st.error()));
  });
}

bool BackendCore::serve_getattr(rpc::ServerCall& c) {
  auto req = proto::decode_msg<proto::InoReq>(c.request());
  if (!req.ok()) return false;
  auto m = map_ptr();
  if (!owns(*this, proto::meta_owner(*m, req->ino))) return false;  // the workers say kWrongOwner
  auto a = meta_->get_inode(req->ino);
  if (!a.ok()) {
    respond_error(c, a.error());
    return true;
  }
  return respond(c, *a);
}

bool BackendCore::serve_open_handle(rpc::ServerCall& c) {
  // Registering an open handle is a lookup plus an unsynced RocksDB write
  // (meta_open.cc): on the loop. A release may remove an orphan's data on
  // other members (peer calls): the workers.
  auto req = proto::decode_msg<proto::HandleReq>(c.request());
  if (!req.ok() || !req->open) return false;
  auto m = map_ptr();
  if (!owns(*this, proto::meta_owner(*m, req->ino))) return false;
  if (Status st = admit_open(*this, *req, &c.info()); !st.ok()) {
    respond_error(c, st.error());
    return true;
  }
  auto a = register_open_handle(*this, *req);
  if (!a.ok()) {
    respond_error(c, a.error());
    return true;
  }
  return respond(c, *a);
}

bool BackendCore::serve_lookup(rpc::ServerCall& c) {
  auto req = proto::decode_msg<proto::NameAtReq>(c.request());
  if (!req.ok() || req->name == "." || req->name == "..") return false;
  auto m = map_ptr();
  if (!owns(*this, proto::meta_owner(*m, req->parent))) return false;
  // Permission (access.h): for a caller other than root, reads the directory.
  if (Status st = admit_lookup(*this, *req, &c.info()); !st.ok()) {
    respond_error(c, st.error());
    return true;
  }
  auto d = meta_->get_dirent(req->parent, req->name);
  if (!d.ok()) {
    respond_error(c, d.error());
    return true;
  }
  // An inode on another shard needs a peer call: that waits, so not here.
  if (!owns(*this, proto::meta_owner(*m, d->ino))) return false;
  auto a = meta_->get_inode(d->ino);
  if (!a.ok()) {
    respond_error(c, a.error());
    return true;
  }
  return respond(c, *a);
}

void BackendCore::serve(rpc::ServerCall& c) noexcept {
  const auto op = static_cast<Op>(c.info().opcode);
  if (const proto::UserRecord* who = c.info().principal) {
    bool ask_owner = false;
    Status st = authorize(*who, op);
    if (st.ok()) st = check_scope(*who, op, c.request(), false, &ask_owner);
    if (!st.ok()) {
      log_refusal(c.info().peer, st.error().message);
      return respond_error(c, st.error());
    }
    if (ask_owner) {
      // The filesystem of an inode recorded elsewhere is asked of its
      // owner once (a peer call): on a worker of the ordinary pool, which
      // may wait on peers (the priority pool must not), then the op there.
      return c.defer(false, [this, op](rpc::ServerCall& call) {
        Status s = check_scope(*call.info().principal, op, call.request(), true, nullptr);
        if (!s.ok() && s.code() == Errc::kPermission) log_refusal(call.info().peer, s.error().message);
        call.response().assign(s.ok() ? handle(op, call.request(), &call.info()) : reply_error(s.error()));
      });
    }
  }
  switch (op) {
    case Op::kRead:
      if (serve_read(c)) return;
      break;
    case Op::kWrite:
      if (serve_write(c)) return;
      break;
    case Op::kGetattr:
      if (serve_getattr(c)) return;
      break;
    case Op::kLookup:
      if (serve_lookup(c)) return;
      break;
    case Op::kOpenHandle:
      if (serve_open_handle(c)) return;
      break;
    default:
      break;
  }
  // Blocking work (syncs, RocksDB commits, peer calls, RDMA) runs on the
  // workers: peer primitives and data ops on their own pool.
  c.defer(is_priority_op(static_cast<uint16_t>(op)), [this, op](rpc::ServerCall& call) {
    call.response().assign(handle(op, call.request(), &call.info()));
  });
}

}  // namespace lanefs::backend

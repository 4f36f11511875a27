// ClusterClient's data path: a read or write is split at chunk boundaries
// and its pieces go to their owners in parallel — all sent and reaped by
// the calling thread (rpc::RpcClient::Batch), with no thread hand-off.
// Reads are reassembled straight into the caller's buffer; writes send the
// caller's data in place after the request's few bytes of fields. Per IO:
// no allocation once a thread's piece list has grown, no zero-fill.
#include <array>

#include "client/cluster_client.h"
#include "common/log.h"
#include "rpc/call_driver.h"
#include "lanefs/config.h"

namespace lanefs::client {

using proto::Op;

// One chunk piece of a data call.
struct ClusterClient::RdmaPiece {
  const proto::Member* owner = nullptr;
  uint64_t offset = 0;  // file offset
  uint32_t len = 0;
  size_t pos = 0;       // offset in the caller's buffer
  std::shared_ptr<transport::RdmaLane> lane;   // keeps the lane alive while buf lives
  std::unique_ptr<transport::RdmaBuffer> buf;  // a leased buffer: the data is copied through it
  bool in_place = false;                       // the caller's RegisteredMem: no copy
  bool rdma() const { return buf != nullptr || in_place; }  // this piece goes over RDMA
  proto::RdmaDesc desc;
  Status status;
  int64_t blocks_delta = 0;
  std::array<uint8_t, 112> req{};  // the request's fields (a write's data is sent in place after them)
  uint32_t req_len = 0;
  std::array<uint8_t, 16> head{};  // the response's status (and a write's blocks delta)
};

namespace {

using Piece = ClusterClient::RdmaPiece;

constexpr uint64_t kReadPiece = 256 * 1024;

// A thread's piece list, reused by its next IO (a nested IO on the same
// thread gets a list of its own).
class PieceList {
 public:
  PieceList() : v_(tl_busy_ ? &own_ : &tl_pieces_), owner_(!tl_busy_) { tl_busy_ = true; }
  ~PieceList() {
    v_->clear();
    if (owner_) tl_busy_ = false;
  }
  std::vector<Piece>& get() { return *v_; }

 private:
  static thread_local std::vector<Piece> tl_pieces_;
  static thread_local bool tl_busy_;
  std::vector<Piece> own_;
  std::vector<Piece>* v_;
  bool owner_;
};
thread_local std::vector<Piece> PieceList::tl_pieces_;
thread_local bool PieceList::tl_busy_ = false;

void split_pieces(const proto::ClusterMap& m, uint64_t ino, uint64_t offset, uint64_t len, std::vector<Piece>& v,
                  uint64_t max_piece = UINT64_MAX) {
  uint64_t cs = m.chunk_size;
  for (uint64_t o = offset; o < offset + len;) {
    uint64_t end = std::min<uint64_t>(offset + len, (o / cs + 1) * cs);
    if (end - o > max_piece) end = o + max_piece;
    Piece& p = v.emplace_back();
    p.owner = proto::chunk_owner(m, ino, o / cs);
    p.offset = o;
    p.len = static_cast<uint32_t>(end - o);
    p.pos = o - offset;
    o = end;
  }
}

// A read reply: status + `want` bytes of data (0 for RDMA: the data is in
// the registered buffer). In the sink, the status is in head[0..4).
Status read_status(const Result<rpc::Response>& r, uint32_t want) {
  if (!r.ok()) return r.error();
  if (r->in_sink) {
    int32_t status = 0;
    (void)r->read_at(0, &status, 4);
    if (status != 0) {
      rpc::Buffer whole = r->to_buffer();
      return proto::parse_response(whole).error();
    }
    if (r->size() != size_t{want} + 4) return make_error(Errc::kProtocol, "short read reply");
    return ok_status();
  }
  LANEFS_ASSIGN_OR_RETURN(auto body, proto::parse_response(r->head));
  if (body.size() != want) return make_error(Errc::kProtocol, "short read reply");
  return ok_status();
}

}  // namespace

// Gives the piece a registered buffer and the owner's connection token;
// false (piece stays on UDP) when the RDMA lane cannot take it now.
bool ClusterClient::prepare_rdma(RdmaPiece& p, const RegisteredMem* mem, const uint8_t* at) {
  if (!rdma_) return false;
  auto lane = rdma_->lane();
  if (!lane) return false;
  auto token = rdma_->token_for(*p.owner);
  if (!token.ok()) return false;
  if (mem && mem->region && mem->lane == lane) {
    const auto* lo = static_cast<const uint8_t*>(mem->region->addr());
    if (at >= lo && p.len <= mem->region->length() - static_cast<size_t>(at - lo)) {
      auto rb = lane->remote_of(*mem->region, at, p.len);
      p.desc = proto::RdmaDesc{*token, rb.addr, rb.rkey, rb.len};
      p.lane = std::move(lane);
      p.in_place = true;
      return true;
    }
  }
  // On a ring queue's fiber the buffers may all be held by fibers of this
  // very thread, which cannot run while it waits: take one only if free.
  const bool on_ring = rpc::CallDriver::current() != nullptr;
  auto buf = on_ring ? lane->try_lease(p.len) : lane->lease(p.len);
  if (!buf.ok()) {
    // A pool found full at once on a ring thread is no fault of the peer:
    // this piece goes by UDP. A lease that waited its whole timeout (a
    // lane whose buffers never come back: a removed device) fails the peer.
    if (!on_ring || buf.error().code != Errc::kBusy) rdma_->failed(*p.owner, buf.error());
    return false;
  }
  auto rb = (*buf)->remote(p.len);
  p.desc = proto::RdmaDesc{*token, rb.addr, rb.rkey, rb.len};
  p.lane = std::move(lane);
  p.buf = std::move(*buf);
  return true;
}

Status ClusterClient::write_data(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                                 int64_t* blocks_delta, bool use_rdma, DataIoInfo* info,
                                 proto::InodeAttr* committed, const RegisteredMem* mem) {
  if (committed) committed->ino = 0;
  auto m = map_ptr();
  PieceList list;
  auto& pieces = list.get();
  split_pieces(*m, ino, offset, data.size(), pieces);
  if (blocks_delta) *blocks_delta = 0;
  if (pieces.empty()) return ok_status();
  DataIoInfo io;
  {
    rpc::RpcClient::Batch batch(*rpc_);
    for (auto& p : pieces) {
      proto::WriteReq req{ino, p.offset, data.subspan(p.pos, p.len)};
      if (committed && pieces.size() == 1) {
        req.commit = true;
        req.mtime = proto::now_timespec();
      }
      if (use_rdma && prepare_rdma(p, mem, data.data() + p.pos)) {
        // The backend pulls the data from the registered buffer (the
        // caller's own when it is registered: no copy).
        if (p.buf) std::memcpy(p.buf->data(), data.data() + p.pos, p.len);
        req.data = {};
        req.rdma = p.desc;
      } else if (use_rdma) {
        ++io.fallback_pieces;
      }
      p.req_len = static_cast<uint32_t>(proto::encode_write_head(req, p.req));
      rpc::CallArgs a;
      a.server = p.owner->addr;
      a.opcode = static_cast<uint16_t>(Op::kWrite);
      a.req = {p.req.data(), p.req_len};
      a.req_data = req.data;
      a.timeout_ns = opts_.op_timeout_ns;
      a.sink.head = std::span(p.head).first(13);  // status + blocks delta + not committed
      batch.start(a, [&p, committed](Result<rpc::Response> r) {
        auto w = rpc::decode_response<proto::WriteResp>(r);
        if (!w.ok()) return void(p.status = w.error());
        p.blocks_delta = w->blocks_delta;
        if (committed && w->committed) *committed = w->attr;
      });
    }
  }
  int64_t delta = 0;
  for (auto& p : pieces) {
    if (p.rdma() && !p.status.ok()) {
      // The backend could not pull the data (or did not answer): drop the
      // connection so it can no longer touch the buffer, then redo on UDP.
      rdma_->failed(*p.owner, p.status.error());
      ++io.fallback_pieces;
      proto::WriteReq req{ino, p.offset, data.subspan(p.pos, p.len)};
      if (committed && pieces.size() == 1) {
        req.commit = true;
        req.mtime = proto::now_timespec();
      }
      auto r = rpc::call_typed<proto::WriteResp>(*rpc_, p.owner->addr, Op::kWrite, req, opts_.op_timeout_ns);
      if (!r.ok()) return r.error();
      p.blocks_delta = r->blocks_delta;
      if (committed && r->committed) *committed = r->attr;
    } else if (!p.status.ok()) {
      return p.status;
    } else if (p.rdma()) {
      ++io.rdma_pieces;
      io.in_place_pieces += p.in_place;
    }
    delta += p.blocks_delta;
  }
  if (blocks_delta) *blocks_delta = delta;
  if (info) *info = io;
  return ok_status();
}

Status ClusterClient::read_into(uint64_t ino, uint64_t offset, std::span<uint8_t> out, bool use_rdma,
                                DataIoInfo* info, const RegisteredMem* mem) {
  auto m = map_ptr();
  PieceList list;
  auto& pieces = list.get();
  // Large reads go as pieces of at most kReadPiece, in flight together: the
  // backend reads and sends one while this thread receives the one before
  // (copies into user memory are the cost of a large read; overlapped,
  // not added up). RDMA pieces stay whole (the NIC moves them).
  split_pieces(*m, ino, offset, out.size(), pieces, use_rdma ? UINT64_MAX : kReadPiece);
  if (pieces.empty()) return ok_status();
  DataIoInfo io;
  {
    rpc::RpcClient::Batch batch(*rpc_);
    for (auto& p : pieces) {
      proto::ReadReq req{ino, p.offset, p.len};
      if (use_rdma && prepare_rdma(p, mem, out.data() + p.pos)) req.rdma = p.desc;
      else if (use_rdma) ++io.fallback_pieces;
      Encoder e{std::span<uint8_t>(p.req)};
      req.encode(e);
      p.req_len = static_cast<uint32_t>(e.size());
      rpc::CallArgs a;
      a.server = p.owner->addr;
      a.opcode = static_cast<uint16_t>(Op::kRead);
      a.req = {p.req.data(), p.req_len};
      a.timeout_ns = opts_.op_timeout_ns;
      uint32_t want = p.rdma() ? 0 : p.len;
      // The reply's status into the piece, its data straight into `out`.
      a.sink.head = std::span(p.head).first(4);
      if (want) a.sink.body = out.subspan(p.pos, p.len);
      batch.start(a, [&p, want](Result<rpc::Response> r) { p.status = read_status(r, want); });
    }
  }
  for (auto& p : pieces) {
    if (p.rdma() && !p.status.ok()) {
      rdma_->failed(*p.owner, p.status.error());
      ++io.fallback_pieces;
      auto r = rpc::call_typed<rpc::Bytes>(*rpc_, p.owner->addr, Op::kRead, proto::ReadReq{ino, p.offset, p.len},
                                           opts_.op_timeout_ns);
      if (!r.ok()) return r.error();
      if (r->data.size() != p.len) return make_error(Errc::kProtocol, "short read reply");
      std::memcpy(out.data() + p.pos, r->data.data(), p.len);
    } else if (!p.status.ok()) {
      return p.status;
    } else if (p.rdma()) {
      // The backend wrote the data into our registered buffer before it
      // answered (the caller's own when in place: no copy).
      if (p.buf) std::memcpy(out.data() + p.pos, p.buf->data(), p.len);
      ++io.rdma_pieces;
      io.in_place_pieces += p.in_place;
    }
  }
  if (info) *info = io;
  return ok_status();
}

Result<std::vector<uint8_t>> ClusterClient::read_data(uint64_t ino, uint64_t offset, uint32_t len, bool use_rdma,
                                                      DataIoInfo* info) {
  std::vector<uint8_t> out(len);
  LANEFS_TRY(read_into(ino, offset, out, use_rdma, info));
  return out;
}

Result<std::vector<uint8_t>> ClusterClient::read(uint64_t ino, uint64_t offset, uint32_t len) {
  LANEFS_ASSIGN_OR_RETURN(auto a, getattr(ino));
  if (offset >= a.size) return std::vector<uint8_t>{};
  uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(len, a.size - offset));
  return read_data(ino, offset, n);
}

}  // namespace lanefs::client

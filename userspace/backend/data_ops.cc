// COMPUTE role, data: chunk reads and writes on this backend's DRIVES
// (ChunkStore). A write is acknowledged only after it is durable. Each
// response that changes allocation reports the change in 512-byte blocks so
// the inode's st_blocks stays exact without scanning chunks.
#include "backend/backend_core.h"

namespace lanefs::backend {
namespace {

using proto::Op;

class DataOps {
 public:
  explicit DataOps(BackendCore& b) : b_(b), map_ptr_(b.map_ptr()), map_(*map_ptr_), cs_(b.chunks().chunk_size()) {}

  Status require_chunk_owner(uint64_t ino, uint64_t index) const {
    const proto::Member* m = proto::chunk_owner(map_, ino, index);
    if (m != nullptr && b_.is_self(*m)) return ok_status();
    return make_error(Errc::kWrongOwner, "chunk is not on this backend");
  }

  Result<proto::WriteResp> write(const proto::WriteReq& r) {
    uint64_t index = r.offset / cs_;
    uint32_t off = static_cast<uint32_t>(r.offset % cs_);
    size_t n = r.rdma.present() ? r.rdma.len : r.data.size();
    if (n > cs_ - off) return make_error(Errc::kInvalid, "write crosses a chunk boundary");
    if (r.offset + n > proto::kMaxFileSize) return make_error(Errc::kTooBig, "write beyond the maximum file size");
    LANEFS_TRY(require_chunk_owner(r.ino, index));
    LANEFS_ASSIGN_OR_RETURN(uint64_t before, b_.chunks().chunk_blocks(r.ino, index));
    if (r.rdma.present()) {
      // Pull the data from the client's buffer first; nothing is written
      // unless all of it arrived (the client redoes the IO over UDP).
      if (!r.seals.empty() || !r.data.empty())
        return make_error(Errc::kInvalid, "RDMA write carries inline data or seals");
      LANEFS_ASSIGN_OR_RETURN(auto buf, lease(r.rdma.len));
      LANEFS_TRY(rdma_status(b_.rdma()->read_remote(r.rdma.token, *buf, r.rdma.len, remote(r.rdma))));
      LANEFS_TRY(b_.chunks().write(r.ino, index, off, std::span(buf->data(), r.rdma.len)));
    } else if (r.seals.empty()) LANEFS_TRY(b_.chunks().write(r.ino, index, off, r.data));
    else LANEFS_TRY(b_.chunks().write_sealed(r.ino, index, off, r.data, r.seals));
    b_.data_written_bytes.fetch_add(n, std::memory_order_relaxed);
    LANEFS_ASSIGN_OR_RETURN(uint64_t after, b_.chunks().chunk_blocks(r.ino, index));
    proto::WriteResp resp;
    resp.blocks_delta = int64_t(after) - int64_t(before);
    if (r.commit && b_.owns_inode(r.ino)) {
      LANEFS_ASSIGN_OR_RETURN(auto applied, b_.apply_write_commit(r.ino, r.offset + n, resp.blocks_delta, r.mtime));
      LANEFS_TRY(b_.meta().make_durable(applied.second));
      resp.committed = true;
      resp.attr = applied.first;
    }
    return resp;
  }

  Result<rpc::Bytes> read(const proto::ReadReq& r) {
    uint64_t index = r.offset / cs_;
    uint32_t off = static_cast<uint32_t>(r.offset % cs_);
    if (r.len > cs_ - off) return make_error(Errc::kInvalid, "read crosses a chunk boundary");
    LANEFS_TRY(require_chunk_owner(r.ino, index));
    rpc::Bytes out;
    if (r.rdma.present()) {
      // The data goes straight into the client's buffer; the reply is empty.
      if (r.sealed) return make_error(Errc::kInvalid, "sealed (encrypted) reads never use RDMA");
      if (r.rdma.len != r.len) return make_error(Errc::kInvalid, "RDMA buffer length differs from the read length");
      LANEFS_ASSIGN_OR_RETURN(auto buf, lease(r.len));
      LANEFS_TRY(b_.chunks().read_into(r.ino, index, off, r.len, buf->data()));
      LANEFS_TRY(rdma_status(b_.rdma()->write_remote(r.rdma.token, *buf, r.len, remote(r.rdma))));
      b_.data_read_bytes.fetch_add(r.len, std::memory_order_relaxed);
      return out;
    }
    if (r.sealed) LANEFS_TRY(b_.chunks().read_sealed(r.ino, index, off, r.len, &out.data));
    else LANEFS_TRY(b_.chunks().read(r.ino, index, off, r.len, &out.data));
    b_.data_read_bytes.fetch_add(r.len, std::memory_order_relaxed);
    return out;
  }

  // Drops data at and beyond `size` in the chunks of ino held here.
  Result<rpc::I64> truncate(const proto::ChunkTruncateReq& r) {
    LANEFS_ASSIGN_OR_RETURN(uint64_t before, b_.chunks().allocated_blocks(r.ino));
    uint64_t first_whole = (r.size + cs_ - 1) / cs_;
    LANEFS_TRY(b_.chunks().remove_from(r.ino, first_whole));
    if (r.size % cs_ != 0) {
      uint64_t index = r.size / cs_;
      const proto::Member* m = proto::chunk_owner(map_, r.ino, index);
      auto len = static_cast<uint32_t>(r.size % cs_);
      if (m != nullptr && b_.is_self(*m))
        LANEFS_TRY(r.sealed ? b_.chunks().truncate_sealed(r.ino, index, len) : b_.chunks().truncate(r.ino, index, len));
    }
    LANEFS_ASSIGN_OR_RETURN(uint64_t after, b_.chunks().allocated_blocks(r.ino));
    return rpc::I64{int64_t(after) - int64_t(before)};
  }

  Result<rpc::I64> punch(const proto::PunchReq& r) {
    uint64_t index = r.offset / cs_;
    uint32_t off = static_cast<uint32_t>(r.offset % cs_);
    if (r.len > cs_ - off) return make_error(Errc::kInvalid, "punch crosses a chunk boundary");
    LANEFS_TRY(require_chunk_owner(r.ino, index));
    LANEFS_ASSIGN_OR_RETURN(uint64_t before, b_.chunks().chunk_blocks(r.ino, index));
    LANEFS_TRY(r.sealed ? b_.chunks().punch_sealed(r.ino, index, off, r.len) : b_.chunks().punch(r.ino, index, off, r.len));
    LANEFS_ASSIGN_OR_RETURN(uint64_t after, b_.chunks().chunk_blocks(r.ino, index));
    return rpc::I64{int64_t(after) - int64_t(before)};
  }

  Status remove_all(const proto::InoList& l) {
    for (uint64_t ino : l.inos) LANEFS_TRY(b_.chunks().remove_from(ino, 0));
    return ok_status();
  }

 private:
  static transport::RemoteBuffer remote(const proto::RdmaDesc& d) { return {d.addr, d.rkey, d.len}; }

  Result<std::unique_ptr<transport::RdmaBuffer>> lease(uint32_t len) {
    if (b_.rdma() == nullptr)
      return make_error(Errc::kRdmaFailed, "this backend has no RDMA lane");
    auto buf = b_.rdma()->lease(len);
    if (!buf.ok()) return make_error(Errc::kRdmaFailed, "RDMA buffer: " + buf.error().to_string());
    return buf;
  }
  // Any failure of the RDMA lane tells the client to redo the IO over UDP.
  static Status rdma_status(Status st) {
    if (st.ok()) return st;
    return make_error(Errc::kRdmaFailed, st.error().to_string());
  }

  BackendCore& b_;
  std::shared_ptr<const proto::ClusterMap> map_ptr_;  // keeps map_ alive
  const proto::ClusterMap& map_;
  uint32_t cs_;
};


}  // namespace

rpc::Buffer handle_data(BackendCore& b, proto::Op op, std::span<const uint8_t> raw) {
  DataOps d(b);
  switch (op) {
    case Op::kWrite:
      return with<proto::WriteReq>(raw, [&](auto& r) { return reply_result(d.write(r)); });
    case Op::kRead:
      return with<proto::ReadReq>(raw, [&](auto& r) { return reply_result(d.read(r)); });
    case Op::kFlush:
      return reply_empty();  // every acknowledged write is already durable
    case Op::kChunkTruncate:
      return with<proto::ChunkTruncateReq>(raw, [&](auto& r) { return reply_result(d.truncate(r)); });
    case Op::kPunch:
      return with<proto::PunchReq>(raw, [&](auto& r) { return reply_result(d.punch(r)); });
    case Op::kChunkRemoveAll:
      return with<proto::InoList>(raw, [&](auto& r) {
        auto st = d.remove_all(r);
        return st.ok() ? reply_empty() : reply_error(st.error());
      });
    default:
      return reply_error(make_error(Errc::kNotSupported, "unknown data opcode " + std::to_string(static_cast<int>(op))));
  }
}

}  // namespace lanefs::backend

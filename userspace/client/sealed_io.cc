#include "client/sealed_io.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "common/log.h"
#include "rpc/call_driver.h"

namespace lanefs::client {
namespace {

using crypto::kBlockBytes;
using crypto::kSealBytes;
using proto::Op;


// One piece of a block range that lies inside one chunk.
struct Piece {
  uint64_t offset;  // file offset (block-aligned)
  uint64_t len;     // bytes (whole blocks)
};
std::vector<Piece> split_by_chunk(uint64_t offset, uint64_t len, uint64_t chunk_size) {
  std::vector<Piece> out;
  for (uint64_t o = offset; o < offset + len;) {
    uint64_t end = std::min(offset + len, (o / chunk_size + 1) * chunk_size);
    out.push_back({o, end - o});
    o = end;
  }
  return out;
}

Status check_chunk_size(uint64_t cs) {
  if (cs == 0 || cs % kBlockBytes != 0)
    return make_error(Errc::kNotSupported, "encrypted data needs a chunk size that is a multiple of 4 KiB");
  return ok_status();
}

}  // namespace

SealedIo::SealedIo(ClusterClient& cluster, uint32_t fs_id, crypto::FsKey key)
    : cluster_(cluster), fs_id_(fs_id), key_(std::move(key)) {}

Result<std::vector<uint8_t>> SealedIo::read_blocks(uint64_t ino, uint64_t first, uint64_t count) {
  auto m = cluster_.map();
  LANEFS_TRY(check_chunk_size(m.chunk_size));
  auto pieces = split_by_chunk(first * kBlockBytes, count * kBlockBytes, m.chunk_size);
  std::vector<rpc::Buffer> raw(pieces.size());
  if (!pieces.empty()) {
    std::vector<rpc::Buffer> reqs(pieces.size());
    Status first_error;
    {
      rpc::RpcClient::Batch batch(cluster_.rpc());
      for (size_t i = 0; i < pieces.size(); ++i) {
        const proto::Member* owner = proto::chunk_owner(m, ino, pieces[i].offset / m.chunk_size);
        if (owner == nullptr) {
          if (first_error.ok()) first_error = make_error(Errc::kNotFound, "chunk's backend is not in the map");
          continue;
        }
        reqs[i] = proto::encode_msg(proto::ReadReq{ino, pieces[i].offset, static_cast<uint32_t>(pieces[i].len), true});
        size_t want = pieces[i].len + pieces[i].len / kBlockBytes * kSealBytes;
        rpc::CallArgs a;
        a.server = owner->addr;
        a.opcode = static_cast<uint16_t>(Op::kRead);
        a.req = reqs[i];
        a.timeout_ns = cluster_.options().op_timeout_ns;
        rpc::Buffer* dst = &raw[i];
        batch.start(a, [dst, want, &first_error](Result<rpc::Response> r) {
          auto b = rpc::decode_response<rpc::Bytes>(r);
          Status st = !b.ok() ? Status(b.error())
                              : b->data.size() != want ? Status(make_error(Errc::kProtocol, "short sealed read reply"))
                                                       : ok_status();
          if (st.ok()) *dst = std::move(b->data);
          else if (first_error.ok()) first_error = st;
        });
      }
    }
    LANEFS_TRY(first_error);
  }
  std::vector<uint8_t> plain(count * kBlockBytes);
  for (size_t i = 0; i < pieces.size(); ++i) {
    uint64_t nblocks = pieces[i].len / kBlockBytes;
    std::span<const uint8_t> data(raw[i].data(), pieces[i].len);
    std::span<const uint8_t> seals(raw[i].data() + pieces[i].len, nblocks * kSealBytes);
    for (uint64_t b = 0; b < nblocks; ++b) {
      uint64_t block = pieces[i].offset / kBlockBytes + b;
      auto st = crypto::open_block(key_, crypto::BlockId{fs_id_, ino, block}, data.subspan(b * kBlockBytes, kBlockBytes),
                                   seals.subspan(b * kSealBytes, kSealBytes),
                                   std::span<uint8_t>(plain.data() + (block - first) * kBlockBytes, kBlockBytes));
      if (!st.ok()) {
        LOG_ERROR("encrypted fs {}: {}", fs_id_, st.error().to_string());  // names inode and offset
        return st.error();
      }
    }
  }
  return plain;
}

Status SealedIo::write_blocks(uint64_t ino, uint64_t first, std::span<const uint8_t> plain, int64_t* blocks_delta) {
  auto m = cluster_.map();
  LANEFS_TRY(check_chunk_size(m.chunk_size));
  uint64_t count = plain.size() / kBlockBytes;
  std::vector<uint8_t> cipher(plain.size());
  std::vector<uint8_t> seals(count * kSealBytes);
  for (uint64_t b = 0; b < count; ++b)
    LANEFS_TRY(crypto::seal_block(key_, crypto::BlockId{fs_id_, ino, first + b}, plain.subspan(b * kBlockBytes, kBlockBytes),
                                  std::span<uint8_t>(cipher.data() + b * kBlockBytes, kBlockBytes),
                                  std::span<uint8_t>(seals.data() + b * kSealBytes, kSealBytes)));
  auto pieces = split_by_chunk(first * kBlockBytes, plain.size(), m.chunk_size);
  int64_t delta = 0;
  if (!pieces.empty()) {
    std::vector<rpc::Buffer> reqs(pieces.size());
    Status first_error;
    {
      rpc::RpcClient::Batch batch(cluster_.rpc());
      for (size_t i = 0; i < pieces.size(); ++i) {
        const auto& p = pieces[i];
        const proto::Member* owner = proto::chunk_owner(m, ino, p.offset / m.chunk_size);
        if (owner == nullptr) {
          if (first_error.ok()) first_error = make_error(Errc::kNotFound, "chunk's backend is not in the map");
          continue;
        }
        uint64_t at = p.offset - first * kBlockBytes;
        proto::WriteReq req{ino, p.offset, std::span<const uint8_t>(cipher.data() + at, p.len),
                            std::span<const uint8_t>(seals.data() + at / kBlockBytes * kSealBytes,
                                                     p.len / kBlockBytes * kSealBytes)};
        reqs[i] = proto::encode_msg(req);
        rpc::CallArgs a;
        a.server = owner->addr;
        a.opcode = static_cast<uint16_t>(Op::kWrite);
        a.req = reqs[i];
        a.timeout_ns = cluster_.options().op_timeout_ns;
        batch.start(a, [&delta, &first_error](Result<rpc::Response> r) {
          auto w = rpc::decode_response<proto::WriteResp>(r);
          if (w.ok()) delta += w->blocks_delta;
          else if (first_error.ok()) first_error = w.error();
        });
      }
    }
    LANEFS_TRY(first_error);
  }
  if (blocks_delta) *blocks_delta = delta;
  return ok_status();
}

Status SealedIo::write_data(uint64_t ino, uint64_t offset, std::span<const uint8_t> data, int64_t* blocks_delta) {
  if (blocks_delta) *blocks_delta = 0;
  if (data.empty()) return ok_status();
  uint64_t end = offset + data.size();
  uint64_t first = offset / kBlockBytes, last = (end + kBlockBytes - 1) / kBlockBytes;  // [first, last)
  bool head = offset % kBlockBytes != 0, tail = end % kBlockBytes != 0;
  std::vector<uint8_t> plain((last - first) * kBlockBytes);
  if (head || tail) {
    rpc::NoPark no_park;  // the stripe lock is held across calls (rpc/call_driver.h)
    std::unique_lock lk(stripe(ino));
    // Read-modify-write of the partial edge blocks.
    if (head) {
      LANEFS_ASSIGN_OR_RETURN(auto b, read_blocks(ino, first, 1));
      std::memcpy(plain.data(), b.data(), kBlockBytes);
    }
    if (tail && (last - 1 != first || !head)) {
      LANEFS_ASSIGN_OR_RETURN(auto b, read_blocks(ino, last - 1, 1));
      std::memcpy(plain.data() + plain.size() - kBlockBytes, b.data(), kBlockBytes);
    }
    std::memcpy(plain.data() + (offset - first * kBlockBytes), data.data(), data.size());
    return write_blocks(ino, first, plain, blocks_delta);
  }
  rpc::NoPark no_park;  // the stripe lock is held across calls (rpc/call_driver.h)
  std::shared_lock lk(stripe(ino));
  return write_blocks(ino, first, data, blocks_delta);
}

Result<proto::InodeAttr> SealedIo::write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return cluster_.getattr(ino);
  int64_t delta = 0;
  LANEFS_TRY(write_data(ino, offset, data, &delta));
  auto m = cluster_.map();
  const proto::Member* owner = proto::meta_owner(m, ino);
  if (owner == nullptr) return make_error(Errc::kNotFound, "inode's backend is not in the map");
  proto::CommitWriteReq c{ino, offset + data.size(), delta, proto::now_timespec()};
  return rpc::call_typed<proto::InodeAttr>(cluster_.rpc(), owner->addr, Op::kCommitWrite, c,
                                           cluster_.options().op_timeout_ns);
}

Result<std::vector<uint8_t>> SealedIo::read_data(uint64_t ino, uint64_t offset, uint32_t len) {
  if (len == 0) return std::vector<uint8_t>{};
  uint64_t first = offset / kBlockBytes, last = (offset + len + kBlockBytes - 1) / kBlockBytes;
  rpc::NoPark no_park;  // the stripe lock is held across calls (rpc/call_driver.h)
  std::shared_lock lk(stripe(ino));
  LANEFS_ASSIGN_OR_RETURN(auto plain, read_blocks(ino, first, last - first));
  uint64_t skip = offset - first * kBlockBytes;
  return std::vector<uint8_t>(plain.begin() + static_cast<ptrdiff_t>(skip),
                              plain.begin() + static_cast<ptrdiff_t>(skip + len));
}

Result<std::vector<uint8_t>> SealedIo::read(uint64_t ino, uint64_t offset, uint32_t len) {
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_.getattr(ino));
  if (offset >= a.size) return std::vector<uint8_t>{};
  return read_data(ino, offset, static_cast<uint32_t>(std::min<uint64_t>(len, a.size - offset)));
}

Result<int64_t> SealedIo::punch_blocks(uint64_t ino, uint64_t first, uint64_t count) {
  auto m = cluster_.map();
  LANEFS_TRY(check_chunk_size(m.chunk_size));
  int64_t delta = 0;
  for (const auto& p : split_by_chunk(first * kBlockBytes, count * kBlockBytes, m.chunk_size)) {
    const proto::Member* owner = proto::chunk_owner(m, ino, p.offset / m.chunk_size);
    if (owner == nullptr) return make_error(Errc::kNotFound, "chunk's backend is not in the map");
    LANEFS_ASSIGN_OR_RETURN(auto d, rpc::call_typed<rpc::I64>(cluster_.rpc(), owner->addr, Op::kPunch,
                                                             proto::PunchReq{ino, p.offset, static_cast<uint32_t>(p.len), true},
                                                             cluster_.options().op_timeout_ns));
    delta += d.v;
  }
  return delta;
}

Result<int64_t> SealedIo::zero_in_block(uint64_t ino, uint64_t block, uint32_t from, uint32_t to) {
  LANEFS_ASSIGN_OR_RETURN(auto plain, read_blocks(ino, block, 1));
  bool was_zero = std::all_of(plain.begin() + from, plain.begin() + to, [](uint8_t b) { return b == 0; });
  if (was_zero) return int64_t{0};  // a hole, or zeros already: nothing to change
  std::fill(plain.begin() + from, plain.begin() + to, 0);
  if (std::all_of(plain.begin(), plain.end(), [](uint8_t b) { return b == 0; })) return punch_blocks(ino, block, 1);
  int64_t delta = 0;
  LANEFS_TRY(write_blocks(ino, block, plain, &delta));
  return delta;
}

Result<int64_t> SealedIo::punch(uint64_t ino, uint64_t offset, uint64_t len) {
  if (len == 0) return int64_t{0};
  rpc::NoPark no_park;  // the stripe lock is held across calls (rpc/call_driver.h)
  std::unique_lock lk(stripe(ino));
  uint64_t end = offset + len;
  uint64_t whole_first = (offset + kBlockBytes - 1) / kBlockBytes, whole_end = end / kBlockBytes;
  int64_t delta = 0;
  if (whole_first > whole_end) {  // inside one block
    LANEFS_ASSIGN_OR_RETURN(auto d, zero_in_block(ino, offset / kBlockBytes, static_cast<uint32_t>(offset % kBlockBytes),
                                                  static_cast<uint32_t>(end % kBlockBytes ? end % kBlockBytes : kBlockBytes)));
    return d;
  }
  if (offset % kBlockBytes) {
    LANEFS_ASSIGN_OR_RETURN(auto d, zero_in_block(ino, offset / kBlockBytes, static_cast<uint32_t>(offset % kBlockBytes),
                                                  static_cast<uint32_t>(kBlockBytes)));
    delta += d;
  }
  if (whole_end > whole_first) {
    LANEFS_ASSIGN_OR_RETURN(auto d, punch_blocks(ino, whole_first, whole_end - whole_first));
    delta += d;
  }
  if (end % kBlockBytes) {
    LANEFS_ASSIGN_OR_RETURN(auto d, zero_in_block(ino, whole_end, 0, static_cast<uint32_t>(end % kBlockBytes)));
    delta += d;
  }
  return delta;
}

Result<proto::InodeAttr> SealedIo::setattr(uint64_t ino, const proto::SetAttr& attr, const proto::Cred& cred) {
  if (!(attr.mask & proto::kSetSize)) return cluster_.setattr(ino, attr, cred);
  rpc::NoPark no_park;  // the stripe lock is held across calls (rpc/call_driver.h)
  std::unique_lock lk(stripe(ino));
  // The block that will hold the new end of file must carry zeros beyond
  // it, so that growing the file later reads zeros there.
  if (attr.size % kBlockBytes != 0) {
    uint64_t block = attr.size / kBlockBytes;
    LANEFS_ASSIGN_OR_RETURN(auto plain, read_blocks(ino, block, 1));
    uint32_t from = static_cast<uint32_t>(attr.size % kBlockBytes);
    if (!std::all_of(plain.begin() + from, plain.end(), [](uint8_t b) { return b == 0; })) {
      std::fill(plain.begin() + from, plain.end(), 0);
      int64_t ignored = 0;  // re-sealing in place does not change allocation
      LANEFS_TRY(write_blocks(ino, block, plain, &ignored));
    }
  }
  return cluster_.setattr(ino, attr, cred);
}

}  // namespace lanefs::client

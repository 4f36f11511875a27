// kScrub: this backend's chunks of one filesystem, every block checked
// against its CRC32C (ChunkStore::scrub_ino). Which filesystem a chunk
// belongs to is its inode's: asked of the inode's metadata owner (this
// backend or a peer).
#include "backend/backend_core.h"
#include "common/log.h"

namespace lanefs::backend {
namespace {

// Damaged blocks named in one answer; the count covers all of them.
constexpr size_t kListMax = 1000;

// The inode's filesystem, or kNotFound when it has no record (its chunks
// are being removed).
Result<uint32_t> fs_of(BackendCore& b, const proto::ClusterMap& m, uint64_t ino) {
  const proto::Member* owner = proto::meta_owner(m, ino);
  if (owner == nullptr) return make_error(Errc::kNotFound, "no metadata owner");
  if (b.is_self(*owner)) {
    LANEFS_ASSIGN_OR_RETURN(auto a, b.meta().get_inode(ino));
    return a.fs_id;
  }
  LANEFS_ASSIGN_OR_RETURN(auto a, b.call_member<proto::InodeAttr>(*owner, proto::Op::kGetattr, proto::InoReq{ino}));
  return a.fs_id;
}

}  // namespace

rpc::Buffer handle_scrub(BackendCore& b, std::span<const uint8_t> raw) {
  auto req = proto::decode_msg<proto::ScrubReq>(raw);
  if (!req.ok()) return reply_error(req.error());
  auto m = b.map_ptr();
  const proto::FsInfo* fs = m->find_fs(req->fs_id);
  if (fs == nullptr)
    return reply_error(make_error(Errc::kNotFound, "filesystem " + std::to_string(req->fs_id) + " does not exist"));
  auto inos = b.chunks().stored_inos();
  if (!inos.ok()) return reply_error(inos.error());
  proto::ScrubResp resp;
  ChunkStore::ScrubTally tally;
  for (uint64_t ino : *inos) {
    auto id = fs_of(b, *m, ino);
    if (!id.ok()) {
      if (id.code() != Errc::kNotFound) return reply_error(id.error());
      ++resp.orphans;
      continue;
    }
    if (*id != req->fs_id) continue;
    ++resp.inodes;
    if (Status st = b.chunks().scrub_ino(ino, &tally); !st.ok()) return reply_error(st.error());
  }
  resp.chunks = tally.chunks;
  resp.blocks = tally.blocks;
  resp.damaged = tally.damaged.size();
  for (const auto& d : tally.damaged) {
    if (resp.listed.size() == kListMax) break;
    resp.listed.push_back({d.ino, d.index, d.block, d.path});
  }
  if (req->repair && resp.damaged > 0)
    resp.repair_note = "not repaired: this cluster keeps one copy of each chunk, there is no other copy to rebuild "
                       "a damaged block from";
  LOG_INFO("scrub of filesystem '{}': {} chunk(s), {} block(s), {} damaged", fs->name, resp.chunks, resp.blocks,
           resp.damaged);
  return reply(resp);
}

}  // namespace lanefs::backend

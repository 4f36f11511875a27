// ChunkStore's scrub: every block of a file's chunks checked against its
// CRC32C, as a read would check it (block_crc.h).
#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <memory>
#include <string_view>

#include "backend/chunk_store_internal.h"

namespace lanefs::backend {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// The numbers in a directory's names (base 16 or 10); other names skipped.
Result<std::vector<uint64_t>> numbered_entries(const std::string& dir, int base) {
  std::vector<uint64_t> out;
  DirPtr d(::opendir(dir.c_str()));
  if (!d) {
    if (errno == ENOENT) return out;
    return sys_error("opendir " + dir, errno);
  }
  while (dirent* e = ::readdir(d.get())) {
    std::string_view name(e->d_name);
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), v, base);
    if (ec == std::errc() && end == name.data() + name.size() && !name.empty()) out.push_back(v);
  }
  return out;
}

}  // namespace

Result<std::vector<uint64_t>> ChunkStore::stored_inos() { return numbered_entries(files_->root(), 16); }

Status ChunkStore::scrub_ino(uint64_t ino, ScrubTally* t) {
  LANEFS_ASSIGN_OR_RETURN(auto indexes, numbered_entries(files_->ino_dir(ino), 10));
  // One chunk's data at a time, reused for every chunk.
  std::vector<uint8_t> buf(chunk_size_);
  for (uint64_t index : indexes) {
    LANEFS_ASSIGN_OR_RETURN(auto f, files_->get(ino, index, /*create=*/false));
    if (!f) continue;  // removed meanwhile
    ++t->chunks;
    t->blocks += crc_.blocks();
    // The whole chunk read and checked as a read would (two slot reads);
    // from a block that fails on, block by block, so every damaged block is
    // named (a read stops at the first) and confirmed under the file's lock.
    LANEFS_ASSIGN_OR_RETURN(int64_t bad, crc_.read_checked(f.fd(), 0, chunk_size_, buf.data(), f->path));
    for (auto b = static_cast<uint32_t>(std::max<int64_t>(bad, 0)); bad >= 0 && b < crc_.blocks(); ++b) {
      const uint32_t off = b * BlockCrc::kBlock;
      // Read again: the whole-chunk read stopped at the failing slice.
      Status st = Impl::read_checked(*this, *f, off, crc_.block_len(b), buf.data() + off);
      if (st.code() == Errc::kCorrupt)
        t->damaged.push_back({ino, index, b, f->path});
      else if (!st.ok())
        return st;
    }
  }
  return ok_status();
}

}  // namespace lanefs::backend

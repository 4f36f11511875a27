// ChunkStore's scrub: every block of a file's chunks checked against its
// CRC32C, as a read would check it (block_crc.h).
#include <dirent.h>

#include <unistd.h>

#include <charconv>
#include <cstring>
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
    std::memset(buf.data(), 0, buf.size());  // beyond the file's end: zeros
    for (size_t got = 0; got < buf.size();) {
      ssize_t r = ::pread(f.fd(), buf.data() + got, buf.size() - got, static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return sys_error("pread " + f->path, errno);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    // Block by block, so every damaged block is named (a read stops at the
    // first).
    for (uint32_t b = 0; b < crc_.blocks(); ++b) {
      const uint32_t off = b * BlockCrc::kBlock;
      Status st = Impl::check_read(*this, *f, off, crc_.block_len(b), buf.data() + off);
      if (st.code() == Errc::kCorrupt)
        t->damaged.push_back({ino, index, b, f->path});
      else if (!st.ok())
        return st;
    }
  }
  return ok_status();
}

}  // namespace lanefs::backend

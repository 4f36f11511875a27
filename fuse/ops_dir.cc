// Directory handlers: opendir, readdir, readdirplus, releasedir, fsyncdir.
// Offsets handed to the kernel are the backend's readdir cookies, so a
// listing resumes exactly where it stopped even while entries change.
#include <sys/stat.h>

#include <vector>

#include "fuse/ops.h"

namespace lanefs::fuse {
namespace {

void list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  auto& m = mount_of(req);
  // Enough entries to fill the buffer with typical names.
  uint32_t want = static_cast<uint32_t>(std::clamp<size_t>(size / 40 + 2, 4, 4096));
  auto page = m.readdir(ino, static_cast<uint64_t>(off), want, plus);
  if (!page.ok()) return reply_error(req, page.error());
  std::vector<char> buf(size);
  size_t used = 0;
  size_t i = 0;
  for (; i < page->entries.size(); ++i) {
    const auto& e = page->entries[i];
    size_t n;
    if (plus) {
      fuse_entry_param p{};
      p.ino = e.ino;
      p.generation = m.generation(e.ino);
      p.attr = to_stat(page->attrs[i]);
      p.attr_timeout = attr_timeout(m);
      p.entry_timeout = entry_timeout(m);
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &p,
                                 static_cast<off_t>(e.cookie));
    } else {
      struct stat st {};
      st.st_ino = e.ino;
      st.st_mode = e.type;
      n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                            static_cast<off_t>(e.cookie));
    }
    if (n > size - used) break;
    used += n;
  }
  if (plus) {
    // Entries that did not fit were counted as lookups by the client core:
    // the kernel never saw them, so give those counts back.
    for (size_t j = i; j < page->entries.size(); ++j) {
      const auto& e = page->entries[j];
      if (e.name != "." && e.name != "..") m.forget(e.ino, 1);
    }
  }
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto a = mount_of(req).getattr(ino);
  if (!a.ok()) return reply_node_error(req, a.error());
  if (!S_ISDIR(a->mode)) return reply_error(req, make_error(Errc::kNotDir, "not a directory"));
  fi->cache_readdir = 0;
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  list(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  list(req, ino, size, off, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  // Metadata changes are durable when acknowledged.
  fuse_reply_err(req, 0);
}

}  // namespace lanefs::fuse

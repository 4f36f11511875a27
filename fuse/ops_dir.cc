// Directory handlers: opendir, readdir(plus), releasedir, fsyncdir.
// Offsets handed to the kernel are the backend's readdir cookies, so a
// listing resumes exactly where it stopped even while entries change.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "common/msg_buffer.h"
#include "fuse/ops.h"

namespace lanefs::fuse {

void op_readdir(const Req& req, uint64_t ino, size_t size, uint64_t off, bool plus) noexcept {
  auto& m = mount_of(req);
  // Enough entries to fill the buffer with typical names.
  uint32_t want = static_cast<uint32_t>(std::clamp<size_t>(size / 40 + 2, 4, 4096));
  auto page = m.readdir(ino, off, want, plus, cred_of(req));
  if (!page.ok()) {
    reply_error(req, page.error());
    return;
  }
  // Built in the ring entry's payload (Req::out) or this thread's buffer;
  // nothing parks between here and the reply.
  thread_local MsgBuffer classic_buf;
  uint8_t* out = req.out;
  if (out == nullptr || req.out_cap < size) {
    classic_buf.resize_uninit(size);
    out = classic_buf.data();
  }
  size_t used = 0, i = 0;
  for (; i < page->entries.size(); ++i) {
    const auto& e = page->entries[i];
    const size_t rec = plus ? abi::direntplus_size(e.name.size()) : abi::dirent_size(e.name.size());
    if (rec > size - used) break;
    uint8_t* p = out + used;
    std::memset(p, 0, rec);
    if (plus) {
      abi::EntryOut eo;
      fill_entry(&eo, m, page->attrs[i]);
      eo.nodeid = e.ino;
      eo.generation = m.generation(e.ino);
      std::memcpy(p, &eo, sizeof eo);
      p += sizeof eo;
    }
    abi::Dirent d{e.ino, e.cookie, static_cast<uint32_t>(e.name.size()), (e.type & S_IFMT) >> 12};
    std::memcpy(p, &d, sizeof d);
    std::memcpy(p + sizeof d, e.name.data(), e.name.size());
    used += rec;
  }
  if (plus) {
    // Entries that did not fit were counted as lookups by the client core:
    // the kernel never saw them, so give those counts back.
    for (size_t j = i; j < page->entries.size(); ++j) {
      const auto& e = page->entries[j];
      if (e.name != "." && e.name != "..") m.forget(e.ino, 1);
    }
  }
  reply_buf(req, out, used);
}

void op_opendir(const Req& req, uint64_t ino, FileInfo& fi) noexcept {
  auto a = mount_of(req).getattr(ino);
  if (!a.ok()) {
    reply_node_error(req, a.error());
    return;
  }
  if (!S_ISDIR(a->mode)) {
    reply_error(req, make_error(Errc::kNotDir, "not a directory"));
    return;
  }
  fi.direct_io = false;
  fi.keep_cache = false;  // and no FOPEN_CACHE_DIR: listings are fresh
  reply_open(req, fi);
}

void op_releasedir(const Req& req, uint64_t) noexcept { reply_err(req, 0); }

void op_fsyncdir(const Req& req, uint64_t) noexcept {
  // Metadata changes are durable when acknowledged.
  reply_err(req, 0);
}

}  // namespace lanefs::fuse

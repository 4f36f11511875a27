// writecache coherence between mounts and hosts (docs/mount.md, "Cache
// modes"). Under the kernel's write-back cache the kernel keeps its own
// size and mtime of a regular file and ignores the backend's, so another
// client's change has to reach this mount's kernel another way:
//  - the file is not open on this mount: the kernel gets a fresh inode.
//    Its stale one answers ESTALE (getattr, open); the kernel looks the
//    name up again (LOOKUP_REVAL), the entry carries a new generation, and
//    the kernel replaces the inode with one built from that entry. A lookup
//    that finds the change itself (the dentry's age passed) hands out the
//    new generation directly.
//  - it is open here, read-only: the channel drops its cached pages and
//    grows its size (KernelCache::file_changed).
//  - it is open here for writing: this mount's view wins until the last
//    close (what write-back caching means); a write that failed marks the
//    view diverged, so the first check after the close replaces it.
#include <sys/stat.h>

#include <optional>
#include <span>
#include <utility>

#include "client/mount_fs.h"

namespace lanefs::client {
namespace {

// Regular files of writecache mounts: the only inodes whose size and mtime
// the kernel keeps for itself.
bool tracked(const MountOptions& o, const proto::InodeAttr& a) {
  return o.cache == CacheMode::kWriteCache && S_ISREG(a.mode);
}

}  // namespace

void MountFs::note_entry(Node& n, const proto::InodeAttr& a, bool new_to_kernel) {
  if (!tracked(opts_, a)) return;
  // stale_size: the kernel's inode is larger than the file (shrunk while
  // open here), whatever the attributes say.
  const bool changed = !n.seen_valid || n.seen_size != a.size || !(n.seen_mtime == a.mtime) || n.stale_size;
  if (new_to_kernel || n.replace_pending) {
    // The kernel builds its inode from this entry.
    n.just_replaced = n.replace_pending;
    n.replace_pending = false;
  } else if (changed && n.open_count == 0) {
    // Changed elsewhere while the kernel holds an inode nobody here has
    // open: a new generation makes the kernel swap it for one built from
    // this entry.
    ++n.generation;
    n.just_replaced = true;
  } else {
    return;  // unchanged, or open here (getattr and open_check refresh it)
  }
  n.seen_valid = true;
  n.seen_size = a.size;
  n.seen_mtime = a.mtime;
  n.stale_size = false;  // a fresh inode
}

Status MountFs::check_kernel_view(const proto::InodeAttr& fresh, bool at_open) {
  if (!tracked(opts_, fresh)) return ok_status();
  uint64_t old_size = 0;
  {
    std::lock_guard lk(mu_);
    auto it = nodes_.find(fresh.ino);
    if (it == nodes_.end() || !it->second.seen_valid) return ok_status();
    Node& n = it->second;
    const bool just_replaced = std::exchange(n.just_replaced, false);
    const bool same = n.seen_size == fresh.size && n.seen_mtime == fresh.mtime;
    // Unchanged; or open here with a shrink already handled (nothing more
    // to do until the last close).
    if (same && (!n.stale_size || n.open_count > 0)) return ok_status();
    if (n.write_opens > 0) return ok_status();  // this mount's writers' view wins until they close
    // Under the write-back cache the kernel's size grows in place (a
    // store) but never shrinks: a short read past the backend's end reads
    // zeros, it does not cut the size. A shrunk file needs a new inode.
    const bool shrunk = n.stale_size || (n.seen_size != kDiverged && fresh.size < n.seen_size);
    // The open that follows a replacement runs on the inode just built:
    // a change since is refreshed in place rather than answered ESTALE a
    // second time (which open(2) would return to the caller), unless the
    // file shrank or this mount's failed write left its view diverged.
    // (just_replaced may also be left from a replacement long ago, by a
    // stat; then this open is the first pass of its path walk and ESTALE
    // only makes the kernel look the name up again.)
    const bool in_place_open = at_open && just_replaced && !shrunk && n.seen_size != kDiverged;
    if (n.open_count == 0 && !in_place_open) {
      if (!n.replace_pending) ++n.generation;
      n.replace_pending = true;
      return make_error(Errc::kStale, "changed by another client");
    }
    old_size = n.seen_size == kDiverged ? fresh.size : n.seen_size;
    // Open here: pages are dropped now; a shrunk size (or one a failed
    // write of this mount left ahead) stays the kernel's until the last
    // close here (released(), then ESTALE).
    if (shrunk || n.seen_size == kDiverged) n.stale_size = true;
    n.seen_size = fresh.size;
    n.seen_mtime = fresh.mtime;
  }
  if (!kernel_cache_) return ok_status();
  // Grown: the kernel's new last byte (one small read, only when another
  // client grew a file held open here). Failing that, the pages are still
  // dropped and the next read past the old end fetches the size.
  std::optional<uint8_t> last;
  if (fresh.size > old_size) {
    uint8_t byte = 0;
    auto r = read_into(to_nodeid(fresh.ino), fresh.size - 1, std::span<uint8_t>(&byte, 1));
    if (r.ok() && *r == 1) last = byte;
  }
  kernel_cache_->file_changed(to_nodeid(fresh.ino), fresh.size, last);
  return ok_status();
}

void MountFs::bypassed_cache(uint64_t nodeid, const proto::InodeAttr& after, std::optional<uint8_t> last) {
  if (opts_.cache == CacheMode::kForceDirect || !kernel_cache_) return;
  // write() already recorded the size as the kernel's (remember_own); the
  // kernel learns it here. Without the last byte only pages are dropped
  // and the next read past the old end fetches the size.
  kernel_cache_->file_changed(nodeid, after.size, last);
}

Status MountFs::open_check(uint64_t nodeid) {
  // Always asks: attributes fetched a moment ago may predate another
  // client's close that this open(2) must see (close-to-open).
  if (opts_.cache != CacheMode::kWriteCache) return ok_status();
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->getattr(to_ino(nodeid)));
  remember(a, Learned::kFetched);
  return check_kernel_view(a, true);
}

void MountFs::write_failed(uint64_t ino) {
  if (opts_.cache != CacheMode::kWriteCache) return;
  std::lock_guard lk(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  it->second.seen_valid = true;
  it->second.seen_size = kDiverged;
}

uint64_t MountFs::generation(uint64_t nodeid) const {
  if (opts_.cache != CacheMode::kWriteCache) return 0;
  std::lock_guard lk(mu_);
  auto it = nodes_.find(to_ino(nodeid));
  return it == nodes_.end() ? 0 : it->second.generation;
}

}  // namespace lanefs::client

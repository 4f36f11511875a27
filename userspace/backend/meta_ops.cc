// COMPUTE role, metadata: POSIX namespace operations on this backend's
// shard. Inode records live on owner(ino), directory entries on
// owner(parent). When a child inode lives on another shard, the remote part
// runs as a peer primitive *outside* the local store lock (so two backends
// can never wait on each other's locks) and in a crash-safe order: an inode
// is created before the name that points to it, and a name is removed
// before the inode it pointed to (a crash leaks an inode, never leaves a
// dangling name).
#include <sys/stat.h>

#include "backend/access.h"
#include "backend/backend_core.h"
#include "common/clock.h"
#include "common/log.h"

namespace lanefs::backend {
namespace {

using proto::InodeAttr;
using proto::Op;
using proto::Timespec;

bool is_dir(uint32_t mode) { return S_ISDIR(mode); }

Status check_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    return make_error(Errc::kInvalid, "invalid name '" + name + "'");
  if (name.size() > proto::kNameMax) return make_error(Errc::kNameTooLong, "name too long");
  return ok_status();
}

class MetaOps {
 public:
  MetaOps(BackendCore& b, RequestTag tag)
      : b_(b), store_(b.meta()), map_ptr_(b.map_ptr()), map_(*map_ptr_), tag_(tag) {}

  // The request's 'R' record, in the batch of the namespace change it makes
  // (meta_replay.cc): a resend after a restart finds it. One small extra
  // key per create/link/unlink/rmdir/rename, no extra write or sync.
  void mark_done(MetaStore::Batch& batch, uint64_t ino) {
    if (tag_.client != 0) batch.put_done(tag_.client, tag_.request, {wall_secs(), ino});
  }

  bool owns(uint64_t ino) const {
    const proto::Member* m = proto::meta_owner(map_, ino);
    return m != nullptr && b_.is_self(*m);
  }
  Status require_owner(uint64_t ino) const {
    if (owns(ino)) return ok_status();
    return make_error(Errc::kWrongOwner, "inode " + std::to_string(ino) + " is not on this backend");
  }
  const proto::Member& owner_of(uint64_t ino) const { return *proto::meta_owner(map_, ino); }
  uint32_t my_shard() const { return b_.self_member()->shard; }

  Result<InodeAttr> attr_any(uint64_t ino) {
    if (owns(ino)) return store_.get_inode(ino);
    if (!proto::meta_owner(map_, ino)) return make_error(Errc::kNotFound, "inode's shard unknown");
    return b_.call_member<InodeAttr>(owner_of(ino), Op::kGetattr, proto::InoReq{ino});
  }

  // Applies a link-count change to a local inode inside `batch`.
  bool apply_nlink(InodeAttr& a, int32_t delta, Timespec now, MetaStore::Batch& batch) {
    int64_t n = int64_t{a.nlink} + delta;
    a.nlink = n < 0 ? 0 : static_cast<uint32_t>(n);
    a.ctime = now;
    if (a.nlink == 0 && !is_dir(a.mode) && b_.handles().held(a.ino)) {
      // Open on some client: kept (record and data) until its last
      // release (meta_open.cc).
      batch.put_inode(a);
      batch.put_orphan(a.ino);
      return false;
    }
    if (a.nlink == 0 || (is_dir(a.mode) && a.nlink <= 1 && delta < 0)) {
      batch.delete_inode(a.ino);
      batch.delete_symlink(a.ino);
      if (auto xs = store_.list_xattrs(a.ino); xs.ok())
        for (const auto& x : *xs) batch.delete_xattr(a.ino, x);
      return true;
    }
    batch.put_inode(a);
    return false;
  }

  // Link-count change on an inode that may be remote; done outside locks.
  Result<proto::InodeNlinkResp> nlink_any(uint64_t ino, int32_t delta) {
    return b_.call_member<proto::InodeNlinkResp>(owner_of(ino), Op::kInodeNlink,
                                                 proto::InodeNlinkReq{ino, delta, proto::now_timespec()});
  }

  // Data of a removed inode goes from every backend that may hold chunks.
  void drop_data(uint64_t ino) { drop_inode_data(b_, ino); }

  void touch_dir(InodeAttr& dir, Timespec now, int32_t nlink_delta) {
    dir.mtime = dir.ctime = now;
    dir.nlink = static_cast<uint32_t>(std::max<int64_t>(2, int64_t{dir.nlink} + nlink_delta));
  }

  Result<InodeAttr> lookup(const proto::NameAtReq& r) {
    LANEFS_TRY(require_owner(r.parent));
    if (r.name == "." ) return store_.get_inode(r.parent);
    if (r.name == "..") {
      LANEFS_ASSIGN_OR_RETURN(auto p, store_.get_inode(r.parent));
      return attr_any(p.parent == 0 ? p.ino : p.parent);
    }
    LANEFS_ASSIGN_OR_RETURN(auto d, store_.get_dirent(r.parent, r.name));
    return attr_any(d.ino);
  }

  Result<InodeAttr> getattr(uint64_t ino) {
    LANEFS_TRY(require_owner(ino));
    return store_.get_inode(ino);
  }

  Result<InodeAttr> setattr(const proto::SetattrReq& r) {
    LANEFS_TRY(require_owner(r.ino));
    const auto& sa = r.attr;
    if (sa.mask & proto::kSetSize) {
      LANEFS_ASSIGN_OR_RETURN(auto cur, store_.get_inode(r.ino));
      if (is_dir(cur.mode)) return make_error(Errc::kIsDir, "cannot truncate a directory");
      if (!S_ISREG(cur.mode)) return make_error(Errc::kInvalid, "truncate of a non-regular file");
      if (sa.size > proto::kMaxFileSize) return make_error(Errc::kTooBig, "size beyond the maximum file size");
    }
    int64_t blocks_delta = 0;
    if (sa.mask & proto::kSetSize) {
      // Encrypted filesystems keep per-block seals after each chunk's data.
      bool sealed = false;
      if (auto cur = store_.get_inode(r.ino); cur.ok())
        if (const proto::FsInfo* fs = map_.find_fs(cur->fs_id)) sealed = fs->encrypted;
      // Cut the data first (outside the lock): every backend drops what it
      // holds beyond the new size. Growing needs no data change (holes).
      for (const auto& m : map_.members) {
        auto d = b_.call_member<rpc::I64>(m, Op::kChunkTruncate, proto::ChunkTruncateReq{r.ino, sa.size, sealed});
        if (!d.ok()) return make_error(d.code(), "truncating data on " + m.addr.to_string() + ": " + d.error().to_string());
        blocks_delta += d->v;
      }
    }
    auto lk = store_.lock();
    LANEFS_ASSIGN_OR_RETURN(auto a, store_.get_inode(r.ino));
    auto now = proto::now_timespec();
    if (sa.mask & proto::kSetMode) a.mode = (a.mode & S_IFMT) | (sa.mode & 07777);
    if (sa.mask & proto::kSetKillSuidgid) a.mode &= ~proto::suidgid_to_kill(a.mode);
    if (sa.mask & proto::kSetUid) a.uid = sa.uid;
    if (sa.mask & proto::kSetGid) a.gid = sa.gid;
    if (sa.mask & proto::kSetSize) {
      if (sa.size != a.size && !(sa.mask & (proto::kSetMtime | proto::kSetMtimeNow))) a.mtime = now;
      a.size = sa.size;
      a.blocks = static_cast<uint64_t>(std::max<int64_t>(0, int64_t(a.blocks) + blocks_delta));
    }
    if (sa.mask & proto::kSetAtimeNow) a.atime = now;
    else if (sa.mask & proto::kSetAtime) a.atime = sa.atime;
    if (sa.mask & proto::kSetMtimeNow) a.mtime = now;
    else if (sa.mask & proto::kSetMtime) a.mtime = sa.mtime;
    a.ctime = (sa.mask & proto::kSetCtime) ? sa.ctime : now;
    MetaStore::Batch batch;
    batch.put_inode(a);
    LANEFS_TRY(store_.commit(batch, lk));
    return a;
  }

  Result<proto::EntryResp> create(const proto::CreateReq& r) {
    LANEFS_TRY(require_owner(r.parent));
    LANEFS_TRY(check_name(r.name));
    uint32_t type = r.mode & S_IFMT;
    if (type == 0) type = S_IFREG;
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFIFO &&
        type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
      return make_error(Errc::kInvalid, "unsupported file type");
    if (type == S_IFLNK && (r.symlink_target.empty() || r.symlink_target.size() > 4095))
      return make_error(Errc::kInvalid, "symlink target must be 1-4095 bytes");
    auto now = proto::now_timespec();
    InodeAttr a;
    a.mode = type | (r.mode & 07777);
    a.uid = r.cred.uid;
    a.gid = r.cred.gid;
    a.rdev = r.rdev;
    a.nlink = type == S_IFDIR ? 2 : 1;
    a.size = type == S_IFLNK ? r.symlink_target.size() : 0;
    a.atime = a.mtime = a.ctime = a.btime = now;
    a.parent = type == S_IFDIR ? r.parent : 0;
    uint32_t shard = type == S_IFDIR ? proto::shard_for_new_dir(map_, r.parent, r.name) : my_shard();

    if (shard == my_shard()) {
      auto lk = store_.lock();
      LANEFS_ASSIGN_OR_RETURN(auto parent, store_.get_inode(r.parent));
      if (!is_dir(parent.mode)) return make_error(Errc::kNotDir, "parent is not a directory");
      if (auto ex = store_.get_dirent(r.parent, r.name); ex.ok()) {
        if (!r.exclusive && type == S_IFREG && ex->type == S_IFREG) {
          LANEFS_ASSIGN_OR_RETURN(auto existing, store_.get_inode(ex->ino));
          if (r.open_by && r.access) LANEFS_TRY(proto::may_access(existing, r.cred, r.access));  // cred: squashed
          if (r.open_by && owns(existing.ino)) {
            b_.handles().open(r.open_by, existing.ino, r.open_seq, mono_ns());
            MetaStore::Batch batch;
            batch.put_handle(r.open_by, existing.ino, r.open_seq);
            (void)store_.apply(batch);  // no sync: see meta_open.cc
          }
          return proto::EntryResp{existing, true, parent};
        }
        return make_error(Errc::kExists, "'" + r.name + "' exists");
      }
      MetaStore::Batch batch;
      a.fs_id = parent.fs_id;
      inherit_setgid(parent, a, r.cred);
      LANEFS_ASSIGN_OR_RETURN(a.ino, store_.next_ino(shard, batch));
      batch.put_inode(a);
      if (type == S_IFLNK) batch.put_symlink(a.ino, r.symlink_target);
      batch.put_dirent(r.parent, r.name, {a.ino, type, parent.next_cookie++});
      touch_dir(parent, now, type == S_IFDIR ? 1 : 0);
      batch.put_inode(parent);
      // The creator's open handle (O_CREAT): registered before the name is
      // visible to anyone, so no unlink can slip in between.
      if (r.open_by && type == S_IFREG) {
        b_.handles().open(r.open_by, a.ino, r.open_seq, mono_ns());
        batch.put_handle(r.open_by, a.ino, r.open_seq);
      }
      mark_done(batch, a.ino);
      LANEFS_TRY(store_.commit(batch, lk));
      return proto::EntryResp{a, true, parent};
    }
    // A directory placed on another shard: its inode first, then the name.
    LANEFS_ASSIGN_OR_RETURN(auto parent0, store_.get_inode(r.parent));
    if (!is_dir(parent0.mode)) return make_error(Errc::kNotDir, "parent is not a directory");
    if (store_.get_dirent(r.parent, r.name).ok()) return make_error(Errc::kExists, "'" + r.name + "' exists");
    a.fs_id = parent0.fs_id;
    inherit_setgid(parent0, a, r.cred);
    LANEFS_ASSIGN_OR_RETURN(auto made, b_.call_member<InodeAttr>(*map_.member_by_shard(shard), Op::kInodePut,
                                                                 proto::InodePutReq{a, {}}));
    InodeAttr dir;
    Status st = [&]() -> Status {
      auto lk = store_.lock();
      LANEFS_ASSIGN_OR_RETURN(auto parent, store_.get_inode(r.parent));
      if (store_.get_dirent(r.parent, r.name).ok()) return make_error(Errc::kExists, "'" + r.name + "' exists");
      MetaStore::Batch batch;
      batch.put_dirent(r.parent, r.name, {made.ino, type, parent.next_cookie++});
      touch_dir(parent, now, 1);
      batch.put_inode(parent);
      mark_done(batch, made.ino);
      dir = parent;
      return store_.commit(batch, lk);
    }();
    if (!st.ok()) {
      (void)nlink_any(made.ino, -2);  // undo: the orphan directory goes away
      return st.error();
    }
    return proto::EntryResp{made, true, dir};
  }

  Result<proto::EntryResp> link(const proto::LinkReq& r) {
    LANEFS_TRY(require_owner(r.new_parent));
    LANEFS_TRY(check_name(r.new_name));
    LANEFS_ASSIGN_OR_RETURN(auto target, attr_any(r.ino));
    if (is_dir(target.mode)) return make_error(Errc::kNotPermitted, "hard links to directories are not allowed");
    {
      // Never into another filesystem (the target's record may be on
      // another backend, where no scope check saw it).
      LANEFS_ASSIGN_OR_RETURN(auto np, store_.get_inode(r.new_parent));
      if (np.fs_id != target.fs_id) return make_error(Errc::kCrossDevice, "hard link across filesystems");
    }
    auto now = proto::now_timespec();
    if (owns(r.ino)) {
      auto lk = store_.lock();
      LANEFS_ASSIGN_OR_RETURN(auto parent, store_.get_inode(r.new_parent));
      if (!is_dir(parent.mode)) return make_error(Errc::kNotDir, "parent is not a directory");
      if (store_.get_dirent(r.new_parent, r.new_name).ok()) return make_error(Errc::kExists, "'" + r.new_name + "' exists");
      LANEFS_ASSIGN_OR_RETURN(auto a, store_.get_inode(r.ino));
      if (a.nlink >= 65000) return make_error(Errc::kTooManyLinks, "too many links");
      MetaStore::Batch batch;
      apply_nlink(a, +1, now, batch);
      batch.put_dirent(r.new_parent, r.new_name, {a.ino, a.mode & S_IFMT, parent.next_cookie++});
      touch_dir(parent, now, 0);
      batch.put_inode(parent);
      mark_done(batch, a.ino);
      LANEFS_TRY(store_.commit(batch, lk));
      return proto::EntryResp{a, true, parent};
    }
    LANEFS_ASSIGN_OR_RETURN(auto bumped, nlink_any(r.ino, +1));
    InodeAttr dir;
    Status st = [&]() -> Status {
      auto lk = store_.lock();
      LANEFS_ASSIGN_OR_RETURN(auto parent, store_.get_inode(r.new_parent));
      if (!is_dir(parent.mode)) return make_error(Errc::kNotDir, "parent is not a directory");
      if (store_.get_dirent(r.new_parent, r.new_name).ok()) return make_error(Errc::kExists, "'" + r.new_name + "' exists");
      MetaStore::Batch batch;
      batch.put_dirent(r.new_parent, r.new_name, {r.ino, target.mode & S_IFMT, parent.next_cookie++});
      touch_dir(parent, now, 0);
      batch.put_inode(parent);
      mark_done(batch, r.ino);
      dir = parent;
      return store_.commit(batch, lk);
    }();
    if (!st.ok()) {
      (void)nlink_any(r.ino, -1);
      return st.error();
    }
    return proto::EntryResp{bumped.attr, true, dir};
  }

  // unlink (dir=false) and rmdir (dir=true).
  Status remove(const proto::NameAtReq& r, bool dir) {
    LANEFS_TRY(require_owner(r.parent));
    if (r.name == ".") return make_error(Errc::kInvalid, "cannot remove '.'");
    if (r.name == "..") return make_error(Errc::kNotEmpty, "cannot remove '..'");
    LANEFS_TRY(check_name(r.name));
    LANEFS_ASSIGN_OR_RETURN(auto d0, store_.get_dirent(r.parent, r.name));
    if (dir && d0.type != S_IFDIR) return make_error(Errc::kNotDir, "'" + r.name + "' is not a directory");
    if (!dir && d0.type == S_IFDIR) return make_error(Errc::kIsDir, "'" + r.name + "' is a directory");
    bool local_child = owns(d0.ino);
    if (dir && !local_child) {
      LANEFS_ASSIGN_OR_RETURN(auto empty, b_.call_member<rpc::U8>(owner_of(d0.ino), Op::kDirEmpty, proto::InoReq{d0.ino}));
      if (!empty.v) return make_error(Errc::kNotEmpty, "directory '" + r.name + "' is not empty");
    }
    auto now = proto::now_timespec();
    bool removed = false;
    {
      auto lk = store_.lock();
      LANEFS_ASSIGN_OR_RETURN(auto d, store_.get_dirent(r.parent, r.name));
      if (d.ino != d0.ino) return make_error(Errc::kBusy, "'" + r.name + "' changed during removal");
      if (dir && local_child && !store_.dir_empty(d.ino))
        return make_error(Errc::kNotEmpty, "directory '" + r.name + "' is not empty");
      LANEFS_ASSIGN_OR_RETURN(auto parent, store_.get_inode(r.parent));
      MetaStore::Batch batch;
      batch.delete_dirent(r.parent, r.name, d.cookie);
      touch_dir(parent, now, dir ? -1 : 0);
      batch.put_inode(parent);
      if (local_child) {
        LANEFS_ASSIGN_OR_RETURN(auto child, store_.get_inode(d.ino));
        removed = apply_nlink(child, dir ? -2 : -1, now, batch);
      }
      mark_done(batch, 0);
      LANEFS_TRY(store_.commit(batch, lk));
    }
    if (!local_child) {
      LANEFS_ASSIGN_OR_RETURN(auto res, nlink_any(d0.ino, dir ? -2 : -1));
      removed = res.removed;
    }
    if (removed && !dir) drop_data(d0.ino);
    return ok_status();
  }

  // Is `dir` (a directory inode) `ancestor` or below it?
  Result<bool> is_under(uint64_t dir, uint64_t ancestor) {
    for (int depth = 0; depth < 4096; ++depth) {
      if (dir == ancestor) return true;
      LANEFS_ASSIGN_OR_RETURN(auto a, attr_any(dir));
      if (a.parent == 0 || a.parent == dir) return false;
      dir = a.parent;
    }
    return make_error(Errc::kInvalid, "directory tree too deep");
  }

  Status rename(const proto::RenameReq& r) {
    LANEFS_TRY(require_owner(r.parent));
    LANEFS_TRY(check_name(r.name));
    LANEFS_TRY(check_name(r.new_name));
    if (r.flags & ~(proto::kRenameNoReplace | proto::kRenameExchange))
      return make_error(Errc::kInvalid, "unknown rename flags");
    if ((r.flags & proto::kRenameNoReplace) && (r.flags & proto::kRenameExchange))
      return make_error(Errc::kInvalid, "RENAME_NOREPLACE and RENAME_EXCHANGE together");
    if (!owns(r.new_parent))
      return make_error(Errc::kCrossDevice, "rename across metadata shards is not supported");
    if (r.parent != r.new_parent) {
      LANEFS_ASSIGN_OR_RETURN(auto from, store_.get_inode(r.parent));
      LANEFS_ASSIGN_OR_RETURN(auto to, store_.get_inode(r.new_parent));
      if (from.fs_id != to.fs_id) return make_error(Errc::kCrossDevice, "rename across filesystems");
    }
    bool exchange = r.flags & proto::kRenameExchange;
    LANEFS_ASSIGN_OR_RETURN(auto src0, store_.get_dirent(r.parent, r.name));
    auto dst0 = store_.get_dirent(r.new_parent, r.new_name);
    if (r.parent == r.new_parent && r.name == r.new_name) return ok_status();
    if (exchange && !dst0.ok()) return dst0.error();
    if ((r.flags & proto::kRenameNoReplace) && dst0.ok())
      return make_error(Errc::kExists, "'" + r.new_name + "' exists");
    // A directory may not move below itself.
    if (src0.type == S_IFDIR && r.parent != r.new_parent) {
      LANEFS_ASSIGN_OR_RETURN(bool under, is_under(r.new_parent, src0.ino));
      if (under) return make_error(Errc::kInvalid, "cannot move a directory into itself");
    }
    if (exchange && dst0->type == S_IFDIR && r.parent != r.new_parent) {
      LANEFS_ASSIGN_OR_RETURN(bool under, is_under(r.parent, dst0->ino));
      if (under) return make_error(Errc::kInvalid, "cannot move a directory into itself");
    }
    if (!exchange && dst0.ok()) {
      if (dst0->ino == src0.ino) return ok_status();  // hard links to the same inode
      if (src0.type == S_IFDIR && dst0->type != S_IFDIR) return make_error(Errc::kNotDir, "'" + r.new_name + "' is not a directory");
      if (src0.type != S_IFDIR && dst0->type == S_IFDIR) return make_error(Errc::kIsDir, "'" + r.new_name + "' is a directory");
      if (dst0->type == S_IFDIR) {
        bool empty;
        if (owns(dst0->ino)) {
          empty = store_.dir_empty(dst0->ino);
        } else {
          LANEFS_ASSIGN_OR_RETURN(auto e, b_.call_member<rpc::U8>(owner_of(dst0->ino), Op::kDirEmpty, proto::InoReq{dst0->ino}));
          empty = e.v;
        }
        if (!empty) return make_error(Errc::kNotEmpty, "'" + r.new_name + "' is not empty");
      }
    }
    auto now = proto::now_timespec();
    // Remote follow-ups done after the local commit.
    std::vector<std::pair<uint64_t, uint64_t>> set_parent;  // (dir ino, new parent)
    uint64_t remote_unlink = 0;
    int32_t remote_unlink_delta = 0;
    bool drop = false;
    uint64_t drop_ino = 0;
    {
      auto lk = store_.lock();
      LANEFS_ASSIGN_OR_RETURN(auto src, store_.get_dirent(r.parent, r.name));
      auto dst = store_.get_dirent(r.new_parent, r.new_name);
      if (src.ino != src0.ino || dst.ok() != dst0.ok() || (dst.ok() && dst->ino != dst0->ino))
        return make_error(Errc::kBusy, "directory changed during rename");
      LANEFS_ASSIGN_OR_RETURN(auto sp, store_.get_inode(r.parent));
      InodeAttr dp_store;
      bool same_parent = r.parent == r.new_parent;
      if (!same_parent) {
        LANEFS_ASSIGN_OR_RETURN(dp_store, store_.get_inode(r.new_parent));
        if (!is_dir(dp_store.mode)) return make_error(Errc::kNotDir, "target parent is not a directory");
      }
      InodeAttr& dp = same_parent ? sp : dp_store;
      MetaStore::Batch batch;
      auto touch_child = [&](uint64_t ino, uint64_t new_parent, bool dirtype) -> Status {
        // ctime of a moved inode changes; directories also change "..".
        if (owns(ino)) {
          LANEFS_ASSIGN_OR_RETURN(auto c, store_.get_inode(ino));
          c.ctime = now;
          if (dirtype) c.parent = new_parent;
          batch.put_inode(c);
        } else if (dirtype) {
          set_parent.emplace_back(ino, new_parent);
        }
        return ok_status();
      };
      if (exchange) {
        batch.put_dirent(r.parent, r.name, {dst->ino, dst->type, src.cookie});
        batch.put_dirent(r.new_parent, r.new_name, {src.ino, src.type, dst->cookie});
        if (!same_parent) {
          int32_t sd = (src.type == S_IFDIR) - (dst->type == S_IFDIR);
          touch_dir(sp, now, -sd);
          touch_dir(dp, now, sd);
          LANEFS_TRY(touch_child(src.ino, r.new_parent, src.type == S_IFDIR));
          LANEFS_TRY(touch_child(dst->ino, r.parent, dst->type == S_IFDIR));
        } else {
          touch_dir(sp, now, 0);
          LANEFS_TRY(touch_child(src.ino, r.parent, false));
          LANEFS_TRY(touch_child(dst->ino, r.parent, false));
        }
      } else {
        bool src_dir = src.type == S_IFDIR;
        if (dst.ok()) {
          // The replaced entry loses a link (a replaced directory goes away).
          bool dst_dir = dst->type == S_IFDIR;
          if (dst_dir) touch_dir(dp, now, -1);
          if (owns(dst->ino)) {
            LANEFS_ASSIGN_OR_RETURN(auto victim, store_.get_inode(dst->ino));
            if (apply_nlink(victim, dst_dir ? -2 : -1, now, batch) && !dst_dir) {
              drop = true;
              drop_ino = victim.ino;
            }
          } else {
            remote_unlink = dst->ino;
            remote_unlink_delta = dst_dir ? -2 : -1;
          }
          batch.delete_dirent(r.new_parent, r.new_name, dst->cookie);
        }
        batch.delete_dirent(r.parent, r.name, src.cookie);
        uint64_t cookie = dp.next_cookie++;
        batch.put_dirent(r.new_parent, r.new_name, {src.ino, src.type, cookie});
        if (same_parent) {
          touch_dir(sp, now, 0);
        } else {
          touch_dir(sp, now, src_dir ? -1 : 0);
          touch_dir(dp, now, src_dir ? 1 : 0);
        }
        LANEFS_TRY(touch_child(src.ino, r.new_parent, src_dir && !same_parent));
      }
      batch.put_inode(sp);
      if (!same_parent) batch.put_inode(dp);
      mark_done(batch, 0);
      LANEFS_TRY(store_.commit(batch, lk));
    }
    for (auto [ino, parent] : set_parent) {
      auto st = b_.call_member<rpc::Empty>(owner_of(ino), Op::kInodeSetParent, proto::InodeSetParentReq{ino, parent});
      if (!st.ok()) LOG_WARN("rename: updating '..' of {:#x}: {}", ino, st.error().to_string());
    }
    if (remote_unlink) {
      auto res = nlink_any(remote_unlink, remote_unlink_delta);
      if (res.ok() && res->removed && remote_unlink_delta == -1) drop_data(remote_unlink);
    }
    if (drop) drop_data(drop_ino);
    return ok_status();
  }

  Result<proto::ReaddirResp> readdir(const proto::ReaddirReq& r) {
    LANEFS_TRY(require_owner(r.ino));
    LANEFS_ASSIGN_OR_RETURN(auto dir, store_.get_inode(r.ino));
    if (!is_dir(dir.mode)) return make_error(Errc::kNotDir, "not a directory");
    proto::ReaddirResp out;
    uint32_t max = std::clamp<uint32_t>(r.max_entries, 1, 4096);
    auto add = [&](proto::Dirent e, const InodeAttr* a) {
      out.entries.push_back(std::move(e));
      if (r.plus) out.attrs.push_back(a ? *a : InodeAttr{});
    };
    if (r.cookie < 1) add({".", dir.ino, S_IFDIR, 1}, &dir);
    if (r.cookie < 2 && out.entries.size() < max) {
      uint64_t up = dir.parent == 0 ? dir.ino : dir.parent;
      std::optional<InodeAttr> pa;
      if (owns(up)) if (auto g = store_.get_inode(up); g.ok()) pa = *g;
      add({"..", up, S_IFDIR, 2}, pa ? &*pa : nullptr);
    }
    bool eof = false;
    size_t room = max > out.entries.size() ? max - out.entries.size() : 0;
    if (room > 0) {
      LANEFS_ASSIGN_OR_RETURN(auto ents, store_.list_dirents(r.ino, std::max<uint64_t>(r.cookie, 2), room, &eof));
      for (auto& e : ents) {
        std::optional<InodeAttr> a;
        if (r.plus && owns(e.ino))
          if (auto g = store_.get_inode(e.ino); g.ok()) a = *g;
        add(std::move(e), a ? &*a : nullptr);
      }
    }
    out.eof = eof;
    return out;
  }

  // ---- peer primitive (local shard only, never calls other backends;
  // the others are in meta_records.cc)
  Result<proto::InodeNlinkResp> inode_nlink(const proto::InodeNlinkReq& r) {
    LANEFS_TRY(require_owner(r.ino));
    auto lk = store_.lock();
    LANEFS_ASSIGN_OR_RETURN(auto a, store_.get_inode(r.ino));
    MetaStore::Batch batch;
    proto::InodeNlinkResp out;
    out.removed = apply_nlink(a, r.delta, r.ctime, batch);
    LANEFS_TRY(store_.commit(batch, lk));
    out.attr = a;
    return out;
  }

 private:
  BackendCore& b_;
  MetaStore& store_;
  std::shared_ptr<const proto::ClusterMap> map_ptr_;  // keeps map_ alive
  const proto::ClusterMap& map_;
  RequestTag tag_;  // this request's, for its 'R' record (untagged: none)
};

rpc::Buffer status_reply(const Status& s) { return s.ok() ? reply_empty() : reply_error(s.error()); }

}  // namespace

rpc::Buffer handle_metadata(BackendCore& b, proto::Op op, std::span<const uint8_t> raw,
                            const rpc::RequestInfo* info) {
  const RequestTag tag = replay_tag(op, info);
  if (info != nullptr && info->resent && tag.client != 0)
    if (auto again = answer_resent(b, op, raw, tag)) return std::move(*again);
  // The second decode of the request (access.h): metadata ops only.
  if (Status st = admit(b, op, raw, info); !st.ok()) return reply_error(st.error());
  MetaOps m(b, tag);
  switch (op) {
    case Op::kLookup:
      return with<proto::NameAtReq>(raw, [&](auto& r) { return reply_result(m.lookup(r)); });
    case Op::kGetattr:
      return with<proto::InoReq>(raw, [&](auto& r) { return reply_result(m.getattr(r.ino)); });
    case Op::kSetattr:
      return with<proto::SetattrReq>(raw, [&](auto& r) { return reply_result(m.setattr(r)); });
    case Op::kCreate:
      return with<proto::CreateReq>(raw, [&](auto& r) {
        r.cred = effective_cred(info, std::move(r.cred));  // a squashed root creates as nobody
        return reply_result(m.create(r));
      });
    case Op::kLink:
      return with<proto::LinkReq>(raw, [&](auto& r) { return reply_result(m.link(r)); });
    case Op::kUnlink:
      return with<proto::NameAtReq>(raw, [&](auto& r) { return status_reply(m.remove(r, false)); });
    case Op::kRmdir:
      return with<proto::NameAtReq>(raw, [&](auto& r) { return status_reply(m.remove(r, true)); });
    case Op::kRename:
      return with<proto::RenameReq>(raw, [&](auto& r) { return status_reply(m.rename(r)); });
    case Op::kReaddir:
      return with<proto::ReaddirReq>(raw, [&](auto& r) { return reply_result(m.readdir(r)); });
    case Op::kSetxattr:
    case Op::kGetxattr:
    case Op::kListxattr:
    case Op::kRemovexattr:
      return handle_xattr(b, op, raw, info);
    case Op::kInodeNlink:
      return with<proto::InodeNlinkReq>(raw, [&](auto& r) { return reply_result(m.inode_nlink(r)); });
    case Op::kOpenHandle:
    case Op::kHandleRenew:
      return handle_open_files(b, op, raw);
    case Op::kReadlink:
    case Op::kCommitWrite:
    case Op::kInodePut:
    case Op::kDirEmpty:
    case Op::kInodeSetParent:
      return handle_inode_records(b, op, raw);
    default:
      return reply_error(make_error(Errc::kNotSupported, "unknown metadata opcode " + std::to_string(static_cast<int>(op))));
  }
}

}  // namespace lanefs::backend

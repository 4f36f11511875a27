#include "client/mount_fs.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/clock.h"
#include "common/proc_info.h"

namespace lanefs::client {

namespace {
uint64_t random_client_id() {
  uint64_t v = 0;
  while (v == 0)
    if (getrandom(&v, sizeof v, 0) != sizeof v) v = mono_ns() ^ (uint64_t(getpid()) << 40);
  return v;
}
}  // namespace

MountFs::MountFs(std::shared_ptr<ClusterClient> cluster, proto::FsInfo fs, MountOptions options)
    : cluster_(std::move(cluster)), fs_(std::move(fs)), opts_(std::move(options)),
      client_name_(host_name()), handle_client_(random_client_id()) {}

Result<std::unique_ptr<MountFs>> MountFs::open(std::shared_ptr<ClusterClient> cluster, proto::FsInfo fs,
                                               MountOptions options) {
  std::optional<crypto::FsKey> key;
  if (fs.encrypted) {
    if (options.key_file.empty())
      return make_error(Errc::kInvalid, "filesystem '" + fs.name + "' is encrypted: mount with -o key_file=PATH");
    LANEFS_ASSIGN_OR_RETURN(key, crypto::load_key_file(options.key_file));
    LANEFS_ASSIGN_OR_RETURN(auto check, crypto::key_check(*key, fs.name));
    if (check != fs.key_check)
      return make_error(Errc::kPermission, "key in " + options.key_file + " does not match filesystem '" + fs.name + "'");
  } else if (!options.key_file.empty()) {
    return make_error(Errc::kInvalid, "filesystem '" + fs.name + "' is not encrypted: remove key_file=" + options.key_file);
  }
  auto m = std::make_unique<MountFs>(std::move(cluster), std::move(fs), std::move(options));
  if (key) m->sealed_ = std::make_unique<SealedIo>(*m->cluster_, m->fs_.id, *key);
  return m;
}

Status MountFs::sealed_ready() const {
  if (sealed_) return ok_status();
  return make_error(Errc::kPermission, "filesystem '" + fs_.name + "' is encrypted: mount with -o key_file=PATH");
}

proto::InodeAttr MountFs::to_kernel(proto::InodeAttr a) const {
  a.ino = to_nodeid(a.ino);
  a.parent = a.parent ? to_nodeid(a.parent) : 0;
  return a;
}

void MountFs::remember(const proto::InodeAttr& a, Learned how) {
  std::lock_guard lk(mu_);
  auto& n = nodes_[a.ino];
  n.attr = a;
  n.attr_ns = mono_ns();
  n.exact_ns = 0;  // an answer that may predate this mount's last change
  if (how == Learned::kEntry) {
    note_entry(n, a, n.nlookup == 0);
    ++n.nlookup;
  }
}

void MountFs::remember_own(const proto::InodeAttr& a, KernelSize ks, uint64_t size) {
  remember(a, Learned::kFetched);
  std::lock_guard lk(mu_);
  auto it = nodes_.find(a.ino);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  // The kernel made this change itself: its view follows it, and only it:
  // the backend's size may include another client's change the kernel has
  // not seen (its mtime update at writeback comes back with that size).
  // Not after a failed write: that stays diverged until the inode is
  // replaced.
  if (!n.seen_valid || n.seen_size == kDiverged) return;
  if (ks == KernelSize::kAtLeast) n.seen_size = std::max(n.seen_size, size);
  if (ks == KernelSize::kSet) n.seen_size = size;
  n.seen_mtime = a.mtime;
}

uint64_t MountFs::begin_change(uint64_t ino) {
  std::lock_guard lk(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return 0;
  Node& n = it->second;
  n.exact_ns = 0;
  ++n.change_seq;
  return ++n.changing == 1 ? n.change_seq : 0;
}

void MountFs::end_change(uint64_t ino, uint64_t ticket, const proto::InodeAttr* dir) {
  std::lock_guard lk(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  if (n.changing > 0) --n.changing;
  if (ticket == 0 || ticket != n.change_seq || dir == nullptr || dir->ino != ino) return;
  n.attr = *dir;
  n.attr_ns = n.exact_ns = mono_ns();
}

// Brackets one change of a directory (see begin_change).
class MountFs::DirChange {
 public:
  DirChange(MountFs& m, uint64_t ino) : m_(m), ino_(ino), ticket_(m.begin_change(ino)) {}
  ~DirChange() { m_.end_change(ino_, ticket_, dir_); }
  DirChange(const DirChange&) = delete;
  DirChange& operator=(const DirChange&) = delete;
  void answered(const proto::EntryResp& e) { dir_ = e.has_dir ? &e.dir : nullptr; }

 private:
  MountFs& m_;
  uint64_t ino_, ticket_;
  const proto::InodeAttr* dir_ = nullptr;
};

template <class T>
Result<T> MountFs::counted(Result<T> r) {
  if (!r.ok()) io_.errors.fetch_add(1, std::memory_order_relaxed);
  if (r.code() == Errc::kCorrupt) io_.corrupt_reads.fetch_add(1, std::memory_order_relaxed);
  return r;
}

Status MountFs::writable() const {
  if (opts_.read_only) return make_error(Errc::kReadOnly, "mounted read-only");
  return ok_status();
}

LaneRequest MountFs::lane_request(IoDir dir, uint64_t bytes) const {
  LaneRequest r;
  r.encrypted = fs_.encrypted;
  r.dir = dir;
  r.bytes = bytes;
  // Encrypted IO never looks at the RDMA lane at all.
  r.availability = fs_.encrypted ? NotRdmaReason::kEncrypted : cluster_->rdma_availability(client_name_);
  r.thresholds = {opts_.rdma_read_min, opts_.rdma_write_min};
  return r;
}

// What the IO actually took: an RDMA choice whose pieces all fell back is
// counted on UDP with reason kFallback.
LaneChoice MountFs::settle(LaneChoice chosen, const DataIoInfo& info) {
  // The datagram lane is whatever this mount's cluster connection uses.
  Lane datagram = cluster_->datagram_lane();
  if (chosen.lane == Lane::kUdp) chosen.lane = datagram;
  if (chosen.lane != Lane::kRdma || info.fallback_pieces == 0) return chosen;
  if (info.rdma_pieces == 0) return {datagram, NotRdmaReason::kFallback};
  lanes_.fallbacks.fetch_add(1, std::memory_order_relaxed);  // partly redone on UDP
  return chosen;
}

size_t MountFs::known_nodes() const {
  std::lock_guard lk(mu_);
  return nodes_.size();
}

Result<proto::InodeAttr> MountFs::lookup(uint64_t parent, const std::string& name, const proto::Cred& cred) {
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->lookup(to_ino(parent), name, cred));
  remember(a, Learned::kEntry);
  return to_kernel(a);
}

void MountFs::forget(uint64_t nodeid, uint64_t nlookup) {
  std::lock_guard lk(mu_);
  auto it = nodes_.find(to_ino(nodeid));
  if (it == nodes_.end()) return;
  it->second.nlookup = it->second.nlookup > nlookup ? it->second.nlookup - nlookup : 0;
  if (it->second.nlookup == 0 && nodeid != kRootNodeId) nodes_.erase(it);
}

Result<proto::InodeAttr> MountFs::getattr(uint64_t nodeid) {
  // Attributes made exact by this mount's own change are served once,
  // within the attribute age (only when the kernel caches attributes too).
  if (opts_.cache == CacheMode::kWriteCache) {
    const uint64_t max_age_ns = uint64_t{opts_.dentry_max_age_positive_ms} * 1'000'000;
    std::lock_guard lk(mu_);
    auto it = nodes_.find(to_ino(nodeid));
    if (it != nodes_.end() && it->second.exact_ns != 0 && mono_ns() - it->second.exact_ns <= max_age_ns) {
      it->second.exact_ns = 0;
      return to_kernel(it->second.attr);
    }
  }
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->getattr(to_ino(nodeid)));
  remember(a, Learned::kFetched);
  LANEFS_TRY(check_kernel_view(a, false));
  return to_kernel(a);
}

Result<proto::InodeAttr> MountFs::setattr(uint64_t nodeid, const proto::SetAttr& attr, const proto::Cred& cred) {
  LANEFS_TRY(writable());
  if (fs_.encrypted && (attr.mask & proto::kSetSize)) {
    LANEFS_TRY(sealed_ready());
    LANEFS_ASSIGN_OR_RETURN(auto a, sealed_->setattr(to_ino(nodeid), attr, cred));
    remember_own(a, KernelSize::kSet, attr.size);
    return to_kernel(a);
  }
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->setattr(to_ino(nodeid), attr, cred));
  remember_own(a, (attr.mask & proto::kSetSize) ? KernelSize::kSet : KernelSize::kKept, attr.size);
  return to_kernel(a);
}

proto::CreateReq MountFs::create_req(uint64_t parent, const std::string& name, uint32_t mode, uint32_t rdev,
                                     proto::Cred cred, bool exclusive) const {
  proto::CreateReq r;
  r.parent = to_ino(parent);
  r.name = name;
  r.mode = mode;
  r.rdev = rdev;
  r.cred = cred;
  r.exclusive = exclusive;
  return r;
}

Result<proto::InodeAttr> MountFs::create(uint64_t parent, const std::string& name, uint32_t mode,
                                         uint32_t rdev, proto::Cred cred, bool exclusive) {
  LANEFS_TRY(writable());
  return create_node(create_req(parent, name, mode, rdev, cred, exclusive));
}

// CREATE of any kind: the directory's attributes from the answer (DirChange).
Result<proto::InodeAttr> MountFs::create_node(const proto::CreateReq& r) {
  DirChange change(*this, r.parent);
  LANEFS_ASSIGN_OR_RETURN(auto e, cluster_->create_entry(r));
  change.answered(e);
  remember(e.attr, Learned::kEntry);
  if (S_ISREG(e.attr.mode) && e.attr.size == 0) {
    // A new file has no extended attributes: the kernel's probe for file
    // capabilities before the first write needs no round trip.
    std::lock_guard lk(mu_);
    nodes_[e.attr.ino].no_caps_ns = mono_ns();
  }
  return to_kernel(e.attr);
}

Result<proto::InodeAttr> MountFs::symlink(uint64_t parent, const std::string& name,
                                          const std::string& target, proto::Cred cred) {
  LANEFS_TRY(writable());
  proto::CreateReq r;
  r.parent = to_ino(parent);
  r.name = name;
  r.mode = S_IFLNK | 0777;
  r.cred = cred;
  r.symlink_target = target;
  return create_node(r);
}

Result<proto::InodeAttr> MountFs::link(uint64_t nodeid, uint64_t new_parent, const std::string& name,
                                       const proto::Cred& cred) {
  LANEFS_TRY(writable());
  DirChange change(*this, to_ino(new_parent));
  LANEFS_ASSIGN_OR_RETURN(auto e, cluster_->link_entry(to_ino(nodeid), to_ino(new_parent), name, cred));
  change.answered(e);
  remember(e.attr, Learned::kEntry);
  return to_kernel(e.attr);
}

Status MountFs::unlink(uint64_t parent, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(writable());
  // A file open anywhere lives on without its name: the backend holds it
  // for its open handles (mount_open.cc). Closes here are told first, so a
  // file closed here goes (and frees its space) with its name.
  renew_handles(true);
  DirChange change(*this, to_ino(parent));
  return cluster_->unlink(to_ino(parent), name, cred);
}

Status MountFs::rmdir(uint64_t parent, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(writable());
  DirChange change(*this, to_ino(parent));
  return cluster_->rmdir(to_ino(parent), name, cred);
}

Status MountFs::rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                       const std::string& new_name, uint32_t flags, const proto::Cred& cred) {
  LANEFS_TRY(writable());
  renew_handles(true);  // as unlink: a file renamed over goes with its name
  DirChange from(*this, to_ino(parent)), to(*this, to_ino(new_parent));
  return cluster_->rename(to_ino(parent), name, to_ino(new_parent), new_name, flags, cred);
}

Result<std::string> MountFs::readlink(uint64_t nodeid) { return cluster_->readlink(to_ino(nodeid)); }

Result<proto::ReaddirResp> MountFs::readdir(uint64_t nodeid, uint64_t cookie, uint32_t max, bool plus,
                                            const proto::Cred& cred) {
  LANEFS_ASSIGN_OR_RETURN(auto page, cluster_->readdir(to_ino(nodeid), cookie, max, plus, cred));
  for (size_t i = 0; i < page.entries.size(); ++i) {
    auto& e = page.entries[i];
    bool dots = e.name == "." || e.name == "..";
    if (plus) {
      auto& a = page.attrs[i];
      if (a.ino == 0) {
        // Inode lives on another shard: fetch it (also for "..").
        auto g = cluster_->getattr(e.ino);
        if (!g.ok()) return g.error();
        a = *g;
      }
      if (!dots) remember(a, Learned::kEntry);
      a = to_kernel(a);
    }
    e.ino = to_nodeid(e.ino);
  }
  return page;
}

Result<uint64_t> MountFs::size_for_read(uint64_t ino) {
  uint64_t max_age_ns = uint64_t{opts_.dentry_max_age_positive_ms} * 1'000'000;
  {
    std::lock_guard lk(mu_);
    auto it = nodes_.find(ino);
    if (it != nodes_.end() && mono_ns() - it->second.attr_ns <= max_age_ns) return it->second.attr.size;
  }
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->getattr(ino));
  remember(a, Learned::kFetched);
  return a.size;
}

Result<size_t> MountFs::read_into(uint64_t nodeid, uint64_t offset, std::span<uint8_t> out,
                                  const RegisteredMem* mem, DataIoInfo* info_out) {
  uint64_t ino = to_ino(nodeid);
  LANEFS_ASSIGN_OR_RETURN(uint64_t fsize, size_for_read(ino));
  if (offset + out.size() > fsize) {
    // The cached size may be stale (another client extended the file).
    auto a = cluster_->getattr(ino);
    if (!a.ok()) return counted(Result<size_t>(a.error()));
    remember(*a, Learned::kFetched);
    fsize = a->size;
  }
  if (offset >= fsize) return size_t{0};
  uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(out.size(), fsize - offset));
  // The one lane decision per IO (lane_policy.h).
  LaneChoice lane = choose_lane(lane_request(IoDir::kRead, n));
  if (fs_.encrypted && !sealed_) return counted(Result<size_t>(sealed_ready().error()));
  DataIoInfo info;
  if (fs_.encrypted) {
    // Decryption produces the plaintext in a buffer of its own.
    auto r = counted(sealed_->read_data(ino, offset, n));
    if (!r.ok()) return r.error();
    n = static_cast<uint32_t>(std::min<size_t>(n, r->size()));
    std::memcpy(out.data(), r->data(), n);
  } else {
    if (Status s = cluster_->read_into(ino, offset, out.first(n), lane.lane == Lane::kRdma, &info, mem); !s.ok())
      return counted(Result<size_t>(s.error()));
  }
  lanes_.account(settle(lane, info), n);
  if (info_out) *info_out = info;
  io_.reads.fetch_add(1, std::memory_order_relaxed);
  io_.read_bytes.fetch_add(n, std::memory_order_relaxed);
  return size_t{n};
}

Result<std::vector<uint8_t>> MountFs::read(uint64_t nodeid, uint64_t offset, uint32_t size) {
  std::vector<uint8_t> out(size);
  LANEFS_ASSIGN_OR_RETURN(size_t n, read_into(nodeid, offset, out));
  out.resize(n);
  return out;
}

Result<proto::InodeAttr> MountFs::write(uint64_t nodeid, uint64_t offset, std::span<const uint8_t> data,
                                        bool kill_privs, const RegisteredMem* mem, DataIoInfo* info_out) {
  LANEFS_TRY(writable());
  LaneChoice lane = choose_lane(lane_request(IoDir::kWrite, data.size()));
  if (fs_.encrypted && !sealed_) return counted(Result<proto::InodeAttr>(sealed_ready().error()));
  DataIoInfo info;
  auto a = counted(fs_.encrypted ? sealed_->write(to_ino(nodeid), offset, data)
                                 : cluster_->write(to_ino(nodeid), offset, data, lane.lane == Lane::kRdma, &info,
                                                   mem));
  if (!a.ok()) {
    write_failed(to_ino(nodeid));
    return a;
  }
  lanes_.account(settle(lane, info), data.size());
  if (info_out) *info_out = info;
  io_.writes.fetch_add(1, std::memory_order_relaxed);
  io_.write_bytes.fetch_add(data.size(), std::memory_order_relaxed);
  // Only when the file has bits to clear (one more call to the owner).
  if (kill_privs && proto::suidgid_to_kill(a->mode) != 0) {
    proto::SetAttr sa;
    sa.mask = proto::kSetKillSuidgid;  // on the owner's mode (a chmod may have raced)
    auto b = cluster_->setattr(to_ino(nodeid), sa);
    if (b.ok()) a = std::move(b);
  }
  remember_own(*a, KernelSize::kAtLeast, offset + data.size());
  return to_kernel(*a);
}

Status MountFs::fsync(uint64_t nodeid) {
  // Every acknowledged write is already durable on its backend and its size
  // committed; fsync only has to reach the inode's owner (a barrier).
  auto m = cluster_->map_ptr();
  const proto::Member* owner = proto::meta_owner(*m, to_ino(nodeid));
  if (!owner) return make_error(Errc::kNotFound, "inode's backend is not in the map");
  LANEFS_TRY(rpc::call_typed<rpc::Empty>(cluster_->rpc(), owner->addr, proto::Op::kFlush,
                                         proto::InoReq{to_ino(nodeid)},
                                         cluster_->options().op_timeout_ns));
  return ok_status();
}

Status MountFs::fallocate(uint64_t nodeid, int mode, uint64_t offset, uint64_t length) {
  LANEFS_TRY(writable());
  uint64_t ino = to_ino(nodeid);
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    // Space is not reserved (chunks are sparse files); only the size grows.
    if (mode == FALLOC_FL_KEEP_SIZE) return ok_status();
    LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->getattr(ino));
    if (offset + length > a.size) {
      proto::SetAttr sa;
      sa.mask = proto::kSetSize | proto::kSetByHandle;  // fallocate(2) comes through an open file
      sa.size = offset + length;
      LANEFS_ASSIGN_OR_RETURN(auto b, cluster_->setattr(ino, sa));
      remember_own(b, KernelSize::kAtLeast, sa.size);
    }
    return ok_status();
  }
  if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
    return make_error(Errc::kNotSupported, "fallocate mode not supported");
  LANEFS_ASSIGN_OR_RETURN(auto a, cluster_->getattr(ino));
  uint64_t end = std::min(a.size, offset + length);
  auto m = cluster_->map();
  uint64_t cs = m.chunk_size;
  int64_t delta = 0;
  if (fs_.encrypted) {
    LANEFS_TRY(sealed_ready());
    if (end > offset) {
      LANEFS_ASSIGN_OR_RETURN(delta, sealed_->punch(ino, offset, end - offset));
    }
  }
  for (uint64_t o = fs_.encrypted ? end : offset; o < end;) {
    uint64_t stop = std::min(end, (o / cs + 1) * cs);
    const proto::Member* owner = proto::chunk_owner(m, ino, o / cs);
    LANEFS_ASSIGN_OR_RETURN(auto d, rpc::call_typed<rpc::I64>(cluster_->rpc(), owner->addr, proto::Op::kPunch,
                                                             proto::PunchReq{ino, o, static_cast<uint32_t>(stop - o)},
                                                             cluster_->options().op_timeout_ns));
    delta += d.v;
    o = stop;
  }
  auto mt = proto::now_timespec();
  LANEFS_ASSIGN_OR_RETURN(auto b, rpc::call_typed<proto::InodeAttr>(
                                      cluster_->rpc(), proto::meta_owner(m, ino)->addr, proto::Op::kCommitWrite,
                                      proto::CommitWriteReq{ino, 0, delta, mt}, cluster_->options().op_timeout_ns));
  remember_own(b, KernelSize::kKept);
  return ok_status();
}

Result<proto::StatFs> MountFs::statfs() { return cluster_->statfs(fs_.id); }

namespace {
constexpr const char* kCapsXattr = "security.capability";
}

void MountFs::forget_no_caps(uint64_t ino) {
  std::lock_guard lk(mu_);
  if (auto it = nodes_.find(ino); it != nodes_.end()) it->second.no_caps_ns = it->second.exact_ns = 0;
}

Status MountFs::setxattr(uint64_t nodeid, const std::string& name, const std::string& value, uint32_t flags,
                         const proto::Cred& cred) {
  LANEFS_TRY(writable());
  forget_no_caps(to_ino(nodeid));
  return cluster_->setxattr(to_ino(nodeid), name, value, flags, cred);
}
Result<std::string> MountFs::getxattr(uint64_t nodeid, const std::string& name, const proto::Cred& cred) {
  const uint64_t ino = to_ino(nodeid);
  const bool caps = name == kCapsXattr;
  const uint64_t max_age_ns = uint64_t{opts_.dentry_max_age_positive_ms} * 1'000'000;
  if (caps) {
    std::lock_guard lk(mu_);
    auto it = nodes_.find(ino);
    if (it != nodes_.end() && it->second.no_caps_ns != 0 && mono_ns() - it->second.no_caps_ns <= max_age_ns)
      return make_error(Errc::kNoAttr, "no attribute " + name);
  }
  auto r = cluster_->getxattr(ino, name, cred);
  if (caps && !r.ok() && r.error().code == Errc::kNoAttr) {
    std::lock_guard lk(mu_);
    if (auto it = nodes_.find(ino); it != nodes_.end()) it->second.no_caps_ns = mono_ns();
  }
  return r;
}
Result<std::vector<std::string>> MountFs::listxattr(uint64_t nodeid, const proto::Cred& cred) {
  return cluster_->listxattr(to_ino(nodeid), cred);
}
Status MountFs::removexattr(uint64_t nodeid, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(writable());
  forget_no_caps(to_ino(nodeid));
  return cluster_->removexattr(to_ino(nodeid), name, cred);
}

}  // namespace lanefs::client

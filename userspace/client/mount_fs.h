// MountFs: the client core of one mounted filesystem, independent of how
// requests arrive (libfuse /dev/fuse today; FUSE-over-io_uring and the
// kernel module's channel later feed the same calls).
//
// Node ids are the kernel's names for inodes: the filesystem root is node 1
// (FUSE_ROOT_ID); every other node id is the cluster-wide inode number.
// The inode table keeps, per node, the kernel's lookup count (dropped by
// forget) and the last attributes seen, which are used to clamp reads to
// the file size without an extra round trip.
//
// Threading: every method is thread-safe and blocking (it waits for its
// RPCs); call it from channel worker threads. Errors are Results whose
// codes map to errno in exactly one place (the channel's reply helper).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/cluster_client.h"
#include "client/lane_policy.h"
#include "client/mount_options.h"
#include "client/sealed_io.h"
#include "proto/messages.h"

namespace lanefs::client {

inline constexpr uint64_t kRootNodeId = 1;

// What the channel does to the kernel's cache of a file when the client
// core learns that another client changed it while the kernel keeps its own
// view (writecache: the kernel trusts its cached size and mtime and ignores
// the backend's). Implemented by each channel (FUSE: notifications on
// /dev/fuse); calls must not wait for a request of the same mount.
class KernelCache {
 public:
  virtual ~KernelCache() = default;
  // Drop the file's cached pages and attributes. When the file grew,
  // `last` holds its final byte (at new_size - 1, read from the backend):
  // storing real bytes is the one notification that raises the kernel's
  // size (a store of none does not, fuse_write_update_attr). Nothing
  // shrinks it under the write-back cache (reads past the backend's end
  // read zeros): a shrunk file gets a new inode after its last close here
  // (mount_coherence.cc).
  virtual void file_changed(uint64_t nodeid, uint64_t new_size, std::optional<uint8_t> last) noexcept = 0;
  // Drop the file's cached attributes (the next stat asks again).
  virtual void attrs_changed(uint64_t nodeid) noexcept = 0;
};

struct IoStats {
  std::atomic<uint64_t> reads{0}, read_bytes{0}, writes{0}, write_bytes{0}, errors{0};
  // Of errors: reads a backend refused because a block failed its CRC32C
  // (or, encrypted, its seal): kCorrupt, EIO to the application.
  std::atomic<uint64_t> corrupt_reads{0};
};

class MountFs {
 public:
  MountFs(std::shared_ptr<ClusterClient> cluster, proto::FsInfo fs, MountOptions options);
  // The way to mount: checks the key against the filesystem. An encrypted
  // filesystem needs options.key_file holding its key ("filesystem 'x' is
  // encrypted: mount with -o key_file=PATH"; "key in PATH does not match
  // filesystem 'x'"); key_file on an unencrypted filesystem is an error.
  // (A MountFs built with the plain constructor for an encrypted filesystem
  // fails every data operation with that first message.)
  static Result<std::unique_ptr<MountFs>> open(std::shared_ptr<ClusterClient> cluster, proto::FsInfo fs,
                                               MountOptions options);

  const proto::FsInfo& fs() const { return fs_; }
  const MountOptions& options() const { return opts_; }
  ClusterClient& cluster() { return *cluster_; }
  const IoStats& io_stats() const { return io_; }
  // IOs and bytes per lane, and why IOs did not take RDMA (lane_policy.h).
  const LaneCounters& lane_counters() const { return lanes_; }
  // The direct API's IOs on this mount (counted by its server).
  DirectCounters& direct_counters() { return direct_; }
  const DirectCounters& direct_counters() const { return direct_; }
  // The lane an IO of this size would take now (choose_lane).
  Lane planned_lane(IoDir dir, uint64_t bytes) const { return choose_lane(lane_request(dir, bytes)).lane; }

  uint64_t to_ino(uint64_t nodeid) const { return nodeid == kRootNodeId ? fs_.root_ino : nodeid; }
  uint64_t to_nodeid(uint64_t ino) const { return ino == fs_.root_ino ? kRootNodeId : ino; }

  // Entry-returning calls count one kernel lookup of the returned node.
  // Returned attributes carry node ids in attr.ino.
  // `cred`: the caller, whom the backend checks modes for (default root;
  // ClusterClient::lookup says how supplementary groups are found).
  Result<proto::InodeAttr> lookup(uint64_t parent, const std::string& name, const proto::Cred& cred = {});
  void forget(uint64_t nodeid, uint64_t nlookup);
  // writecache: a regular file that another client changed since the
  // kernel built its view answers kStale (ESTALE: the kernel looks the name
  // up again and gets a new generation, hence a fresh inode) when it is
  // not open on this mount; when it is open here read-only, the kernel's
  // cache is refreshed through KernelCache (mount_coherence.cc).
  Result<proto::InodeAttr> getattr(uint64_t nodeid);
  Result<proto::InodeAttr> setattr(uint64_t nodeid, const proto::SetAttr& attr, const proto::Cred& cred = {});
  Result<proto::InodeAttr> create(uint64_t parent, const std::string& name, uint32_t mode,
                                  uint32_t rdev, proto::Cred cred, bool exclusive);
  Result<proto::InodeAttr> symlink(uint64_t parent, const std::string& name,
                                   const std::string& target, proto::Cred cred);
  Result<proto::InodeAttr> link(uint64_t nodeid, uint64_t new_parent, const std::string& name,
                                const proto::Cred& cred = {});
  Status unlink(uint64_t parent, const std::string& name, const proto::Cred& cred = {});
  Status rmdir(uint64_t parent, const std::string& name, const proto::Cred& cred = {});
  Status rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                const std::string& new_name, uint32_t flags, const proto::Cred& cred = {});
  Result<std::string> readlink(uint64_t nodeid);
  // Directory page after `cookie`; with plus, attrs are complete (remote
  // ones fetched) and every returned entry except "." and ".." counts a lookup.
  Result<proto::ReaddirResp> readdir(uint64_t nodeid, uint64_t cookie, uint32_t max, bool plus,
                                     const proto::Cred& cred = {});

  // Reads up to out.size() bytes at `offset` into `out` (clamped to the
  // file's size); returns the bytes read. The data lands in `out` straight
  // from the packets (one copy).
  // `mem`: `out` lies in memory registered with the RDMA lane (the direct
  // API): RDMA pieces land in it in place. `info` (optional) gets what
  // the IO took.
  Result<size_t> read_into(uint64_t nodeid, uint64_t offset, std::span<uint8_t> out,
                           const RegisteredMem* mem = nullptr, DataIoInfo* info = nullptr);
  // The same into a new vector (tools and tests).
  Result<std::vector<uint8_t>> read(uint64_t nodeid, uint64_t offset, uint32_t size);
  // Durable when it returns; updates size/mtime/blocks on the inode.
  // kill_privs: the writer lacks CAP_FSETID and the kernel leaves clearing
  // set-user-ID/set-group-ID to us (FUSE HANDLE_KILLPRIV_V2): cleared on the
  // owner after the write when the file has them, as a local filesystem does.
  // mem, info: as read_into.
  Result<proto::InodeAttr> write(uint64_t nodeid, uint64_t offset, std::span<const uint8_t> data,
                                 bool kill_privs = false, const RegisteredMem* mem = nullptr,
                                 DataIoInfo* info = nullptr);
  Status fsync(uint64_t nodeid);
  // A write that went around the kernel's page cache (the direct API, after
  // write() returned `after`): the kernel drops the file's cached pages and
  // attributes, and grows its cached size when the write grew the file
  // (`last`: the byte at after.size - 1 when the write ended there).
  void bypassed_cache(uint64_t nodeid, const proto::InodeAttr& after, std::optional<uint8_t> last);
  // mode: 0 (allocate/extend) or FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE.
  Status fallocate(uint64_t nodeid, int mode, uint64_t offset, uint64_t length);
  Result<proto::StatFs> statfs();

  Status setxattr(uint64_t nodeid, const std::string& name, const std::string& value, uint32_t flags,
                  const proto::Cred& cred = {});
  Result<std::string> getxattr(uint64_t nodeid, const std::string& name, const proto::Cred& cred = {});
  Result<std::vector<std::string>> listxattr(uint64_t nodeid, const proto::Cred& cred = {});
  Status removexattr(uint64_t nodeid, const std::string& name, const proto::Cred& cred = {});

  // Open files (mount_open.cc). The first open of a file on this mount
  // registers an open handle with the inode's backend and the last close
  // releases it, so a file unlinked anywhere (this mount, another mount,
  // another host) lives on until its last close here; renew_handles keeps
  // the handles' lease (the frontend calls it every second). writecache
  // also learns whose view of a file wins.
  // open_file: before the kernel is told. check_view: close-to-open for
  // writecache (other modes: nothing to check): the file's attributes are
  // compared with the kernel's view, as getattr does (kStale: the kernel
  // looks the name up again).
  // access (proto::kMayRead/kMayWrite) is checked for cred by the backend
  // when this open registers the handle (the first open of the file on
  // this mount; later ones are checked by the mounting kernel only).
  Status open_file(uint64_t nodeid, bool writable, bool check_view, uint8_t access = 0,
                   const proto::Cred& cred = {});
  // create() that opens the new (or existing) regular file: the handle
  // rides on the create request. An existing file it finds (not
  // exclusive) is checked for `access` (proto::kMayRead/kMayWrite) by the
  // backend.
  Result<proto::InodeAttr> create_open(uint64_t parent, const std::string& name, uint32_t mode,
                                       proto::Cred cred, bool exclusive, bool writable, uint8_t access = 0);
  Status released(uint64_t nodeid, bool writable);
  // releases_only: only when closes wait to be told (before this mount
  // removes a name, so that the space of a file closed here is freed).
  void renew_handles(bool releases_only = false);
  uint64_t handle_client() const { return handle_client_; }
  // The FUSE generation of a node id (bumped when the kernel must build a
  // fresh inode for it).
  uint64_t generation(uint64_t nodeid) const;
  // The mount's token squashes root (UserRecord::root_squash): the backends
  // run its uid 0 as nobody, and an open of a file already open on this
  // mount (which asks no backend) is checked here as nobody. Set before
  // the mount serves requests.
  void set_root_squash(bool on) { root_squash_ = on; }
  // The channel's hook into the kernel's cache (may be null: nothing is
  // pushed to the kernel). Set before the mount serves requests.
  void set_kernel_cache(KernelCache* kc) { kernel_cache_ = kc; }

  // Nodes the kernel currently knows (for tests and `lanefs local ps`).
  size_t known_nodes() const;

 private:
  struct Node {
    uint64_t nlookup = 0;
    proto::InodeAttr attr;
    uint64_t attr_ns = 0;  // when attr was fetched (monotonic)
    // When the backend last said the file has no security.capability
    // (0: not known). The kernel asks before every write to a file (to
    // drop file capabilities); within the attribute age the answer is
    // served from here, as attributes are.
    uint64_t no_caps_ns = 0;
    // Directories: changes made through this mount. A change that ran
    // alone and answered with the directory's new attributes makes them
    // exact (exact_ns: when): the kernel's next GETATTR, which every
    // create in a directory causes, is then answered from here, once.
    uint32_t changing = 0;
    uint64_t change_seq = 0;
    uint64_t exact_ns = 0;
    uint32_t open_count = 0, write_opens = 0;
    // writecache coherence (mount_coherence.cc): the backend's size and
    // mtime as the kernel's inode knows them (from the entry it was built
    // from, this mount's own changes, and refreshes), the generation the
    // kernel has, and where a replacement stands.
    bool seen_valid = false;
    uint64_t seen_size = 0;
    proto::Timespec seen_mtime;
    uint64_t generation = 0;
    bool replace_pending = false;  // ESTALE answered: the next entry reply builds a fresh inode
    bool just_replaced = false;    // the kernel's inode was built from the last entry reply
    // Shrunk elsewhere while open here: the kernel's size is still the old,
    // larger one (it only grows in place); the first check after the last
    // close here replaces the inode.
    bool stale_size = false;
    // Open handles: opens registering now (counted as held), and the seq
    // of the last release.
    uint32_t opening = 0;
    uint64_t released_seq = 0;
  };
  Status open_check(uint64_t nodeid);
  // Open handles (mount_open.cc), under mu_: seqs of registrations in
  // flight (a renewal must not drop them), and the handle's release.
  uint64_t begin_registration();
  void end_registration(uint64_t seq);
  proto::InodeAttr to_kernel(proto::InodeAttr a) const;
  static constexpr uint64_t kDiverged = ~uint64_t{0};  // seen_size after a failed write
  // How attributes reached us: an entry the kernel takes (counts a lookup)
  // or a fetch; remember_own: the answer to this mount's own change, with
  // what it did to the kernel's size (kept; grown to at least `size`, as a
  // write or fallocate does; set to `size`, as a truncate does).
  enum class Learned : uint8_t { kEntry, kFetched };
  void remember(const proto::InodeAttr& a, Learned how);
  enum class KernelSize : uint8_t { kKept, kAtLeast, kSet };
  void remember_own(const proto::InodeAttr& a, KernelSize ks, uint64_t size = 0);
  // mount_coherence.cc: the entry side (under mu_) and the check of fetched
  // attributes against the kernel's view.
  void note_entry(Node& n, const proto::InodeAttr& a, bool new_to_kernel);
  Status check_kernel_view(const proto::InodeAttr& fresh, bool at_open);
  void write_failed(uint64_t ino);
  Result<uint64_t> size_for_read(uint64_t ino);
  void forget_no_caps(uint64_t ino);
  Result<proto::InodeAttr> create_node(const proto::CreateReq& r);
  proto::CreateReq create_req(uint64_t parent, const std::string& name, uint32_t mode, uint32_t rdev,
                              proto::Cred cred, bool exclusive) const;
  // A change to directory `ino` through this mount: begin_change() returns
  // a ticket (0: others are in flight, or the directory is not known);
  // end_change() with the attributes the change answered makes them exact
  // if no other change began meanwhile.
  uint64_t begin_change(uint64_t ino);
  void end_change(uint64_t ino, uint64_t ticket, const proto::InodeAttr* dir);
  class DirChange;
  Status writable() const;
  template <class T>
  Result<T> counted(Result<T> r);
  LaneRequest lane_request(IoDir dir, uint64_t bytes) const;
  LaneChoice settle(LaneChoice chosen, const DataIoInfo& info);

  std::shared_ptr<ClusterClient> cluster_;
  proto::FsInfo fs_;
  MountOptions opts_;
  std::string client_name_;  // host name: the name `cluster rdma --client` uses
  bool root_squash_ = false;
  IoStats io_;
  LaneCounters lanes_;
  DirectCounters direct_;
  std::unique_ptr<SealedIo> sealed_;  // set when the filesystem is encrypted and unlocked
  KernelCache* kernel_cache_ = nullptr;
  Status sealed_ready() const;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Node> nodes_;  // by backend inode number
  // Open handles (mount_open.cc). The seq orders this mount's
  // registrations, releases and renewals at the backend; guarded by mu_.
  const uint64_t handle_client_;            // this mount's id (random, non-zero)
  uint64_t handle_seq_ = 0;
  std::vector<uint64_t> registering_;       // seqs of registrations in flight
  std::vector<uint64_t> releases_;          // inodes whose last close the backend has not been told
  // Inodes open (or opening) here: what a renewal lists. A set node per
  // file open here, allocated at its first open (not per IO).
  std::unordered_set<uint64_t> held_;
  uint64_t renewed_ns_ = 0;                 // last renewal
  bool renew_failing_ = false;
};

}  // namespace lanefs::client

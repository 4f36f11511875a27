// RPC operations of protocol v1: the opcode list and the typed bodies of
// management, metadata and data operations. Both sides encode and decode
// through these structs, so client and server cannot disagree on a layout.
//
// Every response body starts with an i32 status (Errc). On failure a string
// message follows; on success the op's result follows.
//
// Routing (who answers what) is in docs/protocol.md: management ops go to
// any backend (mutations are forwarded to the leader, member 0); metadata
// ops go to the owner of the inode (or of the parent directory for name
// operations); data ops go to the chunk's owner by rendezvous hashing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/codec.h"
#include "common/net_addr.h"
#include "common/result.h"
#include "proto/auth.h"
#include "proto/meta_messages.h"
#include "proto/scrub_messages.h"
#include "proto/types.h"

namespace lanefs::proto {

enum class Op : uint16_t {
  // management
  kIdentify = 1,        // -> BackendIdentity
  kGetMap = 2,          // -> ClusterMap
  kSetMap = 3,          // SetMapReq -> empty (leader pushes; also cluster create)
  kClusterCreate = 4,   // ClusterCreateReq -> ClusterMap
  kFsCreate = 5,        // FsCreateReq -> FsInfo
  kFsList = 6,          // empty -> FsList
  kFsDelete = 7,        // NameReq -> empty
  kProcesses = 8,       // empty -> ProcessList (this backend's processes)
  kStatus = 9,          // empty -> BackendStatus
  kLocate = 10,         // LocateReq -> LocateResp
  kFsPurge = 11,        // FsPurgeReq -> InoList (inode records removed here)
  kStatfs = 12,         // FsIdReq -> StatFs (whole cluster, for one filesystem)
  kLocalSpace = 13,     // empty -> StatFs (this backend's disk and inode counts)
  kClientHeartbeat = 14,  // ClientInfo -> empty (leader: a frontend is alive)
  kClientLeave = 15,    // ClientInfo -> empty (leader: a frontend left)
  kRdmaConfig = 16,     // RdmaConfigReq -> ClusterMap (leader: enable/disable RDMA)
  kContainerNet = 17,   // ContainerNetReq -> ContainerNetResp (this backend's staged data NICs)
  kWhoAmI = 18,         // empty -> UserRecord (what this session runs as)
  kScrub = 19,          // ScrubReq -> ScrubResp (this backend's chunks of one filesystem checked)
  // metadata (name ops: to owner(parent); inode ops: to owner(ino))
  kLookup = 20,         // NameAtReq -> InodeAttr
  kGetattr = 21,        // InoReq -> InodeAttr
  kSetattr = 22,        // SetattrReq -> InodeAttr
  kCreate = 23,         // CreateReq -> InodeAttr  (regular, fifo, socket, device; mkdir; symlink)
  kLink = 24,           // LinkReq -> InodeAttr
  kUnlink = 25,         // NameAtReq -> empty
  kRmdir = 26,          // NameAtReq -> empty
  kRename = 27,         // RenameReq -> empty
  kReadlink = 28,       // InoReq -> string
  kReaddir = 29,        // ReaddirReq -> ReaddirResp
  kSetxattr = 30,       // XattrSetReq -> empty
  kGetxattr = 31,       // XattrReq -> bytes
  kListxattr = 32,      // XattrReq (name unused; a bare InoReq lists as root) -> string list
  kRemovexattr = 33,    // XattrReq -> empty
  kCommitWrite = 34,    // CommitWriteReq -> InodeAttr (size/mtime/blocks after data writes)
  kOpenHandle = 35,     // HandleReq -> InodeAttr (a client opened / released an inode; owner(ino))
  kHandleRenew = 36,    // HandleRenewReq -> empty (a client's open inodes on this backend; keeps its lease)
  // data (to the chunk owner)
  kWrite = 40,          // WriteReq -> WriteResp (durable on success)
  kRead = 41,           // ReadReq -> bytes
  kFlush = 42,          // InoReq -> empty (barrier; writes are already durable)
  kChunkTruncate = 43,  // ChunkTruncateReq -> i64 blocks delta
  kPunch = 44,          // PunchReq -> i64 blocks delta
  // peer primitives between backends (never call further peers)
  kInodePut = 60,       // InodeAttr (+symlink target) -> empty
  kInodeNlink = 61,     // InodeNlinkReq -> InodeNlinkResp
  kDirEmpty = 62,       // InoReq -> u8
  kInodeSetParent = 63, // InodeSetParentReq -> empty
  kChunkRemoveAll = 64, // InoList -> empty
  // users (leader; proto/auth.h)
  kUserAdd = 80,        // UserRecord -> TokenResp (the new user's token)
  kUserList = 81,       // empty -> UserList
  kUserDelete = 82,     // NameReq -> empty
  kUserToken = 83,      // NameReq -> TokenResp (an existing user's token: login)
  kUserForward = 84,    // backends only: str caller, u16 op, bytes body -> that op's answer (to the leader)
};
const char* op_name(Op op) noexcept;

// ------------------------------------------------------------ framing
// Response: i32 status, then message (failure) or body (success).
std::vector<uint8_t> ok_response(const std::vector<uint8_t>& body = {});
std::vector<uint8_t> error_response(const Error& e);
// Splits a response: returns the body decoder's input on success, or the
// error carried in it (kProtocol for a malformed response).
Result<std::span<const uint8_t>> parse_response(std::span<const uint8_t> resp);

// Generic encode/decode of a struct with encode(Encoder&)/decode(Decoder&).
template <class T>
std::vector<uint8_t> encode_msg(const T& v) {
  std::vector<uint8_t> out;
  Encoder e(&out);
  v.encode(e);
  return out;
}
template <class T>
Result<T> decode_msg(std::span<const uint8_t> in) {
  T v;
  Decoder d(in);
  if (!v.decode(d) || !d.ok()) return make_error(Errc::kProtocol, "malformed message body");
  return v;
}

// ------------------------------------------------------------ management
// One data address of a backend (HA: one per NIC) and the label naming the
// switch its NIC is on ("" = unlabeled).
struct NetLeg {
  NetAddr addr;
  std::string label;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
  bool operator==(const NetLeg&) const = default;
};

struct Member {
  uint32_t shard = 0;       // index in the map; metadata shard id
  uint64_t uuid = 0;        // backend identity (random at first start)
  std::string name;         // container name (--name, default hostname)
  std::string hostname;
  NetAddr addr;             // where it listens
  // RDMA lane of this backend: link layer of its device (0 none, 1
  // InfiniBand, 2 Ethernet/RoCE; transport::LinkLayer) and the rdma_cm port
  // it listens on (same IP as addr). rdma_link 0 = no RDMA.
  uint8_t rdma_link = 0;
  uint16_t rdma_port = 0;
  // Every data address (HA legs) with its label; the first is addr. Empty
  // in maps from before HA: then addr, unlabeled.
  std::vector<NetLeg> legs;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct FsInfo {
  uint32_t id = 0;
  std::string name;
  uint64_t root_ino = 0;
  int64_t created_s = 0;
  bool encrypted = false;
  // Encrypted filesystems: key check value computed by the client that
  // created it (client/crypto.h); backends never see the key itself.
  std::string key_check = {};
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ClusterMap {
  uint64_t cluster_id = 0;
  uint64_t epoch = 0;
  uint32_t chunk_size = 1 << 20;
  uint32_t next_fs_id = 1;
  std::vector<Member> members;
  std::vector<FsInfo> filesystems;
  // `lanefs cluster rdma enable|disable [--client NAME]`: RDMA for the whole
  // cluster, and the clients (frontend host names) it is disabled for.
  bool rdma_enabled = true;
  std::vector<std::string> rdma_disabled_clients;
  // Users besides the built-in admin (no secrets: keys are derived from
  // the cluster secret each backend keeps, proto/auth.h). Only admin
  // sessions get them in kGetMap's answer.
  std::vector<UserRecord> users;
  uint32_t next_user_generation = 1;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
  // The user named (the built-in admin included), or null.
  std::optional<UserRecord> find_user(std::string_view name) const;
  bool rdma_enabled_for(std::string_view client) const;
  const FsInfo* find_fs(std::string_view name) const;
  const FsInfo* find_fs(uint32_t id) const;
  const Member* member_by_shard(uint32_t shard) const;
};

// Placement, identical on every node and client: metadata owner of an inode,
// chunk owner by rendezvous (highest random weight) hashing, and the shard
// that receives a new directory.
const Member* meta_owner(const ClusterMap& map, uint64_t ino);
const Member* chunk_owner(const ClusterMap& map, uint64_t ino, uint64_t chunk_index);
uint32_t shard_for_new_dir(const ClusterMap& map, uint64_t parent, std::string_view name);
uint32_t shard_for_fs_root(const ClusterMap& map, std::string_view fs_name);

struct BackendIdentity {
  uint64_t uuid = 0;
  std::string name, hostname;
  NetAddr addr;
  uint64_t cluster_id = 0, epoch = 0;
  uint32_t fs_count = 0;
  uint8_t rdma_link = 0;  // as Member
  uint16_t rdma_port = 0;
  std::vector<NetLeg> legs;  // as Member
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct SetMapReq {
  ClusterMap map;
  bool force = false;  // cluster create: replace even a newer/other cluster's map
  // Cluster create: the cluster secret the members adopt (empty otherwise).
  std::vector<uint8_t> secret;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ClusterCreateReq {
  std::vector<NetAddr> addrs;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct FsCreateReq {
  std::string name;
  bool encrypted = false;
  std::string key_check = {};  // required when encrypted (see FsInfo)
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// kRdmaConfig: enable or disable RDMA for the cluster (client empty) or for
// one client (its host name).
struct RdmaConfigReq {
  bool enable = true;
  std::string client;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// A data NIC staged on a backend container (`lanefs cluster container net
// add`): applied when its lanefsd next starts, each IP one HA leg (no IP:
// the NIC's own IPv4 address then). netmask/gateway are recorded for the
// operator; the UDP lane routes with the kernel's tables.
struct ContainerNic {
  std::string dev;
  std::vector<std::string> ips;
  uint32_t netmask_bits = 0;  // 0 = not given
  std::string gateway, label;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ContainerNetReq {
  enum Action : uint8_t { kList = 0, kAdd = 1, kRemove = 2 };
  uint8_t action = kList;
  ContainerNic nic;  // add: the NIC; remove: nic.dev
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ContainerNetResp {
  std::vector<ContainerNic> staged;  // what the next start applies
  std::vector<NetLeg> active;        // the legs it serves on now
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct NameReq {
  std::string name;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct FsList {
  std::vector<FsInfo> filesystems;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// One row of `lanefs cluster processes` (WEKA's columns).
struct ProcessInfo {
  uint64_t id = 0;           // cluster-unique process id
  std::string hostname, container;
  std::vector<std::string> ips;
  std::string status;        // UP, DOWN, ...
  std::vector<std::string> roles;  // MANAGEMENT, COMPUTE, DRIVES, FRONTEND
  std::string network;       // UDP, DPDK, UDP / RDMA, DPDK / RDMA
  int32_t core = -1;         // dedicated core, -1 = none
  uint64_t memory_bytes = 0; // resident memory of the OS process
  uint64_t uptime_s = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ProcessList {
  std::vector<ProcessInfo> processes;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// A client container (lanefs-frontend) registered with the leader. It
// heartbeats; the leader lists it as a FRONTEND process until it leaves or
// misses heartbeats for remove_after_secs.
struct ClientInfo {
  uint64_t uuid = 0;
  std::string hostname;
  std::vector<std::string> ips;
  uint64_t pid = 0;
  uint64_t memory_bytes = 0;
  uint64_t uptime_s = 0;
  uint32_t mounts = 0;
  uint32_t remove_after_secs = 3600;
  std::string network = "UDP";
  // Frontend cores of the DPDK lane, one entry each: the CPU it is pinned
  // to (-1: not pinned) and its data address. Empty in UDP mode.
  std::vector<int32_t> cores;
  std::vector<std::string> core_ips;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct BackendStatus {
  BackendIdentity identity;
  uint64_t pid = 0, uptime_s = 0, memory_bytes = 0;
  uint64_t inodes = 0, chunk_bytes = 0, disk_total = 0, disk_free = 0;
  uint32_t sessions = 0;
  uint64_t requests = 0, rx_invalid = 0, replies_from_cache = 0;
  // Bytes of file data this backend served for kRead and stored for kWrite
  // since it started (every lane: UDP/DPDK inline, RDMA, sealed). Encoded
  // last: an older peer's status decodes with both 0.
  uint64_t data_read_bytes = 0, data_written_bytes = 0;
  // Of rx_invalid: packets of keyed sessions whose MAC failed, and replays
  // (docs/security.md, "Packet MACs"). Encoded last, like the two above.
  uint64_t rx_bad_mac = 0, rx_replayed = 0;
  // Chunk blocks found failing their CRC32C (reads and scrubs) since start.
  // Encoded last.
  uint64_t corrupt_blocks = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct LocateReq {
  uint64_t ino = 0;
  uint64_t offset = 0;  // byte offset whose chunk to locate
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
struct LocateResp {
  Member meta_owner;
  Member chunk_owner;
  uint64_t chunk_index = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct FsIdReq {
  uint32_t fs_id = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
using FsPurgeReq = FsIdReq;

struct InoList {
  std::vector<uint64_t> inos;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// ------------------------------------------------------------ data
// Client memory named in a large read or write on the RDMA lane (see
// transport/rdma_lane.h): token of the client's RDMA connection to the
// backend, then the registered buffer. token 0: no RDMA, data inline.
struct RdmaDesc {
  uint64_t token = 0;
  uint64_t addr = 0;
  uint32_t rkey = 0;
  uint32_t len = 0;
  bool present() const { return token != 0; }
};

struct WriteReq {
  uint64_t ino = 0;
  uint64_t offset = 0;  // file offset; [offset, offset+len) inside one chunk
  std::span<const uint8_t> data;  // view into the request buffer when decoded
  // Sealed (encrypted-filesystem) write: one 32-byte seal per 4 KiB block of
  // data; then offset and data are block-aligned and the backend stores the
  // seals in the chunk's seal area with the data, in one durable write.
  // Empty for a plain write.
  std::span<const uint8_t> seals = {};
  // RDMA write: data is empty; the backend RDMA-READs rdma.len bytes from
  // the client's buffer (never with seals: encrypted data never uses RDMA).
  RdmaDesc rdma = {};
  // Commit too: when this backend also owns the inode's metadata, it updates
  // size (max with offset+len), blocks and mtime/ctime (= mtime) in the same
  // request, durably, and answers with the attributes (WriteResp::committed):
  // one round trip per write instead of a kWrite then a kCommitWrite.
  bool commit = false;
  Timespec mtime = {};
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
// Encodes every field of `r` but its data's bytes into `out` (which must
// hold them: the message is then the result ++ r.data); 0 when it does not fit.
size_t encode_write_head(const WriteReq& r, std::span<uint8_t> out);

struct WriteResp {
  int64_t blocks_delta = 0;
  // WriteReq::commit was honoured: `attr` is the inode after the write.
  // false: the metadata lives elsewhere; the client commits (kCommitWrite).
  bool committed = false;
  InodeAttr attr = {};
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ReadReq {
  uint64_t ino = 0;
  uint64_t offset = 0;
  uint32_t len = 0;  // inside one chunk
  // Sealed read (block-aligned): the reply is the data followed by the
  // blocks' 32-byte seals (len / 4096 * 32 bytes).
  bool sealed = false;
  // RDMA read: the backend RDMA-WRITEs the len bytes into the client's
  // buffer and replies with empty bytes (never sealed).
  RdmaDesc rdma = {};
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct ChunkTruncateReq {
  uint64_t ino = 0;
  uint64_t size = 0;  // drop data at and beyond this file offset (chunks held here)
  // Encrypted filesystem: keep the seals of the blocks before `size` (the
  // block holding `size` was re-sealed by the client) and zero the rest.
  bool sealed = false;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

struct PunchReq {
  uint64_t ino = 0;
  uint64_t offset = 0;
  uint32_t len = 0;  // inside one chunk
  bool sealed = false;  // block-aligned; also zeroes the blocks' seals (holes)
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

// ------------------------------------------------------------ peer
struct InodePutReq {
  InodeAttr attr;
  std::string symlink_target;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
struct InodeNlinkReq {
  uint64_t ino = 0;
  int32_t delta = 0;
  Timespec ctime;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
struct InodeNlinkResp {
  InodeAttr attr;
  bool removed = false;  // nlink reached 0: inode record deleted, data must go
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
struct InodeSetParentReq {
  uint64_t ino = 0;
  uint64_t parent = 0;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

}  // namespace lanefs::proto

#include "proto/messages.h"

#include <cstring>

#include <algorithm>

namespace lanefs::proto {
namespace {

void put_addr(Encoder& e, const NetAddr& a) { e.u32(a.ip); e.u16(a.port); }
NetAddr get_addr(Decoder& d) { NetAddr a; a.ip = d.u32(); a.port = d.u16(); return a; }
void put_rdma(Encoder& e, const RdmaDesc& r) { e.u64(r.token); e.u64(r.addr); e.u32(r.rkey); e.u32(r.len); }
RdmaDesc get_rdma(Decoder& d) {
  RdmaDesc r;
  r.token = d.u64(); r.addr = d.u64(); r.rkey = d.u32(); r.len = d.u32();
  return r;
}
void put_ts(Encoder& e, const Timespec& t) { e.i64(t.sec); e.u32(t.nsec); }
Timespec get_ts(Decoder& d) { Timespec t; t.sec = d.i64(); t.nsec = d.u32(); return t; }

// Lists are bounded so a hostile count cannot make a reader allocate wildly.
constexpr uint32_t kMaxList = 1 << 20;

template <class T>
void put_list(Encoder& e, const std::vector<T>& v) {
  e.u32(static_cast<uint32_t>(v.size()));
  for (const auto& x : v) x.encode(e);
}
template <class T>
bool get_list(Decoder& d, std::vector<T>* v) {
  uint32_t n = d.u32();
  if (!d.ok() || n > kMaxList || n > d.remaining()) return false;
  v->resize(n);
  for (auto& x : *v)
    if (!x.decode(d)) return false;
  return d.ok();
}
void put_strs(Encoder& e, const std::vector<std::string>& v) {
  e.u32(static_cast<uint32_t>(v.size()));
  for (const auto& s : v) e.str(s);
}
bool get_strs(Decoder& d, std::vector<std::string>* v) {
  uint32_t n = d.u32();
  if (!d.ok() || n > kMaxList || n > d.remaining()) return false;
  v->resize(n);
  for (auto& s : *v) s = d.str(kXattrValueMax);
  return d.ok();
}

// FNV-1a then a 64-bit finalizer: stable across builds and machines (the
// placement must be identical on every node and client).
uint64_t mix(uint64_t h) {
  h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ull; h ^= h >> 33;
  return h;
}
uint64_t hash_bytes(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) { h ^= c; h *= 1099511628211ull; }
  return mix(h);
}
uint32_t rendezvous(const ClusterMap& map, uint64_t key) {
  uint32_t best = 0;
  uint64_t best_w = 0;
  for (const auto& m : map.members) {
    uint64_t w = mix(key ^ mix(m.uuid + 0x9e3779b97f4a7c15ull));
    if (w >= best_w) { best_w = w; best = m.shard; }
  }
  return best;
}

}  // namespace

#define LANEFS_MSG(T, ENC, DEC)                     \
  void T::encode(Encoder& e) const { ENC }          \
  bool T::decode(Decoder& d) { DEC return d.ok(); }

const char* op_name(Op op) noexcept {
  switch (op) {
    case Op::kIdentify: return "identify";
    case Op::kGetMap: return "get_map";
    case Op::kSetMap: return "set_map";
    case Op::kClusterCreate: return "cluster_create";
    case Op::kFsCreate: return "fs_create";
    case Op::kFsList: return "fs_list";
    case Op::kFsDelete: return "fs_delete";
    case Op::kProcesses: return "processes";
    case Op::kStatus: return "status";
    case Op::kLocate: return "locate";
    case Op::kFsPurge: return "fs_purge";
    case Op::kStatfs: return "statfs";
    case Op::kLocalSpace: return "local_space";
    case Op::kClientHeartbeat: return "client_heartbeat";
    case Op::kClientLeave: return "client_leave";
    case Op::kRdmaConfig: return "rdma_config";
    case Op::kContainerNet: return "container_net";
    case Op::kLookup: return "lookup";
    case Op::kGetattr: return "getattr";
    case Op::kSetattr: return "setattr";
    case Op::kCreate: return "create";
    case Op::kLink: return "link";
    case Op::kUnlink: return "unlink";
    case Op::kRmdir: return "rmdir";
    case Op::kRename: return "rename";
    case Op::kReadlink: return "readlink";
    case Op::kReaddir: return "readdir";
    case Op::kSetxattr: return "setxattr";
    case Op::kGetxattr: return "getxattr";
    case Op::kListxattr: return "listxattr";
    case Op::kRemovexattr: return "removexattr";
    case Op::kCommitWrite: return "commit_write";
    case Op::kOpenHandle: return "open_handle";
    case Op::kHandleRenew: return "handle_renew";
    case Op::kWrite: return "write";
    case Op::kRead: return "read";
    case Op::kFlush: return "flush";
    case Op::kChunkTruncate: return "chunk_truncate";
    case Op::kPunch: return "punch";
    case Op::kInodePut: return "inode_put";
    case Op::kInodeNlink: return "inode_nlink";
    case Op::kDirEmpty: return "dir_empty";
    case Op::kInodeSetParent: return "inode_set_parent";
    case Op::kChunkRemoveAll: return "chunk_remove_all";
    case Op::kWhoAmI: return "whoami";
    case Op::kScrub: return "scrub";
    case Op::kUserAdd: return "user_add";
    case Op::kUserList: return "user_list";
    case Op::kUserDelete: return "user_delete";
    case Op::kUserToken: return "user_token";
    case Op::kUserForward: return "user_forward";
  }
  return "unknown";
}

std::vector<uint8_t> ok_response(const std::vector<uint8_t>& body) {
  std::vector<uint8_t> out;
  out.reserve(4 + body.size());
  Encoder e(&out);
  e.i32(0);
  e.raw(body.data(), body.size());
  return out;
}

std::vector<uint8_t> error_response(const Error& err) {
  std::vector<uint8_t> out;
  Encoder e(&out);
  e.i32(static_cast<int32_t>(err.code == Errc::kOk ? Errc::kInternal : err.code));
  e.str(err.message);
  return out;
}

size_t encode_write_head(const WriteReq& r, std::span<uint8_t> out) {
  WriteReq head = r;
  head.data = {};
  Encoder e(out);
  head.encode(e);
  if (!e.ok() || e.size() < 4) return 0;
  // The last field is data's u32 length, written as 0 above.
  uint32_t n = static_cast<uint32_t>(r.data.size());
  std::memcpy(out.data() + e.size() - 4, &n, 4);
  return e.size();
}

Result<std::span<const uint8_t>> parse_response(std::span<const uint8_t> resp) {
  Decoder d(resp);
  int32_t status = d.i32();
  if (!d.ok()) return make_error(Errc::kProtocol, "empty response");
  if (status == 0) return resp.subspan(4);
  std::string msg = d.str(4096);
  Errc code = errc_valid(status) ? static_cast<Errc>(status) : Errc::kProtocol;
  if (!d.ok()) msg.clear();
  return make_error(code, msg.empty() ? std::string(errc_text(code)) : msg);
}

LANEFS_MSG(NetLeg, put_addr(e, addr); e.str(label);, addr = get_addr(d); label = d.str(64);)

LANEFS_MSG(Member,
  e.u32(shard); e.u64(uuid); e.str(name); e.str(hostname); put_addr(e, addr); e.u8(rdma_link);
  e.u16(rdma_port); put_list(e, legs);,
  shard = d.u32(); uuid = d.u64(); name = d.str(256); hostname = d.str(256); addr = get_addr(d);
  rdma_link = d.u8(); rdma_port = d.u16(); if (!get_list(d, &legs)) return false;)

LANEFS_MSG(FsInfo,
  e.u32(id); e.str(name); e.u64(root_ino); e.i64(created_s); e.u8(encrypted);
  e.str(key_check);,
  id = d.u32(); name = d.str(256); root_ino = d.u64(); created_s = d.i64(); encrypted = d.u8() != 0;
  key_check = d.str(64);)

LANEFS_MSG(ClusterMap,
  e.u64(cluster_id); e.u64(epoch); e.u32(chunk_size); e.u32(next_fs_id);
  put_list(e, members); put_list(e, filesystems); e.u8(rdma_enabled); put_strs(e, rdma_disabled_clients);
  put_list(e, users); e.u32(next_user_generation);,
  cluster_id = d.u64(); epoch = d.u64(); chunk_size = d.u32(); next_fs_id = d.u32();
  if (!get_list(d, &members) || !get_list(d, &filesystems)) return false;
  rdma_enabled = d.u8() != 0; if (!get_strs(d, &rdma_disabled_clients)) return false;
  // Users came later: a map stored before them has none.
  if (d.remaining() > 0) { if (!get_list(d, &users)) return false; next_user_generation = d.u32(); })

std::optional<UserRecord> ClusterMap::find_user(std::string_view n) const {
  if (n == kAdminUser) return builtin_admin();
  for (const auto& u : users)
    if (u.name == n) return u;
  return std::nullopt;
}

bool ClusterMap::rdma_enabled_for(std::string_view client) const {
  if (!rdma_enabled) return false;
  return std::find(rdma_disabled_clients.begin(), rdma_disabled_clients.end(), client) ==
         rdma_disabled_clients.end();
}

const FsInfo* ClusterMap::find_fs(std::string_view n) const {
  for (const auto& f : filesystems)
    if (f.name == n) return &f;
  return nullptr;
}
const FsInfo* ClusterMap::find_fs(uint32_t id) const {
  for (const auto& f : filesystems)
    if (f.id == id) return &f;
  return nullptr;
}
const Member* ClusterMap::member_by_shard(uint32_t shard) const {
  for (const auto& m : members)
    if (m.shard == shard) return &m;
  return nullptr;
}

const Member* meta_owner(const ClusterMap& map, uint64_t ino) {
  return map.member_by_shard(ino_shard(ino));
}
const Member* chunk_owner(const ClusterMap& map, uint64_t ino, uint64_t chunk_index) {
  return map.member_by_shard(rendezvous(map, mix(ino) ^ mix(chunk_index + 0x51ed27)));
}
uint32_t shard_for_new_dir(const ClusterMap& map, uint64_t parent, std::string_view name) {
  return rendezvous(map, hash_bytes(name, parent));
}
uint32_t shard_for_fs_root(const ClusterMap& map, std::string_view fs_name) {
  return rendezvous(map, hash_bytes(fs_name, 0x726f6f74));
}

LANEFS_MSG(BackendIdentity,
  e.u64(uuid); e.str(name); e.str(hostname); put_addr(e, addr); e.u64(cluster_id); e.u64(epoch);
  e.u32(fs_count); e.u8(rdma_link); e.u16(rdma_port); put_list(e, legs);,
  uuid = d.u64(); name = d.str(256); hostname = d.str(256); addr = get_addr(d);
  cluster_id = d.u64(); epoch = d.u64(); fs_count = d.u32(); rdma_link = d.u8(); rdma_port = d.u16();
  if (!get_list(d, &legs)) return false;)

LANEFS_MSG(ContainerNic,
  e.str(dev); put_strs(e, ips); e.u32(netmask_bits); e.str(gateway); e.str(label);,
  dev = d.str(64); if (!get_strs(d, &ips)) return false; netmask_bits = d.u32(); gateway = d.str(64);
  label = d.str(64);)
LANEFS_MSG(ContainerNetReq, e.u8(action); nic.encode(e);, action = d.u8(); if (!nic.decode(d)) return false;)
LANEFS_MSG(ContainerNetResp, put_list(e, staged); put_list(e, active);,
  if (!get_list(d, &staged) || !get_list(d, &active)) return false;)

LANEFS_MSG(RdmaConfigReq, e.u8(enable); e.str(client);, enable = d.u8() != 0; client = d.str(256);)

LANEFS_MSG(SetMapReq, map.encode(e); e.u8(force); e.bytes(secret);,
  if (!map.decode(d)) return false; force = d.u8() != 0;
  auto sec = d.bytes(kAuthKeyBytes); secret.assign(sec.begin(), sec.end());
  if (!secret.empty() && secret.size() != kAuthKeyBytes) return false;)

LANEFS_MSG(ClusterCreateReq,
  e.u32(static_cast<uint32_t>(addrs.size())); for (auto& a : addrs) put_addr(e, a);,
  uint32_t n = d.u32(); if (n > 4096) return false; addrs.resize(n);
  for (auto& a : addrs) a = get_addr(d);)

LANEFS_MSG(FsCreateReq, e.str(name); e.u8(encrypted); e.str(key_check);,
  name = d.str(256); encrypted = d.u8() != 0; key_check = d.str(64);)
LANEFS_MSG(NameReq, e.str(name);, name = d.str(256);)
LANEFS_MSG(FsList, put_list(e, filesystems);, if (!get_list(d, &filesystems)) return false;)

LANEFS_MSG(ProcessInfo,
  e.u64(id); e.str(hostname); e.str(container); put_strs(e, ips); e.str(status); put_strs(e, roles);
  e.str(network); e.i32(core); e.u64(memory_bytes); e.u64(uptime_s);,
  id = d.u64(); hostname = d.str(256); container = d.str(256);
  if (!get_strs(d, &ips)) return false;
  status = d.str(64); if (!get_strs(d, &roles)) return false;
  network = d.str(64); core = d.i32(); memory_bytes = d.u64(); uptime_s = d.u64();)

LANEFS_MSG(ProcessList, put_list(e, processes);, if (!get_list(d, &processes)) return false;)

LANEFS_MSG(ClientInfo,
  e.u64(uuid); e.str(hostname); put_strs(e, ips); e.u64(pid); e.u64(memory_bytes); e.u64(uptime_s);
  e.u32(mounts); e.u32(remove_after_secs); e.str(network);
  e.u32(static_cast<uint32_t>(cores.size())); for (int32_t c : cores) e.i32(c); put_strs(e, core_ips);,
  uuid = d.u64(); hostname = d.str(256); if (!get_strs(d, &ips)) return false;
  pid = d.u64(); memory_bytes = d.u64(); uptime_s = d.u64(); mounts = d.u32();
  remove_after_secs = d.u32(); network = d.str(64);
  uint32_t ncores = d.u32(); if (ncores > 64) return false;
  cores.clear(); for (uint32_t i = 0; i < ncores && d.ok(); ++i) cores.push_back(d.i32());
  if (!get_strs(d, &core_ips) || core_ips.size() != cores.size()) return false;)

LANEFS_MSG(BackendStatus,
  identity.encode(e); e.u64(pid); e.u64(uptime_s); e.u64(memory_bytes); e.u64(inodes);
  e.u64(chunk_bytes); e.u64(disk_total); e.u64(disk_free); e.u32(sessions); e.u64(requests);
  e.u64(rx_invalid); e.u64(replies_from_cache); e.u64(data_read_bytes); e.u64(data_written_bytes);
  e.u64(rx_bad_mac); e.u64(rx_replayed); e.u64(corrupt_blocks);,
  if (!identity.decode(d)) return false;
  pid = d.u64(); uptime_s = d.u64(); memory_bytes = d.u64(); inodes = d.u64(); chunk_bytes = d.u64();
  disk_total = d.u64(); disk_free = d.u64(); sessions = d.u32(); requests = d.u64();
  rx_invalid = d.u64(); replies_from_cache = d.u64();
  if (d.remaining() >= 16) { data_read_bytes = d.u64(); data_written_bytes = d.u64(); }
  if (d.remaining() >= 16) { rx_bad_mac = d.u64(); rx_replayed = d.u64(); }
  if (d.remaining() >= 8) corrupt_blocks = d.u64();)
LANEFS_MSG(ScrubReq, e.u32(fs_id); e.u8(repair ? 1 : 0);, fs_id = d.u32(); repair = d.u8() != 0;)
LANEFS_MSG(ScrubResp,
  e.u64(inodes); e.u64(chunks); e.u64(blocks); e.u64(damaged); e.u64(repaired); e.u64(orphans);
  e.u32(static_cast<uint32_t>(listed.size()));
  for (const auto& x : listed) { e.u64(x.ino); e.u64(x.chunk_index); e.u32(x.block); e.str(x.path); }
  e.str(repair_note);,
  inodes = d.u64(); chunks = d.u64(); blocks = d.u64(); damaged = d.u64(); repaired = d.u64(); orphans = d.u64();
  uint32_t n = d.u32(); if (n > kMaxList || n > d.remaining() / 24) return false;
  listed.resize(n);
  for (auto& x : listed) { x.ino = d.u64(); x.chunk_index = d.u64(); x.block = d.u32(); x.path = d.str(4096); }
  repair_note = d.str(4096);)

LANEFS_MSG(LocateReq, e.u64(ino); e.u64(offset);, ino = d.u64(); offset = d.u64();)
LANEFS_MSG(LocateResp, meta_owner.encode(e); chunk_owner.encode(e); e.u64(chunk_index);,
  if (!meta_owner.decode(d) || !chunk_owner.decode(d)) return false; chunk_index = d.u64();)
LANEFS_MSG(FsIdReq, e.u32(fs_id);, fs_id = d.u32();)
LANEFS_MSG(InoList,
  e.u32(static_cast<uint32_t>(inos.size())); for (auto i : inos) e.u64(i);,
  uint32_t n = d.u32(); if (n > kMaxList || n > d.remaining() / 8) return false; inos.resize(n);
  for (auto& i : inos) i = d.u64();)

LANEFS_MSG(Cred,
  const size_t n = std::min(groups.size(), kMaxGroups);
  e.u32(uid); e.u32(gid); e.u8(static_cast<uint8_t>(n)); for (size_t i = 0; i < n; ++i) e.u32(groups[i]);,
  uid = d.u32(); gid = d.u32(); const size_t n = d.u8();
  if (n > kMaxGroups || n > d.remaining() / 4) return false; groups.resize(n);
  for (auto& g : groups) g = d.u32();)
// The credentials ending a request (absent: root, as before they existed).
static bool get_cred(Decoder& d, Cred* c) { return d.remaining() == 0 || c->decode(d); }
LANEFS_MSG(InoReq, e.u64(ino);, ino = d.u64();)
LANEFS_MSG(NameAtReq, e.u64(parent); e.str(name); cred.encode(e);,
  parent = d.u64(); name = d.str(4096); if (!get_cred(d, &cred)) return false;)
LANEFS_MSG(SetattrReq, e.u64(ino); attr.encode(e); cred.encode(e);,
  ino = d.u64(); if (!attr.decode(d) || !get_cred(d, &cred)) return false;)
LANEFS_MSG(CreateReq,
  e.u64(parent); e.str(name); e.u32(mode); e.u32(rdev); cred.encode(e); e.u8(exclusive);
  e.str(symlink_target); e.u64(open_by); e.u64(open_seq); e.u8(access);,
  parent = d.u64(); name = d.str(4096); mode = d.u32(); rdev = d.u32();
  if (!cred.decode(d)) return false; exclusive = d.u8() != 0; symlink_target = d.str(4096);
  if (d.remaining() >= 16) { open_by = d.u64(); open_seq = d.u64(); }
  if (d.remaining() >= 1) access = d.u8();)
LANEFS_MSG(HandleReq, e.u64(client); e.u64(ino); e.u8(open); e.u64(seq); e.u8(access); cred.encode(e);,
  client = d.u64(); ino = d.u64(); open = d.u8() != 0; seq = d.u64();
  if (d.remaining() > 0) { access = d.u8(); if (!get_cred(d, &cred)) return false; })
LANEFS_MSG(HandleRenewReq,
  e.u64(client); e.u64(seq); e.u32(static_cast<uint32_t>(inos.size())); for (auto i : inos) e.u64(i);,
  client = d.u64(); seq = d.u64();
  uint32_t n = d.u32(); if (n > kMaxList || n > d.remaining() / 8) return false; inos.resize(n);
  for (auto& i : inos) i = d.u64();)
LANEFS_MSG(LinkReq, e.u64(ino); e.u64(new_parent); e.str(new_name); cred.encode(e);,
  ino = d.u64(); new_parent = d.u64(); new_name = d.str(4096); if (!get_cred(d, &cred)) return false;)
LANEFS_MSG(RenameReq,
  e.u64(parent); e.str(name); e.u64(new_parent); e.str(new_name); e.u32(flags); cred.encode(e);,
  parent = d.u64(); name = d.str(4096); new_parent = d.u64(); new_name = d.str(4096); flags = d.u32();
  if (!get_cred(d, &cred)) return false;)
LANEFS_MSG(ReaddirReq, e.u64(ino); e.u64(cookie); e.u32(max_entries); e.u8(plus); cred.encode(e);,
  ino = d.u64(); cookie = d.u64(); max_entries = d.u32(); plus = d.u8() != 0;
  if (!get_cred(d, &cred)) return false;)
LANEFS_MSG(ReaddirResp, put_list(e, entries); put_list(e, attrs); e.u8(eof);,
  if (!get_list(d, &entries) || !get_list(d, &attrs)) return false; eof = d.u8() != 0;)
LANEFS_MSG(XattrReq, e.u64(ino); e.str(name); cred.encode(e);,
  ino = d.u64(); name = d.str(4096); if (!get_cred(d, &cred)) return false;)
LANEFS_MSG(XattrSetReq, e.u64(ino); e.str(name); e.str(value); e.u32(flags); cred.encode(e);,
  ino = d.u64(); name = d.str(4096); value = d.str(kXattrValueMax + 1); flags = d.u32();
  if (!get_cred(d, &cred)) return false;)
LANEFS_MSG(StringList, put_strs(e, items);, if (!get_strs(d, &items)) return false;)
LANEFS_MSG(CommitWriteReq, e.u64(ino); e.u64(end_offset); e.i64(blocks_delta); put_ts(e, mtime);,
  ino = d.u64(); end_offset = d.u64(); blocks_delta = d.i64(); mtime = get_ts(d);)

// The data comes last, so a plain write's fields can be sent ahead of the
// caller's data without copying it (encode_write_head).
LANEFS_MSG(WriteReq, e.u64(ino); e.u64(offset); e.bytes(seals); put_rdma(e, rdma); e.u8(commit); put_ts(e, mtime);
  e.bytes(data);,
  ino = d.u64(); offset = d.u64(); seals = d.bytes(); rdma = get_rdma(d); commit = d.u8() != 0; mtime = get_ts(d);
  data = d.bytes();)
LANEFS_MSG(WriteResp, e.i64(blocks_delta); e.u8(committed); if (committed) attr.encode(e);,
  blocks_delta = d.i64(); committed = d.remaining() > 0 && d.u8() != 0; if (committed && !attr.decode(d)) return false;)
LANEFS_MSG(ReadReq, e.u64(ino); e.u64(offset); e.u32(len); e.u8(sealed); put_rdma(e, rdma);,
  ino = d.u64(); offset = d.u64(); len = d.u32(); sealed = d.u8() != 0; rdma = get_rdma(d);)
LANEFS_MSG(ChunkTruncateReq, e.u64(ino); e.u64(size); e.u8(sealed);,
  ino = d.u64(); size = d.u64(); sealed = d.u8() != 0;)
LANEFS_MSG(PunchReq, e.u64(ino); e.u64(offset); e.u32(len); e.u8(sealed);,
  ino = d.u64(); offset = d.u64(); len = d.u32(); sealed = d.u8() != 0;)

LANEFS_MSG(InodePutReq, attr.encode(e); e.str(symlink_target);,
  if (!attr.decode(d)) return false; symlink_target = d.str(4096);)
LANEFS_MSG(InodeNlinkReq, e.u64(ino); e.i32(delta); put_ts(e, ctime);,
  ino = d.u64(); delta = d.i32(); ctime = get_ts(d);)
LANEFS_MSG(InodeNlinkResp, attr.encode(e); e.u8(removed);,
  if (!attr.decode(d)) return false; removed = d.u8() != 0;)
LANEFS_MSG(InodeSetParentReq, e.u64(ino); e.u64(parent);, ino = d.u64(); parent = d.u64();)

#undef LANEFS_MSG

}  // namespace lanefs::proto

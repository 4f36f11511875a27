// MANAGEMENT role: identity, cluster map, cluster create, filesystems,
// process listing, status, placement queries. Mutations run on the leader
// (member 0); other members forward them there.
#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "backend/backend_core.h"
#include "backend/container_net.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/proc_info.h"

namespace lanefs::backend {
namespace {

using proto::ClusterMap;
using proto::Op;

template <class T>
Result<T> decode(std::span<const uint8_t> req) {
  return proto::decode_msg<T>(req);
}

// Pushes `m` to every member; unreachable members catch up by refreshing.
void push_map(BackendCore& b, const ClusterMap& m, bool force) {
  proto::SetMapReq req{m, force, {}};
  for (const auto& mem : m.members) {
    auto r = b.call_member<rpc::Empty>(mem, Op::kSetMap, req);
    if (!r.ok())
      LOG_WARN("cluster map epoch {} not pushed to {}: {}", m.epoch, mem.addr.to_string(),
               r.error().to_string());
  }
}

// Forwards a mutation to the leader when this backend is not it.
std::optional<rpc::Buffer> forward_to_leader(BackendCore& b, Op op, std::span<const uint8_t> req) {
  auto m = b.map();
  const proto::Member* leader = m.member_by_shard(0);
  if (leader == nullptr || b.is_self(*leader)) return std::nullopt;
  auto r = b.call_member_raw(*leader, op, rpc::Buffer(req.begin(), req.end()));
  if (!r.ok())
    return reply_error(make_error(r.code(), "leader " + leader->addr.to_string() + ": " +
                                                r.error().to_string()));
  return std::move(*r);
}

rpc::Buffer cluster_create(BackendCore& b, const proto::ClusterCreateReq& req) {
  if (req.addrs.empty()) return reply_error(make_error(Errc::kInvalid, "no backend addresses"));
  // Empty members share no secret with us yet: our peer sessions to them
  // may be unkeyed until they hold the map (and the secret) we hand them.
  b.forming_cluster.fetch_add(1, std::memory_order_relaxed);
  struct Formed {
    BackendCore& b;
    ~Formed() { b.forming_cluster.fetch_sub(1, std::memory_order_relaxed); }
  } formed{b};
  std::set<NetAddr> seen;
  std::vector<proto::BackendIdentity> ids;
  bool self_listed = false;
  for (const auto& a : req.addrs) {
    if (!seen.insert(a).second)
      return reply_error(make_error(Errc::kInvalid, "address " + a.to_string() + " listed twice"));
    Result<proto::BackendIdentity> id = (a == b.listen_addr())
                                            ? Result<proto::BackendIdentity>(b.identity())
                                            : b.call_addr<proto::BackendIdentity>(a, Op::kIdentify, rpc::Empty{});
    if (!id.ok())
      return reply_error(make_error(id.code(), "backend " + a.to_string() + ": " + id.error().to_string()));
    self_listed |= id->uuid == b.uuid();
    ids.push_back(std::move(*id));
  }
  if (!self_listed)
    return reply_error(make_error(Errc::kInvalid, "the backend asked (" + b.listen_addr().to_string() +
                                                      ") must be one of the cluster's backends"));
  auto cur = b.map();
  // Same members in the same order: creating again is a no-op.
  if (cur.members.size() == ids.size()) {
    bool same = true;
    for (size_t i = 0; i < ids.size(); ++i) same &= cur.members[i].uuid == ids[i].uuid;
    if (same && ids.size() > 1) return reply(cur);
  }
  uint64_t epoch = 0;
  for (const auto& id : ids) {
    if (id.fs_count != 0)
      return reply_error(make_error(Errc::kBusy, "backend " + id.addr.to_string() + " already holds " +
                                                     std::to_string(id.fs_count) +
                                                     " filesystem(s); only empty backends can form a cluster"));
    epoch = std::max(epoch, id.epoch);
  }
  ClusterMap m;
  uint64_t cid = 0;
  while (cid == 0) getrandom(&cid, sizeof cid, 0);
  m.cluster_id = cid;
  m.epoch = epoch + 1;
  m.chunk_size = cur.chunk_size;
  for (size_t i = 0; i < ids.size(); ++i)
    m.members.push_back({static_cast<uint32_t>(i), ids[i].uuid, ids[i].name, ids[i].hostname,
                         ids[i].addr, ids[i].rdma_link, ids[i].rdma_port, ids[i].legs});
  // The members adopt this backend's secret (they are empty: whoever
  // forms the cluster is trusted by them, docs/security.md). It crosses
  // the wire (unencrypted) only to a member that does not hold it yet: one
  // that already admits us as a backend (same --secret-file) gets none.
  const proto::AuthKey secret = b.secret();
  for (const auto& mem : m.members) {
    std::vector<uint8_t> give;
    if (mem.uuid != b.uuid()) {
      auto as = b.call_member<proto::UserRecord>(mem, Op::kWhoAmI, rpc::Empty{});
      if (!as.ok())
        return reply_error(make_error(as.code(), "asking " + mem.addr.to_string() + " who we are to it: " +
                                                     as.error().to_string()));
      if (as->role != proto::Role::kBackend) give.assign(secret.begin(), secret.end());
    }
    auto r = b.call_member<rpc::Empty>(mem, Op::kSetMap, proto::SetMapReq{m, true, std::move(give)});
    if (!r.ok())
      return reply_error(make_error(r.code(), "installing the map on " + mem.addr.to_string() + ": " +
                                                  r.error().to_string()));
  }
  LOG_INFO("cluster {:016x} created with {} backends", m.cluster_id, m.members.size());
  return reply(m);
}

rpc::Buffer fs_create(BackendCore& b, std::span<const uint8_t> raw) {
  if (auto fwd = forward_to_leader(b, Op::kFsCreate, raw)) return std::move(*fwd);
  auto req = decode<proto::FsCreateReq>(raw);
  if (!req.ok()) return reply_error(req.error());
  if (!proto::valid_fs_name(req->name))
    return reply_error(make_error(Errc::kInvalid, "filesystem name '" + req->name + "' " + proto::kFsNameRule));
  if (req->encrypted && req->key_check.size() != 16)
    return reply_error(make_error(Errc::kInvalid, "encrypted filesystem '" + req->name +
                                                      "' needs a 16-byte key check value (from the client's key)"));
  if (!req->encrypted && !req->key_check.empty())
    return reply_error(make_error(Errc::kInvalid, "key check value given for unencrypted filesystem '" +
                                                      req->name + "'"));
  std::lock_guard lk(b.mgmt_mu);
  ClusterMap m = b.map();
  if (m.find_fs(req->name))
    return reply_error(make_error(Errc::kExists, "filesystem '" + req->name + "' already exists"));
  proto::FsInfo fs;
  fs.id = m.next_fs_id++;
  fs.name = req->name;
  fs.created_s = proto::now_timespec().sec;
  fs.encrypted = req->encrypted;
  fs.key_check = req->key_check;
  // The root directory lives on the shard its name hashes to.
  const proto::Member* owner = m.member_by_shard(proto::shard_for_fs_root(m, fs.name));
  proto::InodePutReq root;
  root.attr.fs_id = fs.id;
  root.attr.mode = 040755;
  root.attr.nlink = 2;
  auto now = proto::now_timespec();
  root.attr.atime = root.attr.mtime = root.attr.ctime = root.attr.btime = now;
  auto made = b.call_member<proto::InodeAttr>(*owner, Op::kInodePut, root);
  if (!made.ok()) return reply_error(made.error());
  fs.root_ino = made->ino;
  m.filesystems.push_back(fs);
  ++m.epoch;
  auto inst = b.install_map(m, true);
  if (!inst.ok()) return reply_error(inst.error());
  push_map(b, m, false);
  LOG_INFO("filesystem '{}' (id {}) created, root inode {:#x}", fs.name, fs.id, fs.root_ino);
  return reply(fs);
}

rpc::Buffer fs_delete(BackendCore& b, std::span<const uint8_t> raw) {
  if (auto fwd = forward_to_leader(b, Op::kFsDelete, raw)) return std::move(*fwd);
  auto req = decode<proto::NameReq>(raw);
  if (!req.ok()) return reply_error(req.error());
  std::lock_guard lk(b.mgmt_mu);
  ClusterMap m = b.map();
  const proto::FsInfo* fs = m.find_fs(req->name);
  if (!fs) return reply_error(make_error(Errc::kNotFound, "no filesystem named '" + req->name + "'"));
  uint32_t fs_id = fs->id;
  m.filesystems.erase(m.filesystems.begin() + (fs - m.filesystems.data()));
  ++m.epoch;
  auto inst = b.install_map(m, true);
  if (!inst.ok()) return reply_error(inst.error());
  push_map(b, m, false);
  // Every member drops the inode records it holds, then every member drops
  // the chunks of those inodes it holds.
  proto::InoList all;
  for (const auto& mem : m.members) {
    auto r = b.call_member<proto::InoList>(mem, Op::kFsPurge, proto::FsIdReq{fs_id});
    if (!r.ok()) {
      LOG_WARN("fs delete: purge on {} failed: {}", mem.addr.to_string(), r.error().to_string());
      continue;
    }
    all.inos.insert(all.inos.end(), r->inos.begin(), r->inos.end());
  }
  for (size_t at = 0; at < all.inos.size(); at += 4096) {
    proto::InoList part;
    part.inos.assign(all.inos.begin() + at, all.inos.begin() + std::min(all.inos.size(), at + 4096));
    for (const auto& mem : m.members) {
      auto r = b.call_member<rpc::Empty>(mem, Op::kChunkRemoveAll, part);
      if (!r.ok()) LOG_WARN("fs delete: chunk removal on {}: {}", mem.addr.to_string(), r.error().to_string());
    }
  }
  LOG_INFO("filesystem '{}' deleted ({} inodes)", req->name, all.inos.size());
  return reply_empty();
}

// This container's staged data NICs (not forwarded: each backend keeps its own).
rpc::Buffer container_net(BackendCore& b, std::span<const uint8_t> raw) {
  auto req = decode<proto::ContainerNetReq>(raw);
  if (!req.ok()) return reply_error(req.error());
  std::lock_guard lk(b.mgmt_mu);
  auto nics = load_container_nics(b.options().data_dir);
  if (!nics.ok()) return reply_error(nics.error());
  auto it = std::find_if(nics->begin(), nics->end(), [&](const auto& n) { return n.dev == req->nic.dev; });
  if (req->action == proto::ContainerNetReq::kAdd) {
    if (auto st = check_container_nic(req->nic); !st.ok()) return reply_error(st.error());
    if (it != nics->end()) *it = req->nic;
    else nics->push_back(req->nic);
  } else if (req->action == proto::ContainerNetReq::kRemove) {
    if (it == nics->end())
      return reply_error(make_error(Errc::kNotFound, "no staged NIC " + req->nic.dev + " on " + b.options().name));
    nics->erase(it);
  } else if (req->action != proto::ContainerNetReq::kList) {
    return reply_error(make_error(Errc::kInvalid, "unknown container net action"));
  }
  if (req->action != proto::ContainerNetReq::kList) {
    if (auto st = save_container_nics(b.options().data_dir, *nics); !st.ok()) return reply_error(st.error());
    LOG_INFO("container net {} {}: applied when lanefsd restarts", req->action == 1 ? "add" : "remove",
             req->nic.dev);
  }
  proto::ContainerNetResp resp;
  resp.staged = *nics;
  resp.active = b.identity().legs;
  if (resp.active.empty()) resp.active.push_back({b.listen_addr(), b.options().label});
  return reply(resp);
}

rpc::Buffer rdma_config(BackendCore& b, std::span<const uint8_t> raw) {
  if (auto fwd = forward_to_leader(b, Op::kRdmaConfig, raw)) return std::move(*fwd);
  auto req = decode<proto::RdmaConfigReq>(raw);
  if (!req.ok()) return reply_error(req.error());
  std::lock_guard lk(b.mgmt_mu);
  ClusterMap m = b.map();
  auto& off = m.rdma_disabled_clients;
  auto it = std::find(off.begin(), off.end(), req->client);
  if (req->client.empty()) {
    if (m.rdma_enabled == req->enable) return reply(m);
    m.rdma_enabled = req->enable;
  } else if (req->enable) {
    if (it == off.end()) return reply(m);
    off.erase(it);
  } else {
    if (it != off.end()) return reply(m);
    off.push_back(req->client);
  }
  ++m.epoch;
  auto inst = b.install_map(m, true);
  if (!inst.ok()) return reply_error(inst.error());
  push_map(b, m, false);
  LOG_INFO("RDMA {} for {}", req->enable ? "enabled" : "disabled",
           req->client.empty() ? std::string("the cluster") : "client " + req->client);
  return reply(m);
}

rpc::Buffer processes(BackendCore& b) {
  auto self = b.self_member();
  proto::ProcessList list;
  uint64_t rss = process_rss_bytes();
  uint64_t up = process_uptime_s();
  uint32_t shard = self ? self->shard : 0;
  const char* roles[] = {"MANAGEMENT", "COMPUTE", "DRIVES"};
  for (uint32_t k = 0; k < 3; ++k) {
    proto::ProcessInfo p;
    // Process ids are unique in the cluster: shard * 10 + role index.
    p.id = uint64_t{shard} * 10 + k;
    p.hostname = b.hostname();
    p.container = b.options().name;
    p.ips = {b.listen_addr().ip_string()};
    p.status = "UP";
    p.roles = {roles[k]};
    p.network = b.network() + (b.rdma() && b.map().rdma_enabled ? " / RDMA" : "");
    p.core = b.core();
    p.memory_bytes = rss;
    p.uptime_s = up;
    list.processes.push_back(std::move(p));
  }
  // The leader also lists the client containers registered with it.
  // A DPDK-lane client has one FRONTEND process per core (its own id,
  // data address and CPU), as WEKA lists them.
  for (const auto& c : b.live_clients()) {
    size_t rows = std::max<size_t>(1, c.info.cores.size());
    for (size_t i = 0; i < rows; ++i) {
      proto::ProcessInfo p;
      p.id = c.process_id + i;
      p.hostname = c.info.hostname;
      p.container = c.info.hostname;
      p.ips = c.info.cores.empty() ? c.info.ips : std::vector<std::string>{c.info.core_ips[i]};
      p.status = "UP";
      p.roles = {"FRONTEND"};
      p.network = c.info.network;
      p.core = c.info.cores.empty() ? -1 : c.info.cores[i];
      p.memory_bytes = c.info.memory_bytes;
      p.uptime_s = c.info.uptime_s;
      list.processes.push_back(std::move(p));
    }
  }
  return reply(list);
}

rpc::Buffer status(BackendCore& b) {
  proto::BackendStatus s;
  s.identity = b.identity();
  s.pid = static_cast<uint64_t>(getpid());
  s.uptime_s = process_uptime_s();
  s.memory_bytes = process_rss_bytes();
  s.inodes = b.meta().inode_count();
  s.chunk_bytes = b.chunks().stored_bytes();
  s.data_read_bytes = b.data_read_bytes.load(std::memory_order_relaxed);
  s.data_written_bytes = b.data_written_bytes.load(std::memory_order_relaxed);
  uint64_t avail = 0;
  (void)b.chunks().space(&s.disk_total, &s.disk_free, &avail);
  if (auto* srv = b.server()) {
    auto st = srv->stats();
    s.sessions = st.sessions;
    s.requests = st.requests_executed;
    s.rx_invalid = st.rx_invalid_total;
    s.rx_bad_mac = st.rx_invalid[static_cast<int>(proto::DecodeError::kBadMac)];
    s.rx_replayed = st.rx_invalid[static_cast<int>(proto::DecodeError::kReplayed)];
    s.replies_from_cache = st.replies_from_cache;
  }
  s.corrupt_blocks = b.chunks().stats().corrupt_blocks;
  return reply(s);
}

rpc::Buffer local_space(BackendCore& b) {
  proto::StatFs s;
  if (auto st = b.chunks().space(&s.total_bytes, &s.free_bytes, &s.avail_bytes); !st.ok())
    return reply_error(st.error());
  s.total_inodes = uint64_t{1} << 32;
  uint64_t used = b.meta().inode_count();
  s.free_inodes = s.total_inodes > used ? s.total_inodes - used : 0;
  return reply(s);
}

rpc::Buffer statfs(BackendCore& b, const proto::FsIdReq& req) {
  auto m = b.map();
  if (!m.find_fs(req.fs_id)) return reply_error(make_error(Errc::kNotFound, "no such filesystem"));
  proto::StatFs sum;
  sum.block_size = 4096;
  for (const auto& mem : m.members) {
    auto r = b.call_member<proto::StatFs>(mem, Op::kLocalSpace, rpc::Empty{});
    if (!r.ok()) return reply_error(r.error());
    sum.total_bytes += r->total_bytes;
    sum.free_bytes += r->free_bytes;
    sum.avail_bytes += r->avail_bytes;
    sum.total_inodes += r->total_inodes;
    sum.free_inodes += r->free_inodes;
  }
  return reply(sum);
}

rpc::Buffer fs_purge(BackendCore& b, const proto::FsIdReq& req) {
  auto inos = b.meta().inodes_of_fs(req.fs_id);
  if (!inos.ok()) return reply_error(inos.error());
  auto& store = b.meta();
  // Every batch applied under the lock, one WAL sync for all of them after.
  MetaStore::Ticket last;
  auto lk = store.lock();
  for (uint64_t ino : *inos) {
    MetaStore::Batch batch;
    auto attr = store.get_inode(ino);
    if (attr.ok() && (attr->mode & 0170000) == 040000) {
      bool eof = false;
      uint64_t cookie = 0;
      while (!eof) {
        auto ents = store.list_dirents(ino, cookie, 1024, &eof);
        if (!ents.ok() || ents->empty()) break;
        for (const auto& e : *ents) {
          batch.delete_dirent(ino, e.name, e.cookie);
          cookie = e.cookie;
        }
      }
    }
    if (auto xs = store.list_xattrs(ino); xs.ok())
      for (const auto& x : *xs) batch.delete_xattr(ino, x);
    batch.delete_symlink(ino);
    batch.delete_inode(ino);
    auto t = store.apply(batch);
    if (!t.ok()) return reply_error(t.error());
    last = *t;
  }
  lk.unlock();
  if (auto st = store.make_durable(last); !st.ok()) return reply_error(st.error());
  return reply(proto::InoList{*inos});
}

}  // namespace

rpc::Buffer handle_management(BackendCore& b, proto::Op op, std::span<const uint8_t> raw,
                              const proto::UserRecord* who) {
  // Users and filesystems a session may see: all for admins and backends.
  const bool scoped = who != nullptr && !proto::role_is_admin(who->role);
  switch (op) {
    case Op::kIdentify:
      return reply(b.identity());
    case Op::kGetMap: {
      if (!scoped) return reply(b.map());
      ClusterMap m = b.map();
      // No secrets in either, but none of a client's business: the users,
      // and the filesystems (root inodes included) its token does not name.
      m.users.clear();
      std::erase_if(m.filesystems, [&](const proto::FsInfo& f) { return !who->may_use_fs(f.name); });
      return reply(m);
    }
    case Op::kSetMap: {
      auto req = decode<proto::SetMapReq>(raw);
      if (!req.ok()) return reply_error(req.error());
      std::unique_lock<std::mutex> joining;
      if (who != nullptr && who->role == proto::Role::kJoining) {
        // Joined once: checked again under the management lock, so a
        // session set up while this backend was empty cannot take it over
        // once it holds filesystems or users.
        joining = std::unique_lock(b.mgmt_mu);
        if (!req->force || req->secret.empty() || !b.joinable())
          return reply_error(make_error(Errc::kPermission, "permission denied: only a cluster create may set the "
                                                           "map of an empty backend that lacks the cluster's secret"));
      }
      if (!req->secret.empty()) {
        proto::AuthKey s{};
        std::copy(req->secret.begin(), req->secret.end(), s.begin());
        if (auto st = b.set_secret(s); !st.ok()) return reply_error(st.error());
      }
      auto r = b.install_map(req->map, req->force);
      if (!r.ok()) return reply_error(r.error());
      return reply_empty();
    }
    case Op::kClusterCreate: {
      auto req = decode<proto::ClusterCreateReq>(raw);
      if (!req.ok()) return reply_error(req.error());
      std::lock_guard lk(b.mgmt_mu);
      return cluster_create(b, *req);
    }
    case Op::kFsCreate:
      return fs_create(b, raw);
    case Op::kFsList: {
      proto::FsList l;
      for (const auto& f : b.map_ptr()->filesystems)
        if (!scoped || who->may_use_fs(f.name)) l.filesystems.push_back(f);
      return reply(l);
    }
    case Op::kFsDelete:
      return fs_delete(b, raw);
    case Op::kProcesses:
      return processes(b);
    case Op::kRdmaConfig:
      return rdma_config(b, raw);
    case Op::kContainerNet:
      return container_net(b, raw);
    case Op::kStatus:
      return status(b);
    case Op::kLocate: {
      auto req = decode<proto::LocateReq>(raw);
      if (!req.ok()) return reply_error(req.error());
      auto m = b.map();
      const proto::Member* mo = proto::meta_owner(m, req->ino);
      if (!mo) return reply_error(make_error(Errc::kNotFound, "inode's shard is not in the cluster map"));
      proto::LocateResp resp;
      resp.meta_owner = *mo;
      resp.chunk_index = req->offset / m.chunk_size;
      resp.chunk_owner = *proto::chunk_owner(m, req->ino, resp.chunk_index);
      return reply(resp);
    }
    case Op::kFsPurge: {
      auto req = decode<proto::FsIdReq>(raw);
      if (!req.ok()) return reply_error(req.error());
      return fs_purge(b, *req);
    }
    case Op::kStatfs: {
      auto req = decode<proto::FsIdReq>(raw);
      if (!req.ok()) return reply_error(req.error());
      if (scoped) {
        const proto::FsInfo* fs = b.map_ptr()->find_fs(req->fs_id);
        if (fs != nullptr && !who->may_use_fs(fs->name))
          return reply_error(make_error(Errc::kPermission, "permission denied: user '" + who->name +
                                                               "' may not use filesystem '" + fs->name + "'"));
      }
      return statfs(b, *req);
    }
    case Op::kLocalSpace:
      return local_space(b);
    case Op::kScrub:
      return handle_scrub(b, raw);
    case Op::kClientHeartbeat:
    case Op::kClientLeave: {
      if (auto fwd = forward_to_leader(b, op, raw)) return std::move(*fwd);
      auto req = decode<proto::ClientInfo>(raw);
      if (!req.ok()) return reply_error(req.error());
      if (op == Op::kClientLeave) {
        b.client_leave(req->uuid);
        return reply_empty();
      }
      b.client_heartbeat(*req);
      // The epoch lets the client notice a new map without polling it.
      return reply(rpc::I64{static_cast<int64_t>(b.map().epoch)});
    }
    default:
      return reply_error(make_error(Errc::kNotSupported, "unknown management opcode " +
                                                             std::to_string(static_cast<int>(op))));
  }
}

}  // namespace lanefs::backend

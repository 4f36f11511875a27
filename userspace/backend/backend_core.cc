#include "backend/backend_core.h"

#include <sys/random.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>

#include "common/clock.h"
#include "common/log.h"
#include "common/proc_info.h"

namespace lanefs::backend {
namespace {

constexpr std::string_view kUuidKey = "uuid";
constexpr std::string_view kMapKey = "cluster_map";

uint64_t random_u64() {
  uint64_t v = 0;
  while (v == 0)
    if (getrandom(&v, sizeof v, 0) != sizeof v) v = mono_ns() * 0x9e3779b97f4a7c15ull;
  return v;
}

// A loop's disk ring, polled and slept on by the loop.
class RingAttachment final : public rpc::LoopAttachment {
 public:
  explicit RingAttachment(std::unique_ptr<DiskRing> r) : ring_(std::move(r)) {}
  int notify_fd() const noexcept override { return ring_->notify_fd(); }
  size_t poll() override { return ring_->poll(); }
  size_t inflight() const noexcept override { return ring_->inflight(); }
  bool has_pending() const noexcept override { return ring_->has_pending(); }

 private:
  std::unique_ptr<DiskRing> ring_;
};

}  // namespace

bool is_priority_op(uint16_t raw) {
  // Data ops and peer primitives; not the user ops (80+), which call peers.
  return raw >= static_cast<uint16_t>(proto::Op::kWrite) && raw < static_cast<uint16_t>(proto::Op::kUserAdd);
}

Result<std::unique_ptr<BackendCore>> BackendCore::open(BackendOptions o) {
  if (o.data_dir.empty()) return make_error(Errc::kInvalid, "--data-dir is required");
  if (o.chunk_size < 4096 || (o.chunk_size & (o.chunk_size - 1)) != 0 || o.chunk_size > (64u << 20))
    return make_error(Errc::kInvalid, "chunk size must be a power of two between 4 KiB and 64 MiB");
  if (mkdir(o.data_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return sys_error("mkdir " + o.data_dir, errno);
  std::unique_ptr<BackendCore> b(new BackendCore(std::move(o)));
  b->hostname_ = host_name();
  if (b->opts_.name.empty()) b->opts_.name = b->hostname_;
  b->start_ns_ = mono_ns();
  LANEFS_ASSIGN_OR_RETURN(b->meta_, MetaStore::open(b->opts_.data_dir + "/meta"));
  if (struct statfs fs{}; ::statfs((b->opts_.data_dir + "/meta").c_str(), &fs) == 0)
    b->meta_memory_backed_ = fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;

  // Identity: a random uuid at first start, kept forever.
  if (auto u = b->meta_->get_kv(kUuidKey); u.ok() && u->size() == 8) {
    std::memcpy(&b->uuid_, u->data(), 8);
  } else {
    b->uuid_ = random_u64();
    MetaStore::Batch batch;
    batch.put_kv(kUuidKey, std::string_view(reinterpret_cast<const char*>(&b->uuid_), 8));
    LANEFS_TRY(b->meta_->commit(batch));
  }

  LANEFS_TRY(b->load_secret());

  // The chunk size is fixed by the cluster map once the cluster exists.
  proto::ClusterMap m;
  if (auto raw = b->meta_->get_kv(kMapKey); raw.ok()) {
    auto dm = proto::decode_msg<proto::ClusterMap>(
        std::span(reinterpret_cast<const uint8_t*>(raw->data()), raw->size()));
    if (!dm.ok()) return make_error(Errc::kCorrupt, "stored cluster map is corrupt");
    m = std::move(*dm);
  } else {
    m.cluster_id = random_u64();
    m.epoch = 1;
    m.chunk_size = b->opts_.chunk_size;
    m.members.push_back({0, b->uuid_, b->opts_.name, b->hostname_, b->opts_.listen, 0, 0, {}});
  }
  // A one-node cluster follows its backend to a new address or name.
  if (m.members.size() == 1 && m.members[0].uuid == b->uuid_ &&
      (m.members[0].addr != b->opts_.listen || m.members[0].name != b->opts_.name)) {
    m.members[0].addr = b->opts_.listen;
    m.members[0].name = b->opts_.name;
    ++m.epoch;
  }
  LANEFS_TRY(b->install_map(m, true));
  LANEFS_ASSIGN_OR_RETURN(b->chunks_, ChunkStore::open(b->opts_.data_dir, b->map_->chunk_size));
  return b;
}

BackendCore::~BackendCore() { stop(); }

Status BackendCore::start() {
  LANEFS_TRY(load_open_handles(*this));
  // The RDMA lane first: the map advertises it before the first request.
  LANEFS_TRY(start_rdma());
  advertise_identity();
  rpc::ServerOptions so;
  so.transport.kind = transport::TransportKind::kUdp;
  so.transport.bind = opts_.listen;
  so.transport.faults = opts_.faults;
  so.cpu = opts_.cpu;
  if (!opts_.dpdk)
    for (const auto& leg : opts_.extra_legs) so.transport.extra_binds.push_back(leg.addr);
  if (opts_.dpdk) {
    if (opts_.dpdk->ip != opts_.listen.ip)
      return make_error(Errc::kInvalid, "--listen " + opts_.listen.to_string() + " is not the --net address " +
                                            NetAddr{opts_.dpdk->ip, 0}.ip_string());
    so.transport.kind = transport::TransportKind::kDpdk;
    so.transport.dpdk = *opts_.dpdk;
    so.transport.extra_dpdk = opts_.dpdk_extra;
    network_ = "DPDK";
  }
  so.name = opts_.name;
  so.loops = opts_.loops;
  // Each loop does its disk IO on an io_uring of its own.
  rings_.assign(64, nullptr);
  so.attach = [this](uint32_t loop) -> std::unique_ptr<rpc::LoopAttachment> {
    auto ring = DiskRing::create();
    if (!ring.ok()) {
      LOG_WARN("loop {}: no io_uring ({}): its data requests go to the workers", loop, ring.error().to_string());
      return nullptr;
    }
    rings_[loop] = ring->get();
    return std::make_unique<RingAttachment>(std::move(*ring));
  };
  so.workers = opts_.workers;
  so.is_priority = is_priority_op;
  // Data ops block in fdatasync; enough threads keep a queue depth of 16
  // busy on the disk.
  so.priority_workers = std::max(4u, opts_.workers) * 2;
  so.authenticate = [this](const rpc::ConnectAuth& a) { return authenticate(a); };
  rpc::CallHandler handler = [this](rpc::ServerCall& c) { serve(c); };
  auto server = rpc::RpcServer::create(so, handler);
  if (!server.ok() && opts_.dpdk && opts_.dpdk->interrupt_mode && server.code() == Errc::kNotSupported) {
    // --dedicated-mode none on a driver without RX interrupts: kernel UDP.
    LOG_WARN("DPDK lane not used, kernel UDP instead: {}", server.error().to_string());
    so.transport.kind = transport::TransportKind::kUdp;
    for (const auto& leg : opts_.extra_legs) so.transport.extra_binds.push_back(leg.addr);
    network_ = "UDP";
    server = rpc::RpcServer::create(so, handler);
  }
  if (!server.ok()) return server.error();
  server_ = std::move(*server);
  // Peers are called through the same lane (on DPDK: another endpoint of
  // the same port).
  rpc::ClientOptions co;
  co.transport.kind = so.transport.kind;
  co.transport.dpdk = so.transport.dpdk;
  co.transport.extra_dpdk = so.transport.kind == transport::TransportKind::kDpdk ? opts_.dpdk_extra
                                                                                  : std::vector<transport::DpdkConfig>{};
  co.transport.bind = NetAddr{opts_.listen.ip, 0};
  co.name = "peer:" + opts_.name;
  co.connect_timeout_ns = std::min<uint64_t>(opts_.peer_timeout_ns, 3'000'000'000ull);
  co.dedicated_cores = false;  // the server loops poll the port (DPDK) and hand peer replies over
  // Peers know each other by the cluster secret (read at each connect: it
  // changes when this backend joins a cluster).
  co.credentials = [this]() -> std::optional<proto::Credentials> {
    return proto::Credentials{std::string(proto::kBackendUser), 0, proto::backend_key(secret())};
  };
  // An empty backend this one forms a cluster with shares no secret yet:
  // it admits us as joining, unkeyed (docs/security.md, "Joining"); only
  // while a cluster create of ours is handing it the map, so nobody on the
  // path can pass for a peer at any other time.
  co.allow_unkeyed = [this] {
    return forming_cluster.load(std::memory_order_relaxed) > 0 || !proto::packet_macs_enabled();
  };
  LANEFS_ASSIGN_OR_RETURN(peers_, rpc::RpcClient::create(co));
  // Again now that the server is bound: the legs' real ports.
  if (!opts_.extra_legs.empty() || !opts_.label.empty()) advertise_identity();
  refresher_ = std::thread([this] { refresh_loop(); });
  LOG_INFO("lanefsd '{}' (uuid {:016x}) serving on {} ({})", opts_.name, uuid_,
           server_->local_addr().to_string(), network_);
  return ok_status();
}

Status BackendCore::start_rdma() {
  if (opts_.rdma == BackendOptions::Rdma::kOff) return ok_status();
  transport::RdmaLaneConfig rc;
  rc.listen = true;
  // rdma_cm ports are a separate (TCP) space: reuse the UDP port number
  // (port 0: rdma_cm picks one).
  rc.bind = opts_.listen;
  auto lane = transport::make_rdma_lane(rc);
  if (!lane.ok() && lane.code() != Errc::kNotSupported && lane.code() != Errc::kNotFound) {
    rc.bind.port = 0;  // that port is taken on the RDMA side: any port
    lane = transport::make_rdma_lane(rc);
  }
  if (!lane.ok()) {
    if (opts_.rdma == BackendOptions::Rdma::kOn)
      return make_error(lane.code(), "--rdma on: " + lane.error().to_string());
    LOG_INFO("RDMA lane off: {}", lane.error().to_string());
    return ok_status();
  }
  rdma_ = std::move(*lane);
  LOG_INFO("RDMA lane on {} port {} ({}), rdma_cm listening on {}", rdma_->device().device,
           rdma_->device().port, transport::link_layer_name(rdma_->device().link),
           rdma_->local_addr().to_string());
  return ok_status();
}

void BackendCore::advertise_identity() {
  proto::ClusterMap m = map();
  const proto::Member* leader = m.member_by_shard(0);
  if (leader == nullptr || !is_self(*leader)) return;  // the leader updates other members
  auto id = identity();
  bool changed = false;
  for (auto& mem : m.members) {
    if (!is_self(mem) || (mem.rdma_link == id.rdma_link && mem.rdma_port == id.rdma_port && mem.legs == id.legs))
      continue;
    mem.rdma_link = id.rdma_link;
    mem.rdma_port = id.rdma_port;
    mem.legs = id.legs;
    changed = true;
  }
  if (!changed) return;
  ++m.epoch;
  if (auto r = install_map(m, true); !r.ok())
    LOG_WARN("advertising RDMA in the cluster map: {}", r.error().to_string());
}

void BackendCore::stop() {
  {
    std::lock_guard lk(stop_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  server_.reset();
  peers_.reset();
  rdma_.reset();
}

NetAddr BackendCore::listen_addr() const { return server_ ? server_->local_addr() : opts_.listen; }

proto::ClusterMap BackendCore::map() const {
  std::lock_guard lk(map_mu_);
  return *map_;
}

std::shared_ptr<const proto::ClusterMap> BackendCore::map_ptr() const {
  std::lock_guard lk(map_mu_);
  return map_;
}

Result<bool> BackendCore::install_map(const proto::ClusterMap& m, bool force) {
  std::lock_guard lk(map_mu_);
  if (!force && (m.cluster_id != map_->cluster_id || m.epoch <= map_->epoch)) return false;
  auto raw = proto::encode_msg(m);
  MetaStore::Batch batch;
  batch.put_kv(kMapKey, std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  LANEFS_TRY(meta_->commit(batch));
  // A user deleted (or added again, a new generation): its sessions must
  // not outlive it. Every session connects again (rare: admin actions).
  // An empty backend that gets filesystems, users or members is no longer
  // joinable: sessions admitted as joining must go too.
  auto joinable = [](const proto::ClusterMap& x) {
    return x.members.size() <= 1 && x.filesystems.empty() && x.users.empty();
  };
  bool users_gone = joinable(*map_) && !joinable(m);
  for (const auto& old : map_->users) {
    auto now = m.find_user(old.name);
    users_gone |= !now || now->generation != old.generation || now->role != old.role ||
                  now->filesystems != old.filesystems || now->root_squash != old.root_squash;
  }
  map_ = std::make_shared<const proto::ClusterMap>(m);
  if (users_gone && server_) server_->reset_sessions();
  return true;
}

std::optional<proto::Member> BackendCore::self_member() const {
  std::lock_guard lk(map_mu_);
  for (const auto& m : map_->members)
    if (m.uuid == uuid_) return m;
  return std::nullopt;
}

proto::BackendIdentity BackendCore::identity() const {
  std::lock_guard lk(map_mu_);
  proto::BackendIdentity id;
  id.uuid = uuid_;
  id.name = opts_.name;
  id.hostname = hostname_;
  id.addr = server_ ? server_->local_addr() : opts_.listen;
  id.cluster_id = map_->cluster_id;
  id.epoch = map_->epoch;
  id.fs_count = static_cast<uint32_t>(map_->filesystems.size());
  if (rdma_) {
    id.rdma_link = static_cast<uint8_t>(rdma_->device().link);
    id.rdma_port = rdma_->local_addr().port;
  }
  if (!opts_.label.empty() || !opts_.extra_legs.empty()) {
    std::vector<NetAddr> addrs = server_ ? server_->local_addrs() : std::vector<NetAddr>{opts_.listen};
    id.legs.push_back({addrs[0], opts_.label});
    for (size_t i = 0; i < opts_.extra_legs.size(); ++i)
      id.legs.push_back({i + 1 < addrs.size() ? addrs[i + 1] : opts_.extra_legs[i].addr, opts_.extra_legs[i].label});
  }
  return id;
}

Result<rpc::Buffer> BackendCore::call_member_raw(const proto::Member& m, proto::Op op,
                                                 rpc::Buffer req) {
  if (is_self(m)) return handle(op, req);
  if (!peers_) return make_error(Errc::kShutdown, "backend is not serving");
  return rpc::call_raw(*peers_, m.addr, op, std::move(req), opts_.peer_timeout_ns);
}

bool BackendCore::owns_inode(uint64_t ino) const {
  auto m = map_ptr();
  const proto::Member* o = proto::meta_owner(*m, ino);
  return o != nullptr && is_self(*o);
}

Result<std::pair<proto::InodeAttr, MetaStore::Ticket>> BackendCore::apply_write_commit(uint64_t ino, uint64_t end,
                                                                                      int64_t blocks_delta,
                                                                                      proto::Timespec mtime) {
  auto lk = meta_->lock();
  LANEFS_ASSIGN_OR_RETURN(auto a, meta_->get_inode(ino));
  if (!S_ISREG(a.mode)) return make_error(Errc::kInvalid, "not a regular file");
  a.size = std::max(a.size, end);
  a.blocks = static_cast<uint64_t>(std::max<int64_t>(0, int64_t(a.blocks) + blocks_delta));
  a.mtime = a.ctime = mtime;
  MetaStore::Batch batch;
  batch.put_inode(a);
  LANEFS_ASSIGN_OR_RETURN(auto t, meta_->apply(batch));
  return std::make_pair(a, t);
}

rpc::Buffer BackendCore::handle(proto::Op op, std::span<const uint8_t> req, const rpc::RequestInfo* info) noexcept {
  auto raw = static_cast<uint16_t>(op);
  const proto::UserRecord* who = info ? info->principal : nullptr;
  if (op == proto::Op::kWhoAmI || raw >= 80) return handle_users(*this, op, req, who);
  if (raw < 20) return handle_management(*this, op, req, who);
  if (raw < 40 || (raw >= 60 && raw < 64)) return handle_metadata(*this, op, req, info);
  return handle_data(*this, op, req);
}

void BackendCore::client_heartbeat(const proto::ClientInfo& info) {
  std::lock_guard lk(clients_mu_);
  auto& e = clients_[info.uuid];
  if (e.process_id == 0) {
    // A block of ids per client container: one per frontend core.
    e.process_id = next_client_pid_;
    next_client_pid_ += kMaxFrontendCores;
    LOG_INFO("client {} (pid {}) joined as process {}", info.hostname, info.pid, e.process_id);
  }
  e.info = info;
  e.last_seen_ns = mono_ns();
}

void BackendCore::client_leave(uint64_t uuid) {
  std::lock_guard lk(clients_mu_);
  auto it = clients_.find(uuid);
  if (it == clients_.end()) return;
  LOG_INFO("client {} (process {}) left the cluster", it->second.info.hostname, it->second.process_id);
  clients_.erase(it);
}

std::vector<BackendCore::ClientEntry> BackendCore::live_clients() {
  std::lock_guard lk(clients_mu_);
  std::vector<ClientEntry> out;
  uint64_t now = mono_ns();
  for (auto it = clients_.begin(); it != clients_.end();) {
    uint64_t limit = uint64_t{it->second.info.remove_after_secs} * 1'000'000'000ull;
    if (now - it->second.last_seen_ns > limit) {
      LOG_INFO("client {} removed after {} s without contact", it->second.info.hostname,
               it->second.info.remove_after_secs);
      it = clients_.erase(it);
      continue;
    }
    out.push_back(it->second);
    ++it;
  }
  return out;
}

void BackendCore::refresh_loop() {
  // Members other than the leader pull the map from the leader, so a member
  // that missed a push (it was down) catches up.
  uint64_t pruned_ns = mono_ns();
  for (;;) {
    {
      std::unique_lock lk(stop_mu_);
      if (stop_cv_.wait_for(lk, std::chrono::nanoseconds(opts_.map_refresh_ns),
                            [this] { return stopping_; }))
        return;
    }
    sweep_open_handles(*this);
    if (mono_ns() - pruned_ns >= 60'000'000'000ull) {  // one scan of the records a minute
      prune_request_records(*this);
      pruned_ns = mono_ns();
    }
    auto m = map();
    const proto::Member* leader = m.member_by_shard(0);
    if (leader == nullptr || is_self(*leader) || m.members.size() < 2) continue;
    auto fresh = call_addr<proto::ClusterMap>(leader->addr, proto::Op::kGetMap, rpc::Empty{});
    if (fresh.ok()) {
      auto r = install_map(*fresh, false);
      if (r.ok() && *r) LOG_INFO("cluster map epoch {} from leader", fresh->epoch);
    }
  }
}

}  // namespace lanefs::backend

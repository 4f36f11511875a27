#include "client/cluster_client.h"
#include "client/join.h"

#include <sys/stat.h>

#include <condition_variable>
#include <mutex>

#include "common/clock.h"
#include "lanefs/config.h"
#include "common/log.h"

namespace lanefs::client {

using proto::Op;

Result<std::unique_ptr<ClusterClient>> ClusterClient::connect(ClusterClientOptions o) {
  if (o.backends.empty()) return make_error(Errc::kInvalid, "no backend address given");
  std::unique_ptr<ClusterClient> c(new ClusterClient(std::move(o)));
  rpc::ClientOptions ro;
  ro.transport.kind = transport::TransportKind::kUdp;
  ro.transport.bind = c->opts_.bind;
  // Bound to the address that reaches the cluster, the transport can use
  // that interface's datagram size (much larger than 1472 on loopback or
  // with jumbo frames).
  if (ro.transport.bind.ip == 0) ro.transport.bind.ip = source_ip_for(c->opts_.backends.front());
  ro.transport.faults = c->opts_.faults;
  if (!c->opts_.ha_legs.empty() && c->opts_.dpdk.empty()) {
    ro.transport.bind.ip = c->opts_.ha_legs[0].ip;
    for (size_t i = 1; i < c->opts_.ha_legs.size(); ++i)
      ro.transport.extra_binds.push_back(NetAddr{c->opts_.ha_legs[i].ip, 0});
  }
  ro.name = c->opts_.name;
  ro.connect_timeout_ns = c->opts_.connect_timeout_ns;
  if (!c->opts_.dpdk.empty()) {
    for (size_t i = 0; i < c->opts_.dpdk.size(); ++i) {
      rpc::ClientOptions dro = ro;
      dro.transport.kind = transport::TransportKind::kDpdk;
      dro.transport.dpdk = c->opts_.dpdk[i];
      dro.transport.bind = NetAddr{c->opts_.dpdk[i].ip, 0};
      dro.transport.extra_dpdk = c->opts_.dpdk_extra;
      dro.cpu = i < c->opts_.cpus.size() ? c->opts_.cpus[i] : -1;
      auto r = rpc::RpcClient::create(dro);
      if (r.ok()) {
        c->rpcs_.push_back(std::move(*r));
        continue;
      }
      if (i == 0 && r.code() == Errc::kNotSupported && c->opts_.dpdk[0].interrupt_mode) {
        // dedicated_mode=none on a driver without RX interrupts (AWS ENA):
        // the kernel UDP lane, as WEKA does.
        c->dpdk_fallback_ = r.error().message;
        LOG_WARN("DPDK lane not used, kernel UDP instead: {}", c->dpdk_fallback_);
        break;
      }
      return r.error();
    }
    if (!c->rpcs_.empty()) {
      c->lane_ = "DPDK";
      c->datagram_lane_ = Lane::kDpdk;
      ro.transport.bind.ip = c->opts_.dpdk[0].ip;  // the RDMA device follows the data address
    }
  }
  if (c->rpcs_.empty()) {
    // DPDK legs are no use to the one kernel socket of a UDP fallback.
    if (!c->opts_.dpdk.empty()) c->opts_.ha_legs.clear();
    LANEFS_ASSIGN_OR_RETURN(auto r, rpc::RpcClient::create(ro));
    c->rpcs_.push_back(std::move(r));
  }
  LANEFS_TRY(c->refresh_map());
  if (c->opts_.rdma) {
    std::string why;
    c->rdma_ = RdmaPath::open(ro.transport.bind.ip, &why);
    if (c->rdma_->lane() != nullptr) LOG_INFO("RDMA lane on {}", c->rdma_->describe());
    else LOG_INFO("no RDMA lane: {}", why);
  }
  return c;
}

std::vector<ClusterClient::CoreInfo> ClusterClient::cores() const {
  std::vector<CoreInfo> out;
  for (size_t i = 0; i < rpcs_.size(); ++i)
    out.push_back({rpcs_[i]->local_addr(), datagram_lane_ == Lane::kDpdk && i < opts_.cpus.size() ? opts_.cpus[i] : -1});
  return out;
}

void ClusterClient::update_paths(const proto::ClusterMap& m) {
  auto on_subnet = [](const HaLeg& l, uint32_t ip) {
    uint32_t mask = l.prefix_bits == 0 ? 0 : ~uint32_t{0} << (32 - l.prefix_bits);
    return (ip & mask) == (l.ip & mask);
  };
  for (const auto& mem : m.members) {
    std::vector<proto::NetLeg> legs = mem.legs;
    if (legs.empty()) legs.push_back({mem.addr, ""});
    bool shared = false;
    for (const auto& l : opts_.ha_legs)
      for (const auto& r : legs) shared |= on_subnet(l, r.addr.ip);
    std::vector<rpc::PathSpec> specs;
    for (const auto& l : opts_.ha_legs) {
      for (const auto& r : legs) {
        if (shared && !on_subnet(l, r.addr.ip)) continue;  // no route between those subnets
        bool same = l.label == r.label || l.label.empty() || r.label.empty();
        std::string label = l.label == r.label ? l.label : l.label + "/" + r.label;
        specs.push_back({NetAddr{l.ip, 0}, r.addr, same, label});
      }
    }
    for (auto& rpc : rpcs_) rpc->set_paths(mem.addr, specs);
  }
}

std::vector<PathRow> ClusterClient::path_stats() const {
  std::vector<PathRow> out;
  for (const auto& rpc : rpcs_)
    for (auto& [server, paths] : rpc->path_stats())
      for (auto& p : paths) out.push_back({server, p});
  return out;
}

proto::ClusterMap ClusterClient::map() const {
  std::lock_guard lk(mu_);
  return map_;
}

NetAddr ClusterClient::mgmt_addr() const {
  std::lock_guard lk(mu_);
  return contact_;
}

Result<proto::ClusterMap> ClusterClient::refresh_map() {
  // Ask every given backend and member; keep the newest epoch. Stop at the
  // first answer unless the map is older than what we had.
  std::vector<NetAddr> tries = opts_.backends;
  for (const auto& m : map().members) tries.push_back(m.addr);
  std::string errors;
  uint64_t deadline = mono_ns() + opts_.connect_timeout_ns;
  for (const auto& a : tries) {
    uint64_t now = mono_ns();
    if (now >= deadline && !errors.empty()) break;
    auto m = rpc::call_typed<proto::ClusterMap>(rpc(), a, Op::kGetMap, rpc::Empty{},
                                                std::max<uint64_t>(deadline - std::min(deadline, now), 200'000'000));
    if (!m.ok()) {
      if (!errors.empty()) errors += "; ";
      errors += a.to_string() + ": " + m.error().to_string();
      continue;
    }
    proto::ClusterMap current;
    {
      std::lock_guard lk(mu_);
      if (m->cluster_id != map_.cluster_id || m->epoch >= map_.epoch) map_ = *m;
      contact_ = a;
      current = map_;
    }
    if (!opts_.ha_legs.empty()) update_paths(current);
    return current;
  }
  return make_error(Errc::kUnreachable, "no backend reachable (" + errors + ")");
}

template <class Resp, class Req>
Result<Resp> ClusterClient::mgmt_call(Op op, const Req& req) {
  return rpc::call_typed<Resp>(rpc(), mgmt_addr(), op, req, opts_.op_timeout_ns);
}

template <class Resp, class Req>
Result<Resp> ClusterClient::meta_call(uint64_t route_ino, Op op, const Req& req) {
  for (int attempt = 0;; ++attempt) {
    auto m = map();
    const proto::Member* owner = proto::meta_owner(m, route_ino);
    if (owner == nullptr) {
      if (attempt == 0) {
        LANEFS_TRY(refresh_map());
        continue;
      }
      return make_error(Errc::kNotFound, "inode " + std::to_string(route_ino) + " belongs to no backend");
    }
    auto r = rpc::call_typed<Resp>(rpc(), owner->addr, op, req, opts_.op_timeout_ns);
    if (r.code() == Errc::kWrongOwner && attempt == 0) {
      LANEFS_TRY(refresh_map());
      continue;
    }
    return r;
  }
}

Result<proto::ClusterMap> ClusterClient::cluster_create(const std::vector<NetAddr>& addrs) {
  auto r = mgmt_call<proto::ClusterMap>(Op::kClusterCreate, proto::ClusterCreateReq{addrs});
  if (r.ok()) {
    std::lock_guard lk(mu_);
    map_ = *r;
  }
  return r;
}

Result<proto::FsInfo> ClusterClient::fs_create(const std::string& name, bool encrypted) {
  auto r = mgmt_call<proto::FsInfo>(Op::kFsCreate, proto::FsCreateReq{name, encrypted});
  if (r.ok()) (void)refresh_map();
  return r;
}

Result<proto::FsInfo> ClusterClient::fs_create(const proto::FsCreateReq& req) {
  auto r = mgmt_call<proto::FsInfo>(Op::kFsCreate, req);
  if (r.ok()) (void)refresh_map();
  return r;
}

Result<std::vector<proto::FsInfo>> ClusterClient::fs_list() {
  LANEFS_ASSIGN_OR_RETURN(auto l, mgmt_call<proto::FsList>(Op::kFsList, rpc::Empty{}));
  return std::move(l.filesystems);
}

Status ClusterClient::fs_delete(const std::string& name) {
  LANEFS_TRY(mgmt_call<rpc::Empty>(Op::kFsDelete, proto::NameReq{name}));
  (void)refresh_map();
  return ok_status();
}

Result<proto::FsInfo> ClusterClient::fs_get(const std::string& name) {
  auto m = map();
  if (const auto* f = m.find_fs(name)) return *f;
  LANEFS_ASSIGN_OR_RETURN(auto fresh, refresh_map());
  if (const auto* f = fresh.find_fs(name)) return *f;
  return make_error(Errc::kNotFound, "no filesystem named '" + name + "'");
}

Result<std::vector<proto::ProcessInfo>> ClusterClient::processes() {
  auto m = map();
  std::vector<proto::ProcessInfo> out;
  for (const auto& mem : m.members) {
    auto r = rpc::call_typed<proto::ProcessList>(rpc(), mem.addr, Op::kProcesses, rpc::Empty{},
                                                 opts_.connect_timeout_ns);
    if (r.ok()) {
      for (auto& p : r->processes) out.push_back(std::move(p));
      continue;
    }
    const char* roles[] = {"MANAGEMENT", "COMPUTE", "DRIVES"};
    for (uint32_t k = 0; k < 3; ++k) {
      proto::ProcessInfo p;
      p.id = uint64_t{mem.shard} * 10 + k;
      p.hostname = mem.hostname;
      p.container = mem.name;
      p.ips = {mem.addr.ip_string()};
      p.status = "DOWN";
      p.roles = {roles[k]};
      p.network = "UDP";
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::vector<std::pair<proto::Member, Result<proto::BackendStatus>>> ClusterClient::status_all() {
  std::vector<std::pair<proto::Member, Result<proto::BackendStatus>>> out;
  for (const auto& mem : map().members)
    out.emplace_back(mem, rpc::call_typed<proto::BackendStatus>(rpc(), mem.addr, Op::kStatus, rpc::Empty{},
                                                                opts_.connect_timeout_ns));
  return out;
}

Result<proto::LocateResp> ClusterClient::locate(uint64_t ino, uint64_t offset) {
  return mgmt_call<proto::LocateResp>(Op::kLocate, proto::LocateReq{ino, offset});
}

Result<proto::StatFs> ClusterClient::statfs(uint32_t fs_id) {
  return mgmt_call<proto::StatFs>(Op::kStatfs, proto::FsIdReq{fs_id});
}

Result<proto::InodeAttr> ClusterClient::lookup(uint64_t parent, const std::string& name) {
  return meta_call<proto::InodeAttr>(parent, Op::kLookup, proto::NameAtReq{parent, name});
}
Result<proto::InodeAttr> ClusterClient::getattr(uint64_t ino) {
  return meta_call<proto::InodeAttr>(ino, Op::kGetattr, proto::InoReq{ino});
}
Result<proto::InodeAttr> ClusterClient::setattr(uint64_t ino, const proto::SetAttr& attr) {
  return meta_call<proto::InodeAttr>(ino, Op::kSetattr, proto::SetattrReq{ino, attr});
}
Result<proto::InodeAttr> ClusterClient::create(const proto::CreateReq& req) {
  return meta_call<proto::InodeAttr>(req.parent, Op::kCreate, req);
}
Result<proto::InodeAttr> ClusterClient::mkdir(uint64_t parent, const std::string& name, uint32_t mode,
                                              proto::Cred cred) {
  proto::CreateReq r;
  r.parent = parent;
  r.name = name;
  r.mode = S_IFDIR | (mode & 07777);
  r.cred = cred;
  return create(r);
}
Result<proto::InodeAttr> ClusterClient::symlink(uint64_t parent, const std::string& name,
                                                const std::string& target, proto::Cred cred) {
  proto::CreateReq r;
  r.parent = parent;
  r.name = name;
  r.mode = S_IFLNK | 0777;
  r.cred = cred;
  r.symlink_target = target;
  return create(r);
}
Result<proto::InodeAttr> ClusterClient::link(uint64_t ino, uint64_t new_parent, const std::string& new_name) {
  return meta_call<proto::InodeAttr>(new_parent, Op::kLink, proto::LinkReq{ino, new_parent, new_name});
}
Status ClusterClient::unlink(uint64_t parent, const std::string& name) {
  LANEFS_TRY(meta_call<rpc::Empty>(parent, Op::kUnlink, proto::NameAtReq{parent, name}));
  return ok_status();
}
Status ClusterClient::rmdir(uint64_t parent, const std::string& name) {
  LANEFS_TRY(meta_call<rpc::Empty>(parent, Op::kRmdir, proto::NameAtReq{parent, name}));
  return ok_status();
}
Status ClusterClient::rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                             const std::string& new_name, uint32_t flags) {
  LANEFS_TRY(meta_call<rpc::Empty>(parent, Op::kRename,
                                   proto::RenameReq{parent, name, new_parent, new_name, flags}));
  return ok_status();
}
Result<std::string> ClusterClient::readlink(uint64_t ino) {
  LANEFS_ASSIGN_OR_RETURN(auto b, meta_call<rpc::Bytes>(ino, Op::kReadlink, proto::InoReq{ino}));
  return std::string(b.data.begin(), b.data.end());
}
Result<proto::ReaddirResp> ClusterClient::readdir(uint64_t ino, uint64_t cookie, uint32_t max, bool plus) {
  return meta_call<proto::ReaddirResp>(ino, Op::kReaddir, proto::ReaddirReq{ino, cookie, max, plus});
}
Result<std::vector<proto::Dirent>> ClusterClient::list_dir(uint64_t ino) {
  std::vector<proto::Dirent> all;
  uint64_t cookie = 0;
  for (;;) {
    LANEFS_ASSIGN_OR_RETURN(auto page, readdir(ino, cookie, 1024, false));
    for (auto& e : page.entries) {
      cookie = e.cookie;
      all.push_back(std::move(e));
    }
    if (page.eof || page.entries.empty()) return all;
  }
}
Status ClusterClient::setxattr(uint64_t ino, const std::string& name, const std::string& value, uint32_t flags) {
  LANEFS_TRY(meta_call<rpc::Empty>(ino, Op::kSetxattr, proto::XattrSetReq{ino, name, value, flags}));
  return ok_status();
}
Result<std::string> ClusterClient::getxattr(uint64_t ino, const std::string& name) {
  LANEFS_ASSIGN_OR_RETURN(auto b, meta_call<rpc::Bytes>(ino, Op::kGetxattr, proto::XattrReq{ino, name}));
  return std::string(b.data.begin(), b.data.end());
}
Result<std::vector<std::string>> ClusterClient::listxattr(uint64_t ino) {
  LANEFS_ASSIGN_OR_RETURN(auto l, meta_call<proto::StringList>(ino, Op::kListxattr, proto::InoReq{ino}));
  return std::move(l.items);
}
Status ClusterClient::removexattr(uint64_t ino, const std::string& name) {
  LANEFS_TRY(meta_call<rpc::Empty>(ino, Op::kRemovexattr, proto::XattrReq{ino, name}));
  return ok_status();
}

Result<proto::InodeAttr> ClusterClient::resolve(uint64_t root, const std::string& path) {
  LANEFS_ASSIGN_OR_RETURN(auto cur, getattr(root));
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    std::string part = path.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    pos = next == std::string::npos ? path.size() : next + 1;
    if (part.empty() || part == ".") continue;
    LANEFS_ASSIGN_OR_RETURN(cur, lookup(cur.ino, part));
  }
  return cur;
}

// One chunk piece of a data call.
struct ClusterClient::RdmaPiece {
  const proto::Member* owner = nullptr;
  uint64_t offset = 0;  // file offset
  uint32_t len = 0;
  size_t pos = 0;       // offset in the caller's buffer
  std::shared_ptr<transport::RdmaLane> lane;   // keeps the lane alive while buf lives
  std::unique_ptr<transport::RdmaBuffer> buf;  // set: this piece goes over RDMA
  proto::RdmaDesc desc;
  Status status;
  int64_t blocks_delta = 0;
};

namespace {

std::vector<ClusterClient::RdmaPiece> split_pieces(const proto::ClusterMap& m, uint64_t ino,
                                                    uint64_t offset, uint64_t len) {
  std::vector<ClusterClient::RdmaPiece> v;
  uint64_t cs = m.chunk_size;
  for (uint64_t o = offset; o < offset + len;) {
    uint64_t end = std::min<uint64_t>(offset + len, (o / cs + 1) * cs);
    ClusterClient::RdmaPiece p;
    p.owner = proto::chunk_owner(m, ino, o / cs);
    p.offset = o;
    p.len = static_cast<uint32_t>(end - o);
    p.pos = o - offset;
    v.push_back(std::move(p));
    o = end;
  }
  return v;
}

}  // namespace

// Gives the piece a registered buffer and the owner's connection token;
// false (piece stays on UDP) when the RDMA lane cannot take it now.
bool ClusterClient::prepare_rdma(RdmaPiece& p) {
  if (!rdma_) return false;
  auto lane = rdma_->lane();
  if (!lane) return false;
  auto token = rdma_->token_for(*p.owner);
  if (!token.ok()) return false;
  auto buf = lane->lease(p.len);
  if (!buf.ok()) {
    rdma_->failed(*p.owner, buf.error());
    return false;
  }
  auto rb = (*buf)->remote(p.len);
  p.desc = proto::RdmaDesc{*token, rb.addr, rb.rkey, rb.len};
  p.lane = std::move(lane);
  p.buf = std::move(*buf);
  return true;
}

Status ClusterClient::write_data(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                                 int64_t* blocks_delta, bool use_rdma, DataIoInfo* info) {
  auto m = map();
  auto pieces = split_pieces(m, ino, offset, data.size());
  if (blocks_delta) *blocks_delta = 0;
  if (pieces.empty()) return ok_status();
  DataIoInfo io;
  Join join(pieces.size());
  for (auto& p : pieces) {
    proto::WriteReq req{ino, p.offset, data.subspan(p.pos, p.len)};
    if (use_rdma && prepare_rdma(p)) {
      std::memcpy(p.buf->data(), data.data() + p.pos, p.len);
      req.data = {};
      req.rdma = p.desc;
    } else if (use_rdma) {
      ++io.fallback_pieces;
    }
    rpc::call_typed_async<proto::WriteResp>(rpc(), p.owner->addr, Op::kWrite, req, opts_.op_timeout_ns,
                                            [&join, &p](Result<proto::WriteResp> r) {
                                              if (r.ok()) p.blocks_delta = r->blocks_delta;
                                              else p.status = r.error();
                                              join.done(ok_status());
                                            });
  }
  (void)join.wait();
  int64_t delta = 0;
  for (auto& p : pieces) {
    if (p.buf && !p.status.ok()) {
      // The backend could not pull the data (or did not answer): drop the
      // connection so it can no longer touch the buffer, then redo on UDP.
      rdma_->failed(*p.owner, p.status.error());
      ++io.fallback_pieces;
      proto::WriteReq req{ino, p.offset, data.subspan(p.pos, p.len)};
      auto r = rpc::call_typed<proto::WriteResp>(rpc(), p.owner->addr, Op::kWrite, req, opts_.op_timeout_ns);
      if (!r.ok()) return r.error();
      p.blocks_delta = r->blocks_delta;
    } else if (!p.status.ok()) {
      return p.status;
    } else if (p.buf) {
      ++io.rdma_pieces;
    }
    delta += p.blocks_delta;
  }
  if (blocks_delta) *blocks_delta = delta;
  if (info) *info = io;
  return ok_status();
}

Result<proto::InodeAttr> ClusterClient::write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                                              bool use_rdma, DataIoInfo* info) {
  // A zero-length write changes nothing (POSIX): it must not extend the file.
  if (data.empty()) return getattr(ino);
  int64_t delta = 0;
  LANEFS_TRY(write_data(ino, offset, data, &delta, use_rdma, info));
  proto::CommitWriteReq c{ino, offset + data.size(), delta, proto::now_timespec()};
  return meta_call<proto::InodeAttr>(ino, Op::kCommitWrite, c);
}

Result<std::vector<uint8_t>> ClusterClient::read_data(uint64_t ino, uint64_t offset, uint32_t len,
                                                      bool use_rdma, DataIoInfo* info) {
  auto m = map();
  std::vector<uint8_t> out(len, 0);
  auto pieces = split_pieces(m, ino, offset, len);
  if (pieces.empty()) return out;
  DataIoInfo io;
  Join join(pieces.size());
  auto udp_read = [this, ino](RdmaPiece& p, uint8_t* dst) -> Status {
    auto r = rpc::call_typed<rpc::Bytes>(rpc(), p.owner->addr, Op::kRead, proto::ReadReq{ino, p.offset, p.len},
                                         opts_.op_timeout_ns);
    if (!r.ok()) return r.error();
    if (r->data.size() != p.len) return make_error(Errc::kProtocol, "short read reply");
    std::memcpy(dst, r->data.data(), p.len);
    return ok_status();
  };
  for (auto& p : pieces) {
    proto::ReadReq req{ino, p.offset, p.len};
    if (use_rdma && prepare_rdma(p)) req.rdma = p.desc;
    else if (use_rdma) ++io.fallback_pieces;
    uint8_t* dst = out.data() + p.pos;
    bool via_rdma = p.buf != nullptr;
    rpc::call_typed_async<rpc::Bytes>(rpc(), p.owner->addr, Op::kRead, req, opts_.op_timeout_ns,
                                      [&join, &p, dst, via_rdma](Result<rpc::Bytes> r) {
                                        if (!r.ok()) p.status = r.error();
                                        else if (r->data.size() != (via_rdma ? 0 : p.len))
                                          p.status = make_error(Errc::kProtocol, "short read reply");
                                        else if (!via_rdma) std::memcpy(dst, r->data.data(), p.len);
                                        join.done(ok_status());
                                      });
  }
  (void)join.wait();
  for (auto& p : pieces) {
    if (p.buf && !p.status.ok()) {
      rdma_->failed(*p.owner, p.status.error());
      ++io.fallback_pieces;
      LANEFS_TRY(udp_read(p, out.data() + p.pos));
    } else if (!p.status.ok()) {
      return p.status.error();
    } else if (p.buf) {
      // The backend wrote the data into our registered buffer before it
      // answered.
      std::memcpy(out.data() + p.pos, p.buf->data(), p.len);
      ++io.rdma_pieces;
    }
  }
  if (info) *info = io;
  return out;
}

NotRdmaReason ClusterClient::rdma_availability(const std::string& client) const {
  if (!rdma_) return LANEFS_HAVE_RDMA ? NotRdmaReason::kNoLocalDevice : NotRdmaReason::kNotBuilt;
  std::lock_guard lk(mu_);
  return rdma_->availability(map_, client);
}

Result<proto::ClusterMap> ClusterClient::rdma_config(bool enable, const std::string& client) {
  auto r = mgmt_call<proto::ClusterMap>(Op::kRdmaConfig, proto::RdmaConfigReq{enable, client});
  if (r.ok()) (void)refresh_map();
  return r;
}

Result<std::vector<uint8_t>> ClusterClient::read(uint64_t ino, uint64_t offset, uint32_t len) {
  LANEFS_ASSIGN_OR_RETURN(auto a, getattr(ino));
  if (offset >= a.size) return std::vector<uint8_t>{};
  uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(len, a.size - offset));
  return read_data(ino, offset, n);
}

Result<proto::ContainerNetResp> ClusterClient::container_net(const std::string& container,
                                                            const proto::ContainerNetReq& req) {
  auto m = map();
  for (const auto& mem : m.members)
    if (mem.name == container)
      return rpc::call_typed<proto::ContainerNetResp>(rpc(), mem.addr, Op::kContainerNet, req, opts_.op_timeout_ns);
  std::string names;
  for (const auto& mem : m.members) names += (names.empty() ? "" : ", ") + mem.name;
  return make_error(Errc::kNotFound, "no backend container named '" + container + "' (containers: " + names + ")");
}

}  // namespace lanefs::client

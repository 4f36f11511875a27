#include "client/cluster_client.h"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "common/clock.h"
#include "lanefs/config.h"
#include "common/log.h"

namespace lanefs::client {

using proto::Op;

Result<std::unique_ptr<ClusterClient>> ClusterClient::connect(ClusterClientOptions o) {
  if (o.backends.empty()) return make_error(Errc::kInvalid, "no backend address given");
  if (!o.credentials) {
    LANEFS_ASSIGN_OR_RETURN(o.credentials, proto::find_token(o.token_file));
  }
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
  ro.credentials = [creds = *c->opts_.credentials]() -> std::optional<proto::Credentials> { return creds; };
  if (!c->opts_.dpdk.empty()) {
    // One endpoint per frontend core at least (its own IP or UDP port);
    // more open on the same ports as more threads call at once.
    rpc::ClientOptions dro = ro;
    for (size_t i = 0; i < c->opts_.dpdk.size(); ++i) {
      transport::TransportConfig t = ro.transport;
      t.kind = transport::TransportKind::kDpdk;
      t.dpdk = c->opts_.dpdk[i];
      t.bind = NetAddr{c->opts_.dpdk[i].ip, 0};
      t.extra_dpdk = c->opts_.dpdk_extra;
      if (i == 0) dro.transport = t;
      else dro.more_transports.push_back(t);
    }
    for (int cpu : c->opts_.cpus) LANEFS_TRY(rpc::cpu_usable(cpu));
    dro.cpus = c->opts_.cpus;
    auto r = rpc::RpcClient::create(dro);
    if (r.ok()) {
      c->rpc_ = std::move(*r);
      c->lane_ = "DPDK";
      c->datagram_lane_ = Lane::kDpdk;
      ro.transport.bind.ip = c->opts_.dpdk[0].ip;  // the RDMA device follows the data address
    } else if (r.code() == Errc::kNotSupported && c->opts_.dpdk[0].interrupt_mode) {
      // dedicated_mode=none on a driver without RX interrupts (AWS ENA):
      // the kernel UDP lane, as WEKA does.
      c->dpdk_fallback_ = r.error().message;
      LOG_WARN("DPDK lane not used, kernel UDP instead: {}", c->dpdk_fallback_);
    } else {
      return r.error();
    }
  }
  if (!c->rpc_) {
    // DPDK legs are no use to the kernel sockets of a UDP fallback.
    if (!c->opts_.dpdk.empty()) c->opts_.ha_legs.clear();
    LANEFS_ASSIGN_OR_RETURN(c->rpc_, rpc::RpcClient::create(ro));
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
  auto addrs = rpc_->core_addrs();
  for (size_t i = 0; i < addrs.size(); ++i)
    out.push_back({addrs[i], datagram_lane_ == Lane::kDpdk && i < opts_.cpus.size() ? opts_.cpus[i] : -1});
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
    rpc_->set_paths(mem.addr, specs);
  }
}

std::vector<PathRow> ClusterClient::path_stats() const {
  std::vector<PathRow> out;
  for (auto& [server, paths] : rpc_->path_stats())
    for (auto& p : paths) out.push_back({server, p});
  return out;
}

proto::ClusterMap ClusterClient::map() const {
  std::lock_guard lk(mu_);
  return *map_;
}

std::shared_ptr<const proto::ClusterMap> ClusterClient::map_ptr() const {
  std::lock_guard lk(mu_);
  return map_;
}

NetAddr ClusterClient::mgmt_addr() const {
  std::lock_guard lk(mu_);
  return contact_;
}

Result<proto::ClusterMap> ClusterClient::refresh_map() {
  // Ask the given backends and the members; keep the newest epoch. Stop at
  // the first answer unless the map is older than what we had. A backend
  // that is down answers nothing, so the first pass gives each address a
  // short try (one dead address must not use up the whole deadline), the
  // second shares what is left of it among them.
  std::vector<NetAddr> tries;
  auto add = [&](NetAddr a) {
    if (std::find(tries.begin(), tries.end(), a) == tries.end()) tries.push_back(a);
  };
  for (const auto& a : opts_.backends) add(a);
  for (const auto& m : map_ptr()->members) add(m.addr);
  std::map<NetAddr, std::string> errors;
  const uint64_t deadline = mono_ns() + opts_.connect_timeout_ns;
  constexpr uint64_t kQuickTryNs = 500'000'000, kMinTryNs = 200'000'000;
  for (int pass = tries.size() > 1 ? 0 : 1; pass < 2; ++pass) {
    for (size_t i = 0; i < tries.size(); ++i) {
      const NetAddr a = tries[i];
      uint64_t now = mono_ns();
      if (now >= deadline && !errors.empty()) break;
      uint64_t left = deadline - std::min(deadline, now);
      uint64_t t = pass == 0 ? std::min(left, kQuickTryNs) : std::max(left / (tries.size() - i), kMinTryNs);
      auto m = rpc::call_typed<proto::ClusterMap>(rpc(), a, Op::kGetMap, rpc::Empty{}, std::max(t, kMinTryNs));
      if (m.code() == Errc::kPermission) return m.error();  // not a question of reaching it
      if (!m.ok()) {
        errors[a] = m.error().to_string();
        continue;
      }
      std::shared_ptr<const proto::ClusterMap> current;
      {
        std::lock_guard lk(mu_);
        // A new epoch is a new immutable map; calls in flight keep the old one.
        if (m->cluster_id != map_->cluster_id || m->epoch >= map_->epoch)
          map_ = std::make_shared<const proto::ClusterMap>(std::move(*m));
        contact_ = a;
        current = map_;
      }
      if (!opts_.ha_legs.empty()) update_paths(*current);
      return *current;
    }
  }
  std::string why;
  for (const auto& a : tries) {
    auto it = errors.find(a);
    if (it == errors.end()) continue;
    if (!why.empty()) why += "; ";
    why += a.to_string() + ": " + it->second;
  }
  return make_error(Errc::kUnreachable, "no backend reachable (" + why + ")");
}

template <class Resp, class Req>
Result<Resp> ClusterClient::mgmt_call(Op op, const Req& req) {
  return rpc::call_typed<Resp>(rpc(), mgmt_addr(), op, req, opts_.op_timeout_ns);
}

namespace {
// The supplementary groups of process `pid` ("Groups:" of its status; empty
// when it is gone or has none). A read of /proc: only after a refusal.
std::vector<uint32_t> supplementary_groups(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::vector<uint32_t> out;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream words(line.substr(7));
    uint32_t g;
    while (out.size() < proto::kMaxGroups && words >> g) out.push_back(g);
    break;
  }
  return out;
}
}  // namespace

template <class Resp, class Req>
Result<Resp> ClusterClient::meta_call(uint64_t route_ino, Op op, const Req& req) {
  auto r = meta_call_once<Resp>(route_ino, op, req);
  if constexpr (requires { req.cred; }) {
    // Requests go without the caller's supplementary groups (looking them
    // up costs a read of /proc); a refusal is tried once more with them.
    // (kNotPermitted too: a chgrp into a supplementary group.)
    const bool refused = r.code() == Errc::kPermission || r.code() == Errc::kNotPermitted;
    if (refused && req.cred.groups.empty() && req.cred.pid != 0) {
      Req again = req;
      again.cred.groups = supplementary_groups(req.cred.pid);
      if (!again.cred.groups.empty()) return meta_call_once<Resp>(route_ino, op, again);
    }
  }
  return r;
}

template <class Resp, class Req>
Result<Resp> ClusterClient::meta_call_once(uint64_t route_ino, Op op, const Req& req) {
  for (int attempt = 0;; ++attempt) {
    auto m = map_ptr();
    const proto::Member* owner = proto::meta_owner(*m, route_ino);
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
    map_ = std::make_shared<const proto::ClusterMap>(*r);
  }
  return r;
}

namespace {
// A directory entry's name as POSIX limits it (NAME_MAX): a longer one is
// ENAMETOOLONG here, before the request could exceed the message's limit
// and come back as a malformed-message error.
Status check_name(const std::string& name) {
  if (name.size() > proto::kNameMax)
    return make_error(Errc::kNameTooLong, "name of " + std::to_string(name.size()) + " bytes (at most " +
                                              std::to_string(proto::kNameMax) + ")");
  return ok_status();
}

// A name no filesystem can have is refused here, before it could exceed
// a message field's limit on the way (shortened: it may be very long).
Error bad_fs_name(const std::string& name, Errc code) {
  std::string shown = name.size() > 80 ? name.substr(0, 64) + "... (" + std::to_string(name.size()) + " bytes)" : name;
  if (code == Errc::kNotFound) return make_error(code, "no filesystem named '" + shown + "'");
  return make_error(code, "filesystem name '" + shown + "' " + proto::kFsNameRule);
}
}  // namespace

Result<proto::FsInfo> ClusterClient::fs_create(const std::string& name, bool encrypted) {
  return fs_create(proto::FsCreateReq{name, encrypted});
}

Result<proto::FsInfo> ClusterClient::fs_create(const proto::FsCreateReq& req) {
  if (!proto::valid_fs_name(req.name)) return bad_fs_name(req.name, Errc::kInvalid);
  auto r = mgmt_call<proto::FsInfo>(Op::kFsCreate, req);
  if (r.ok()) (void)refresh_map();
  return r;
}

Result<proto::UserRecord> ClusterClient::whoami() { return mgmt_call<proto::UserRecord>(Op::kWhoAmI, rpc::Empty{}); }

Result<proto::Credentials> ClusterClient::user_add(const proto::UserRecord& u) {
  LANEFS_ASSIGN_OR_RETURN(auto t, mgmt_call<proto::TokenResp>(Op::kUserAdd, u));
  return open_sealed_token(t);
}

Result<std::vector<proto::UserRecord>> ClusterClient::user_list() {
  LANEFS_ASSIGN_OR_RETURN(auto l, mgmt_call<proto::UserList>(Op::kUserList, rpc::Empty{}));
  return std::move(l.users);
}

Status ClusterClient::user_delete(const std::string& name) {
  LANEFS_TRY(mgmt_call<rpc::Empty>(Op::kUserDelete, proto::NameReq{name}));
  return ok_status();
}

Result<proto::Credentials> ClusterClient::user_token(const std::string& name) {
  LANEFS_ASSIGN_OR_RETURN(auto t, mgmt_call<proto::TokenResp>(Op::kUserToken, proto::NameReq{name}));
  return open_sealed_token(t);
}

Result<proto::Credentials> ClusterClient::open_sealed_token(const proto::TokenResp& t) const {
  if (!opts_.credentials)
    return make_error(Errc::kPermission, "permission denied: no token of this caller to open the reply with");
  return proto::open_token(opts_.credentials->key, t);
}

Result<std::vector<proto::FsInfo>> ClusterClient::fs_list() {
  LANEFS_ASSIGN_OR_RETURN(auto l, mgmt_call<proto::FsList>(Op::kFsList, rpc::Empty{}));
  return std::move(l.filesystems);
}

Status ClusterClient::fs_delete(const std::string& name) {
  if (!proto::valid_fs_name(name)) return bad_fs_name(name, Errc::kNotFound);
  LANEFS_TRY(mgmt_call<rpc::Empty>(Op::kFsDelete, proto::NameReq{name}));
  (void)refresh_map();
  return ok_status();
}

Result<proto::FsInfo> ClusterClient::fs_get(const std::string& name) {
  if (!proto::valid_fs_name(name)) return bad_fs_name(name, Errc::kNotFound);
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
    if (r.code() == Errc::kPermission) return r.error();  // the token's role, not a down backend
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

std::vector<std::pair<proto::Member, Result<proto::ScrubResp>>> ClusterClient::scrub_all(uint32_t fs_id, bool repair,
                                                                                       uint64_t timeout_ns) {
  std::vector<std::pair<proto::Member, Result<proto::ScrubResp>>> out;
  for (const auto& mem : map().members)
    out.emplace_back(mem, rpc::call_typed<proto::ScrubResp>(rpc(), mem.addr, Op::kScrub, proto::ScrubReq{fs_id, repair},
                                                            timeout_ns));
  return out;
}

Result<proto::LocateResp> ClusterClient::locate(uint64_t ino, uint64_t offset) {
  return mgmt_call<proto::LocateResp>(Op::kLocate, proto::LocateReq{ino, offset});
}

Result<proto::StatFs> ClusterClient::statfs(uint32_t fs_id) {
  return mgmt_call<proto::StatFs>(Op::kStatfs, proto::FsIdReq{fs_id});
}

Result<proto::InodeAttr> ClusterClient::lookup(uint64_t parent, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(check_name(name));
  return meta_call<proto::InodeAttr>(parent, Op::kLookup, proto::NameAtReq{parent, name, cred});
}
Result<proto::InodeAttr> ClusterClient::getattr(uint64_t ino) {
  return meta_call<proto::InodeAttr>(ino, Op::kGetattr, proto::InoReq{ino});
}
Result<proto::InodeAttr> ClusterClient::setattr(uint64_t ino, const proto::SetAttr& attr, const proto::Cred& cred) {
  return meta_call<proto::InodeAttr>(ino, Op::kSetattr, proto::SetattrReq{ino, attr, cred});
}
Result<proto::EntryResp> ClusterClient::create_entry(const proto::CreateReq& req) {
  LANEFS_TRY(check_name(req.name));
  return meta_call<proto::EntryResp>(req.parent, Op::kCreate, req);
}
Result<proto::InodeAttr> ClusterClient::create(const proto::CreateReq& req) {
  LANEFS_ASSIGN_OR_RETURN(auto e, create_entry(req));
  return e.attr;
}
Result<proto::InodeAttr> ClusterClient::open_handle(const proto::HandleReq& req) {
  return meta_call<proto::InodeAttr>(req.ino, Op::kOpenHandle, req);
}
Status ClusterClient::renew_handles(uint64_t client, uint64_t seq, const std::vector<uint64_t>& held,
                                    const std::vector<uint64_t>& released) {
  std::map<uint32_t, std::pair<uint64_t, proto::HandleRenewReq>> by_owner;  // shard -> (route ino, request)
  auto m = map_ptr();
  auto slot = [&](uint64_t ino) -> proto::HandleRenewReq* {
    const proto::Member* owner = proto::meta_owner(*m, ino);
    if (owner == nullptr) return nullptr;
    auto [it, fresh] = by_owner.try_emplace(owner->shard);
    if (fresh) it->second = {ino, proto::HandleRenewReq{client, seq, {}}};
    return &it->second.second;
  };
  for (uint64_t ino : held)
    if (auto* r = slot(ino)) r->inos.push_back(ino);
  for (uint64_t ino : released) (void)slot(ino);
  Status first = ok_status();
  // A short deadline: renewals run on the frontend's heartbeat thread and
  // a dead backend must not hold it for response_timeout_secs (the lease
  // is much longer than a few missed renewals).
  constexpr uint64_t kRenewTimeoutNs = 2'000'000'000ull;
  for (auto& [shard, route_req] : by_owner) {
    const proto::Member* owner = proto::meta_owner(*m, route_req.first);
    auto s = rpc::call_typed<rpc::Empty>(rpc(), owner->addr, Op::kHandleRenew, route_req.second, kRenewTimeoutNs);
    if (s.code() == Errc::kWrongOwner) (void)refresh_map();  // the next renewal goes to the new owner
    if (!s.ok() && first.ok()) first = s.error();
  }
  return first;
}
bool ClusterClient::same_meta_owner(uint64_t a, uint64_t b) const {
  auto m = map_ptr();
  const proto::Member* oa = proto::meta_owner(*m, a);
  return oa != nullptr && oa == proto::meta_owner(*m, b);
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
Result<proto::EntryResp> ClusterClient::link_entry(uint64_t ino, uint64_t new_parent, const std::string& new_name,
                                                   const proto::Cred& cred) {
  LANEFS_TRY(check_name(new_name));
  return meta_call<proto::EntryResp>(new_parent, Op::kLink, proto::LinkReq{ino, new_parent, new_name, cred});
}
Result<proto::InodeAttr> ClusterClient::link(uint64_t ino, uint64_t new_parent, const std::string& new_name,
                                             const proto::Cred& cred) {
  LANEFS_ASSIGN_OR_RETURN(auto e, link_entry(ino, new_parent, new_name, cred));
  return e.attr;
}
Status ClusterClient::unlink(uint64_t parent, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(check_name(name));
  LANEFS_TRY(meta_call<rpc::Empty>(parent, Op::kUnlink, proto::NameAtReq{parent, name, cred}));
  return ok_status();
}
Status ClusterClient::rmdir(uint64_t parent, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(check_name(name));
  LANEFS_TRY(meta_call<rpc::Empty>(parent, Op::kRmdir, proto::NameAtReq{parent, name, cred}));
  return ok_status();
}
Status ClusterClient::rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                             const std::string& new_name, uint32_t flags, const proto::Cred& cred) {
  LANEFS_TRY(check_name(name));
  LANEFS_TRY(check_name(new_name));
  LANEFS_TRY(meta_call<rpc::Empty>(parent, Op::kRename,
                                   proto::RenameReq{parent, name, new_parent, new_name, flags, cred}));
  return ok_status();
}
Result<std::string> ClusterClient::readlink(uint64_t ino) {
  LANEFS_ASSIGN_OR_RETURN(auto b, meta_call<rpc::Bytes>(ino, Op::kReadlink, proto::InoReq{ino}));
  return std::string(b.data.begin(), b.data.end());
}
Result<proto::ReaddirResp> ClusterClient::readdir(uint64_t ino, uint64_t cookie, uint32_t max, bool plus,
                                                 const proto::Cred& cred) {
  return meta_call<proto::ReaddirResp>(ino, Op::kReaddir, proto::ReaddirReq{ino, cookie, max, plus, cred});
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
Status ClusterClient::setxattr(uint64_t ino, const std::string& name, const std::string& value, uint32_t flags,
                               const proto::Cred& cred) {
  LANEFS_TRY(meta_call<rpc::Empty>(ino, Op::kSetxattr, proto::XattrSetReq{ino, name, value, flags, cred}));
  return ok_status();
}
Result<std::string> ClusterClient::getxattr(uint64_t ino, const std::string& name, const proto::Cred& cred) {
  LANEFS_ASSIGN_OR_RETURN(auto b, meta_call<rpc::Bytes>(ino, Op::kGetxattr, proto::XattrReq{ino, name, cred}));
  return std::string(b.data.begin(), b.data.end());
}
Result<std::vector<std::string>> ClusterClient::listxattr(uint64_t ino, const proto::Cred& cred) {
  LANEFS_ASSIGN_OR_RETURN(auto l, meta_call<proto::StringList>(ino, Op::kListxattr, proto::XattrReq{ino, "", cred}));
  return std::move(l.items);
}
Status ClusterClient::removexattr(uint64_t ino, const std::string& name, const proto::Cred& cred) {
  LANEFS_TRY(meta_call<rpc::Empty>(ino, Op::kRemovexattr, proto::XattrReq{ino, name, cred}));
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
    auto next_attr = lookup(cur.ino, part);
    if (!next_attr.ok()) {
      // Name the path, not the backend's record ("dirent in 16").
      Errc c = next_attr.code();
      std::string upto = path.substr(0, pos);
      while (upto.size() > 1 && upto.back() == '/') upto.pop_back();
      return make_error(c, upto + ": " + (c == Errc::kNotFound ? std::string("no such file or directory")
                                                               : next_attr.error().to_string()));
    }
    cur = *next_attr;
  }
  return cur;
}

Result<proto::InodeAttr> ClusterClient::write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                                              bool use_rdma, DataIoInfo* info, const RegisteredMem* mem) {
  // A zero-length write changes nothing (POSIX): it must not extend the file.
  if (data.empty()) return getattr(ino);
  int64_t delta = 0;
  proto::InodeAttr committed;
  LANEFS_TRY(write_data(ino, offset, data, &delta, use_rdma, info, &committed, mem));
  if (committed.ino != 0) return committed;
  proto::CommitWriteReq c{ino, offset + data.size(), delta, proto::now_timespec()};
  return meta_call<proto::InodeAttr>(ino, Op::kCommitWrite, c);
}

NotRdmaReason ClusterClient::rdma_availability(const std::string& client) const {
  if (!rdma_) return LANEFS_HAVE_RDMA ? NotRdmaReason::kNoLocalDevice : NotRdmaReason::kNotBuilt;
  std::lock_guard lk(mu_);
  return rdma_->availability(*map_, client);
}

Result<proto::ClusterMap> ClusterClient::rdma_config(bool enable, const std::string& client) {
  auto r = mgmt_call<proto::ClusterMap>(Op::kRdmaConfig, proto::RdmaConfigReq{enable, client});
  if (r.ok()) (void)refresh_map();
  return r;
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

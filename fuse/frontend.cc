#include "fuse/frontend.h"

#include <arpa/inet.h>

#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "common/proc_info.h"
#include "fuse/ops.h"

namespace lanefs::fuse {

using nlohmann::json;

std::string control_socket_path(const std::string& run_dir) { return run_dir + "/frontend.sock"; }
std::string pid_file_path(const std::string& run_dir) { return run_dir + "/frontend.pid"; }

Frontend::Frontend(FrontendOptions opts) : opts_(std::move(opts)) {
  while (uuid_ == 0) getrandom(&uuid_, sizeof uuid_, 0);
  start_ns_ = mono_ns();
}

Frontend::~Frontend() {
  stop_.store(true);
  if (control_.joinable()) control_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

Status Frontend::start() {
  if (mkdir(opts_.run_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return sys_error("mkdir " + opts_.run_dir, errno);
  std::string path = control_socket_path(opts_.run_dir);
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return sys_error("socket", errno);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return make_error(Errc::kInvalid, "run directory path too long");
  std::strcpy(a.sun_path, path.c_str());
  // A socket file whose owner died is stale; a live one means another frontend.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    close(probe);
    return make_error(Errc::kBusy, "another lanefs-frontend serves " + path);
  }
  close(probe);
  unlink(path.c_str());
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return sys_error("bind " + path, errno);
  chmod(path.c_str(), 0600);
  if (listen(listen_fd_, 16) != 0) return sys_error("listen", errno);
  std::ofstream(pid_file_path(opts_.run_dir), std::ios::trunc) << getpid() << "\n";
  control_ = std::thread([this] { control_loop(); });
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
  LOG_INFO("lanefs-frontend (pid {}) serving {}", getpid(), path);
  return ok_status();
}

void Frontend::request_stop() { stop_.store(true); }

void Frontend::control_loop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    // One request line per connection, bounded in size and time.
    timeval tv{30, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char buf[4096];
    while (line.find('\n') == std::string::npos && line.size() < 65536) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    std::string reply = handle_line(line.substr(0, line.find('\n'))) + "\n";
    size_t off = 0;
    while (off < reply.size()) {
      ssize_t n = write(c, reply.data() + off, reply.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(c);
  }
}

std::string Frontend::handle_line(const std::string& line) {
  json req = json::parse(line, nullptr, false);
  if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string())
    return json{{"ok", false}, {"error", "malformed control request"}}.dump();
  std::string op = req["op"];
  if (op == "ps") return do_ps();
  if (op == "mount") {
    {
      std::lock_guard lk(mu_);
      if (exiting_) return json{{"ok", false}, {"error", "lanefs-frontend is exiting"}, {"retry", true}}.dump();
      ++pending_mounts_;  // run() must not exit while this mount is being made
    }
    auto r = do_mount(req.value("source", ""), req.value("target", ""), req.value("options", ""));
    {
      std::lock_guard lk(mu_);
      --pending_mounts_;
    }
    if (!r.ok()) {
      LOG_WARN("mount {} on {} failed: {}", req.value("source", ""), req.value("target", ""), r.error().to_string());
      {
        std::lock_guard lk(mu_);
        if (!ever_mounted_ && mounts_.empty()) first_failed_ = true;
      }
      return json{{"ok", false}, {"error", r.error().to_string()}, {"code", std::string(errc_name(r.code()))}}.dump();
    }
    return json{{"ok", true}, {"target", *r}}.dump();
  }
  return json{{"ok", false}, {"error", "unknown control op '" + op + "'"}}.dump();
}

Result<std::shared_ptr<client::ClusterClient>> Frontend::cluster_for(const client::MountSource& src,
                                                                     const client::MountOptions& o) {
  std::string key;
  for (const auto& b : src.backends) key += b.to_string() + ",";
  key += "|" + std::to_string(o.response_timeout_secs) + "|" + std::to_string(o.local_ip) + "|" +
         o.net.to_string() + (o.dedicated_full ? "|full" : "|none") + "|" + std::to_string(o.num_cores);
  for (int c : o.cores) key += "," + std::to_string(c);
  for (const auto& d : o.ha_devs) key += "|ha=" + d;
  for (const auto& n : o.extra_nets) key += "|net=" + n.to_string();
  {
    std::lock_guard lk(mu_);
    auto it = clusters_.find(key);
    if (it != clusters_.end()) return it->second.client;
  }
  client::ClusterClientOptions co;
  co.backends = src.backends;
  co.connect_timeout_ns = uint64_t{o.connect_timeout_secs} * 1'000'000'000ull;
  co.op_timeout_ns = uint64_t{o.response_timeout_secs} * 1'000'000'000ull;
  co.name = "frontend:" + host_name();
  co.bind = NetAddr{o.local_ip, 0};
  co.rdma = true;  // the lane policy decides per IO whether RDMA is used
  if (!o.ha_devs.empty()) {
    LANEFS_ASSIGN_OR_RETURN(auto labels, client::load_net_resources(client::resources_path()));
    for (const auto& dev : o.ha_devs) {
      auto a = interface_ipv4(dev);
      if (!a.ok()) return make_error(Errc::kInvalid, "mount option 'net:ha=" + dev + "': " + a.error().message);
      co.ha_legs.push_back({dev, a->ip, a->prefix_bits, client::label_of(labels, dev)});
    }
  }
  if (!o.net.udp) {
    // DPDK starts once per process: a later lane cannot get other memory.
    const uint32_t want_mb = o.memory_mb + o.dpdk_base_memory_mb;
    {
      std::lock_guard lk(mu_);
      if (dpdk_memory_mb_ != 0 && dpdk_memory_mb_ != want_mb)
        return make_error(Errc::kInvalid,
                          "this frontend's DPDK already runs with " + std::to_string(dpdk_memory_mb_) +
                              " MiB (memory_mb + dpdk_base_memory_mb of its first DPDK mount); this mount asks for " +
                              std::to_string(want_mb) + ": use the same values, or unmount every lanefs mount first");
      dpdk_memory_mb_ = want_mb;
    }
    // One endpoint per frontend core: its own IP (non-shared) or the one
    // shared IP (each core its own UDP port).
    for (uint32_t i = 0; i < o.num_cores; ++i) {
      transport::DpdkConfig d = o.net.dpdk_config(o.net.ips[o.net.ips.size() > 1 ? i : 0], !o.dedicated_full);
      d.memory_mb = o.memory_mb + o.dpdk_base_memory_mb;
      d.no_huge = !transport::hugepages_cover(d.memory_mb);
      d.queues = static_cast<uint16_t>(o.num_cores);  // one RX/TX queue pair per core
      co.dpdk.push_back(d);
    }
    co.cpus = o.cores;
    if (!o.extra_nets.empty()) {
      // HA on the DPDK lane: every core has an endpoint on every port.
      LANEFS_ASSIGN_OR_RETURN(auto labels, client::load_net_resources(client::resources_path()));
      // Labels are kept per interface name: tap:IF and afpacket:IF use IF's.
      auto label = [&](const std::string& dev) {
        for (const char* pre : {"tap:", "afpacket:"})
          if (dev.rfind(pre, 0) == 0) return client::label_of(labels, dev.substr(std::strlen(pre)));
        return client::label_of(labels, dev);
      };
      co.ha_legs.push_back({o.net.device, o.net.ip(), o.net.prefix_bits, label(o.net.device)});
      for (const auto& n : o.extra_nets) {
        transport::DpdkConfig d = n.dpdk_config(n.ip(), !o.dedicated_full);
        d.memory_mb = co.dpdk[0].memory_mb;
        d.no_huge = co.dpdk[0].no_huge;
        d.queues = co.dpdk[0].queues;
        co.dpdk_extra.push_back(d);
        co.ha_legs.push_back({n.device, n.ip(), n.prefix_bits, label(n.device)});
      }
    }
  }
  LANEFS_ASSIGN_OR_RETURN(auto c, client::ClusterClient::connect(co));
  std::shared_ptr<client::ClusterClient> shared = std::move(c);
  std::lock_guard lk(mu_);
  auto& slot = clusters_[key];
  if (!slot.client) {
    slot.client = shared;
    slot.last_contact_ns = mono_ns();
  }
  return slot.client;
}

Result<std::string> Frontend::do_mount(const std::string& source, const std::string& target,
                                       const std::string& options) {
  LANEFS_ASSIGN_OR_RETURN(auto src, client::parse_mount_source(source));
  LANEFS_ASSIGN_OR_RETURN(auto o, client::parse_mount_options(options));
  char real[PATH_MAX];
  struct stat st {};
  auto resolve = [&]() -> int {  // 0 or errno
    if (realpath(target.c_str(), real) == nullptr) return errno;
    return stat(real, &st) == 0 ? 0 : errno;
  };
  int err = resolve();
  if (err == ENOTCONN) {
    // A FUSE mount whose server died (kill -9 of a frontend) is still
    // attached there: a dead lanefs mount is detached, anything else named.
    LANEFS_TRY(detach_dead_mount(target));
    err = resolve();
  }
  if (err != 0) return sys_error("mount point " + target, err);
  if (!S_ISDIR(st.st_mode)) return make_error(Errc::kNotDir, "mount point " + target + " is not a directory");
  {
    std::lock_guard lk(mu_);
    for (const auto& m : mounts_) {
      if (m->target != real || m->finished.load()) continue;
      if (m->source != src.to_string())
        return make_error(Errc::kBusy, std::string(real) + " is already a lanefs mount of " + m->source);
      // `mount -a` run twice asks again for what is mounted: that is fine;
      // other options are not silently dropped.
      if (m->opts.to_string() == o.to_string()) return std::string(real);
      return make_error(Errc::kBusy, std::string(real) + " is already mounted from " + m->source +
                                         " with other options (" + options_differ(m->opts, o) +
                                         "); unmount it first to mount it with these");
    }
  }
  LANEFS_ASSIGN_OR_RETURN(auto cluster, cluster_for(src, o));
  LANEFS_ASSIGN_OR_RETURN(auto fs, cluster->fs_get(src.fs_name));

  auto m = std::make_unique<Mount>();
  m->source = src.to_string();
  m->target = real;
  m->opts = o;
  LANEFS_ASSIGN_OR_RETURN(m->fs, client::MountFs::open(cluster, fs, o));  // checks an encrypted fs's key
  // The mount speaks FUSE itself (fuse/session.h): INIT is negotiated by
  // the loop thread, which then serves the classic /dev/fuse channel.
  LANEFS_ASSIGN_OR_RETURN(m->session, Session::mount({m->target, m->source, o.read_only, m->fs.get()}));
  m->kernel_cache = make_kernel_cache(*m->session);
  m->fs->set_kernel_cache(m->kernel_cache.get());
  if (Status st = m->session->start(); !st.ok()) {
    const bool retry_classic = o.fuse_channel == client::FuseChannel::kAuto && m->session->uring_negotiated();
    m->session->abort();
    m->session->wait();
    if (!retry_classic) return st.error();
    // auto: io_uring was negotiated but its rings failed; the same mount
    // again on the classic channel.
    LOG_WARN("FUSE io_uring channel on {} failed ({}); mounting it again on the classic channel", m->target,
             st.error().to_string());
    m->fs->set_kernel_cache(nullptr);
    client::MountOptions classic = o;
    classic.fuse_channel = client::FuseChannel::kClassic;
    LANEFS_ASSIGN_OR_RETURN(m->fs, client::MountFs::open(cluster, fs, classic));
    LANEFS_ASSIGN_OR_RETURN(m->session, Session::mount({m->target, m->source, o.read_only, m->fs.get()}));
    m->kernel_cache = make_kernel_cache(*m->session);
    m->fs->set_kernel_cache(m->kernel_cache.get());
    if (Status again = m->session->start(); !again.ok()) {
      m->session->abort();
      m->session->wait();
      return again.error();
    }
  }
  m->mounted_ns = mono_ns();
  Mount* raw = m.get();
  m->loop = std::thread([raw] {
    raw->session->wait();
    raw->finished.store(true);
  });
  LOG_INFO("mounted {} on {} ({})", m->source, m->target, o.to_string());
  std::lock_guard lk(mu_);
  mounts_.push_back(std::move(m));
  ever_mounted_ = true;
  hb_kick_ = true;  // register with the cluster now, not at the next beat
  hb_cv_.notify_all();
  return std::string(real);
}

namespace {
// HA: the mount's paths (one row per core's session path), summed over cores.
json paths_json(client::ClusterClient& c) {
  std::map<std::string, json> rows;
  for (const auto& r : c.path_stats()) {
    const auto& p = r.path;
    std::string local = p.spec.local.ip ? p.spec.local.ip_string() : "primary";
    std::string key = r.server.to_string() + "|" + local + "|" + p.spec.remote.to_string();
    auto& j = rows[key];
    if (j.is_null()) {
      j = {{"backend", r.server.to_string()}, {"local", local}, {"remote", p.spec.remote.to_string()},
           {"label", p.spec.label}, {"preferred", p.spec.preferred}, {"health", p.health},
           {"state", p.healthy ? "up" : "down"}, {"tx_packets", 0}, {"tx_bytes", 0}, {"rx_packets", 0},
           {"timeouts", 0}, {"failovers", 0}, {"failbacks", 0}};
    }
    j["health"] = std::min<uint32_t>(j["health"].get<uint32_t>(), p.health);
    if (!p.healthy) j["state"] = "down";
    for (auto [k, v] : {std::pair{"tx_packets", p.tx_packets}, {"tx_bytes", p.tx_bytes}, {"rx_packets", p.rx_packets},
                        {"timeouts", p.timeouts}, {"failovers", p.failovers}, {"failbacks", p.failbacks}})
      j[k] = j[k].get<uint64_t>() + v;
  }
  json out = json::array();
  for (auto& [k, v] : rows) out.push_back(std::move(v));
  return out;
}

// Per-lane IO counters of a mount and why its IO did not take RDMA.
json lanes_json(client::MountFs& fs) {
  const auto& c = fs.lane_counters();
  json lanes = json::object();
  for (size_t i = 0; i < client::kLaneCount; ++i)
    lanes[std::string(client::lane_name(static_cast<client::Lane>(i)))] = {
        {"ios", c.lanes[i].ios.load()}, {"bytes", c.lanes[i].bytes.load()}};
  json not_rdma = json::object();
  for (size_t i = 1; i < client::kNotRdmaReasonCount; ++i)
    if (uint64_t n = c.not_rdma[i].load())
      not_rdma[std::string(client::not_rdma_reason_key(static_cast<client::NotRdmaReason>(i)))] = n;
  // Whether a large IO would take RDMA right now, and if not why.
  auto now = fs.fs().encrypted ? client::NotRdmaReason::kEncrypted
                               : fs.cluster().rdma_availability(host_name());
  auto* path = fs.cluster().rdma_path();
  return {{"encrypted", fs.fs().encrypted},
          {"per_lane", lanes},
          {"not_rdma", not_rdma},
          {"fallbacks", c.fallbacks.load()},
          {"rdma_device", path ? path->describe() : "none"},
          {"rdma_now", now == client::NotRdmaReason::kNone
                           ? std::string("yes")
                           : "no: " + std::string(client::not_rdma_reason_text(now))},
          {"rdma_read_min", fs.options().rdma_read_min},
          {"rdma_write_min", fs.options().rdma_write_min},
          {"paths", paths_json(fs.cluster())}};
}
// RPCs this frontend sent to the mount's cluster, per operation (shared by
// the mounts of one cluster connection).
json rpcs_json(client::ClusterClient& c) {
  auto st = c.rpc().stats();
  json out = json::object();
  for (size_t i = 0; i < rpc::RpcCounters::kOpSlots; ++i)
    if (st.calls_by_op[i]) out[proto::op_name(static_cast<proto::Op>(i))] = st.calls_by_op[i];
  return out;
}
// Loss recovery on the mount's cluster connection: a lane that drops
// packets shows here first.
json rpc_health_json(client::ClusterClient& c) {
  auto st = c.rpc().stats();
  return {{"retransmits", st.retransmits}, {"rto_events", st.rto_events}, {"timeouts", st.calls_timed_out},
          {"session_resets", st.session_resets}, {"unexpected_packets", st.unexpected_packets},
          {"invalid_packets", st.rx_invalid_total}, {"rx_packets", st.rx_packets}, {"tx_packets", st.tx_packets}};
}
}  // namespace

std::string Frontend::do_ps() {
  json j = {{"ok", true}, {"pid", getpid()}, {"uptime_s", process_uptime_s()}, {"hostname", host_name()},
            {"memory_bytes", process_rss_bytes()}, {"mounts", json::array()}};
  std::lock_guard lk(mu_);
  for (const auto& m : mounts_) {
    if (m->finished.load()) continue;
    const auto& io = m->fs->io_stats();
    j["mounts"].push_back({{"source", m->source}, {"target", m->target}, {"options", m->opts.to_string()},
                           {"mounted_s", (mono_ns() - m->mounted_ns) / 1'000'000'000ull},
                           {"reads", io.reads.load()}, {"read_bytes", io.read_bytes.load()},
                           {"writes", io.writes.load()}, {"write_bytes", io.write_bytes.load()},
                           {"errors", io.errors.load()}, {"lanes", lanes_json(*m->fs)},
                           {"rpcs", rpcs_json(m->fs->cluster())},
                           {"rpc_health", rpc_health_json(m->fs->cluster())},
                           {"channel", m->session->uring() ? "uring" : "classic"},
                           {"channel_reason", m->session->channel_reason()},
                           {"fuse_requests_classic", m->session->requests_classic()},
                           {"fuse_requests_uring", m->session->requests_uring()}});
  }
  return j.dump();
}

proto::ClientInfo Frontend::self_info(uint32_t remove_after_secs) {
  proto::ClientInfo ci;
  ci.uuid = uuid_;
  ci.hostname = host_name();
  ci.pid = static_cast<uint64_t>(getpid());
  ci.memory_bytes = process_rss_bytes();
  ci.uptime_s = process_uptime_s();
  ci.remove_after_secs = remove_after_secs;
  ci.network = "UDP";
  return ci;
}


void Frontend::heartbeat_loop() {
  // Every 100 ms: the mounts' open-handle renewals (closes reach the
  // backends within that, in one request per backend); every second, or
  // when kicked (a new mount): the heartbeat to each cluster's leader.
  uint64_t last_beat = 0;
  bool kicked = true;
  while (!stop_.load()) {
    if (kicked || mono_ns() - last_beat >= 1'000'000'000ull) {
      beat_clusters();
      last_beat = mono_ns();
    }
    std::vector<std::shared_ptr<client::MountFs>> live;
    {
      std::lock_guard lk(mu_);
      for (const auto& m : mounts_)
        if (!m->finished.load()) live.push_back(m->fs);
    }
    for (auto& fs : live) fs->renew_handles();
    std::unique_lock lk(mu_);
    hb_cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return hb_kick_ || stop_.load(); });
    kicked = std::exchange(hb_kick_, false);
  }
}

void Frontend::beat_clusters() {
  {
    std::vector<std::pair<Cluster*, std::pair<uint32_t, uint32_t>>> work;  // cluster, (mounts, remove_after)
    {
      std::lock_guard lk(mu_);
      for (auto& [key, c] : clusters_) {
        uint32_t n = 0, remove_after = 3600;
        for (const auto& m : mounts_)
          if (!m->finished.load() && &m->fs->cluster() == c.client.get()) {
            ++n;
            remove_after = std::min(remove_after, m->opts.remove_after_secs);
          }
        if (n) work.push_back({&c, {n, remove_after}});
      }
    }
    for (auto& [c, nr] : work) {
      auto map = c->client->map();
      const proto::Member* leader = map.member_by_shard(0);
      if (!leader) continue;
      proto::ClientInfo ci = self_info(nr.second);
      ci.mounts = nr.first;
      ci.network = c->client->lane();
      // This client uses RDMA when the policy's cluster/host rules allow it
      // (a short back-off after a failure does not change that).
      auto avail = c->client->rdma_availability(ci.hostname);
      if (avail == client::NotRdmaReason::kNone || avail == client::NotRdmaReason::kUnavailable)
        ci.network += " / RDMA";
      ci.ips = {NetAddr{source_ip_for(leader->addr), 0}.ip_string()};
      if (c->client->datagram_lane() == client::Lane::kDpdk) {
        for (const auto& core : c->client->cores()) {
          ci.cores.push_back(core.cpu);
          ci.core_ips.push_back(core.addr.ip_string());
        }
        ci.ips = ci.core_ips;
      }
      auto r = rpc::call_typed<rpc::I64>(c->client->rpc(), leader->addr, proto::Op::kClientHeartbeat, ci,
                                         2'000'000'000ull);
      uint64_t now = mono_ns();
      // The leader answers with its map epoch: a newer map (filesystems,
      // members, RDMA settings) is fetched at once.
      if (r.ok() && r->v > static_cast<int64_t>(map.epoch)) (void)c->client->refresh_map();
      if (r.ok()) {
        if (!c->registered) LOG_INFO("joined cluster {:016x} via {}", map.cluster_id, leader->addr.to_string());
        c->registered = true;
        c->last_contact_ns = now;
      } else if (c->registered && now - c->last_contact_ns > uint64_t{nr.second} * 1'000'000'000ull) {
        LOG_WARN("no backend reachable for {} s (remove_after_secs): left cluster {:016x}", nr.second,
                 map.cluster_id);
        c->registered = false;
      }
    }
  }
}

void Frontend::reap_finished() {
  std::vector<std::unique_ptr<Mount>> done;
  {
    std::lock_guard lk(mu_);
    for (auto it = mounts_.begin(); it != mounts_.end();) {
      if ((*it)->finished.load()) {
        done.push_back(std::move(*it));
        it = mounts_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& m : done) {
    m->loop.join();
    m->session->unmount();
    LOG_INFO("unmounted {} from {}", m->source, m->target);
  }
}

void Frontend::leave_all() {
  std::lock_guard lk(mu_);
  for (auto& [key, c] : clusters_) {
    if (!c.registered) continue;
    auto map = c.client->map();
    if (const proto::Member* leader = map.member_by_shard(0)) {
      auto r = rpc::call_typed<rpc::Empty>(c.client->rpc(), leader->addr, proto::Op::kClientLeave,
                                           self_info(0), 2'000'000'000ull);
      if (r.ok()) LOG_INFO("left cluster {:016x}", map.cluster_id);
    }
    c.registered = false;
  }
}

int Frontend::run() {
  while (!stop_.load()) {
    usleep(100'000);
    reap_finished();
    std::lock_guard lk(mu_);
    if (pending_mounts_ > 0) continue;
    if (((ever_mounted_ || first_failed_) && mounts_.empty()) ||
        (!ever_mounted_ && mono_ns() - start_ns_ > opts_.idle_exit_ns)) {
      if (!ever_mounted_ && first_failed_) LOG_INFO("the mount that started this frontend failed; exiting");
      exiting_ = true;  // from now on mount requests are told to retry
      break;
    }
  }
  {
    std::lock_guard lk(mu_);
    exiting_ = true;
  }
  if (stop_.load()) {
    // Asked to stop: detach every mount (applications then see ENOTCONN
    // once the kernel drops the connection).
    std::vector<Mount*> live;
    {
      std::lock_guard lk(mu_);
      for (auto& m : mounts_) live.push_back(m.get());
    }
    for (auto* m : live) m->session->unmount();
    for (int i = 0; i < 50; ++i) {
      reap_finished();
      std::lock_guard lk(mu_);
      if (mounts_.empty()) break;
      usleep(100'000);
    }
  }
  // Stop serving the control socket before leaving the cluster, so a mount
  // started now finds no frontend (or a new one) instead of this exiting
  // one, and no heartbeat re-registers us after the leave.
  stop_.store(true);
  hb_cv_.notify_all();
  if (control_.joinable()) control_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  unlink(control_socket_path(opts_.run_dir).c_str());
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  leave_all();
  unlink(pid_file_path(opts_.run_dir).c_str());
  LOG_INFO("lanefs-frontend exiting");
  return 0;
}

}  // namespace lanefs::fuse

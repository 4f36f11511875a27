// Frontend: making a mount (frontend.h): the cluster connection it shares
// with other mounts of the same cluster and options, the MountFs, and the
// kernel channel that serves it (fuse/mount.h).
#include <limits.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "common/proc_info.h"
#include "frontend/frontend.h"
#include "fuse/mount.h"

namespace lanefs::frontend {

Result<std::shared_ptr<client::ClusterClient>> Frontend::cluster_for(const client::MountSource& src,
                                                                     const client::MountOptions& o) {
  // Mounts presenting different tokens get sessions of their own.
  if (o.auth_token_path.empty())
    return make_error(Errc::kPermission, "no token: give -o auth_token_path=FILE (docs/security.md)");
  auto loaded = proto::load_token_file(o.auth_token_path);
  if (!loaded.ok()) {
    if (loaded.code() != Errc::kNotFound && loaded.code() != Errc::kPermission) return loaded.error();
    return make_error(Errc::kPermission, "permission denied: no usable token: " + loaded.error().message +
                                             " (mount option auth_token_path=FILE, default /etc/lanefs/client.token)");
  }
  const proto::Credentials creds = std::move(*loaded);
  // (The key's hash too: a recreated cluster's token has the same user.)
  std::string key = creds.user + "#" + std::to_string(creds.generation) + "#" +
                    std::to_string(std::hash<std::string_view>{}(std::string_view(
                        reinterpret_cast<const char*>(creds.key.data()), creds.key.size()))) + "|";
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
  co.credentials = creds;
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
  // A mount whose frontend died (kill -9) is still attached there: a
  // lanefs.ko mount of the same filesystem is taken over by this frontend
  // (its processes and open files carry on); another dead lanefs mount is
  // detached; anything else is named.
  std::optional<DeadMount> dead;
  if (err == ENOTCONN) {
    LANEFS_ASSIGN_OR_RETURN(dead, dead_mount(target));
    std::string why;
    if (attachable(*dead, src.to_string(), o, &why)) {
      std::snprintf(real, sizeof real, "%s", dead->path.c_str());
      st.st_mode = S_IFDIR;
      err = 0;
    } else {
      LOG_INFO("not taking over the dead lanefs mount at {}: {}", dead->path, why);
      LANEFS_TRY(detach_dead_mount(*dead));
      dead.reset();
      err = resolve();
    }
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
  // What the token allows (the backends enforce it too): its filesystems,
  // and read-only mounts for a readonly user.
  LANEFS_ASSIGN_OR_RETURN(auto who, cluster->whoami());
  if (!who.may_use_fs(src.fs_name))
    return make_error(Errc::kPermission, "permission denied: the token of user '" + who.name + "' (" +
                                             o.auth_token_path + ") does not name filesystem '" + src.fs_name + "'");
  if (who.role == proto::Role::kReadonly && !o.read_only)
    return make_error(Errc::kPermission, "permission denied: user '" + who.name +
                                             "' has a readonly token: mount with -o ro");
  LANEFS_ASSIGN_OR_RETURN(auto fs, cluster->fs_get(src.fs_name));

  auto m = std::make_unique<Mount>();
  m->source = src.to_string();
  m->target = real;
  m->opts = o;
  LANEFS_ASSIGN_OR_RETURN(m->fs, client::MountFs::open(cluster, fs, o));  // checks an encrypted fs's key
  m->fs->set_root_squash(who.root_squash);
  if (dead) {
    auto ch = fuse::mount_client({m->target, m->source, m->fs.get(), /*attach=*/true});
    if (ch.ok()) {
      m->channel = std::move(*ch);
      m->attached = true;
      LOG_WARN("took over the lanefs mount at {} that a dead frontend left", m->target);
    } else if (ch.code() == Errc::kBusy) {
      return ch.error();  // the kernel sees a live frontend on it: not ours to detach
    } else {
      // An older lanefs.ko, another cache mode: the dead mount goes, a new one comes.
      LOG_WARN("taking over the dead lanefs mount at {} failed ({}); detaching it and mounting anew", m->target,
               ch.error().to_string());
      err = resolve();
      if (err == ENOTCONN) {
        LANEFS_TRY(detach_dead_mount(*dead));
        err = resolve();
      }
      if (err != 0) return sys_error("mount point " + target, err);
    }
  }
  // The kernel's requests reach it through lanefs.ko or FUSE (client=,
  // fuse_channel=); the channel is served by its own threads from here on.
  if (!m->channel) {
    LANEFS_ASSIGN_OR_RETURN(m->channel, fuse::mount_client({m->target, m->source, m->fs.get()}));
  }
  m->mounted_ns = mono_ns();
  Mount* raw = m.get();
  m->loop = std::thread([raw] {
    raw->channel->wait();
    raw->finished.store(true);
  });
  LOG_INFO("mounted {} on {} ({}; client {})", m->source, m->target, o.to_string(), m->channel->info().client);
  std::lock_guard lk(mu_);
  mounts_.push_back(std::move(m));
  ever_mounted_ = true;
  hb_kick_ = true;  // register with the cluster now, not at the next beat
  hb_cv_.notify_all();
  return std::string(real);
}

}  // namespace lanefs::frontend

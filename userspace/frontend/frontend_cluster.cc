// Frontend: membership in each cluster (frontend.h): the heartbeat to the
// leader (a FRONTEND process in `lanefs cluster processes`), the mounts'
// open-handle renewals, and leaving on exit.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/clock.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "common/proc_info.h"
#include "frontend/frontend.h"

namespace lanefs::frontend {

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

}  // namespace lanefs::frontend

// Frontend: what `lanefs local ps` and `lanefs stats --json` show of each
// mount (frontend.h): IO and lane counters, RPCs, paths, the channel.
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/proc_info.h"
#include "frontend/frontend.h"

namespace lanefs::frontend {

using nlohmann::json;

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
// The direct API's IOs on a mount, and why device-memory IO bounced.
json direct_json(const client::MountFs& fs) {
  const auto& c = fs.direct_counters();
  json reasons = json::object();
  for (size_t i = 1; i < client::kBounceReasonCount; ++i)
    if (uint64_t n = c.bounce_reasons[i].load())
      reasons[std::string(client::bounce_reason_key(static_cast<client::BounceReason>(i)))] = n;
  return {{"direct_ios", c.ios.load()}, {"direct_bytes", c.bytes.load()}, {"direct_errors", c.errors.load()},
          {"rdma_zero_copy_ios", c.rdma_zero_copy_ios.load()}, {"gpudirect_ios", c.gpudirect_ios.load()},
          {"gpudirect_bounced", c.gpudirect_bounced.load()},
          {"gpudirect_bounce_reasons", reasons}};
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
          {"invalid_packets", st.rx_invalid_total},
          {"bad_mac_packets", st.rx_invalid[static_cast<int>(proto::DecodeError::kBadMac)]},
          {"replayed_packets", st.rx_invalid[static_cast<int>(proto::DecodeError::kReplayed)]},
          {"rx_packets", st.rx_packets}, {"tx_packets", st.tx_packets}};
}
}  // namespace

std::string Frontend::do_ps() {
  json j = {{"ok", true}, {"pid", getpid()}, {"uptime_s", process_uptime_s()}, {"hostname", host_name()},
            {"memory_bytes", process_rss_bytes()}, {"mounts", json::array()}};
  std::lock_guard lk(mu_);
  for (const auto& m : mounts_) {
    if (m->finished.load()) continue;
    const auto& io = m->fs->io_stats();
    const client::ChannelInfo ch = m->channel->info();
    j["mounts"].push_back({{"source", m->source}, {"target", m->target}, {"options", m->opts.to_string()},
                           {"mounted_s", (mono_ns() - m->mounted_ns) / 1'000'000'000ull},
                           {"reads", io.reads.load()}, {"read_bytes", io.read_bytes.load()},
                           {"writes", io.writes.load()}, {"write_bytes", io.write_bytes.load()},
                           {"errors", io.errors.load()}, {"corrupt_reads", io.corrupt_reads.load()},
                           {"lanes", lanes_json(*m->fs)},
                           {"rpcs", rpcs_json(m->fs->cluster())},
                           {"rpc_health", rpc_health_json(m->fs->cluster())},
                           {"client", ch.client}, {"channel", ch.name}, {"channel_reason", ch.reason}});
    for (const auto& [key, n] : ch.counters) j["mounts"].back()[key] = n;
    j["mounts"].back().update(direct_json(*m->fs));
  }
  json clients = json::array();
  if (direct_)
    for (const auto& c : direct_->clients())
      clients.push_back({{"pid", c.pid}, {"uid", c.uid}, {"command", c.command}, {"mounts", c.mounts},
                         {"rings", c.rings}, {"buffers", c.buffers}, {"buffer_bytes", c.buffer_bytes},
                         {"files", c.files}, {"ios", c.ios}});
  j["direct_clients"] = clients;
  return j.dump();
}

}  // namespace lanefs::frontend

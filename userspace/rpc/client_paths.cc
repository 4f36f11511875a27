// HA paths of a client session (docs/ha.md): which path a packet takes,
// path health from timeouts, answers and probes, failover and failback.
#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "rpc/client_endpoint.h"

namespace lanefs::rpc {
namespace {

constexpr uint64_t kProbeUnhealthyNs = 100'000'000;  // probe a failed path every 100 ms
constexpr uint64_t kProbeIdleNs = 1'000'000'000;     // an idle one every second, and the path of
                                                     // a request whose execution wait timed out
constexpr uint64_t kHoldMinNs = 200'000'000, kHoldMaxNs = 5'000'000'000, kStableNs = 10'000'000'000;
constexpr size_t kMaxPaths = 64;

}  // namespace

void ClientEndpoint::apply_paths(ClientSession& s, std::vector<PathSpec> specs) {
  if (specs.size() > kMaxPaths) specs.resize(kMaxPaths);
  if (specs.empty()) specs.push_back(PathSpec{NetAddr{0, 0}, s.server, true, ""});
  std::vector<PathState> next;
  for (auto& spec : specs) {
    PathState p;
    for (const auto& old : s.paths)
      if (old.spec.local == spec.local && old.spec.remote == spec.remote) p = old;  // keep its counters
    p.spec = std::move(spec);
    next.push_back(std::move(p));
  }
  for (const auto& old : s.paths) by_remote_.erase(old.spec.remote);
  s.paths = std::move(next);
  by_remote_[s.server] = &s;
  for (const auto& p : s.paths) by_remote_[p.spec.remote] = &s;
}

size_t ClientEndpoint::pick_path(ClientSession& s, int avoid) {
  size_t n = s.paths.size();
  if (n == 1) return 0;
  // Healthy preferred paths, else any healthy path, round-robin; a resend
  // avoids the path that just failed it when another will do.
  for (int pass = 0; pass < 2; ++pass) {
    size_t count = 0;
    for (const auto& p : s.paths) count += p.healthy && (pass == 1 || p.spec.preferred);
    if (count == 0) continue;
    size_t k = s.rr++ % count;
    size_t chosen = n, first = n;
    for (size_t i = 0, seen = 0; i < n; ++i) {
      const auto& p = s.paths[i];
      if (!p.healthy || (pass == 0 && !p.spec.preferred)) continue;
      if (first == n) first = i;
      if (seen++ == k) chosen = i;
    }
    if (int(chosen) == avoid && count > 1) {
      for (size_t step = 1; step < n; ++step) {
        size_t i = (chosen + step) % n;
        const auto& p = s.paths[i];
        if (p.healthy && (pass == 1 || p.spec.preferred)) return i;
      }
    }
    return chosen < n ? chosen : first;
  }
  // Nothing healthy: the least bad path (not the one that just failed).
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    bool better = s.paths[i].health > s.paths[best].health;
    if (int(best) == avoid && s.paths[i].health == s.paths[best].health) better = true;
    if (better && int(i) != avoid) best = i;
  }
  return best;
}

void ClientEndpoint::send_on(ClientSession& s, size_t path, const proto::PacketHeader& h,
                             std::span<const uint8_t> a, std::span<const uint8_t> b, uint64_t now) {
  PathState& p = s.paths[path];
  ++p.tx_packets;
  p.tx_bytes += proto::kHeaderSize + a.size() + b.size();
  p.last_tx_ns = now;
  if (!s.mac || h.type == proto::PktType::kConnect) return core_->send(p.spec.remote, h, a, b, p.spec.local, s.single);
  proto::PacketHeader hh = h;
  hh.seq = ++s.tx_seq;
  core_->send(p.spec.remote, hh, a, b, p.spec.local, s.single, s.mac.get());
  core_->flush_at(LoopCore::kPipelineBytes);  // the server checks these while we seal the next
}

void ClientEndpoint::path_event(ClientSession& s, size_t path, double delta, uint64_t now) {
  if (path >= s.paths.size() || s.paths.size() == 1) return;  // one path: nothing to move to
  PathState& p = s.paths[path];
  if (delta < 0) ++p.timeouts;
  p.health = std::clamp(p.health + delta, 0.0, kHealthMax);
  bool healthy = p.healthy ? p.health > kHealthy : p.health >= kRecovered && now - p.failed_ns >= p.hold_ns;
  if (healthy == p.healthy) return;
  p.healthy = healthy;
  if (!healthy) {
    p.hold_ns = p.up_ns != 0 && now - p.up_ns < kStableNs ? std::min(kHoldMaxNs, std::max(kHoldMinNs, 2 * p.hold_ns))
                                                          : kHoldMinNs;
    p.failed_ns = now;
    ++p.failovers;
    LOG_WARN("path {} -> {}{} to {} failed (health {:.0f}): its traffic moves to other paths",
             p.spec.local.ip ? p.spec.local.ip_string() : "primary", p.spec.remote.to_string(),
             p.spec.label.empty() ? "" : " [" + p.spec.label + "]", s.server.to_string(), p.health);
  } else {
    p.up_ns = now;
    ++p.failbacks;
    LOG_INFO("path {} -> {}{} to {} recovered (health {:.0f}): traffic returns (failback)",
             p.spec.local.ip ? p.spec.local.ip_string() : "primary", p.spec.remote.to_string(),
             p.spec.label.empty() ? "" : " [" + p.spec.label + "]", s.server.to_string(), p.health);
  }
}

void ClientEndpoint::path_timeout(ClientSession& s, size_t path, uint64_t sent_ns, uint64_t now) {
  if (path >= s.paths.size() || s.paths.size() == 1) return;
  // A silence blames the path only when the server was heard on another
  // path since the packet left: a server (or a host) that stalls, silent on
  // every path at once, is not a path failure, and failing every preferred
  // path for it would move traffic to the cross-label ones. Without that
  // evidence, probe every path now; their answers or silences decide.
  bool heard_elsewhere = false;
  for (size_t i = 0; i < s.paths.size(); ++i)
    heard_elsewhere |= i != path && s.paths[i].last_rx_ns > sent_ns;
  if (heard_elsewhere) {
    path_event(s, path, -kTimeoutCost, now);
    return;
  }
  for (auto& p : s.paths) p.probe_due = true;
}

void ClientEndpoint::probe_paths(ClientSession& s, uint64_t now) {
  if (s.paths.size() == 1) return;
  // A probe unanswered after a few RTTs (at least 20 ms) costs as a timeout.
  uint64_t probe_timeout = std::max<uint64_t>(4 * s.rtt.srtt_ns(), 20'000'000);
  for (size_t i = 0; i < s.paths.size(); ++i) {
    PathState& p = s.paths[i];
    if (p.probe_outstanding) {
      if (now - p.last_probe_ns < probe_timeout) continue;
      p.probe_outstanding = false;
      path_timeout(s, i, p.last_probe_ns, now);
    }
    uint64_t every = p.healthy ? kProbeIdleNs : kProbeUnhealthyNs;
    bool idle = now - std::max(p.last_rx_ns, p.last_tx_ns) >= kProbeIdleNs;
    bool due = p.probe_due || ((!p.healthy || idle) && now - p.last_probe_ns >= every);
    if (!due) continue;
    p.probe_due = false;
    p.probe_outstanding = true;
    p.last_probe_ns = now;
    proto::PacketHeader h;
    h.type = proto::PktType::kPing;
    h.session_id = s.sid;
    // The path and a sequence number ride in the request id; the pong echoes it.
    h.request_id = (uint64_t{++p.probe_seq} << 8) | i;
    send_on(s, i, h, {}, {}, now);
  }
}

std::vector<PathStats> ClientEndpoint::path_stats_of(const ClientSession& s) const {
  std::vector<PathStats> ps;
  for (const auto& p : s.paths)
    ps.push_back(PathStats{p.spec, uint32_t(p.health + 0.5), p.healthy, p.tx_packets, p.tx_bytes, p.rx_packets,
                           p.timeouts, p.failovers, p.failbacks});
  return ps;
}

}  // namespace lanefs::rpc

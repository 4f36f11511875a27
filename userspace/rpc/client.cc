// RpcClient: the client half of protocol v1 (docs/protocol.md). The client
// drives everything: it opens sessions, sends request packets and
// requests-for-response within the congestion window, and retransmits on
// per-packet timeouts. The server only ever answers.
#include <sys/random.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "rpc/loop.h"

namespace lanefs::rpc {
namespace {

using proto::PacketHeader;
using proto::PktType;

enum class PktState : uint8_t { kUnsent, kInflight, kLost, kAnswered };

// A client packet: request fragment i (i < req_pkts) or RFR for response
// packet (i - req_pkts + 1).
struct TxPkt {
  PktState st = PktState::kUnsent;
  uint16_t gen = 0;
  uint8_t path = 0;  // index in the session's paths of its last transmission
  bool retransmitted = false;
  uint64_t sent_ns = 0;
};

struct Call {
  NetAddr server;
  uint16_t opcode = 0;
  Buffer req;
  uint64_t deadline_ns = 0;
  Callback cb;
};

struct ActiveReq {
  bool active = false;
  uint64_t req_id = 0;
  Call call;
  uint16_t req_pkts = 0;
  std::vector<TxPkt> pkts;
  size_t first_open = 0;  // pkts[0..first_open) are all answered
  bool got_resp0 = false;
  uint16_t resp_pkts = 0;
  Buffer resp;
  std::vector<bool> resp_got;
  uint32_t resp_count = 0;
  uint32_t backoff = 0;
  uint64_t last_answer_ns = 0;
};

enum class SessState : uint8_t { kConnecting, kConnected };

// Path health (HA): a timeout costs 25, an answered packet gives 10, an
// answered probe 35. A path stops carrying traffic at 50 or less and gets it
// back at 85 or more (hysteresis: a lossy path does not flap).
constexpr double kHealthMax = 100, kHealthy = 50, kRecovered = 85, kTimeoutCost = 25, kAnswerGain = 10,
                 kProbeGain = 35;
constexpr uint64_t kProbeUnhealthyNs = 100'000'000;  // probe a failed path every 100 ms
constexpr uint64_t kProbeIdleNs = 1'000'000'000;     // an idle one every second, and the path of
                                                     // a request whose execution wait timed out
constexpr uint64_t kPublishNs = 100'000'000;
constexpr size_t kMaxPaths = 64;

struct PathState {
  PathSpec spec;
  double health = kHealthMax;
  bool healthy = true;
  uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, timeouts = 0, failovers = 0, failbacks = 0;
  uint64_t last_tx_ns = 0, last_rx_ns = 0, last_probe_ns = 0;
  uint32_t probe_seq = 0;
  bool probe_outstanding = false;  // a probe is out and not answered yet
  bool probe_due = false;          // probe at the next tick (an executing request's path went quiet)
  // Damping: a path that fails again soon after a failback waits longer
  // (doubling, up to 5 s) before it may carry traffic again.
  uint64_t failed_ns = 0, up_ns = 0, hold_ns = 0;
};
constexpr uint64_t kHoldMinNs = 200'000'000, kHoldMaxNs = 5'000'000'000, kStableNs = 10'000'000'000;

struct ClientSession {
  NetAddr server;
  SessState state = SessState::kConnecting;
  uint32_t sid = 0;
  uint64_t nonce = 0;
  uint64_t connect_start_ns = 0;
  uint64_t next_connect_ns = 0;
  uint32_t connect_tries = 0;
  std::vector<ActiveReq> slots;
  std::vector<uint64_t> next_id;
  std::deque<Call> waiting;
  RttEstimator rtt;
  CongestionWindow cw;
  uint32_t inflight = 0;
  uint32_t per_packet = 0;  // request payload bytes per packet (agreed at connect)
  // For session_info() readers on other threads.
  std::atomic<uint64_t> pub_srtt{0}, pub_rto{0};
  std::atomic<double> pub_cwnd{0};
  std::atomic<bool> pub_connected{false};
  // HA paths (never empty: by default the primary leg to `server`).
  std::vector<PathState> paths;
  uint64_t rr = 0;  // round-robin position over candidate paths
  ClientSession(RtoConfig r, WindowConfig w) : rtt(r), cw(w) {}
};

bool has_active(const ClientSession& s) {
  for (const auto& r : s.slots)
    if (r.active) return true;
  return false;
}

uint64_t random_nonce() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = mono_ns() ^ (uint64_t(getpid()) << 40);
  return v | 1;
}

constexpr uint64_t kTimerTickNs = 250'000;

}  // namespace

class RpcClient::Impl {
 public:
  explicit Impl(ClientOptions opts) : opts_(std::move(opts)) {
    opts_.window.max = std::min<double>(opts_.window.max, opts_.credits);
    opts_.window.initial = std::min(opts_.window.initial, opts_.window.max);
    opts_.slots = std::clamp(opts_.slots, 1u, 1024u);
  }

  // Credits and the window count packets. With MTU-sized datagrams (the
  // DPDK lane, or UDP on a 1500-byte NIC) 32 packets are 47 KB in flight,
  // against 2 MB with loopback's 64 KiB ones: the window, not the network,
  // would bound throughput. Scale both so at least kMinBytesInFlight may
  // be in flight (1472-byte datagrams: 179 packets).
  void scale_window_to_datagrams(uint32_t max_datagram) {
    constexpr double kMinBytesInFlight = 256 * 1024;
    double bytes = opts_.window.max * std::max<uint32_t>(max_datagram, 1);
    if (bytes >= kMinBytesInFlight) return;
    double f = kMinBytesInFlight / bytes;
    opts_.window.max = std::min(1024.0, std::ceil(opts_.window.max * f));
    opts_.window.initial = std::min(opts_.window.max, std::ceil(opts_.window.initial * f));
  }

  Status start() {
    LANEFS_ASSIGN_OR_RETURN(core_, LoopCore::create(opts_.transport, &counters_));
    scale_window_to_datagrams(core_->transport().max_datagram());
    loop_ = std::thread([this] { loop_main(); });
    LANEFS_TRY(pin_thread(loop_, opts_.cpu));
    return ok_status();
  }

  void stop() {
    stop_.store(true);
    if (core_) core_->wake();
    if (loop_.joinable()) loop_.join();
    // Fail everything still pending, on this thread.
    std::deque<Call> rest;
    {
      std::lock_guard lk(submit_mu_);
      rest.swap(submitted_);
    }
    for (auto& [addr, s] : sessions_) {
      for (auto& r : s->slots)
        if (r.active) rest.push_back(std::move(r.call));
      for (auto& c : s->waiting) rest.push_back(std::move(c));
    }
    for (auto& c : rest) c.cb(make_error(Errc::kShutdown, "RPC client shut down"));
  }

  void submit(Call c) {
    {
      std::lock_guard lk(submit_mu_);
      submitted_.push_back(std::move(c));
    }
    core_->wake();
  }

  NetAddr local_addr() const { return core_->transport().local_addr(); }
  std::vector<NetAddr> local_addrs() const { return core_->transport().local_addrs(); }
  void set_paths(NetAddr server, std::vector<PathSpec> paths) {
    if (paths.size() > kMaxPaths) paths.resize(kMaxPaths);
    {
      std::lock_guard lk(submit_mu_);
      path_updates_[server] = std::move(paths);
    }
    core_->wake();
  }
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> path_stats() const {
    std::lock_guard lk(map_mu_);
    return pub_paths_;
  }
  RpcStatsSnapshot stats() const {
    RpcStatsSnapshot s = snapshot_counters(counters_);
    std::lock_guard lk(map_mu_);
    s.sessions = static_cast<uint32_t>(sessions_.size());
    return s;
  }
  SessionInfo session_info(NetAddr server) const {
    std::lock_guard lk(map_mu_);
    auto it = sessions_.find(server);
    if (it == sessions_.end()) return {};
    auto& s = *it->second;
    return {s.pub_srtt.load(), s.pub_rto.load(), s.pub_cwnd.load(), s.pub_connected.load()};
  }
  void set_faults(const transport::FaultConfig& f) {
    std::lock_guard lk(fault_mu_);
    pending_faults_ = f;
    faults_changed_ = true;
    core_->wake();
  }

 private:
  void loop_main();
  ClientSession& session_for(NetAddr server);
  void on_packet(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload, bool bad_version);
  void on_answer(ClientSession& s, ActiveReq& r, size_t idx, uint16_t gen, uint64_t now, bool delay_sample);
  void on_response(ClientSession& s, const PacketHeader& h, std::span<const uint8_t> payload, uint64_t now);
  void send_connect(ClientSession& s, uint64_t now);
  void fail_session(ClientSession& s, const Error& e);
  void reset_requests(ClientSession& s);
  void start_waiting(ClientSession& s, uint64_t now);
  void transmit(ClientSession& s, uint64_t now);
  void send_pkt(ClientSession& s, ActiveReq& r, size_t idx, uint64_t now);
  void timers(ClientSession& s, uint64_t now);
  void complete(ClientSession& s, ActiveReq& r, Result<Buffer> result);
  // HA paths.
  void apply_paths(ClientSession& s, std::vector<PathSpec> specs);
  size_t pick_path(ClientSession& s, int avoid);
  void send_on(ClientSession& s, size_t path, const PacketHeader& h, std::span<const uint8_t> body, uint64_t now);
  void path_event(ClientSession& s, size_t path, double delta, uint64_t now);
  void probe_paths(ClientSession& s, uint64_t now);
  void publish_paths();
  void publish(ClientSession& s) {
    s.pub_srtt.store(s.rtt.srtt_ns(), std::memory_order_relaxed);
    s.pub_rto.store(s.rtt.rto_ns(), std::memory_order_relaxed);
    s.pub_cwnd.store(s.cw.cwnd(), std::memory_order_relaxed);
    s.pub_connected.store(s.state == SessState::kConnected, std::memory_order_relaxed);
  }

  ClientOptions opts_;
  RpcCounters counters_;
  std::unique_ptr<LoopCore> core_;
  std::thread loop_;
  std::atomic<bool> stop_{false};
  std::mutex submit_mu_;
  std::deque<Call> submitted_;
  mutable std::mutex map_mu_;  // guards sessions_ structure for other threads
  std::map<NetAddr, std::unique_ptr<ClientSession>> sessions_;
  // Loop thread: every remote address of a session's paths -> the session.
  std::map<NetAddr, ClientSession*> by_remote_;
  std::map<NetAddr, std::vector<PathSpec>> path_updates_;  // guarded by submit_mu_
  std::map<NetAddr, std::vector<PathSpec>> paths_wanted_;  // loop thread: for sessions made later
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> pub_paths_;  // guarded by map_mu_
  uint64_t last_publish_ns_ = 0;
  NetAddr rx_local_;  // loop thread: the local leg of the packet being handled
  // Callbacks run after the loop step that completed them, so a callback
  // that submits a new call never re-enters session bookkeeping.
  std::vector<std::pair<Callback, Result<Buffer>>> finished_;
  std::mutex fault_mu_;
  transport::FaultConfig pending_faults_;
  bool faults_changed_ = false;
};

ClientSession& RpcClient::Impl::session_for(NetAddr server) {
  auto it = sessions_.find(server);
  if (it != sessions_.end()) return *it->second;
  auto s = std::make_unique<ClientSession>(opts_.rto, opts_.window);
  s->server = server;
  s->slots.resize(opts_.slots);
  s->next_id.resize(opts_.slots);
  for (uint32_t i = 0; i < opts_.slots; ++i) s->next_id[i] = opts_.slots + i;
  s->state = SessState::kConnecting;
  s->nonce = random_nonce();
  s->connect_start_ns = mono_ns();
  s->next_connect_ns = 0;
  auto& ref = *s;
  {
    std::lock_guard lk(map_mu_);
    sessions_.emplace(server, std::move(s));
  }
  auto want = paths_wanted_.find(server);
  apply_paths(ref, want != paths_wanted_.end() ? want->second : std::vector<PathSpec>{});
  return ref;
}

void RpcClient::Impl::apply_paths(ClientSession& s, std::vector<PathSpec> specs) {
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

size_t RpcClient::Impl::pick_path(ClientSession& s, int avoid) {
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

void RpcClient::Impl::send_on(ClientSession& s, size_t path, const PacketHeader& h,
                              std::span<const uint8_t> body, uint64_t now) {
  PathState& p = s.paths[path];
  ++p.tx_packets;
  p.tx_bytes += proto::kHeaderSize + body.size();
  p.last_tx_ns = now;
  core_->send(p.spec.remote, h, body, p.spec.local);
}

void RpcClient::Impl::path_event(ClientSession& s, size_t path, double delta, uint64_t now) {
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

void RpcClient::Impl::probe_paths(ClientSession& s, uint64_t now) {
  if (s.paths.size() == 1) return;
  // A probe unanswered after a few RTTs (at least 20 ms) costs as a timeout.
  uint64_t probe_timeout = std::max<uint64_t>(4 * s.rtt.srtt_ns(), 20'000'000);
  for (size_t i = 0; i < s.paths.size(); ++i) {
    PathState& p = s.paths[i];
    if (p.probe_outstanding) {
      if (now - p.last_probe_ns < probe_timeout) continue;
      p.probe_outstanding = false;
      path_event(s, i, -kTimeoutCost, now);
    }
    uint64_t every = p.healthy ? kProbeIdleNs : kProbeUnhealthyNs;
    bool idle = now - std::max(p.last_rx_ns, p.last_tx_ns) >= kProbeIdleNs;
    bool due = p.probe_due || ((!p.healthy || idle) && now - p.last_probe_ns >= every);
    if (!due) continue;
    p.probe_due = false;
    p.probe_outstanding = true;
    p.last_probe_ns = now;
    PacketHeader h;
    h.type = PktType::kPing;
    h.session_id = s.sid;
    // The path and a sequence number ride in the request id; the pong echoes it.
    h.request_id = (uint64_t{++p.probe_seq} << 8) | i;
    send_on(s, i, h, {}, now);
  }
}

void RpcClient::Impl::publish_paths() {
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> out;
  for (auto& [addr, sp] : sessions_) {
    std::vector<PathStats> ps;
    for (const auto& p : sp->paths)
      ps.push_back(PathStats{p.spec, uint32_t(p.health + 0.5), p.healthy, p.tx_packets, p.tx_bytes, p.rx_packets,
                             p.timeouts, p.failovers, p.failbacks});
    out.emplace_back(addr, std::move(ps));
  }
  std::lock_guard lk(map_mu_);
  pub_paths_ = std::move(out);
}

void RpcClient::Impl::loop_main() {
  std::deque<Call> incoming;
  uint64_t last_tick = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    {
      std::lock_guard lk(fault_mu_);
      if (faults_changed_) {
        core_->faults().set_faults(pending_faults_);
        faults_changed_ = false;
      }
    }
    std::map<NetAddr, std::vector<PathSpec>> updates;
    {
      std::lock_guard lk(submit_mu_);
      incoming.swap(submitted_);
      updates.swap(path_updates_);
    }
    for (auto& [server, specs] : updates) {
      paths_wanted_[server] = specs;
      auto it = sessions_.find(server);
      if (it != sessions_.end()) apply_paths(*it->second, std::move(specs));
    }
    bool busy = !incoming.empty();
    for (auto& c : incoming) session_for(c.server).waiting.push_back(std::move(c));
    incoming.clear();

    size_t n = core_->receive([this](NetAddr src, NetAddr dst, const PacketHeader& h,
                                     std::span<const uint8_t> p, bool bad_version) {
      rx_local_ = dst;
      on_packet(src, h, p, bad_version);
    });
    busy |= n > 0;
    uint64_t now = mono_ns();
    bool tick = now - last_tick >= kTimerTickNs;
    if (tick) last_tick = now;
    bool any_active = false;
    for (auto& [addr, sp] : sessions_) {
      ClientSession& s = *sp;
      if (tick) {
        timers(s, now);
        if (s.state == SessState::kConnected) probe_paths(s, now);
      }
      if (s.state == SessState::kConnected) {
        start_waiting(s, now);
        transmit(s, now);
      } else if (!s.waiting.empty() || has_active(s)) {
        // Active slots without a session: requests to resend after a
        // kSessionReset (reset_requests() zeroed inflight).
        if (now >= s.next_connect_ns) send_connect(s, now);
      }
      any_active |= !s.waiting.empty() || s.inflight > 0 || has_active(s);
      publish(s);
    }
    core_->flush();
    if (now - last_publish_ns_ >= kPublishNs) {
      last_publish_ns_ = now;
      publish_paths();
    }
    if (!finished_.empty()) {
      auto done = std::move(finished_);
      finished_.clear();
      for (auto& [cb, res] : done) cb(std::move(res));
      busy = true;
    }
    if (!busy) core_->wait(any_active ? kTimerTickNs : 50'000'000);
  }
  core_->flush();
}

void RpcClient::Impl::send_connect(ClientSession& s, uint64_t now) {
  // The connect timeout counts from the first attempt of this round, not
  // from when the session object was created or last failed.
  if (s.connect_tries == 0) s.connect_start_ns = now;
  if (now - s.connect_start_ns > opts_.connect_timeout_ns) {
    fail_session(s, make_error(Errc::kUnreachable,
                               "no answer from " + s.server.to_string() + " within " +
                                   std::to_string(opts_.connect_timeout_ns / 1'000'000) + " ms"));
    return;
  }
  Buffer body;
  Encoder e(&body);
  e.u32(opts_.slots);
  e.str(opts_.name);
  e.u32(core_->transport().max_datagram());
  PacketHeader h;
  h.type = PktType::kConnect;
  h.request_id = s.nonce;
  h.generation = static_cast<uint16_t>(s.connect_tries);
  h.msg_len = static_cast<uint32_t>(body.size());
  send_on(s, pick_path(s, -1), h, body, now);
  core_->flush();
  ++s.connect_tries;
  // Connect retries back off from 10 ms to 200 ms.
  uint64_t gap = std::min<uint64_t>(200'000'000, 10'000'000ull << std::min(s.connect_tries, 5u));
  s.next_connect_ns = now + gap;
}

void RpcClient::Impl::fail_session(ClientSession& s, const Error& e) {
  for (auto& r : s.slots)
    if (r.active) complete(s, r, e);
  for (auto& c : s.waiting) {
    counters_.calls_failed.fetch_add(1, std::memory_order_relaxed);
    finished_.emplace_back(std::move(c.cb), e);
  }
  s.waiting.clear();
  // Start over on the next call: new nonce, fresh connect deadline.
  s.state = SessState::kConnecting;
  s.sid = 0;
  s.nonce = random_nonce();
  s.connect_start_ns = mono_ns();
  s.next_connect_ns = 0;
  s.connect_tries = 0;
  s.inflight = 0;
}

void RpcClient::Impl::reset_requests(ClientSession& s) {
  // The server lost our session (restart): every active request starts over
  // from its first packet on the new session.
  for (auto& r : s.slots) {
    if (!r.active) continue;
    r.pkts.assign(r.req_pkts, TxPkt{});
    r.first_open = 0;
    r.got_resp0 = false;
    r.resp_pkts = 0;
    r.resp.clear();
    r.resp_got.clear();
    r.resp_count = 0;
    r.backoff = 0;
  }
  s.inflight = 0;
}

void RpcClient::Impl::on_packet(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload,
                                bool bad_version) {
  if (bad_version) return;  // counted by LoopCore
  auto it = by_remote_.find(src);
  if (it == by_remote_.end()) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ClientSession& s = *it->second;
  uint64_t now = mono_ns();
  for (auto& p : s.paths) {
    if (p.spec.remote != src || (rx_local_.ip != 0 && p.spec.local.ip != 0 && p.spec.local.ip != rx_local_.ip)) continue;
    ++p.rx_packets;
    p.last_rx_ns = now;
    break;
  }
  switch (h.type) {
    case PktType::kPong: {
      size_t i = h.request_id & 0xff;
      if (i < s.paths.size() && (h.request_id >> 8) == s.paths[i].probe_seq) {
        s.paths[i].probe_outstanding = false;
        path_event(s, i, kProbeGain, now);
      }
      return;
    }
    case PktType::kConnectOk: {
      if (s.state != SessState::kConnecting || h.request_id != s.nonce) return;
      Decoder d(payload);
      uint32_t slots = d.u32();
      (void)d.str(256);  // server name
      uint32_t server_max = d.remaining() >= 4 ? d.u32() : proto::kHeaderSize + 1428;
      if (!d.ok() || slots == 0 || server_max <= proto::kHeaderSize) {
        counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      // Request packets must fit the server's datagrams as well as ours.
      s.per_packet = std::min<uint32_t>(core_->payload_per_packet(), server_max - proto::kHeaderSize);
      for (auto& r : s.slots) {
        if (!r.active) continue;
        r.req_pkts = static_cast<uint16_t>(packets_for(r.call.req.size(), s.per_packet));
        r.pkts.assign(r.req_pkts, TxPkt{});
        r.first_open = 0;
      }
      // The server may grant fewer slots; never use more than granted.
      if (slots < s.slots.size()) {
        for (size_t i = slots; i < s.slots.size(); ++i) {
          if (s.slots[i].active) {
            s.waiting.push_front(std::move(s.slots[i].call));
            s.slots[i].active = false;
          }
        }
        s.slots.resize(slots);
        s.next_id.resize(slots);
        // Request ids must map to the same slot modulo the new count.
        for (uint32_t i = 0; i < slots; ++i) {
          uint64_t id = std::max<uint64_t>(s.next_id[i], slots);
          s.next_id[i] = id + (i + slots - id % slots) % slots;
        }
      }
      s.sid = h.session_id;
      s.state = SessState::kConnected;
      s.connect_tries = 0;
      counters_.connects.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    case PktType::kConnectReject: {
      if (h.request_id != s.nonce) return;
      Decoder d(payload);
      int32_t raw = d.i32();
      uint8_t server_version = d.u8();
      Errc code = errc_valid(raw) ? static_cast<Errc>(raw) : Errc::kProtocol;
      std::string msg = code == Errc::kVersion
                            ? s.server.to_string() + " speaks protocol version " +
                                  std::to_string(server_version) + ", this client version " +
                                  std::to_string(proto::kVersion)
                            : s.server.to_string() + " refused the session: " +
                                  std::string(errc_text(code));
      fail_session(s, make_error(code, msg));
      return;
    }
    case PktType::kSessionReset:
      if (s.state == SessState::kConnected && h.session_id == s.sid) {
        counters_.session_resets.fetch_add(1, std::memory_order_relaxed);
        LOG_INFO("session to {} was reset by the server; reconnecting", s.server.to_string());
        s.state = SessState::kConnecting;
        s.sid = 0;
        s.nonce = random_nonce();
        s.connect_start_ns = now;
        s.next_connect_ns = 0;
        reset_requests(s);
      }
      return;
    case PktType::kCreditReturn:
    case PktType::kResponse:
      break;
    default:
      counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
      return;
  }
  if (s.state != SessState::kConnected || h.session_id != s.sid) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.flags & proto::kFlagEcn) s.cw.on_ecn(now, s.rtt.srtt_ns());
  ActiveReq& r = s.slots[h.request_id % s.slots.size()];
  if (!r.active || r.req_id != h.request_id) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.type == PktType::kCreditReturn) {
    if (h.pkt_num >= r.req_pkts) return;
    // A credit return for the last packet means "received, still executing".
    on_answer(s, r, h.pkt_num, h.generation, now, h.pkt_num + 1u != r.req_pkts);
    return;
  }
  on_response(s, h, payload, now);
}

void RpcClient::Impl::on_answer(ClientSession& s, ActiveReq& r, size_t idx, uint16_t gen,
                                uint64_t now, bool delay_sample) {
  TxPkt& p = r.pkts[idx];
  if (p.st == PktState::kAnswered) return;
  if (p.st == PktState::kInflight) --s.inflight;
  uint64_t rtt = 0;
  // Karn: only an answer to a never-retransmitted packet is a clean sample.
  if (!p.retransmitted && gen == p.gen && p.st == PktState::kInflight) {
    rtt = now - p.sent_ns;
    s.rtt.sample(rtt);
  }
  p.st = PktState::kAnswered;
  if (s.paths[std::min<size_t>(p.path, s.paths.size() - 1)].health < kHealthMax) path_event(s, p.path, kAnswerGain, now);
  s.cw.on_ack(now, delay_sample ? rtt : 0, s.rtt.min_rtt_ns(), s.rtt.srtt_ns());
  r.backoff = 0;
  r.last_answer_ns = now;
  while (r.first_open < r.pkts.size() && r.pkts[r.first_open].st == PktState::kAnswered) ++r.first_open;
}

void RpcClient::Impl::on_response(ClientSession& s, const PacketHeader& h,
                                  std::span<const uint8_t> payload, uint64_t now) {
  ActiveReq& r = s.slots[h.request_id % s.slots.size()];
  if (h.pkt_num == 0 && !r.got_resp0) {
    r.got_resp0 = true;
    r.resp_pkts = h.pkt_count;
    r.resp.assign(h.msg_len, 0);
    r.resp_got.assign(h.pkt_count, false);
    r.resp_count = 0;
    // The server has the whole request: every request packet is answered.
    for (size_t i = 0; i < r.req_pkts; ++i) {
      if (r.pkts[i].st != PktState::kAnswered)
        on_answer(s, r, i, h.generation, now, false);
    }
    r.pkts.resize(size_t{r.req_pkts} + h.pkt_count - 1);
  } else if (!r.got_resp0 || h.pkt_count != r.resp_pkts || h.msg_len != r.resp.size()) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  } else if (h.pkt_num > 0) {
    on_answer(s, r, r.req_pkts + h.pkt_num - 1u, h.generation, now, true);
  }
  if (r.resp_got[h.pkt_num]) {
    counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!payload.empty()) std::memcpy(r.resp.data() + h.frag_offset, payload.data(), payload.size());
  r.resp_got[h.pkt_num] = true;
  if (++r.resp_count == r.resp_pkts) {
    counters_.calls_ok.fetch_add(1, std::memory_order_relaxed);
    complete(s, r, std::move(r.resp));
  }
}

void RpcClient::Impl::start_waiting(ClientSession& s, uint64_t now) {
  for (size_t i = 0; i < s.slots.size() && !s.waiting.empty(); ++i) {
    ActiveReq& r = s.slots[i];
    if (r.active) continue;
    r = ActiveReq{};
    r.active = true;
    r.call = std::move(s.waiting.front());
    s.waiting.pop_front();
    r.req_id = s.next_id[i];
    s.next_id[i] += s.slots.size();
    r.req_pkts = static_cast<uint16_t>(packets_for(r.call.req.size(), s.per_packet));
    r.pkts.assign(r.req_pkts, TxPkt{});
    r.last_answer_ns = now;
  }
}

void RpcClient::Impl::send_pkt(ClientSession& s, ActiveReq& r, size_t idx, uint64_t now) {
  TxPkt& p = r.pkts[idx];
  int avoid = -1;
  if (p.st == PktState::kLost) {
    ++p.gen;
    p.retransmitted = true;
    avoid = p.path;
    counters_.retransmits.fetch_add(1, std::memory_order_relaxed);
  }
  p.path = static_cast<uint8_t>(pick_path(s, avoid));
  p.st = PktState::kInflight;
  p.sent_ns = now;
  ++s.inflight;
  PacketHeader h;
  h.session_id = s.sid;
  h.request_id = r.req_id;
  h.generation = p.gen;
  h.opcode = r.call.opcode;
  if (idx < r.req_pkts) {
    uint32_t per = s.per_packet;
    size_t off = idx * per;
    size_t len = std::min<size_t>(per, r.call.req.size() - std::min(off, r.call.req.size()));
    h.type = PktType::kRequest;
    h.pkt_num = static_cast<uint16_t>(idx);
    h.pkt_count = r.req_pkts;
    h.msg_len = static_cast<uint32_t>(r.call.req.size());
    h.frag_offset = static_cast<uint32_t>(off);
    send_on(s, p.path, h, std::span<const uint8_t>(r.call.req).subspan(std::min(off, r.call.req.size()), len), now);
  } else {
    h.type = PktType::kRfr;
    h.pkt_num = static_cast<uint16_t>(idx - r.req_pkts + 1);
    h.pkt_count = r.resp_pkts;
    send_on(s, p.path, h, {}, now);
  }
}

void RpcClient::Impl::transmit(ClientSession& s, uint64_t now) {
  uint32_t window = s.cw.window();
  for (auto& r : s.slots) {
    if (!r.active) continue;
    for (size_t i = r.first_open; i < r.pkts.size() && s.inflight < window; ++i) {
      auto st = r.pkts[i].st;
      if (st == PktState::kUnsent || st == PktState::kLost) send_pkt(s, r, i, now);
    }
    if (s.inflight >= window) break;
  }
}

void RpcClient::Impl::timers(ClientSession& s, uint64_t now) {
  for (auto& r : s.slots) {
    if (!r.active) continue;
    if (now >= r.call.deadline_ns) {
      counters_.calls_timed_out.fetch_add(1, std::memory_order_relaxed);
      complete(s, r, make_error(Errc::kTimeout, "no response from " + s.server.to_string() +
                                                    " (opcode " + std::to_string(r.call.opcode) + ")"));
      continue;
    }
    if (s.state != SessState::kConnected) continue;
    uint64_t rto = s.rtt.rto_ns(r.backoff);
    bool lost = false, probed = false;
    for (size_t i = r.first_open; i < r.pkts.size(); ++i) {
      TxPkt& p = r.pkts[i];
      if (p.st != PktState::kInflight) continue;
      // The last request packet is answered only after the request has
      // executed, so its silence says little about the network: give it
      // twice the time and do not treat its expiry as congestion.
      bool exec_wait = i + 1 == r.req_pkts && !r.got_resp0;
      if (now - p.sent_ns >= (exec_wait ? 2 * rto : rto)) {
        p.st = PktState::kLost;
        --s.inflight;
        (exec_wait ? probed : lost) = true;
        // A request that is executing says nothing about its path; a probe
        // does (a one-packet request on a dead path: the common metadata
        // case). A live path answers it at once, executing or not.
        if (!exec_wait) path_event(s, p.path, -kTimeoutCost, now);
        else if (p.path < s.paths.size()) s.paths[p.path].probe_due = true;
      }
    }
    if (probed && !lost) r.backoff = std::min(r.backoff + 1, 16u);
    // All request packets acknowledged, response not started: the request
    // is executing (or response packet 0 was lost). Poll with the last
    // request packet, which the server answers from its reply cache.
    if (!lost && !r.got_resp0 && r.first_open >= r.req_pkts && now - r.last_answer_ns >= rto) {
      r.pkts[r.req_pkts - 1].st = PktState::kLost;
      r.first_open = r.req_pkts - 1;
      r.last_answer_ns = now;
      r.backoff = std::min(r.backoff + 1, 16u);
      continue;
    }
    if (lost) {
      counters_.rto_events.fetch_add(1, std::memory_order_relaxed);
      s.cw.on_loss(now, s.rtt.srtt_ns());
      r.backoff = std::min(r.backoff + 1, 16u);
    }
  }
  // Calls still waiting for a session or a slot also honour their deadline.
  for (auto it = s.waiting.begin(); it != s.waiting.end();) {
    if (now >= it->deadline_ns) {
      counters_.calls_timed_out.fetch_add(1, std::memory_order_relaxed);
      counters_.calls_failed.fetch_add(1, std::memory_order_relaxed);
      std::string why = s.state == SessState::kConnected ? "queued" : "connecting";
      finished_.emplace_back(std::move(it->cb),
                             make_error(Errc::kTimeout, "no response from " + s.server.to_string() +
                                                            " (" + why + ")"));
      it = s.waiting.erase(it);
    } else {
      ++it;
    }
  }
}

void RpcClient::Impl::complete(ClientSession& s, ActiveReq& r, Result<Buffer> result) {
  core_->flush();  // queued packets may point into this request's buffer
  for (size_t i = r.first_open; i < r.pkts.size(); ++i)
    if (r.pkts[i].st == PktState::kInflight) --s.inflight;
  if (!result.ok()) counters_.calls_failed.fetch_add(1, std::memory_order_relaxed);
  finished_.emplace_back(std::move(r.call.cb), std::move(result));
  r = ActiveReq{};
}

Result<std::unique_ptr<RpcClient>> RpcClient::create(ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto st = impl->start(); !st.ok()) {
    impl->stop();  // a loop thread may already run (pinning failed)
    return st.error();
  }
  return std::unique_ptr<RpcClient>(new RpcClient(std::move(impl)));
}

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RpcClient::~RpcClient() { impl_->stop(); }

void RpcClient::call_async(NetAddr server, uint16_t opcode, Buffer request, uint64_t timeout_ns,
                           Callback done) {
  if (request.size() > proto::kMaxMessage) {
    done(make_error(Errc::kTooBig, "request of " + std::to_string(request.size()) +
                                       " bytes exceeds the protocol limit"));
    return;
  }
  impl_->submit(Call{server, opcode, std::move(request), mono_ns() + timeout_ns, std::move(done)});
}

Result<Buffer> RpcClient::call(NetAddr server, uint16_t opcode, Buffer request, uint64_t timeout_ns) {
  std::promise<Result<Buffer>> p;
  auto f = p.get_future();
  call_async(server, opcode, std::move(request), timeout_ns,
             [&p](Result<Buffer> r) { p.set_value(std::move(r)); });
  return f.get();
}

NetAddr RpcClient::local_addr() const { return impl_->local_addr(); }
std::vector<NetAddr> RpcClient::local_addrs() const { return impl_->local_addrs(); }
void RpcClient::set_paths(NetAddr server, std::vector<PathSpec> paths) { impl_->set_paths(server, std::move(paths)); }
std::vector<std::pair<NetAddr, std::vector<PathStats>>> RpcClient::path_stats() const { return impl_->path_stats(); }
RpcStatsSnapshot RpcClient::stats() const { return impl_->stats(); }
RpcClient::SessionInfo RpcClient::session_info(NetAddr server) const { return impl_->session_info(server); }
void RpcClient::set_faults(const transport::FaultConfig& f) { impl_->set_faults(f); }

}  // namespace lanefs::rpc

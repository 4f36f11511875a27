// ClientEndpoint: the client half of the protocol (docs/protocol.md) on one
// transport. The client drives everything: it opens sessions, sends request
// packets and requests-for-response within the congestion window, and
// retransmits on per-packet timeouts. The server answers, and pushes the
// first packets of a response at completion (as many as agreed at connect).
// What arrives is handled in client_receive.cc, HA paths in client_paths.cc.
#include "rpc/client_endpoint.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "proto/session.h"

namespace lanefs::rpc {
namespace {

using proto::PacketHeader;
using proto::PktType;

constexpr uint64_t kTimerTickNs = 250'000;
constexpr uint64_t kPublishNs = 100'000'000;
constexpr size_t kKeepSpillBytes = 4u << 20;  // larger spill buffers are freed after use
constexpr size_t kKeepSpillBuffers = 64;

}  // namespace

uint64_t random_nonce() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = mono_ns() ^ (uint64_t(getpid()) << 40);
  return v | 1;
}

ClientEndpoint::ClientEndpoint(const ClientOptions& o) : opts_(o) {
  opts_.window.max = std::min<double>(opts_.window.max, opts_.credits);
  opts_.window.initial = std::min(opts_.window.initial, opts_.window.max);
  opts_.slots = std::clamp(opts_.slots, 1u, 1024u);
}

Result<std::unique_ptr<ClientEndpoint>> ClientEndpoint::create(const ClientOptions& opts,
                                                               const transport::TransportConfig& tc) {
  std::unique_ptr<ClientEndpoint> ep(new ClientEndpoint(opts));
  // A calling thread expects a handful of replies at a time: a small
  // receive batch keeps a socket per thread cheap in memory.
  transport::TransportConfig t = tc;
  if (t.rx_batch == 0) t.rx_batch = 16;
  LANEFS_ASSIGN_OR_RETURN(ep->core_, LoopCore::create(t, &ep->counters_));
  ep->local_ = ep->core_->transport().local_addr();
  ep->locals_ = ep->core_->transport().local_addrs();
  // Credits and the window count packets. With MTU-sized datagrams (the
  // DPDK lane, or UDP on a 1500-byte NIC) 32 packets are 47 KB in flight,
  // against 2 MB with loopback's 64 KiB ones: the window, not the network,
  // would bound throughput. Scale both so at least 256 KiB may be in
  // flight (1472-byte datagrams: 179 packets).
  constexpr double min_bytes = 256 * 1024;
  double bytes = ep->opts_.window.max * std::max<uint32_t>(ep->core_->transport().max_datagram(), 1);
  if (bytes < min_bytes) {
    double f = min_bytes / bytes;
    ep->opts_.window.max = std::min(1024.0, std::ceil(ep->opts_.window.max * f));
    ep->opts_.window.initial = std::min(ep->opts_.window.max, std::ceil(ep->opts_.window.initial * f));
  }
  ep->finished_.reserve(64);
  ep->running_.reserve(64);
  return ep;
}

ClientEndpoint::~ClientEndpoint() {
  if (core_) fail_all(make_error(Errc::kShutdown, "RPC client shut down"));
}

ClientSession& ClientEndpoint::session_for(NetAddr server) {
  auto it = sessions_.find(server);
  if (it != sessions_.end()) return *it->second;
  auto s = std::make_unique<ClientSession>(opts_.rto, opts_.window);
  s->server = server;
  s->slots.resize(opts_.slots);
  s->next_id.resize(opts_.slots);
  for (uint32_t i = 0; i < opts_.slots; ++i) s->next_id[i] = opts_.slots + i;
  s->nonce = random_nonce();
  s->client_id = random_nonce();
  s->connect_start_ns = mono_ns();
  auto& ref = *s;
  sessions_.emplace(server, std::move(s));
  n_sessions_.store(static_cast<uint32_t>(sessions_.size()), std::memory_order_relaxed);
  auto want = paths_wanted_.find(server);
  apply_paths(ref, want != paths_wanted_.end() ? want->second : std::vector<PathSpec>{});
  return ref;
}

void ClientEndpoint::set_paths(const std::map<NetAddr, std::vector<PathSpec>>& paths, uint64_t version) {
  paths_version_ = version;
  paths_wanted_ = paths;
  for (auto& [server, sp] : sessions_) {
    auto it = paths.find(server);
    apply_paths(*sp, it != paths.end() ? it->second : std::vector<PathSpec>{});
  }
}

void ClientEndpoint::set_faults(const transport::FaultConfig& f, uint64_t version) {
  faults_version_ = version;
  core_->flush();
  core_->faults().set_faults(f);
}

void ClientEndpoint::finish_waiting(CallDone done, Error e) {
  counters_.calls_failed.fetch_add(1, std::memory_order_relaxed);
  Finished f;
  f.done = std::move(done);
  f.error = std::move(e);
  finished_.push_back(std::move(f));
}

void ClientEndpoint::start(const CallArgs& args, CallDone done) {
  ++outstanding_;
  counters_.calls_by_op[std::min<size_t>(args.opcode, RpcCounters::kOpSlots - 1)].fetch_add(1, std::memory_order_relaxed);
  size_t len = args.req.size() + args.req_data.size();
  if (len > proto::kMaxMessage)
    return finish_waiting(std::move(done), make_error(Errc::kTooBig, "request of " + std::to_string(len) +
                                                                         " bytes exceeds the protocol limit"));
  ClientSession& s = session_for(args.server);
  uint64_t now = mono_ns();
  s.waiting.push_back(Call{args, now + args.timeout_ns, std::move(done)});
  // Send now, from the caller's thread: nothing waits for a loop turn, and
  // a caller may wait for something else before it runs the endpoint (an
  // RDMA write's data is pulled by the backend while the caller waits).
  pump(s, now);
  core_->flush();
}

void ClientEndpoint::pump(ClientSession& s, uint64_t now) {
  if (s.state == SessState::kConnected) {
    start_waiting(s, now);
    transmit(s, now);
  } else if ((!s.waiting.empty() || s.active > 0) && now >= s.next_connect_ns) {
    // Active slots without a session: requests to resend after a
    // kSessionReset (reset_requests() zeroed inflight).
    send_connect(s, now);
  }
}

bool ClientEndpoint::step() {
  // Drain what has arrived before the timers run: a caller that was off
  // the CPU for a while finds a long response waiting (a DPDK inbox holds
  // every frame the dedicated core handed over), and must not take those
  // packets for lost and resend them. Bounded: 64 bursts per turn.
  size_t n = 0;
  for (int burst = 0; burst < 64; ++burst) {
    size_t got = core_->receive([this](NetAddr src, NetAddr dst, const PacketHeader& h,
                                       std::span<const uint8_t> p, bool bad_version) {
      rx_local_ = dst;
      on_packet(src, h, p, bad_version);
    });
    n += got;
    if (got == 0) break;
  }
  uint64_t now = mono_ns();
  if (now - last_tick_ns_ >= kTimerTickNs) {
    last_tick_ns_ = now;
    for (auto& [addr, sp] : sessions_) {
      timers(*sp, now);
      if (sp->state == SessState::kConnected) probe_paths(*sp, now);
    }
  }
  const uint64_t sent_before = core_->sent();  // pump may flush on its own (keyed packets)
  for (auto& [addr, sp] : sessions_) pump(*sp, now);
  core_->flush();
  const bool sent = core_->sent() != sent_before;
  size_t done = run_finished();
  if (now - last_publish_ns_ >= kPublishNs) publish();
  return n > 0 || sent || done > 0;
}

uint64_t ClientEndpoint::sleep_ns() const {
  uint64_t t = 5'000'000;
  uint64_t now = mono_ns();
  for (const auto& [addr, sp] : sessions_) {
    const ClientSession& s = *sp;
    if (s.active == 0 && s.waiting.empty()) continue;
    if (s.state == SessState::kConnected) t = std::min(t, std::max(kTimerTickNs, s.rtt.rto_ns() / 2));
    else t = std::min(t, s.next_connect_ns > now ? s.next_connect_ns - now : kTimerTickNs);
  }
  return std::max(t, kTimerTickNs);
}

void ClientEndpoint::run(bool until_any) {
  core_->flush();
  const uint64_t start_completed = completed_;
  uint64_t idle_since = mono_ns();
  SpinHold spin(spin_);
  while (outstanding_ > 0 && !(until_any && completed_ != start_completed)) {
    if (step()) {
      idle_since = mono_ns();
      continue;
    }
    if (outstanding_ == 0 || (until_any && completed_ != start_completed)) break;
    uint64_t now = mono_ns();
    if (now - idle_since < opts_.busy_poll_ns && spin.spin()) continue;
    spin.release();
    // Sleep until a datagram arrives. On a busy-polling DPDK port that the
    // pool does not poll itself (a backend's peer calls) the server loops
    // poll it and hand this endpoint's datagrams over with a wake-up.
    if (core_->busy_polls()) core_->sleep(std::min<uint64_t>(sleep_ns(), 1'000'000));
    else core_->wait(sleep_ns());
    idle_since = mono_ns();
  }
}

size_t ClientEndpoint::run_finished() {
  if (finished_.empty()) return 0;
  running_.swap(finished_);
  for (auto& f : running_) {
    if (f.ok) f.done(Result<Response>(f.resp));
    else f.done(Result<Response>(std::move(f.error)));
    f.done.reset();
    if (f.spill.capacity() > 0 && f.spill.capacity() <= kKeepSpillBytes && free_bufs_.size() < kKeepSpillBuffers)
      free_bufs_.push_back(std::move(f.spill));
    --outstanding_;
    ++completed_;
  }
  size_t n = running_.size();
  running_.clear();
  return n;
}

std::array<int, 2> ClientEndpoint::arm(uint64_t* timeout_ns) {
  core_->flush();
  // Idle: only housekeeping is due (HA probes and failback, stray
  // packets); every 100 ms keeps an idle mount's threads near 0% CPU.
  *timeout_ns = outstanding_ > 0 ? sleep_ns() : 100'000'000;
  return core_->arm(timeout_ns);
}

void ClientEndpoint::tend() {
  step();
  publish();
}

void ClientEndpoint::fail_all(const Error& e) {
  for (auto& [addr, sp] : sessions_) {
    for (auto& r : sp->slots)
      if (r.active) complete(*sp, r, &e);
    for (auto& c : sp->waiting) finish_waiting(std::move(c.done), e);
    sp->waiting.clear();
  }
  run_finished();
}

void ClientEndpoint::maybe_publish() {
  if (publish_dirty_ || mono_ns() - last_publish_ns_ >= kPublishNs) publish();
}

void ClientEndpoint::publish() {
  publish_dirty_ = false;
  last_publish_ns_ = mono_ns();
  EndpointSnapshot snap;
  for (const auto& [addr, sp] : sessions_) {
    const ClientSession& s = *sp;
    snap.paths.emplace_back(addr, path_stats_of(s));
    snap.sessions[addr] = RpcClient::SessionInfo{s.rtt.srtt_ns(), s.rtt.rto_ns(), s.cw.cwnd(),
                                                 s.state == SessState::kConnected};
  }
  std::lock_guard lk(pub_mu_);
  pub_ = std::move(snap);
}

EndpointSnapshot ClientEndpoint::snapshot() const {
  std::lock_guard lk(pub_mu_);
  return pub_;
}

// ------------------------------------------------------------ packets in

void ClientEndpoint::start_waiting(ClientSession& s, uint64_t now) {
  for (size_t i = 0; i < s.slots.size() && !s.waiting.empty(); ++i) {
    ActiveReq& r = s.slots[i];
    if (r.active) continue;
    r.active = true;
    ++s.active;
    r.call = std::move(s.waiting.front());
    s.waiting.pop_front();
    r.req_id = s.next_id[i];
    s.next_id[i] += s.slots.size();
    r.req_pkts = static_cast<uint16_t>(packets_for(r.call.args.req.size() + r.call.args.req_data.size(), s.per_packet));
    r.pkts.assign(r.req_pkts, TxPkt{});
    r.first_open = 0;
    r.resp_init = r.got0 = r.to_sink = r.resent = false;
    r.resp_pkts = 0;
    r.resp_len = r.resp_count = 0;
    r.backoff = 0;
    r.last_answer_ns = now;
  }
}

void ClientEndpoint::send_pkt(ClientSession& s, ActiveReq& r, size_t idx, uint64_t now) {
  TxPkt& p = r.pkts[idx];
  int avoid = -1;
  if (p.st == PktState::kLost) {
    ++p.gen;
    p.retransmitted = true;
    p.pushed = false;  // from now on asked for explicitly
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
  h.opcode = r.call.args.opcode;
  if (r.resent) h.flags |= proto::kFlagResent;
  if (idx < r.req_pkts) {
    const CallArgs& a = r.call.args;
    size_t total = a.req.size() + a.req_data.size();
    size_t off = idx * size_t{s.per_packet};
    size_t len = std::min<size_t>(s.per_packet, total - std::min(off, total));
    MsgSlice sl = slice_of(a.req, a.req_data, off, len);
    h.type = PktType::kRequest;
    h.pkt_num = static_cast<uint16_t>(idx);
    h.pkt_count = r.req_pkts;
    h.msg_len = static_cast<uint32_t>(total);
    h.frag_offset = static_cast<uint32_t>(off);
    send_on(s, p.path, h, sl.a, sl.b, now);
  } else {
    h.type = PktType::kRfr;
    h.pkt_num = static_cast<uint16_t>(idx - r.req_pkts + 1);
    h.pkt_count = r.resp_pkts;
    send_on(s, p.path, h, {}, {}, now);
  }
}

void ClientEndpoint::transmit(ClientSession& s, uint64_t now) {
  uint32_t window = s.cw.window();
  if (s.inflight >= window || s.active == 0) return;
  for (auto& r : s.slots) {
    if (!r.active) continue;
    for (size_t i = r.first_open; i < r.pkts.size() && s.inflight < window; ++i) {
      auto st = r.pkts[i].st;
      if (st == PktState::kUnsent || st == PktState::kLost) send_pkt(s, r, i, now);
    }
    if (s.inflight >= window) break;
  }
}

void ClientEndpoint::timers(ClientSession& s, uint64_t now) {
  for (auto& r : s.slots) {
    if (!r.active) continue;
    if (now >= r.call.deadline_ns) {
      counters_.calls_timed_out.fetch_add(1, std::memory_order_relaxed);
      Error e = make_error(Errc::kTimeout, "no response from " + s.server.to_string() + " (opcode " +
                                               std::to_string(r.call.args.opcode) + ")");
      complete(s, r, &e);
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
      bool exec_wait = i + 1 == r.req_pkts && !r.resp_init;
      if (now - p.sent_ns >= (exec_wait ? 2 * rto : rto)) {
        p.st = PktState::kLost;
        --s.inflight;
        (exec_wait ? probed : lost) = true;
        // A request that is executing says nothing about its path; a probe
        // does (a one-packet request on a dead path: the common metadata
        // case). A live path answers it at once, executing or not.
        if (!exec_wait) path_timeout(s, p.path, p.sent_ns, now);
        else if (p.path < s.paths.size()) s.paths[p.path].probe_due = true;
      }
    }
    if (probed && !lost) r.backoff = std::min(r.backoff + 1, 16u);
    // All request packets acknowledged and response packet 0 missing: the
    // request is executing, or packet 0 was lost. Poll with the last
    // request packet, which the server answers from its reply cache.
    bool all_acked = r.first_open >= r.req_pkts || r.resp_init;
    if (!lost && !r.got0 && all_acked && now - r.last_answer_ns >= rto &&
        r.pkts[r.req_pkts - 1].st == PktState::kAnswered) {
      r.pkts[r.req_pkts - 1].st = PktState::kLost;
      r.first_open = std::min<size_t>(r.first_open, r.req_pkts - 1);
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
      std::string why = s.state == SessState::kConnected ? "queued" : "connecting";
      finish_waiting(std::move(it->done),
                     make_error(Errc::kTimeout, "no response from " + s.server.to_string() + " (" + why + ")"));
      it = s.waiting.erase(it);
    } else {
      ++it;
    }
  }
}

void ClientEndpoint::complete(ClientSession& s, ActiveReq& r, const Error* err) {
  core_->flush();  // queued packets may point into this request's buffers
  for (size_t i = r.first_open; i < r.pkts.size(); ++i)
    if (r.pkts[i].st == PktState::kInflight) --s.inflight;
  Finished f;
  f.done = std::move(r.call.done);
  if (err != nullptr) {
    counters_.calls_failed.fetch_add(1, std::memory_order_relaxed);
    f.error = *err;
  } else if (r.to_sink) {
    const RespSink& sk = r.call.args.sink;
    size_t hl = std::min<size_t>(r.resp_len, sk.head.size());
    f.ok = true;
    f.resp = Response{sk.head.first(hl), sk.body.first(r.resp_len - hl), true};
  } else {
    f.ok = true;
    f.spill = std::move(r.spill);
    f.resp = Response{f.spill.span(), {}, false};
  }
  finished_.push_back(std::move(f));
  r.active = false;
  r.call = Call{};
  r.resp_init = r.got0 = false;
  --s.active;
}

void ClientEndpoint::new_nonce(ClientSession& s) {
  s.nonce = random_nonce();
  s.cookie.clear();
  s.mac.reset();  // the next session gets its own
}

void ClientEndpoint::send_connect(ClientSession& s, uint64_t now, bool same_path) {
  // The connect timeout counts from the first attempt of this round, not
  // from when the session object was created or last failed.
  if (s.connect_tries == 0) s.connect_start_ns = now;
  if (now - s.connect_start_ns > opts_.connect_timeout_ns) {
    fail_session(s, make_error(Errc::kUnreachable, "no answer from " + s.server.to_string() + " within " +
                                                       std::to_string(opts_.connect_timeout_ns / 1'000'000) + " ms"));
    return;
  }
  proto::ConnectBody c;
  c.slots = opts_.slots;
  c.name = opts_.name;
  c.max_datagram = core_->transport().max_datagram();
  // Response packets the server may push unasked: our credits' worth.
  c.push = static_cast<uint32_t>(opts_.window.max);
  c.flags = core_->reads_raw_frames() ? proto::kConnectRawFrames : 0;
  c.client_id = s.client_id;
  // Who we are: the token's user, and once challenged the cookie and the
  // proof that we hold the user's key (the key itself never leaves).
  std::optional<proto::Credentials> creds;
  if (opts_.credentials) creds = opts_.credentials();
  if (creds) c.user = creds->user;
  s.connect_key.reset();
  if (creds) s.connect_key = creds->key;
  c.cookie = s.cookie;
  if (creds && !s.cookie.empty()) {
    auto proof = proto::connect_proof(creds->key, creds->user, s.nonce, s.cookie);
    c.proof.assign(proof.begin(), proof.end());
  }
  Buffer body;
  Encoder e(&body);
  c.encode(e);
  PacketHeader h;
  h.type = PktType::kConnect;
  h.request_id = s.nonce;
  h.generation = static_cast<uint16_t>(s.connect_tries);
  h.msg_len = static_cast<uint32_t>(body.size());
  // The first attempt takes a path as data would; each retry the next path
  // in turn. Connects feed no path health, so a session whose preferred
  // paths are dead before it ever heard the server (a new endpoint of the
  // pool during an outage, a reconnect after a server restart) would
  // otherwise send every attempt into them until the connect timeout.
  if (!same_path)
    s.connect_path = s.connect_tries == 0 ? pick_path(s, -1) : (s.connect_path + 1) % s.paths.size();
  send_on(s, s.connect_path, h, body, {}, now);
  core_->flush();  // body is local
  ++s.connect_tries;
  // Connect retries back off from 10 ms to 200 ms.
  uint64_t gap = std::min<uint64_t>(200'000'000, 10'000'000ull << std::min(s.connect_tries, 5u));
  s.next_connect_ns = now + gap;
}

void ClientEndpoint::fail_session(ClientSession& s, const Error& e) {
  for (auto& r : s.slots)
    if (r.active) complete(s, r, &e);
  for (auto& c : s.waiting) finish_waiting(std::move(c.done), e);
  s.waiting.clear();
  // Start over on the next call: new nonce, fresh connect deadline.
  publish_dirty_ = true;
  s.state = SessState::kConnecting;
  s.sid = 0;
  new_nonce(s);
  s.connect_start_ns = mono_ns();
  s.next_connect_ns = 0;
  s.connect_tries = 0;
  s.inflight = 0;
}

void ClientEndpoint::reset_requests(ClientSession& s) {
  // The server lost our session (restart): every active request starts over
  // from its first packet on the new session.
  for (auto& r : s.slots) {
    if (!r.active) continue;
    r.pkts.assign(r.req_pkts, TxPkt{});
    r.first_open = 0;
    r.resp_init = r.got0 = false;
    r.resent = true;
    r.resp_pkts = 0;
    r.resp_len = r.resp_count = 0;
    r.backoff = 0;
  }
  s.inflight = 0;
}

}  // namespace lanefs::rpc

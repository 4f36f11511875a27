// RpcClient: the client half of protocol v1 (docs/protocol.md). The client
// drives everything: it opens sessions, sends request packets and
// requests-for-response within the congestion window, and retransmits on
// per-packet timeouts. The server only ever answers.
#include <sys/random.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
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

  Status start() {
    LANEFS_ASSIGN_OR_RETURN(core_, LoopCore::create(opts_.transport, &counters_));
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
  std::lock_guard lk(map_mu_);
  sessions_.emplace(server, std::move(s));
  return ref;
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
    {
      std::lock_guard lk(submit_mu_);
      incoming.swap(submitted_);
    }
    bool busy = !incoming.empty();
    for (auto& c : incoming) session_for(c.server).waiting.push_back(std::move(c));
    incoming.clear();

    size_t n = core_->receive([this](NetAddr src, const PacketHeader& h,
                                     std::span<const uint8_t> p, bool bad_version) {
      on_packet(src, h, p, bad_version);
    });
    busy |= n > 0;
    uint64_t now = mono_ns();
    bool tick = now - last_tick >= kTimerTickNs;
    if (tick) last_tick = now;
    bool any_active = false;
    for (auto& [addr, sp] : sessions_) {
      ClientSession& s = *sp;
      if (tick) timers(s, now);
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
  core_->send(s.server, h, body);
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
  auto it = sessions_.find(src);
  if (it == sessions_.end()) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ClientSession& s = *it->second;
  uint64_t now = mono_ns();
  switch (h.type) {
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
  if (p.st == PktState::kLost) {
    ++p.gen;
    p.retransmitted = true;
    counters_.retransmits.fetch_add(1, std::memory_order_relaxed);
  }
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
    core_->send(s.server, h,
                std::span<const uint8_t>(r.call.req).subspan(std::min(off, r.call.req.size()), len));
  } else {
    h.type = PktType::kRfr;
    h.pkt_num = static_cast<uint16_t>(idx - r.req_pkts + 1);
    h.pkt_count = r.resp_pkts;
    core_->send(s.server, h);
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
RpcStatsSnapshot RpcClient::stats() const { return impl_->stats(); }
RpcClient::SessionInfo RpcClient::session_info(NetAddr server) const { return impl_->session_info(server); }
void RpcClient::set_faults(const transport::FaultConfig& f) { impl_->set_faults(f); }

}  // namespace lanefs::rpc

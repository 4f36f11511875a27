// Internal to rpc/: one client endpoint — a transport, its sessions to each
// server (slots, fragmentation, credits, congestion window, retransmission,
// HA paths) and the calls in flight on them. No thread of its own: the
// thread that leases it drives it (step/run); see rpc.h.
//
// Threading: exactly one thread at a time owns an endpoint (lease()/
// release() with acquire/release ordering). Only counters_, the published
// snapshot (pub_mu_) and the lease flag are touched by other threads.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "rpc/loop.h"
#include "rpc/rpc.h"
#include "rpc/spin.h"

namespace lanefs::rpc {

// A session's connect nonce: random, odd (never 0).
uint64_t random_nonce();

enum class PktState : uint8_t { kUnsent, kInflight, kLost, kAnswered };

// A client packet: request fragment i (i < req_pkts), or the
// request-for-response of response packet j at index req_pkts + j - 1.
struct TxPkt {
  PktState st = PktState::kUnsent;
  uint16_t gen = 0;
  uint8_t path = 0;  // index in the session's paths of its last transmission
  bool retransmitted = false;
  bool pushed = false;  // a response packet the server pushes unasked (no RTT sample)
  uint64_t sent_ns = 0;
};

struct Call {
  CallArgs args;
  uint64_t deadline_ns = 0;
  CallDone done;
};

struct ActiveReq {
  bool active = false;
  uint64_t req_id = 0;
  Call call;
  uint16_t req_pkts = 0;
  std::vector<TxPkt> pkts;  // capacity kept across requests of the slot
  size_t first_open = 0;    // pkts[0..first_open) are all answered
  bool resp_init = false;   // a response packet arrived: resp_pkts/resp_len known
  bool got0 = false;        // response packet 0 arrived
  uint16_t resp_pkts = 0;
  uint32_t resp_len = 0;
  uint32_t resp_count = 0;
  bool to_sink = false;
  bool resent = false;  // on a new session after the server lost the old one (kFlagResent)
  MsgBuffer spill;  // the response when it does not go to the call's sink
  uint32_t backoff = 0;
  uint64_t last_answer_ns = 0;
};

enum class SessState : uint8_t { kConnecting, kConnected };

// Path health (HA): a timeout costs 25, an answered packet gives 10, an
// answered probe 35. A path stops carrying traffic at 50 or less and gets it
// back at 85 or more (hysteresis: a lossy path does not flap).
inline constexpr double kHealthMax = 100, kHealthy = 50, kRecovered = 85, kTimeoutCost = 25,
                        kAnswerGain = 10, kProbeGain = 35;

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

struct ClientSession {
  NetAddr server;
  SessState state = SessState::kConnecting;
  uint32_t sid = 0;
  uint64_t nonce = 0;
  // The server's cookie for this nonce (kConnectChallenge), echoed with the
  // proof; empty until challenged. Cleared with every new nonce.
  std::vector<uint8_t> cookie;
  // The key of the token the last connect proved (what a keyed session's
  // key is derived from).
  std::optional<proto::AuthKey> connect_key;
  // Keyed session (kConnectKeyed): every packet either way carries a MAC;
  // ours are numbered by tx_seq, the server's checked against rx_window.
  std::unique_ptr<proto::SessionMac> mac;
  uint64_t tx_seq = 0;
  proto::ReplayWindow rx_window;
  uint64_t client_id = 0;  // random, sent with every connect (RequestInfo::client_id)
  uint64_t connect_start_ns = 0;
  uint64_t next_connect_ns = 0;
  uint32_t connect_tries = 0;
  size_t connect_path = 0;  // the path of the last connect attempt
  std::vector<ActiveReq> slots;
  std::vector<uint64_t> next_id;
  std::deque<Call> waiting;
  RttEstimator rtt;
  CongestionWindow cw;
  uint32_t inflight = 0;
  uint32_t active = 0;      // slots in use
  uint32_t per_packet = 0;  // request payload bytes per packet (agreed at connect)
  uint32_t push = 0;        // response packets the server pushes (agreed at connect)
  bool single = false;      // the server reads raw frames: no coalesced datagrams to it
  // HA paths (never empty: by default the primary leg to `server`).
  std::vector<PathState> paths;
  uint64_t rr = 0;  // round-robin position over candidate paths
  ClientSession(RtoConfig r, WindowConfig w) : rtt(r), cw(w) {}
};

// What an endpoint publishes for RpcClient's readers (path_stats,
// session_info), refreshed about every 100 ms and when released.
struct EndpointSnapshot {
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> paths;
  std::map<NetAddr, RpcClient::SessionInfo> sessions;
};

class ClientEndpoint {
 public:
  static Result<std::unique_ptr<ClientEndpoint>> create(const ClientOptions& opts,
                                                        const transport::TransportConfig& tc);
  ~ClientEndpoint();  // fails calls still pending with kShutdown (owner thread)

  bool try_lease() noexcept { return !leased_.exchange(true, std::memory_order_acquire); }
  void release() noexcept { leased_.store(false, std::memory_order_release); }
  bool leased() const noexcept { return leased_.load(std::memory_order_relaxed); }

  // ---- owner thread
  void start(const CallArgs& args, CallDone done);
  // One turn: receive, timers when due, transmit, run completions. Returns
  // whether anything happened (packets in or out, a completion).
  bool step();
  // Drives the endpoint until no call is outstanding (or, with until_any,
  // until one more call completed). Busy-polls first, then sleeps.
  void run(bool until_any);
  size_t outstanding() const noexcept { return outstanding_; }
  // Configuration changes made on the pool (HA paths, faults), applied by
  // the owner when their version moved.
  void set_paths(const std::map<NetAddr, std::vector<PathSpec>>& paths, uint64_t version);
  void set_faults(const transport::FaultConfig& f, uint64_t version);
  uint64_t paths_version() const { return paths_version_; }
  uint64_t faults_version() const { return faults_version_; }
  // Housekeeping of an idle endpoint: drain stray packets, run timers and
  // HA probes, publish.
  void tend();
  void publish();
  // Publishes when a session changed state since the last snapshot or the
  // snapshot is older than ~100 ms (called when a lease ends).
  void maybe_publish();
  void fail_all(const Error& e);
  // For an outside event loop (call_driver.h): flushes, re-arms the
  // transport's wake-up and returns the fds to poll (the transport's, the
  // cross-thread wake-up) and the longest sleep.
  std::array<int, 2> arm(uint64_t* timeout_ns);
  void drain_wake() { core_->drain_wake(); }

  // ---- any thread
  NetAddr local_addr() const { return local_; }
  std::vector<NetAddr> local_addrs() const { return locals_; }
  const RpcCounters& counters() const { return counters_; }
  uint32_t sessions() const { return n_sessions_.load(std::memory_order_relaxed); }
  EndpointSnapshot snapshot() const;
  // The pool's spin budget (nullptr: never spin); set before first use.
  void set_spin(SpinSlots* s) { spin_ = s; }

 private:
  explicit ClientEndpoint(const ClientOptions& opts);
  ClientSession& session_for(NetAddr server);
  void on_packet(NetAddr src, const proto::PacketHeader& h, std::span<const uint8_t> payload, bool bad_version);
  void on_connect_ok(ClientSession& s, const proto::PacketHeader& h, std::span<const uint8_t> payload);
  void on_answer(ClientSession& s, ActiveReq& r, size_t idx, uint16_t gen, uint64_t now, bool delay_sample);
  void on_response(ClientSession& s, ActiveReq& r, const proto::PacketHeader& h, std::span<const uint8_t> payload,
                   uint64_t now);
  void init_response(ClientSession& s, ActiveReq& r, const proto::PacketHeader& h, uint64_t now);
  void store_fragment(ActiveReq& r, uint32_t off, std::span<const uint8_t> payload);
  // `same_path`: the answer to a challenge goes where the challenge came
  // from (the cookie is bound to that source address).
  void send_connect(ClientSession& s, uint64_t now, bool same_path = false);
  void new_nonce(ClientSession& s);
  void fail_session(ClientSession& s, const Error& e);
  void reset_requests(ClientSession& s);
  void start_waiting(ClientSession& s, uint64_t now);
  void transmit(ClientSession& s, uint64_t now);
  void send_pkt(ClientSession& s, ActiveReq& r, size_t idx, uint64_t now);
  void timers(ClientSession& s, uint64_t now);
  void complete(ClientSession& s, ActiveReq& r, const Error* err);
  void finish_waiting(CallDone done, Error e);
  void pump(ClientSession& s, uint64_t now);
  size_t run_finished();
  uint64_t sleep_ns() const;
  // HA paths (client_paths.cc).
  void apply_paths(ClientSession& s, std::vector<PathSpec> specs);
  size_t pick_path(ClientSession& s, int avoid);
  void send_on(ClientSession& s, size_t path, const proto::PacketHeader& h, std::span<const uint8_t> a,
               std::span<const uint8_t> b, uint64_t now);
  void path_event(ClientSession& s, size_t path, double delta, uint64_t now);
  void path_timeout(ClientSession& s, size_t path, uint64_t sent_ns, uint64_t now);
  void probe_paths(ClientSession& s, uint64_t now);
  std::vector<PathStats> path_stats_of(const ClientSession& s) const;

  ClientOptions opts_;
  SpinSlots* spin_ = nullptr;
  RpcCounters counters_;
  std::unique_ptr<LoopCore> core_;
  NetAddr local_;
  std::vector<NetAddr> locals_;
  std::atomic<bool> leased_{false};
  std::map<NetAddr, std::unique_ptr<ClientSession>> sessions_;
  std::atomic<uint32_t> n_sessions_{0};
  // Every remote address of a session's paths -> the session.
  std::map<NetAddr, ClientSession*> by_remote_;
  std::map<NetAddr, std::vector<PathSpec>> paths_wanted_;
  uint64_t paths_version_ = 0, faults_version_ = 0;
  NetAddr rx_local_;  // the local leg of the packet being handled
  size_t outstanding_ = 0;
  uint64_t completed_ = 0;
  uint64_t last_tick_ns_ = 0, last_publish_ns_ = 0;
  bool publish_dirty_ = false;
  // Completions run after the turn that produced them, so a callback that
  // starts a new call never re-enters session bookkeeping.
  struct Finished {
    CallDone done;
    bool ok = false;
    Error error;
    Response resp;
    MsgBuffer spill;  // owns resp's bytes when not in the sink
  };
  std::vector<Finished> finished_, running_;
  std::vector<MsgBuffer> free_bufs_;  // spill buffers kept for reuse
  mutable std::mutex pub_mu_;
  EndpointSnapshot pub_;
};

}  // namespace lanefs::rpc

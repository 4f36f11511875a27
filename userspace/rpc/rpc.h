// Reliable RPC over an unreliable datagram Transport (protocol v1, see
// docs/protocol.md): sessions, fragmentation, credits, retransmission, a
// congestion window and a server-side reply cache for exactly-once execution.
//
// Run to completion, no thread hand-off on the request path:
// - RpcClient is a pool of endpoints (one transport each: a UDP socket, a
//   DPDK endpoint). The thread that makes a call leases an endpoint, sends
//   the request itself, and polls its own endpoint for the reply (a brief
//   busy poll, then it sleeps on the endpoint's notify fd). Threads keep
//   "their" endpoint across calls, so steady state is one endpoint per
//   calling thread, like eRPC's one Rpc per thread. A housekeeping thread
//   only looks after idle endpoints (HA path probes, statistics); it never
//   carries a call. The one exception is a busy-polling DPDK port
//   (dedicated_mode=full): there a dedicated core per transport config
//   drives every call and callers sleep until theirs completes
//   (dedicated_core.h: why, and what that costs).
// - RpcServer runs one loop per core (UDP: SO_REUSEPORT sockets steered by
//   session id; other lanes one loop). The loop that receives a request
//   runs its handler inline; a handler that must wait (disk sync, a RocksDB
//   commit, a peer call) either completes later from the same loop (an
//   io_uring completion) or defers blocking work to a worker pool, whose
//   result the loop sends.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/inline_fn.h"
#include "common/msg_buffer.h"
#include "common/net_addr.h"
#include "common/result.h"
#include "proto/auth.h"
#include "proto/packet_mac.h"
#include "proto/wire.h"
#include "rpc/congestion.h"
#include "transport/transport.h"

namespace lanefs::rpc {

using Buffer = std::vector<uint8_t>;

// ---------------------------------------------------------------- counters
// One set per endpoint / server loop, so hot counters never share a cache
// line between threads; snapshots sum them. Readable from any thread
// (relaxed atomics); monotonic.
struct RpcCounters {
  std::atomic<uint64_t> calls_ok{0}, calls_failed{0}, calls_timed_out{0};
  std::atomic<uint64_t> retransmits{0}, rto_events{0}, session_resets{0};
  std::atomic<uint64_t> requests_executed{0}, replies_from_cache{0}, stale_dropped{0};
  std::atomic<uint64_t> duplicate_fragments{0}, unknown_session{0}, connects{0};
  std::atomic<uint64_t> version_rejects{0}, unexpected_packets{0};
  // Server: connects refused for want of room (ServerOptions::max_sessions,
  // max_sessions_per_addr), and sessions dropped to make room.
  std::atomic<uint64_t> connects_refused{0}, sessions_reclaimed{0};
  // Server: connects answered with a cookie challenge (no state kept), and
  // connects refused by authentication (bad token, unknown user).
  std::atomic<uint64_t> connect_challenges{0}, auth_refused{0};
  // Server: request fragments dropped because their message would not fit
  // the reassembly memory (ServerOptions::max_*reassembly_bytes).
  std::atomic<uint64_t> reassembly_refused{0};
  std::atomic<uint64_t> tx_packets{0}, rx_packets{0};
  // Server: requests answered by the loop that received them (inline) and
  // requests whose work ran on a worker thread (deferred).
  std::atomic<uint64_t> inline_requests{0}, deferred_requests{0};
  // Client: response packets the server pushed without a request-for-response.
  std::atomic<uint64_t> pushed_packets{0};
  // One counter per proto::DecodeError reason (index 0 unused).
  std::atomic<uint64_t> rx_invalid[static_cast<int>(proto::DecodeError::kCount)]{};
  // Client: calls started, per opcode (opcodes >= kOpSlots share the last).
  static constexpr size_t kOpSlots = 128;
  std::atomic<uint64_t> calls_by_op[kOpSlots]{};
  uint64_t rx_invalid_total() const;
};

// Plain copy of the counters plus transport stats, for reporting.
struct RpcStatsSnapshot {
  uint64_t calls_ok = 0, calls_failed = 0, calls_timed_out = 0, retransmits = 0, rto_events = 0;
  uint64_t session_resets = 0, requests_executed = 0, replies_from_cache = 0, stale_dropped = 0;
  uint64_t duplicate_fragments = 0, unknown_session = 0, connects = 0, version_rejects = 0;
  uint64_t unexpected_packets = 0, tx_packets = 0, rx_packets = 0, rx_invalid_total = 0;
  uint64_t connects_refused = 0, sessions_reclaimed = 0, reassembly_refused = 0;
  uint64_t connect_challenges = 0, auth_refused = 0;
  uint64_t reassembly_bytes = 0;  // server: memory reserved for requests being reassembled now (a gauge)
  uint64_t inline_requests = 0, deferred_requests = 0, pushed_packets = 0;
  uint64_t rx_invalid[static_cast<int>(proto::DecodeError::kCount)] = {};
  uint64_t calls_by_op[RpcCounters::kOpSlots] = {};
  uint32_t sessions = 0;
  uint32_t endpoints = 0;  // client: endpoints in the pool; server: loops
  void add(const RpcStatsSnapshot& o);
};

// kOk when this process may run on `cpu` (-1: always), else kInvalid
// naming the CPU and the CPUs it may use.
Status cpu_usable(int cpu);

// ------------------------------------------------------------------ client
struct ClientOptions {
  // The transport every endpoint opens (bind port 0: each endpoint its own
  // port). `more_transports` (DPDK: one config per frontend core) spreads
  // endpoints round-robin over [transport, more_transports...].
  transport::TransportConfig transport;
  std::vector<transport::TransportConfig> more_transports;
  std::string name = "client";           // sent at connect, shown by the server
  uint32_t slots = 32;                   // concurrent requests per session
  uint32_t credits = 32;                 // packets in flight per session
  RtoConfig rto;
  WindowConfig window;                   // window.max is clamped to credits
  uint64_t connect_timeout_ns = 5'000'000'000;
  // Endpoints the pool may open (one per concurrently calling thread); a
  // thread that finds none free waits for one.
  uint32_t max_endpoints = 64;
  // A caller polls for its reply this long before it sleeps (0: sleep at
  // once), if it gets one of the pool's `spin_slots` (-1: a quarter of the
  // usable CPUs, so none on a 2-core machine, where a spinning caller only
  // delays the server it waits for).
  uint64_t busy_poll_ns = 20'000;
  int spin_slots = -1;
  // A busy-polling DPDK port (dedicated_mode=full): true (the frontend) =
  // one dedicated core per transport config polls it and drives every call
  // made on that core, callers hand their calls over and sleep until they
  // complete (dedicated_core.h says why); false (a backend calling its
  // peers, whose server loops already poll the port) = callers drive their
  // own calls and sleep while the server loops hand their frames over.
  bool dedicated_cores = true;
  // CPUs to pin to (`core=`): the dedicated core of transport config i to
  // cpus[i], else the housekeeping thread to cpus[0]; missing or -1 = not
  // pinned. create() fails with kInvalid naming a CPU that cannot be used.
  std::vector<int> cpus;
  // The token this client's sessions are set up with (challenge-response,
  // proto/auth.h), asked at every connect (a backend's changes when it
  // joins a cluster). Unset or nullopt: connect without one (servers that
  // authenticate refuse such sessions).
  std::function<std::optional<proto::Credentials>()> credentials;
  // Asked when a server does not key a session set up with credentials:
  // whether it may go on without packet MACs (a backend with no secret
  // yet, being joined by a cluster create in progress; a bench run with
  // LANEFS_PACKET_MAC=off). Otherwise the connect fails with kPermission:
  // a server that cannot prove it holds the key is not talked to.
  std::function<bool()> allow_unkeyed = [] { return !proto::packet_macs_enabled(); };
};

// Where a call's response message lands: its first head.size() bytes in
// `head`, the rest in `body` (a read's data goes straight into the buffer
// the kernel will get). A response longer than both together goes to an
// internal buffer instead. Both must stay valid until the call completes.
struct RespSink {
  std::span<uint8_t> head;
  std::span<uint8_t> body;
};

// One call. The request message is `req` followed by `req_data`, sent as
// they are (gathered into packets, never copied into a message buffer):
// both must stay valid until the call completes.
struct CallArgs {
  NetAddr server;
  uint16_t opcode = 0;
  std::span<const uint8_t> req;
  std::span<const uint8_t> req_data;
  uint64_t timeout_ns = 30'000'000'000ull;
  RespSink sink;
};

// A completed call's response message, valid only during the completion
// callback. In the sink: `head` and `body` are the filled parts of the
// sink's spans (head full before body starts). Otherwise `head` is the
// whole message (an internal buffer) and `body` is empty.
struct Response {
  std::span<const uint8_t> head;
  std::span<const uint8_t> body;
  bool in_sink = false;
  size_t size() const { return head.size() + body.size(); }
  // Copies the whole message out (the slow path: metadata replies).
  Buffer to_buffer() const;
  // Copies n bytes at message offset `off` into dst (across head/body);
  // false when the message is shorter.
  bool read_at(size_t off, void* dst, size_t n) const;
};

// Completion of a call: the response, or kTimeout after the call's timeout,
// kUnreachable when no session could be opened within the connect timeout,
// kVersion when the server rejects the protocol version, kBusy when it has
// no room for a session, kShutdown when the client is destroyed.
using Done = InlineFn<void(Result<Response>), 64>;
// What endpoints and mailboxes keep: room for a Done and a pointer, so a
// Batch on a driven thread (call_driver.h) wraps a Done without allocating.
using CallDone = InlineFn<void(Result<Response>), 96>;

// ------------------------------------------------------------ paths (HA)
// One network path to a server: one of this client's local legs and one of
// the server's addresses. A session uses every path it is given: packets
// are spread over the healthy preferred ones; a path whose packets time out
// loses health and, below the threshold, carries no traffic but probes
// (failover); answered probes restore it (failback). The session (its id,
// reply cache, requests in flight) is the same on every path, so a request
// resent on another path still runs exactly once.
struct PathSpec {
  NetAddr local;          // a local leg (ip; port 0 = that leg's port); 0.0.0.0 = primary
  NetAddr remote;         // one of the server's addresses
  bool preferred = true;  // same switch label, or unlabeled: used while healthy;
                          // others only when no preferred path is healthy
  std::string label;      // for display: "A", "A/B" (cross-label), ""
};

struct PathStats {
  PathSpec spec;
  uint32_t health = 100;  // 0..100
  bool healthy = true;    // carries traffic: down at health <= 50, up again at >= 85
  uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, timeouts = 0;
  uint64_t failovers = 0;  // times it turned unhealthy (traffic moved off it)
  uint64_t failbacks = 0;  // times it turned healthy again
};

class ClientEndpoint;  // client_endpoint.h (internal)
class Mailbox;         // dedicated_core.h (internal)
class CallDriver;      // call_driver.h

// Thread-safe: every method may be called from any thread. A call runs on
// the calling thread, or its dedicated core (see the file comment);
// callbacks always run on the calling thread.
class RpcClient {
 public:
  static Result<std::unique_ptr<RpcClient>> create(ClientOptions options);
  ~RpcClient();  // waits for leased endpoints to be returned; stops housekeeping

  // Several calls issued together and driven to completion by the calling
  // thread (the chunk pieces of one IO; a benchmark keeping N in flight).
  // A Batch leases one endpoint for its lifetime (on dedicated cores: hands
  // its calls to the thread's core); use it from one thread. Made by a
  // fiber of a thread with a CallDriver (call_driver.h), it shares the
  // driver's endpoint and its waits park the fiber instead.
  class Batch {
   public:
    explicit Batch(RpcClient& client);
    ~Batch();  // waits for every started call (each ends by its deadline), then returns the endpoint
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    // Starts a call; `done` runs on this thread inside wait()/wait_any().
    // It may start further calls on this Batch, but not wait on it.
    void start(const CallArgs& args, Done done);
    void wait();       // until no call is outstanding
    void wait_any();   // until at least one call completed (returns at once if none is outstanding)
    size_t outstanding() const;

   private:
    RpcClient& client_;
    ClientEndpoint* ep_ = nullptr;  // leased, or
    Mailbox* mb_ = nullptr;         // dedicated cores: where completions arrive
    uint32_t core_ = 0;
    // On a driven thread: the driver, the fiber that waits, and this
    // Batch's own calls (the endpoint or mailbox is shared).
    CallDriver* drv_ = nullptr;
    void* fiber_ = nullptr;
    size_t pending_ = 0;
    uint64_t completed_ = 0;
  };

  // One blocking call, run on the calling thread; the response is copied out.
  Result<Buffer> call(NetAddr server, uint16_t opcode, std::span<const uint8_t> request,
                      uint64_t timeout_ns);

  NetAddr local_addr() const;                // the first endpoint's address
  std::vector<NetAddr> local_addrs() const;  // every local leg (HA) of the first endpoint
  // The address of each transport config (frontend cores): the first
  // endpoint opened on it.
  std::vector<NetAddr> core_addrs() const;
  RpcStatsSnapshot stats() const;
  // HA: the paths to `server` (the address calls name). Empty: the single
  // default path (primary leg to `server`). Applied by every endpoint when
  // it is next used or looked after, keeping the counters of paths that stay.
  void set_paths(NetAddr server, std::vector<PathSpec> paths);
  // Per server: its paths, counters summed over endpoints; a path is
  // reported unhealthy when any endpoint's session sees it down. As of at
  // most ~100 ms ago.
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> path_stats() const;
  // Smoothed RTT / RTO / window of a session to `server` (0s if none).
  struct SessionInfo { uint64_t srtt_ns = 0, rto_ns = 0; double cwnd = 0; bool connected = false; };
  SessionInfo session_info(NetAddr server) const;
  // Runtime fault switch for tests (applies to datagrams every endpoint sends).
  void set_faults(const transport::FaultConfig& faults);

  class Pool;  // client.cc

 private:
  friend class Batch;
  friend class CallDriver;
  explicit RpcClient(std::unique_ptr<Pool> pool);
  std::unique_ptr<Pool> pool_;
};

// ------------------------------------------------------------------ server
struct RequestInfo {
  NetAddr peer;
  uint32_t session_id = 0;
  uint64_t request_id = 0;
  uint16_t opcode = 0;
  const std::string* client_name = nullptr;  // valid until the call finishes
  // The client's id for this server, the same on every session it opens to
  // it (0: an old client that sends none). With request_id (kept across
  // sessions) it names one request across a server restart.
  uint64_t client_id = 0;
  // Sent again after the server lost the session (restarted): it may have
  // run before, and its reply is gone with the reply cache. A handler whose
  // effect is persistent and not idempotent (a create, a rename) answers it
  // from what it recorded (backend/meta_replay.cc).
  bool resent = false;
  // What the session runs as (ServerOptions::authenticate; null when the
  // server authenticates nobody). Valid until the call finishes.
  const proto::UserRecord* principal = nullptr;
};

class ServerLoop;  // server_loop.h (internal)

// One request being executed. It exists from the moment the whole request
// arrived until finish(); the server owns it (a freelist per loop, so its
// buffers keep their capacity across requests).
class ServerCall {
 public:
  const RequestInfo& info() const { return info_; }
  std::span<const uint8_t> request() const { return req_.span(); }
  // The response message, built in place (grow it with resize_uninit and
  // write into it: nothing is zero-filled or copied again before it leaves).
  MsgBuffer& response() { return resp_; }
  uint32_t loop_index() const { return loop_index_; }
  // Loop thread only: sends the response; the call must not be touched
  // afterwards. A response larger than the protocol's limit is replaced by
  // kInternal (logged).
  void finish();
  // Runs `work` on a worker thread (the priority pool if `priority`): for
  // blocking work. When it returns, the response it left in response() is
  // sent by the loop (finish is implied; `work` must not call it).
  using Work = InlineFn<void(ServerCall&), 48>;
  void defer(bool priority, Work work);

 private:
  friend class ServerLoop;
  ServerLoop* loop_ = nullptr;
  uint32_t loop_index_ = 0;
  uint32_t slot_ = 0;
  RequestInfo info_;
  std::string name_;
  // The session's principal, held while the call runs (the session may go
  // first): one reference count increment per request.
  std::shared_ptr<const proto::UserRecord> principal_;
  MsgBuffer req_, resp_;
  Work work_;
  bool priority_ = false;
};

// Runs on the loop thread that received the request; must not block. It
// must eventually call finish() (now, or from a completion on the same
// loop) or defer(). Never throws (noexcept contract).
using CallHandler = std::function<void(ServerCall& call)>;

// Blocking form (tests, simple servers): runs on a worker thread and fills
// *response. Never throws.
using Handler = std::function<void(const RequestInfo& info, std::span<const uint8_t> request,
                                   Buffer* response)>;

// Something else a server loop waits on and polls (the backend's disk
// ring): created once per loop on that loop's thread, used only there.
class LoopAttachment {
 public:
  virtual ~LoopAttachment() = default;
  virtual int notify_fd() const noexcept = 0;  // readable when poll() has work
  virtual size_t poll() = 0;                   // runs ready completions; returns how many
  virtual size_t inflight() const noexcept = 0;  // work submitted and not completed
  // True when poll() has work it can do at once (queued, not yet handed to
  // the kernel): the loop must not sleep then.
  virtual bool has_pending() const noexcept { return false; }
};

// A connect that echoed a valid cookie (ServerOptions::authenticate).
struct ConnectAuth {
  NetAddr peer;
  std::string_view user;              // empty: the client has no token
  uint64_t nonce = 0;
  std::span<const uint8_t> cookie;
  std::span<const uint8_t> proof;     // proto::connect_proof of the user's key
};
// What an authenticated session runs as, and the key its proof was
// checked against: the session's packets carry MACs under a key derived
// from it (none: a backend joining this empty one, with which no secret is
// shared yet).
struct Admission {
  std::shared_ptr<const proto::UserRecord> principal;
  std::optional<proto::AuthKey> key;
};
// What the session will run as, or the error the client is told (its
// message goes into kConnectReject). Runs on a loop thread: must not block.
using Authenticate = std::function<Result<Admission>(const ConnectAuth&)>;

struct ServerOptions {
  transport::TransportConfig transport;
  std::string name = "server";
  // Loop threads. UDP: one SO_REUSEPORT socket each, datagrams steered by
  // session id (a session always reaches the same loop, whichever path it
  // takes); 0 = one per usable CPU, at most 8. Other lanes: one loop.
  uint32_t loops = 0;
  uint32_t workers = 4;                            // blocking handlers (deferred work)
  uint32_t max_sessions = 4096;
  // Sessions one source IP may hold, so that a connect flood from one
  // address cannot lock every other client out. At this cap (or at
  // max_sessions) the longest-idle session of that address (or of any)
  // idle for at least reclaim_idle_ns is dropped to admit the new one (its
  // client reconnects at its next call: kSessionReset); with none that
  // idle the connect is refused (kBusy).
  uint32_t max_sessions_per_addr = 512;
  uint64_t reclaim_idle_ns = 5'000'000'000ull;
  uint32_t max_slots = 64;                         // per session
  // Key authenticated sessions (packet MACs, proto/packet_mac.h). Off only
  // to measure what they cost (LANEFS_PACKET_MAC=off, bench/).
  bool packet_macs = proto::packet_macs_enabled();
  // Memory for requests being reassembled from fragments (their full size
  // is reserved at the first fragment): per session, and for the whole
  // server (split evenly between the loops, each at least one largest
  // message). A fragment that would go past either starts nothing: it is
  // dropped and counted (reassembly_refused), and its client resends.
  uint64_t max_session_reassembly_bytes = 64ull << 20;
  uint64_t max_reassembly_bytes = 512ull << 20;
  uint64_t session_idle_ns = 600'000'000'000ull;   // idle sessions are dropped
  // Deferred work for which this returns true runs on a separate pool of
  // `priority_workers` threads. Backends put peer primitives and data ops
  // there, so composite metadata ops waiting on peers can never starve the
  // primitives they wait for (no distributed deadlock).
  std::function<bool(uint16_t opcode)> is_priority;
  uint32_t priority_workers = 2;
  // Response packets pushed at completion without a request-for-response,
  // at most (the client asks for its own number at connect; 0: never push).
  uint32_t max_push = 1024;
  // A loop polls this long for more datagrams before it sleeps (0: sleep),
  // if it gets one of `spin_slots` (-1: a quarter of the usable CPUs).
  uint64_t busy_poll_ns = 20'000;
  int spin_slots = -1;
  // Made once per loop, on its thread (nullptr: none).
  std::function<std::unique_ptr<LoopAttachment>(uint32_t loop)> attach;
  // Pin loop 0 to this CPU (-1 = not pinned), as ClientOptions::cpu.
  int cpu = -1;
  // Every connect first gets a stateless cookie (kConnectChallenge) and must
  // echo it: a spoofed source address gets no session and costs no state.
  // Then this decides who the session runs as (unset: everyone, no principal).
  Authenticate authenticate;
};

class RpcServer {
 public:
  static Result<std::unique_ptr<RpcServer>> create(ServerOptions options, CallHandler handler);
  static Result<std::unique_ptr<RpcServer>> create(ServerOptions options, Handler handler);
  ~RpcServer();  // stops the loops and the workers (in-flight handlers finish)

  NetAddr local_addr() const;
  // Every address it serves on (HA legs; the first is local_addr()).
  std::vector<NetAddr> local_addrs() const;
  uint32_t loops() const;
  RpcStatsSnapshot stats() const;
  void set_faults(const transport::FaultConfig& faults);
  // Every session is dropped when its client begins its next request
  // (kSessionReset: it connects, and authenticates, again); requests begun
  // before finish. Who may do what changed.
  void reset_sessions();
  // Peers with an open session: (client name, address).
  std::vector<std::pair<std::string, NetAddr>> sessions() const;

  class Impl;

 private:
  explicit RpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lanefs::rpc

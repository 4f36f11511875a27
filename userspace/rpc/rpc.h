// Reliable RPC over an unreliable datagram Transport (protocol v1, see
// docs/protocol.md): sessions, fragmentation, credits, retransmission, a
// congestion window and a server-side reply cache for exactly-once execution.
//
// RpcClient and RpcServer each own one Transport and one event-loop thread.
// A process that both serves and calls (a backend talking to its peers) has
// one of each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/net_addr.h"
#include "common/result.h"
#include "proto/wire.h"
#include "rpc/congestion.h"
#include "transport/transport.h"

namespace lanefs::rpc {

using Buffer = std::vector<uint8_t>;

// ---------------------------------------------------------------- counters
// Readable from any thread (relaxed atomics); monotonic.
struct RpcCounters {
  std::atomic<uint64_t> calls_ok{0}, calls_failed{0}, calls_timed_out{0};
  std::atomic<uint64_t> retransmits{0}, rto_events{0}, session_resets{0};
  std::atomic<uint64_t> requests_executed{0}, replies_from_cache{0}, stale_dropped{0};
  std::atomic<uint64_t> duplicate_fragments{0}, unknown_session{0}, connects{0};
  std::atomic<uint64_t> version_rejects{0}, unexpected_packets{0};
  std::atomic<uint64_t> tx_packets{0}, rx_packets{0};
  // One counter per proto::DecodeError reason (index 0 unused).
  std::atomic<uint64_t> rx_invalid[static_cast<int>(proto::DecodeError::kCount)]{};
  uint64_t rx_invalid_total() const;
};

// Plain copy of the counters plus transport stats, for reporting.
struct RpcStatsSnapshot {
  uint64_t calls_ok, calls_failed, calls_timed_out, retransmits, rto_events, session_resets;
  uint64_t requests_executed, replies_from_cache, stale_dropped, duplicate_fragments;
  uint64_t unknown_session, connects, version_rejects, unexpected_packets;
  uint64_t tx_packets, rx_packets, rx_invalid_total;
  uint64_t rx_invalid[static_cast<int>(proto::DecodeError::kCount)];
  uint32_t sessions = 0;
};

// ------------------------------------------------------------------ client
struct ClientOptions {
  transport::TransportConfig transport;  // bind address usually 0.0.0.0:0 / 127.0.0.1:0
  std::string name = "client";           // sent at connect, shown by the server
  uint32_t slots = 32;                   // concurrent requests per session
  uint32_t credits = 32;                 // packets in flight per session
  RtoConfig rto;
  WindowConfig window;                   // window.max is clamped to credits
  uint64_t connect_timeout_ns = 5'000'000'000;
  // Pin the loop thread to this CPU (a dedicated core, `core=`); -1 = not
  // pinned. create() fails with kInvalid naming the CPU when it cannot be.
  int cpu = -1;
};

using Callback = std::function<void(Result<Buffer>)>;

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

// Thread-safe: call()/call_async() may be used from any thread. Callbacks of
// call_async() run on the client's loop thread and must not block.
class RpcClient {
 public:
  static Result<std::unique_ptr<RpcClient>> create(ClientOptions options);
  ~RpcClient();  // stops the loop; pending calls fail with kShutdown

  // Sends `request` to `server` with `opcode`; the callback gets the response
  // body, or kTimeout after timeout_ns, kUnreachable when no session could be
  // opened within the connect timeout, kVersion when the server rejects the
  // protocol version, kShutdown when the client is destroyed.
  void call_async(NetAddr server, uint16_t opcode, Buffer request, uint64_t timeout_ns,
                  Callback done);
  // Blocking form; must not be called from the loop thread (a callback).
  Result<Buffer> call(NetAddr server, uint16_t opcode, Buffer request, uint64_t timeout_ns);

  NetAddr local_addr() const;
  std::vector<NetAddr> local_addrs() const;  // every local leg (HA)
  RpcStatsSnapshot stats() const;
  // HA: the paths to `server` (the address calls name). Empty: the single
  // default path (primary leg to `server`). Thread-safe; applied on the
  // loop thread, keeping the counters of paths that stay.
  void set_paths(NetAddr server, std::vector<PathSpec> paths);
  // Per server with a session: its paths, as of at most ~100 ms ago.
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> path_stats() const;
  // Smoothed RTT / RTO / window of the session to `server` (0s if none).
  struct SessionInfo { uint64_t srtt_ns = 0, rto_ns = 0; double cwnd = 0; bool connected = false; };
  SessionInfo session_info(NetAddr server) const;
  // Runtime fault switch for tests (applies to datagrams this client sends).
  void set_faults(const transport::FaultConfig& faults);

  class Impl;

 private:
  explicit RpcClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------------------ server
struct RequestInfo {
  NetAddr peer;
  uint32_t session_id = 0;
  uint64_t request_id = 0;
  uint16_t opcode = 0;
  const std::string* client_name = nullptr;  // valid during the handler call
};

// Runs on a worker thread; fills *response. Never throws (noexcept contract:
// exceptions escaping a handler terminate the process).
using Handler = std::function<void(const RequestInfo& info, std::span<const uint8_t> request,
                                   Buffer* response)>;

struct ServerOptions {
  transport::TransportConfig transport;
  std::string name = "server";
  uint32_t workers = 4;
  uint32_t max_sessions = 4096;
  uint32_t max_slots = 64;                         // per session
  uint64_t session_idle_ns = 600'000'000'000ull;   // idle sessions are dropped
  // Requests for which this returns true run on a separate pool of
  // `priority_workers` threads. Backends put peer primitives and data ops
  // there, so composite metadata ops waiting on peers can never starve the
  // primitives they wait for (no distributed deadlock).
  std::function<bool(uint16_t opcode)> is_priority;
  uint32_t priority_workers = 2;
  // Pin the loop thread to this CPU (-1 = not pinned), as ClientOptions::cpu.
  int cpu = -1;
};

class RpcServer {
 public:
  static Result<std::unique_ptr<RpcServer>> create(ServerOptions options, Handler handler);
  ~RpcServer();  // stops the loop and the workers (in-flight handlers finish)

  NetAddr local_addr() const;
  // Every address it serves on (HA legs; the first is local_addr()).
  std::vector<NetAddr> local_addrs() const;
  RpcStatsSnapshot stats() const;
  void set_faults(const transport::FaultConfig& faults);
  // Peers with an open session: (client name, address).
  std::vector<std::pair<std::string, NetAddr>> sessions() const;

  class Impl;

 private:
  explicit RpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lanefs::rpc

// Internal to rpc/: RpcServer's shared state — its loops, the worker pools
// for deferred (blocking) work, and the session id space all loops share.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rpc/server_loop.h"
#include "rpc/spin.h"

namespace lanefs::rpc {

class RpcServer::Impl {
 public:
  Impl(ServerOptions opts, CallHandler handler)
      : opts_(std::move(opts)), handler_(std::move(handler)), spin_(spin_slots_for(opts_.spin_slots)) {}
  Status start();
  void stop();

  const ServerOptions& opts() const { return opts_; }
  SpinSlots& spin_slots() { return spin_; }
  CallHandler& handler() { return handler_; }
  uint32_t nloops() const { return static_cast<uint32_t>(loops_.size()); }
  ServerLoop& loop(uint32_t i) { return *loops_[i]; }

  // Whether a connect from `ip` may open a session now (loop 0's thread):
  // there is room under max_sessions and max_sessions_per_addr, or an idle
  // session was picked to make room (its loop is told to drop it).
  bool admit(uint32_t ip, uint64_t now);
  // A fresh session id that the reuseport group steers to `target` (random
  // high bits: a stray or hostile packet cannot guess a live session),
  // registered with its source IP and its activity clock.
  uint32_t new_session_id(uint32_t target, uint32_t ip, const std::atomic<uint64_t>* last_active);
  bool session_live(uint32_t sid);
  void session_gone(uint32_t sid);
  uint32_t total_sessions() const { return total_sessions_.load(std::memory_order_relaxed); }

  // Deferred work (ServerCall::defer): runs on a worker, then goes back to
  // the call's loop.
  void enqueue(ServerCall* c);

  // Connect bookkeeping, loop 0's thread only: a resent kConnect (same
  // client address and nonce) gets the same session.
  struct Known {
    uint32_t sid = 0;
    uint32_t slots = 0;
    uint64_t at_ns = 0;
    std::optional<proto::SessionKey> key;  // the session's, for answering again
    std::vector<uint8_t> cookie;           // the cookie it was derived from
  };
  std::map<std::pair<NetAddr, uint64_t>, Known> by_nonce;
  // Keys the connect cookies (random per process: a restart voids them).
  const proto::AuthKey cookie_key = proto::random_key();
  // Bumped by reset_sessions(): a session made under an older value is
  // dropped at its next packet.
  std::atomic<uint32_t> auth_epoch{0};
  uint32_t next_loop = 0;  // round-robin for new sessions (loop 0's thread)
  uint64_t connect_ok_seq = 0;  // the MAC nonces of keyed kConnectOks (loop 0's thread)

  NetAddr local_addr() const { return loops_[0]->local_addr(); }
  std::vector<NetAddr> local_addrs() const { return loops_[0]->local_addrs(); }
  RpcStatsSnapshot stats() const;
  void set_faults(const transport::FaultConfig& f);
  std::vector<std::pair<std::string, NetAddr>> sessions() const;

 private:
  void worker_main(int pool);
  Status open_loops();

  ServerOptions opts_;
  CallHandler handler_;
  SpinSlots spin_;
  std::vector<std::unique_ptr<ServerLoop>> loops_;
  std::vector<std::thread> workers_;
  std::mutex wq_mu_;
  std::condition_variable wq_cv_[2];  // one per pool: wake only the pool that has work
  std::deque<ServerCall*> jobs_[2];    // [0] ordinary, [1] priority pool
  bool wq_stop_ = false;
  struct Live {
    uint32_t ip = 0;
    uint32_t loop = 0;
    const std::atomic<uint64_t>* last_active = nullptr;  // freed only after session_gone()
    bool reclaiming = false;  // admit() gave its place away; its loop drops it
  };
  std::mutex ids_mu_;
  std::unordered_map<uint32_t, Live> live_;       // by session id
  std::unordered_map<uint32_t, uint32_t> per_ip_;  // sessions per source IP, reclaiming ones not counted
  uint32_t counted_ = 0;                           // sessions in live_ not reclaiming
  uint64_t last_scan_ns_ = 0;                      // admit()'s scans: at most one per ms
  std::atomic<uint32_t> total_sessions_{0};
};

}  // namespace lanefs::rpc

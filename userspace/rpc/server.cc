// RpcServer: its loops (one per core on UDP, a SO_REUSEPORT group steered by
// session id) and the worker pools that run deferred, blocking work.
#include <sys/random.h>

#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "rpc/server_impl.h"

namespace lanefs::rpc {

Status RpcServer::Impl::open_loops() {
  const transport::TransportConfig& base = opts_.transport;
  uint32_t want = opts_.loops ? opts_.loops : std::min<uint32_t>(usable_cpus(), 8);
  if (base.kind != transport::TransportKind::kUdp) want = 1;
  want = std::clamp<uint32_t>(want, 1, 64);
  // Loop 0 first: it picks the port the others join.
  transport::TransportConfig tc = base;
  if (want > 1) {
    tc.reuseport_group = want;
    tc.reuseport_index = 0;
  }
  auto first = std::make_unique<ServerLoop>(*this, 0);
  Status st = first->open(tc);
  if (!st.ok() && want > 1) {
    LOG_INFO("RPC server: one loop only ({})", st.error().to_string());
    want = 1;
    first = std::make_unique<ServerLoop>(*this, 0);
    st = first->open(base);
  }
  LANEFS_TRY(st);
  std::vector<NetAddr> addrs = first->local_addrs();
  loops_.push_back(std::move(first));
  for (uint32_t i = 1; i < want; ++i) {
    transport::TransportConfig ti = tc;
    ti.reuseport_index = i;
    ti.bind = addrs[0];
    for (size_t k = 0; k < ti.extra_binds.size() && k + 1 < addrs.size(); ++k) ti.extra_binds[k] = addrs[k + 1];
    auto loop = std::make_unique<ServerLoop>(*this, i);
    if (Status s = loop->open(ti); !s.ok()) {
      // Without the whole group a session could reach a loop that does not
      // hold it: serve with one loop rather than with broken steering.
      LOG_WARN("RPC server on {}: loop {} could not join the port ({}); serving with one loop",
               addrs[0].to_string(), i, s.error().to_string());
      loops_.clear();
      transport::TransportConfig one = base;
      one.bind.port = addrs[0].port;
      auto only = std::make_unique<ServerLoop>(*this, 0);
      LANEFS_TRY(only->open(one));
      loops_.push_back(std::move(only));
      return ok_status();
    }
    loops_.push_back(std::move(loop));
  }
  return ok_status();
}

Status RpcServer::Impl::start() {
  LANEFS_TRY(open_loops());
  for (uint32_t i = 0; i < std::max(1u, opts_.workers); ++i) workers_.emplace_back([this] { worker_main(0); });
  if (opts_.is_priority)
    for (uint32_t i = 0; i < std::max(1u, opts_.priority_workers); ++i) workers_.emplace_back([this] { worker_main(1); });
  for (auto& l : loops_) LANEFS_TRY(l->start(l->index() == 0 ? opts_.cpu : -1));
  return ok_status();
}

void RpcServer::Impl::stop() {
  // Workers first: deferred work finishes and posts to loops that still
  // exist; then the loops.
  {
    std::lock_guard lk(wq_mu_);
    wq_stop_ = true;
  }
  for (auto& cv : wq_cv_) cv.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  for (auto& l : loops_) l->stop();
}

void RpcServer::Impl::enqueue(ServerCall* c) {
  int pool = ServerLoop::priority_of(*c) && opts_.is_priority ? 1 : 0;
  {
    std::lock_guard lk(wq_mu_);
    jobs_[pool].push_back(c);
  }
  wq_cv_[pool].notify_one();
}

void RpcServer::Impl::worker_main(int pool) {
  auto& q = jobs_[pool];
  for (;;) {
    ServerCall* c = nullptr;
    {
      std::unique_lock lk(wq_mu_);
      wq_cv_[pool].wait(lk, [&] { return wq_stop_ || !q.empty(); });
      if (q.empty()) return;
      c = q.front();
      q.pop_front();
    }
    ServerLoop::run_deferred(*c);
  }
}

bool RpcServer::Impl::admit(uint32_t ip, uint64_t now) {
  std::lock_guard lk(ids_mu_);
  auto at = per_ip_.find(ip);
  const bool ip_full = at != per_ip_.end() && at->second >= opts_.max_sessions_per_addr;
  if (!ip_full && counted_ < opts_.max_sessions) return true;
  // A scan looks at every session: a flood of connects gets one per ms,
  // the rest are refused without one.
  if (now - last_scan_ns_ < 1'000'000) return false;
  last_scan_ns_ = now;
  uint32_t victim = 0;
  uint64_t longest = 0;
  for (const auto& [sid, l] : live_) {
    if (l.reclaiming || l.last_active == nullptr || (ip_full && l.ip != ip)) continue;
    const uint64_t seen = l.last_active->load(std::memory_order_relaxed);
    const uint64_t idle = now > seen ? now - seen : 0;
    if (idle >= opts_.reclaim_idle_ns && idle > longest) {
      longest = idle;
      victim = sid;
    }
  }
  if (victim == 0) return false;
  Live& v = live_[victim];
  v.reclaiming = true;
  --counted_;
  if (auto it = per_ip_.find(v.ip); it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
  loops_[v.loop]->post_reclaim(victim);
  return true;
}

uint32_t RpcServer::Impl::new_session_id(uint32_t target, uint32_t ip, const std::atomic<uint64_t>* last_active) {
  std::lock_guard lk(ids_mu_);
  for (;;) {
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = static_cast<uint32_t>(mono_ns() * 0x9e3779b9u);
    // The low byte steers (transport::reuseport_steer); the rest is random.
    uint32_t n = nloops();
    uint32_t low = (r & 0xffu) - (r & 0xffu) % n + target;
    if (low > 0xffu) low -= n;
    uint32_t sid = (r & ~0xffu) | low;
    if (sid == 0 || live_.count(sid)) continue;
    live_[sid] = Live{ip, target, last_active, false};
    ++per_ip_[ip];
    ++counted_;
    total_sessions_.fetch_add(1, std::memory_order_relaxed);
    return sid;
  }
}

bool RpcServer::Impl::session_live(uint32_t sid) {
  std::lock_guard lk(ids_mu_);
  auto it = live_.find(sid);
  return it != live_.end() && !it->second.reclaiming;
}

void RpcServer::Impl::session_gone(uint32_t sid) {
  std::lock_guard lk(ids_mu_);
  auto it = live_.find(sid);
  if (it == live_.end()) return;
  if (!it->second.reclaiming) {
    --counted_;
    if (auto p = per_ip_.find(it->second.ip); p != per_ip_.end() && --p->second == 0) per_ip_.erase(p);
  }
  live_.erase(it);
  total_sessions_.fetch_sub(1, std::memory_order_relaxed);
}

RpcStatsSnapshot RpcServer::Impl::stats() const {
  RpcStatsSnapshot total{};
  for (const auto& l : loops_) {
    RpcStatsSnapshot s = snapshot_counters(l->counters());
    s.sessions = l->session_count();
    s.reassembly_bytes = l->reassembly_bytes();
    s.endpoints = 1;
    total.add(s);
  }
  return total;
}

void RpcServer::Impl::set_faults(const transport::FaultConfig& f) {
  for (auto& l : loops_) l->set_faults(f);
}

std::vector<std::pair<std::string, NetAddr>> RpcServer::Impl::sessions() const {
  std::vector<std::pair<std::string, NetAddr>> out;
  for (const auto& l : loops_) {
    auto s = l->sessions();
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

// ---------------------------------------------------------------- public

Result<std::unique_ptr<RpcServer>> RpcServer::create(ServerOptions options, CallHandler handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (auto st = impl->start(); !st.ok()) {
    impl->stop();  // loop threads may already run (pinning failed)
    return st.error();
  }
  return std::unique_ptr<RpcServer>(new RpcServer(std::move(impl)));
}

Result<std::unique_ptr<RpcServer>> RpcServer::create(ServerOptions options, Handler handler) {
  // A blocking handler runs on the workers; the loop sends its response.
  auto h = std::make_shared<Handler>(std::move(handler));
  auto prio = options.is_priority;
  CallHandler ch = [h, prio](ServerCall& c) {
    c.defer(prio && prio(c.info().opcode), [h](ServerCall& call) {
      Buffer out;
      (*h)(call.info(), call.request(), &out);
      call.response().assign(out);
    });
  };
  return create(std::move(options), std::move(ch));
}

RpcServer::RpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RpcServer::~RpcServer() { impl_->stop(); }
NetAddr RpcServer::local_addr() const { return impl_->local_addr(); }
std::vector<NetAddr> RpcServer::local_addrs() const { return impl_->local_addrs(); }
uint32_t RpcServer::loops() const { return impl_->nloops(); }
RpcStatsSnapshot RpcServer::stats() const { return impl_->stats(); }
void RpcServer::set_faults(const transport::FaultConfig& f) { impl_->set_faults(f); }
void RpcServer::reset_sessions() { impl_->auth_epoch.fetch_add(1, std::memory_order_relaxed); }
std::vector<std::pair<std::string, NetAddr>> RpcServer::sessions() const { return impl_->sessions(); }

}  // namespace lanefs::rpc

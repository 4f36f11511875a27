// RpcClient: a pool of ClientEndpoints. A calling thread leases an endpoint
// (preferably the one it used last: steady state is one endpoint per
// thread, no lock shared between threads on the call path), drives its own
// calls on it, and gives it back. A housekeeping thread looks after idle
// endpoints only (HA probes, statistics, stray packets); it never carries a
// call, so no call is ever handed from one thread to another. On a
// busy-polling DPDK port the pool is a set of dedicated cores instead
// (dedicated_core.h).
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "rpc/call_driver.h"
#include "rpc/client_endpoint.h"
#include "rpc/dedicated_core.h"

namespace lanefs::rpc {

class RpcClient::Pool {
 public:
  explicit Pool(ClientOptions o) : opts_(std::move(o)), spin_(spin_slots_for(opts_.spin_slots)) {
    opts_.max_endpoints = std::clamp<uint32_t>(opts_.max_endpoints, 1, kMaxEndpoints);
    configs_.push_back(opts_.transport);
    for (const auto& t : opts_.more_transports) configs_.push_back(t);
    opts_.max_endpoints = std::max<uint32_t>(opts_.max_endpoints, static_cast<uint32_t>(configs_.size()));
    dedicated_ = opts_.dedicated_cores && configs_[0].kind == transport::TransportKind::kDpdk &&
                 !configs_[0].dpdk.interrupt_mode;
  }

  Status start() {
    // One endpoint per transport config up front: a config that cannot be
    // opened fails create(), and every frontend core has its address.
    for (size_t i = 0; i < configs_.size(); ++i) {
      LANEFS_ASSIGN_OR_RETURN(auto ep, ClientEndpoint::create(opts_, configs_[i]));
      core_addrs_.push_back(ep->local_addr());
      ClientEndpoint* raw = ep.get();
      add(std::move(ep));
      if (!dedicated_) continue;
      cores_.push_back(std::make_unique<DedicatedCore>(raw, [this](ClientEndpoint& e) { prepare(&e); }));
      LANEFS_TRY(cores_.back()->start(cpu_of(i)));
    }
    if (dedicated_) return ok_status();
    housekeeper_ = std::thread([this] { housekeeping(); });
    return pin_thread(housekeeper_, cpu_of(0));
  }

  void stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    hk_cv_.notify_all();
    if (housekeeper_.joinable()) housekeeper_.join();
    for (auto& c : cores_) c->stop();
    // Leases end when their Batch does; a client is destroyed only after
    // its callers are done, so this waits briefly at most.
    for (uint32_t i = 0; i < n_.load(); ++i) {
      ClientEndpoint* ep = slots_[i].load();
      for (int k = 0; k < 5000 && !ep->try_lease(); ++k) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    owned_.clear();
  }

  bool dedicated() const { return dedicated_; }
  // Dedicated cores: the core this thread's calls go to (threads are spread
  // round-robin over the cores and keep theirs).
  uint32_t core_for_thread() {
    thread_local struct {
      uint64_t pool = 0;
      uint32_t core = 0;
    } mine;
    if (mine.pool != id_) mine = {id_, next_core_.fetch_add(1, std::memory_order_relaxed) % uint32_t(cores_.size())};
    return mine.core;
  }
  void submit(uint32_t core, const CallArgs& args, Mailbox* mb, uint32_t id) { cores_[core]->submit(args, mb, id); }
  void wait(Mailbox* mb, bool until_any) { mb->wait(until_any, &spin_, opts_.busy_poll_ns); }

  ClientEndpoint* lease() {
    // The endpoint this thread used last (pools are told apart by an id
    // that is never reused, not by address).
    thread_local struct {
      uint64_t pool = 0;
      ClientEndpoint* ep = nullptr;
    } hint;
    if (hint.pool == id_ && hint.ep->try_lease()) return prepare(hint.ep);
    for (;;) {
      ClientEndpoint* ep = lease_free();
      if (ep == nullptr) {
        std::unique_lock lk(mu_);
        if (n_.load() < opts_.max_endpoints) ep = open_leased_locked("waiting for a free one");
        if (ep == nullptr) {
          // Every endpoint is busy: wait for one to come back.
          ++waiters_;
          freed_cv_.wait_for(lk, std::chrono::milliseconds(5));
          --waiters_;
          continue;
        }
      }
      hint = {id_, ep};
      return prepare(ep);  // after mu_ is released: prepare() takes it
    }
  }

  // The pool's HA paths and faults, for an endpoint leased for good.
  void refresh(ClientEndpoint* ep) { prepare(ep); }

  // An endpoint for a CallDriver, kept until given back: a free one, or a
  // new one even past max_endpoints (every ring queue that is used owns
  // one); nullptr when none can be had now. Never waits.
  ClientEndpoint* lease_for_driver() {
    ClientEndpoint* ep = lease_free();
    if (ep == nullptr) {
      std::lock_guard lk(mu_);
      if (n_.load() < kMaxEndpoints) ep = open_leased_locked("its calls block their thread");
    }
    return ep != nullptr ? prepare(ep) : nullptr;  // after mu_ is released: prepare() takes it
  }

  void give_back(ClientEndpoint* ep) {
    ep->release();
    if (waiters_.load(std::memory_order_relaxed) > 0) {
      std::lock_guard lk(mu_);
      freed_cv_.notify_one();
    }
  }

  void set_paths(NetAddr server, std::vector<PathSpec> paths) {
    std::lock_guard lk(mu_);
    if (paths.empty()) paths_.erase(server);
    else paths_[server] = std::move(paths);
    paths_version_.fetch_add(1);
  }

  void set_faults(const transport::FaultConfig& f) {
    std::lock_guard lk(mu_);
    faults_ = f;
    faults_version_.fetch_add(1);
  }

  template <class F>
  void each(F&& f) const {
    uint32_t n = n_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) f(*slots_[i].load(std::memory_order_acquire));
  }

  const std::vector<NetAddr>& core_addrs() const { return core_addrs_; }

 private:
  static constexpr uint32_t kMaxEndpoints = 256;

  // A free endpoint, leased; nullptr when every one is in use.
  ClientEndpoint* lease_free() {
    const uint32_t n = n_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
      ClientEndpoint* ep = slots_[i].load(std::memory_order_acquire);
      if (ep->try_lease()) return ep;
    }
    return nullptr;
  }

  // Opens one more endpoint, leased (mu_ held); nullptr, logged with what
  // happens instead (`otherwise`), when it cannot be opened.
  ClientEndpoint* open_leased_locked(const char* otherwise) {
    auto ep = ClientEndpoint::create(opts_, configs_[n_.load() % configs_.size()]);
    if (!ep.ok()) {
      LOG_WARN("RPC client: another endpoint could not be opened ({}); {}", ep.error().to_string(), otherwise);
      return nullptr;
    }
    ClientEndpoint* raw = ep->get();
    raw->try_lease();
    add(std::move(*ep));
    return raw;
  }

  void add(std::unique_ptr<ClientEndpoint> ep) {
    ep->set_spin(&spin_);
    slots_[n_.load()].store(ep.get(), std::memory_order_release);
    owned_.push_back(std::move(ep));
    n_.fetch_add(1, std::memory_order_release);
  }

  int cpu_of(size_t core) const { return core < opts_.cpus.size() ? opts_.cpus[core] : -1; }

  // Configuration made on the pool reaches an endpoint when it is leased.
  ClientEndpoint* prepare(ClientEndpoint* ep) {
    if (ep->paths_version() != paths_version_.load(std::memory_order_acquire)) {
      std::lock_guard lk(mu_);
      ep->set_paths(paths_, paths_version_.load());
    }
    if (ep->faults_version() != faults_version_.load(std::memory_order_acquire)) {
      std::lock_guard lk(mu_);
      ep->set_faults(faults_, faults_version_.load());
    }
    return ep;
  }

  void housekeeping() {
    for (;;) {
      {
        std::unique_lock lk(mu_);
        // Idle endpoints need attention only every few milliseconds
        // (probes, stats, stray packets).
        hk_cv_.wait_for(lk, std::chrono::milliseconds(20), [this] { return stop_; });
        if (stop_) return;
      }
      each([this](ClientEndpoint& ep) {
        if (!ep.try_lease()) return;  // in use: its caller drives it
        prepare(&ep);
        ep.tend();
        give_back(&ep);
      });
    }
  }

  static inline std::atomic<uint64_t> next_id_{1};
  const uint64_t id_ = next_id_.fetch_add(1);
  ClientOptions opts_;
  SpinSlots spin_;
  bool dedicated_ = false;
  std::vector<std::unique_ptr<DedicatedCore>> cores_;
  std::atomic<uint32_t> next_core_{0};
  std::vector<transport::TransportConfig> configs_;
  std::array<std::atomic<ClientEndpoint*>, kMaxEndpoints> slots_{};
  std::atomic<uint32_t> n_{0};
  std::vector<std::unique_ptr<ClientEndpoint>> owned_;  // guarded by mu_ (appends), read-only after stop
  std::vector<NetAddr> core_addrs_;
  mutable std::mutex mu_;
  std::condition_variable freed_cv_, hk_cv_;
  std::atomic<uint32_t> waiters_{0};
  std::map<NetAddr, std::vector<PathSpec>> paths_;  // guarded by mu_
  transport::FaultConfig faults_;                   // guarded by mu_
  std::atomic<uint64_t> paths_version_{0}, faults_version_{0};
  std::thread housekeeper_;
  bool stop_ = false;  // guarded by mu_
};

Result<std::unique_ptr<RpcClient>> RpcClient::create(ClientOptions options) {
  auto pool = std::make_unique<Pool>(std::move(options));
  if (auto st = pool->start(); !st.ok()) {
    pool->stop();  // the housekeeping thread may already run (pinning failed)
    return st.error();
  }
  return std::unique_ptr<RpcClient>(new RpcClient(std::move(pool)));
}

RpcClient::RpcClient(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}
RpcClient::~RpcClient() { pool_->stop(); }

RpcClient::Batch::Batch(RpcClient& client) : client_(client) {
  CallDriver* d = CallDriver::current();
  void* fiber = d != nullptr && &d->client_ == &client && !NoPark::active() ? d->parker_.running() : nullptr;
  if (fiber != nullptr && d->attach()) {
    // On a fiber of a driven thread: share the driver's endpoint or mailbox.
    fiber_ = fiber;
    drv_ = d;
    ep_ = d->ep_;
    mb_ = d->mb_;
    core_ = d->core_;
    return;
  }
  if (client.pool_->dedicated()) {
    mb_ = take_mailbox();
    core_ = client.pool_->core_for_thread();
  } else {
    ep_ = client.pool_->lease();
  }
}
RpcClient::Batch::~Batch() {
  if (drv_) {
    wait();
    return;
  }
  if (mb_) {
    client_.pool_->wait(mb_, false);
    return_mailbox(mb_);
    return;
  }
  ep_->run(false);
  ep_->maybe_publish();
  client_.pool_->give_back(ep_);
}
void RpcClient::Batch::start(const CallArgs& args, Done done) {
  CallDone cd;
  if (drv_) {
    // The completion runs on the loop (CallDriver::step): count it for this
    // Batch and wake the fiber that may wait for it.
    ++pending_;
    cd = CallDone([this, d = std::move(done)](Result<Response> r) mutable {
      --pending_;
      ++completed_;
      d(std::move(r));
      drv_->parker_.resume(fiber_);
    });
  } else {
    cd = std::move(done);
  }
  if (mb_) client_.pool_->submit(core_, args, mb_, mb_->add(std::move(cd)));
  else ep_->start(args, std::move(cd));
}
void RpcClient::Batch::wait() {
  if (drv_) {
    while (pending_ > 0) drv_->parker_.park();
    return;
  }
  if (mb_) client_.pool_->wait(mb_, false);
  else ep_->run(false);
}
void RpcClient::Batch::wait_any() {
  if (drv_) {
    const uint64_t seen = completed_;
    while (pending_ > 0 && completed_ == seen) drv_->parker_.park();
    return;
  }
  if (mb_) client_.pool_->wait(mb_, true);
  else ep_->run(true);
}
size_t RpcClient::Batch::outstanding() const {
  if (drv_) return pending_;
  return mb_ ? mb_->outstanding() : ep_->outstanding();
}

// ------------------------------------------------------------ CallDriver
namespace {
thread_local CallDriver* t_driver = nullptr;
thread_local uint32_t t_no_park = 0;
}  // namespace

NoPark::NoPark() noexcept { ++t_no_park; }
NoPark::~NoPark() { --t_no_park; }
bool NoPark::active() noexcept { return t_no_park > 0; }

CallDriver* CallDriver::current() noexcept { return t_driver; }

Result<std::unique_ptr<CallDriver>> CallDriver::create(RpcClient& client, Parker& parker) {
  if (t_driver != nullptr) return make_error(Errc::kInvalid, "this thread already has a call driver");
  std::unique_ptr<CallDriver> d(new CallDriver(client, parker));
  if (client.pool_->dedicated()) {
    d->notify_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->notify_fd_ < 0) return sys_error("eventfd", errno);
    d->mb_ = new Mailbox;
    d->mb_->set_notify_fd(d->notify_fd_);
    d->core_ = client.pool_->core_for_thread();
  }
  // An endpoint is taken at the first call (attach()): queues of CPUs that
  // never send a request hold none.
  t_driver = d.get();
  return d;
}

bool CallDriver::attach() {
  if (ep_ != nullptr || mb_ != nullptr) return true;
  ep_ = client_.pool_->lease_for_driver();  // kept while the driver lives
  return ep_ != nullptr;
}

CallDriver::~CallDriver() {
  // Calls still out end by their deadlines; their completions resume no
  // fiber that is gone (the loop that owns the fibers waits for them first).
  if (mb_) {
    client_.pool_->wait(mb_, false);
    delete mb_;
    close(notify_fd_);
  } else if (ep_) {
    ep_->run(false);
    ep_->maybe_publish();
    client_.pool_->give_back(ep_);
  }
  if (t_driver == this) t_driver = nullptr;
}

bool CallDriver::step() {
  if (mb_) return mb_->poll() > 0;  // the core drives the network; its completions arrive here
  if (!ep_) return false;
  client_.pool_->refresh(ep_);
  return ep_->step();
}

std::array<int, 2> CallDriver::arm(uint64_t* timeout_ns) {
  if (mb_) {
    *timeout_ns = 100'000'000;  // nothing to time here: the core runs the timers
    return {notify_fd_, -1};
  }
  if (!ep_) {
    *timeout_ns = 100'000'000;
    return {-1, -1};
  }
  return ep_->arm(timeout_ns);
}

void CallDriver::fired(int i) {
  if (mb_ && i == 0) {
    uint64_t v;
    [[maybe_unused]] ssize_t rr = read(notify_fd_, &v, sizeof v);
  } else if (ep_ && i == 1) {
    ep_->drain_wake();
  }
}

size_t CallDriver::outstanding() const {
  if (mb_) return mb_->outstanding();
  return ep_ ? ep_->outstanding() : 0;
}

Result<Buffer> RpcClient::call(NetAddr server, uint16_t opcode, std::span<const uint8_t> request,
                               uint64_t timeout_ns) {
  Result<Buffer> out = make_error(Errc::kInternal, "call did not complete");
  Batch b(*this);
  CallArgs a;
  a.server = server;
  a.opcode = opcode;
  a.req = request;
  a.timeout_ns = timeout_ns;
  b.start(a, [&out](Result<Response> r) {
    if (r.ok()) out = r->to_buffer();
    else out = std::move(r).error();
  });
  b.wait();
  return out;
}

NetAddr RpcClient::local_addr() const { return pool_->core_addrs().front(); }

std::vector<NetAddr> RpcClient::local_addrs() const {
  std::vector<NetAddr> out;
  bool first = true;
  pool_->each([&](ClientEndpoint& ep) {
    if (first) out = ep.local_addrs();
    first = false;
  });
  return out;
}

std::vector<NetAddr> RpcClient::core_addrs() const { return pool_->core_addrs(); }

RpcStatsSnapshot RpcClient::stats() const {
  RpcStatsSnapshot total{};
  pool_->each([&](ClientEndpoint& ep) {
    RpcStatsSnapshot s = snapshot_counters(ep.counters());
    s.sessions = ep.sessions();
    s.endpoints = 1;
    total.add(s);
  });
  return total;
}

void RpcClient::set_paths(NetAddr server, std::vector<PathSpec> paths) { pool_->set_paths(server, std::move(paths)); }

std::vector<std::pair<NetAddr, std::vector<PathStats>>> RpcClient::path_stats() const {
  // Summed over endpoints, keyed by (server, local, remote) in first-seen order.
  std::vector<std::pair<NetAddr, std::vector<PathStats>>> out;
  pool_->each([&](ClientEndpoint& ep) {
    for (auto& [server, paths] : ep.snapshot().paths) {
      auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == server; });
      if (it == out.end()) {
        out.emplace_back(server, paths);
        continue;
      }
      for (const auto& p : paths) {
        auto q = std::find_if(it->second.begin(), it->second.end(), [&](const PathStats& x) {
          return x.spec.local == p.spec.local && x.spec.remote == p.spec.remote;
        });
        if (q == it->second.end()) {
          it->second.push_back(p);
          continue;
        }
        q->health = std::min(q->health, p.health);
        q->healthy = q->healthy && p.healthy;
        q->tx_packets += p.tx_packets;
        q->tx_bytes += p.tx_bytes;
        q->rx_packets += p.rx_packets;
        q->timeouts += p.timeouts;
        q->failovers += p.failovers;
        q->failbacks += p.failbacks;
      }
    }
  });
  return out;
}

RpcClient::SessionInfo RpcClient::session_info(NetAddr server) const {
  SessionInfo best;
  pool_->each([&](ClientEndpoint& ep) {
    if (best.connected) return;
    auto snap = ep.snapshot();
    auto it = snap.sessions.find(server);
    if (it != snap.sessions.end()) best = it->second;
  });
  return best;
}

void RpcClient::set_faults(const transport::FaultConfig& f) { pool_->set_faults(f); }

}  // namespace lanefs::rpc

// RpcServer: the server half of protocol v1 (docs/protocol.md). The loop
// thread owns sessions and the reply cache; handlers run on worker threads
// and post completions back through a queue + wake-up.
#include <sys/random.h>
#include <unistd.h>

#include <cstring>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "rpc/loop.h"

namespace lanefs::rpc {
namespace {

using proto::PacketHeader;
using proto::PktType;

enum class SlotState : uint8_t { kEmpty, kReceiving, kExecuting, kDone };

// One request slot of a session: the request being assembled or executed,
// then its complete response (the reply cache entry) until the client reuses
// the slot for a newer request id.
struct Slot {
  uint64_t req_id = 0;
  SlotState state = SlotState::kEmpty;
  uint16_t opcode = 0;
  uint16_t req_pkts = 0;
  uint32_t got_count = 0;
  uint16_t last_gen = 0;
  Buffer req;
  std::vector<bool> got;
  Buffer resp;
  uint16_t resp_pkts = 0;
};

struct Session {
  uint32_t id = 0;
  NetAddr peer;   // where the client's latest packet came from (HA: its path)
  NetAddr local;  // which of our addresses it went to (replies leave from there)
  NetAddr connect_from;  // the address its connect came from (its by_nonce_ key)
  uint64_t nonce = 0;
  std::string name;
  std::vector<Slot> slots;
  uint64_t last_active_ns = 0;
  uint32_t per_packet = 0;  // response payload bytes per packet (agreed at connect)
};

struct Job {
  uint32_t sid;
  uint32_t slot;
  uint64_t req_id;
  uint16_t opcode;
  NetAddr peer;
  std::string name;
  Buffer req;
};

struct Completion {
  uint32_t sid;
  uint32_t slot;
  uint64_t req_id;
  Buffer resp;
};

uint64_t random_u64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = mono_ns() ^ (uint64_t(getpid()) << 32);
  return v;
}

}  // namespace

class RpcServer::Impl {
 public:
  Impl(ServerOptions opts, Handler handler) : opts_(std::move(opts)), handler_(std::move(handler)) {}

  Status start() {
    LANEFS_ASSIGN_OR_RETURN(core_, LoopCore::create(opts_.transport, &counters_));
    next_sid_ = static_cast<uint32_t>(random_u64());
    for (uint32_t i = 0; i < std::max(1u, opts_.workers); ++i)
      workers_.emplace_back([this] { worker_main(0); });
    if (opts_.is_priority)
      for (uint32_t i = 0; i < std::max(1u, opts_.priority_workers); ++i)
        workers_.emplace_back([this] { worker_main(1); });
    loop_ = std::thread([this] { loop_main(); });
    LANEFS_TRY(pin_thread(loop_, opts_.cpu));
    return ok_status();
  }

  void stop() {
    stop_.store(true);
    if (core_) core_->wake();
    if (loop_.joinable()) loop_.join();
    {
      std::lock_guard lk(wq_mu_);
      wq_stop_ = true;
    }
    for (auto& cv : wq_cv_) cv.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  NetAddr local_addr() const { return core_->transport().local_addr(); }
  std::vector<NetAddr> local_addrs() const { return core_->transport().local_addrs(); }

  RpcStatsSnapshot stats() const;
  void set_faults(const transport::FaultConfig& f) {
    std::lock_guard lk(fault_mu_);
    pending_faults_ = f;
    faults_changed_ = true;
  }
  std::vector<std::pair<std::string, NetAddr>> sessions() const {
    std::lock_guard lk(sess_mu_);
    std::vector<std::pair<std::string, NetAddr>> out;
    for (auto& [id, s] : sessions_) out.emplace_back(s->name, s->peer);
    return out;
  }

 private:
  void loop_main();
  void worker_main(int pool);
  void on_packet(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload, bool bad_version);
  void on_connect(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload);
  void on_request(Session& s, const PacketHeader& h, std::span<const uint8_t> payload);
  void on_rfr(Session& s, const PacketHeader& h);
  void on_completion(Completion& c);
  void send_simple(NetAddr dst, PktType type, uint32_t sid, uint64_t rid, uint16_t pkt_num,
                   uint16_t pkt_count, uint16_t gen, std::span<const uint8_t> body = {});
  void send_response_pkt(Session& s, Slot& sl, uint16_t j, uint16_t gen);
  void reset_slot(Slot& sl, const PacketHeader& h);
  void gc_sessions(uint64_t now);

  ServerOptions opts_;
  Handler handler_;
  RpcCounters counters_;
  std::unique_ptr<LoopCore> core_;
  NetAddr reply_from_;  // the local address of the packet being handled (loop thread)
  std::thread loop_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};

  std::mutex wq_mu_;
  std::condition_variable wq_cv_[2];  // one per pool: wake only the pool that has work
  std::deque<Job> jobs_[2];  // [0] ordinary, [1] priority pool
  bool wq_stop_ = false;

  std::mutex cq_mu_;
  std::vector<Completion> completions_;

  mutable std::mutex sess_mu_;  // guards the map's structure for sessions()
  std::unordered_map<uint32_t, std::unique_ptr<Session>> sessions_;
  std::map<std::pair<NetAddr, uint64_t>, uint32_t> by_nonce_;
  uint32_t next_sid_ = 1;
  uint64_t last_gc_ns_ = 0;

  std::mutex fault_mu_;
  transport::FaultConfig pending_faults_;
  bool faults_changed_ = false;
};

void RpcServer::Impl::loop_main() {
  std::vector<Completion> done;
  while (!stop_.load(std::memory_order_relaxed)) {
    {
      std::lock_guard lk(fault_mu_);
      if (faults_changed_) {
        core_->faults().set_faults(pending_faults_);
        faults_changed_ = false;
      }
    }
    size_t n = core_->receive([this](NetAddr src, NetAddr dst, const PacketHeader& h,
                                     std::span<const uint8_t> p, bool bad_version) {
      reply_from_ = dst;
      on_packet(src, h, p, bad_version);
    });
    {
      std::lock_guard lk(cq_mu_);
      done.swap(completions_);
    }
    for (auto& c : done) on_completion(c);
    bool busy = n > 0 || !done.empty();
    done.clear();
    core_->flush();
    uint64_t now = mono_ns();
    if (now - last_gc_ns_ > 1'000'000'000) gc_sessions(now);
    if (!busy) core_->wait(50'000'000);
  }
  core_->flush();
}

void RpcServer::Impl::worker_main(int pool) {
  auto& q = jobs_[pool];
  for (;;) {
    Job job;
    {
      std::unique_lock lk(wq_mu_);
      wq_cv_[pool].wait(lk, [&] { return wq_stop_ || !q.empty(); });
      if (q.empty()) return;
      job = std::move(q.front());
      q.pop_front();
    }
    RequestInfo info{job.peer, job.sid, job.req_id, job.opcode, &job.name};
    Completion c{job.sid, job.slot, job.req_id, {}};
    handler_(info, job.req, &c.resp);
    counters_.requests_executed.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lk(cq_mu_);
      completions_.push_back(std::move(c));
    }
    core_->wake();
  }
}

void RpcServer::Impl::send_simple(NetAddr dst, PktType type, uint32_t sid, uint64_t rid,
                                  uint16_t pkt_num, uint16_t pkt_count, uint16_t gen,
                                  std::span<const uint8_t> body) {
  PacketHeader h;
  h.type = type;
  h.session_id = sid;
  h.request_id = rid;
  h.pkt_num = pkt_num;
  h.pkt_count = pkt_count;
  h.generation = gen;
  h.msg_len = static_cast<uint32_t>(body.size());
  core_->send(dst, h, body, reply_from_);  // every simple packet answers the one just received
}

void RpcServer::Impl::on_packet(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload,
                                bool bad_version) {
  if (bad_version) {
    // Another protocol version: say which one we speak, never guess theirs.
    if (h.type == PktType::kConnect) {
      counters_.version_rejects.fetch_add(1, std::memory_order_relaxed);
      Buffer body;
      Encoder e(&body);
      e.i32(static_cast<int32_t>(Errc::kVersion));
      e.u8(proto::kVersion);
      // body must outlive the batch: send and flush now.
      send_simple(src, PktType::kConnectReject, 0, h.request_id, 0, 1, 0, body);
      core_->flush();
    }
    return;
  }
  switch (h.type) {
    case PktType::kConnect:
      on_connect(src, h, payload);
      return;
    case PktType::kPing:
      send_simple(src, PktType::kPong, h.session_id, h.request_id, 0, 1, h.generation);
      return;
    case PktType::kRequest:
    case PktType::kRfr:
    case PktType::kDisconnect:
      break;
    default:
      counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
      return;
  }
  auto it = sessions_.find(h.session_id);
  if (it != sessions_.end() && (it->second->peer != src || it->second->local != reply_from_)) {
    // The client moved the session to another path (HA failover, load
    // balancing): answer on the path its packets now take. The session id
    // is random and the request ids must match, so strays cannot hijack it.
    it->second->peer = src;
    it->second->local = reply_from_;
  }
  if (it == sessions_.end()) {
    counters_.unknown_session.fetch_add(1, std::memory_order_relaxed);
    if (h.type != PktType::kDisconnect)
      send_simple(src, PktType::kSessionReset, h.session_id, h.request_id, 0, 1, h.generation);
    return;
  }
  Session& s = *it->second;
  s.last_active_ns = mono_ns();
  if (h.type == PktType::kRequest) {
    on_request(s, h, payload);
  } else if (h.type == PktType::kRfr) {
    on_rfr(s, h);
  } else {
    core_->flush();
    std::lock_guard lk(sess_mu_);
    by_nonce_.erase({s.connect_from, s.nonce});
    sessions_.erase(it);
  }
}

void RpcServer::Impl::on_connect(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload) {
  Decoder d(payload);
  uint32_t want_slots = d.u32();
  std::string name = d.str(256);
  // The client's datagram limit (absent: an Ethernet-sized one).
  uint32_t client_max = d.remaining() >= 4 ? d.u32() : proto::kHeaderSize + 1428;
  if (!d.ok() || want_slots == 0 || client_max <= proto::kHeaderSize) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uint32_t sid;
  auto known = by_nonce_.find({src, h.request_id});
  if (known != by_nonce_.end() && !sessions_.count(known->second)) {
    by_nonce_.erase(known);  // its session is gone: a late duplicate starts a new one
    known = by_nonce_.end();
  }
  if (known != by_nonce_.end()) {
    sid = known->second;  // a retransmitted connect: same answer
  } else {
    if (sessions_.size() >= opts_.max_sessions) {
      Buffer body;
      Encoder e(&body);
      e.i32(static_cast<int32_t>(Errc::kBusy));
      e.u8(proto::kVersion);
      send_simple(src, PktType::kConnectReject, 0, h.request_id, 0, 1, 0, body);
      core_->flush();
      return;
    }
    do {
      sid = ++next_sid_;
    } while (sid == 0 || sessions_.count(sid));
    auto s = std::make_unique<Session>();
    s->id = sid;
    s->peer = src;
    s->local = reply_from_;
    s->connect_from = src;
    s->nonce = h.request_id;
    s->name = std::move(name);
    s->slots.resize(std::min(want_slots, opts_.max_slots));
    s->per_packet = std::min<uint32_t>(core_->payload_per_packet(), client_max - proto::kHeaderSize);
    s->last_active_ns = mono_ns();
    std::lock_guard lk(sess_mu_);
    sessions_.emplace(sid, std::move(s));
    by_nonce_[{src, h.request_id}] = sid;
    counters_.connects.fetch_add(1, std::memory_order_relaxed);
  }
  Buffer body;
  Encoder e(&body);
  e.u32(static_cast<uint32_t>(sessions_[sid]->slots.size()));
  e.str(opts_.name);
  e.u32(core_->transport().max_datagram());
  send_simple(src, PktType::kConnectOk, sid, h.request_id, 0, 1, h.generation, body);
  core_->flush();
}

void RpcServer::Impl::reset_slot(Slot& sl, const PacketHeader& h) {
  core_->flush();  // queued packets may point into the old response
  sl.req_id = h.request_id;
  sl.state = SlotState::kReceiving;
  sl.opcode = h.opcode;
  sl.req_pkts = h.pkt_count;
  sl.got_count = 0;
  sl.last_gen = 0;
  sl.req.assign(h.msg_len, 0);
  sl.got.assign(h.pkt_count, false);
  sl.resp.clear();
  sl.resp.shrink_to_fit();
  sl.resp_pkts = 0;
}

void RpcServer::Impl::on_request(Session& s, const PacketHeader& h, std::span<const uint8_t> payload) {
  Slot& sl = s.slots[h.request_id % s.slots.size()];
  if (h.request_id < sl.req_id) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.request_id > sl.req_id) {
    reset_slot(sl, h);
  } else if (h.pkt_count != sl.req_pkts || (sl.state == SlotState::kReceiving && h.msg_len != sl.req.size())) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint16_t last = static_cast<uint16_t>(sl.req_pkts - 1);
  if (h.pkt_num == last) sl.last_gen = std::max(sl.last_gen, h.generation);
  switch (sl.state) {
    case SlotState::kReceiving: {
      if (!sl.got[h.pkt_num]) {
        std::memcpy(sl.req.data() + h.frag_offset, payload.data(), payload.size());
        sl.got[h.pkt_num] = true;
        ++sl.got_count;
      } else {
        counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      }
      if (sl.got_count == sl.req_pkts) {
        sl.state = SlotState::kExecuting;
        Job job{s.id, static_cast<uint32_t>(h.request_id % s.slots.size()), sl.req_id, sl.opcode,
                s.peer, s.name, std::move(sl.req)};
        sl.req = Buffer();
        sl.got = std::vector<bool>();
        int pool = opts_.is_priority && opts_.is_priority(job.opcode) ? 1 : 0;
        {
          std::lock_guard lk(wq_mu_);
          jobs_[pool].push_back(std::move(job));
        }
        wq_cv_[pool].notify_one();
        if (h.pkt_num != last) send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation);
      } else {
        send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation);
      }
      return;
    }
    case SlotState::kExecuting:
      // Still running: acknowledge so the client keeps waiting, never re-run.
      counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation);
      return;
    case SlotState::kDone:
      counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      if (h.pkt_num == last) {
        counters_.replies_from_cache.fetch_add(1, std::memory_order_relaxed);
        send_response_pkt(s, sl, 0, h.generation);
      } else {
        send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation);
      }
      return;
    case SlotState::kEmpty:
      return;
  }
}

void RpcServer::Impl::on_rfr(Session& s, const PacketHeader& h) {
  Slot& sl = s.slots[h.request_id % s.slots.size()];
  if (h.request_id != sl.req_id || sl.state != SlotState::kDone || h.pkt_num == 0 ||
      h.pkt_num >= sl.resp_pkts) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  send_response_pkt(s, sl, h.pkt_num, h.generation);
}

void RpcServer::Impl::send_response_pkt(Session& s, Slot& sl, uint16_t j, uint16_t gen) {
  uint32_t per = s.per_packet;
  size_t off = size_t{j} * per;
  size_t len = std::min<size_t>(per, sl.resp.size() - std::min(off, sl.resp.size()));
  PacketHeader h;
  h.type = PktType::kResponse;
  h.session_id = s.id;
  h.request_id = sl.req_id;
  h.pkt_num = j;
  h.pkt_count = sl.resp_pkts;
  h.generation = gen;
  h.opcode = sl.opcode;
  h.msg_len = static_cast<uint32_t>(sl.resp.size());
  h.frag_offset = static_cast<uint32_t>(off);
  core_->send(s.peer, h, std::span<const uint8_t>(sl.resp).subspan(std::min(off, sl.resp.size()), len), s.local);
}

void RpcServer::Impl::on_completion(Completion& c) {
  auto it = sessions_.find(c.sid);
  if (it == sessions_.end()) return;  // client went away
  Session& s = *it->second;
  Slot& sl = s.slots[c.slot];
  if (sl.req_id != c.req_id || sl.state != SlotState::kExecuting) return;
  if (c.resp.size() > proto::kMaxMessage) {
    LOG_ERROR("handler for opcode {} produced {} bytes (max {}); answering kInternal", sl.opcode,
              c.resp.size(), proto::kMaxMessage);
    c.resp.clear();
    Encoder e(&c.resp);
    e.i32(static_cast<int32_t>(Errc::kInternal));
  }
  sl.resp = std::move(c.resp);
  sl.resp_pkts = static_cast<uint16_t>(packets_for(sl.resp.size(), s.per_packet));
  sl.state = SlotState::kDone;
  send_response_pkt(s, sl, 0, sl.last_gen);
}

void RpcServer::Impl::gc_sessions(uint64_t now) {
  last_gc_ns_ = now;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second->last_active_ns > opts_.session_idle_ns) {
      core_->flush();
      std::lock_guard lk(sess_mu_);
      by_nonce_.erase({it->second->connect_from, it->second->nonce});
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

RpcStatsSnapshot snapshot_counters(const RpcCounters& c) {
  RpcStatsSnapshot s{};
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.calls_ok = ld(c.calls_ok);
  s.calls_failed = ld(c.calls_failed);
  s.calls_timed_out = ld(c.calls_timed_out);
  s.retransmits = ld(c.retransmits);
  s.rto_events = ld(c.rto_events);
  s.session_resets = ld(c.session_resets);
  s.requests_executed = ld(c.requests_executed);
  s.replies_from_cache = ld(c.replies_from_cache);
  s.stale_dropped = ld(c.stale_dropped);
  s.duplicate_fragments = ld(c.duplicate_fragments);
  s.unknown_session = ld(c.unknown_session);
  s.connects = ld(c.connects);
  s.version_rejects = ld(c.version_rejects);
  s.unexpected_packets = ld(c.unexpected_packets);
  s.tx_packets = ld(c.tx_packets);
  s.rx_packets = ld(c.rx_packets);
  s.rx_invalid_total = c.rx_invalid_total();
  for (int i = 0; i < static_cast<int>(proto::DecodeError::kCount); ++i) s.rx_invalid[i] = ld(c.rx_invalid[i]);
  return s;
}

RpcStatsSnapshot RpcServer::Impl::stats() const {
  RpcStatsSnapshot s = snapshot_counters(counters_);
  std::lock_guard lk(sess_mu_);
  s.sessions = static_cast<uint32_t>(sessions_.size());
  return s;
}

Result<std::unique_ptr<RpcServer>> RpcServer::create(ServerOptions options, Handler handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (auto st = impl->start(); !st.ok()) {
    impl->stop();  // a loop thread may already run (pinning failed)
    return st.error();
  }
  return std::unique_ptr<RpcServer>(new RpcServer(std::move(impl)));
}

RpcServer::RpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RpcServer::~RpcServer() { impl_->stop(); }
NetAddr RpcServer::local_addr() const { return impl_->local_addr(); }
std::vector<NetAddr> RpcServer::local_addrs() const { return impl_->local_addrs(); }
RpcStatsSnapshot RpcServer::stats() const { return impl_->stats(); }
void RpcServer::set_faults(const transport::FaultConfig& f) { impl_->set_faults(f); }
std::vector<std::pair<std::string, NetAddr>> RpcServer::sessions() const { return impl_->sessions(); }

}  // namespace lanefs::rpc

// ServerLoop: the server half of protocol v1 (docs/protocol.md) on one
// loop. It owns the sessions steered to it and their reply caches, runs
// each complete request's handler inline, and sends the response — the
// first packets pushed at once, the rest on request-for-response.
#include <sys/random.h>

#include <algorithm>
#include <cstring>

#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "proto/session.h"
#include "rpc/server_impl.h"

namespace lanefs::rpc {
namespace {

using proto::PacketHeader;
using proto::PktType;

}  // namespace

// ------------------------------------------------------------ ServerCall

void ServerCall::finish() { loop_->finish(*this); }

void ServerCall::defer(bool priority, Work work) {
  work_ = std::move(work);
  priority_ = priority;
  loop_->defer(*this);
}

// ------------------------------------------------------------ lifecycle

ServerLoop::~ServerLoop() { stop(); }

Status ServerLoop::open(const transport::TransportConfig& tc) {
  LANEFS_ASSIGN_OR_RETURN(core_, LoopCore::create(tc, &counters_));
  local_ = core_->transport().local_addr();
  locals_ = core_->transport().local_addrs();
  per_packet_ = core_->payload_per_packet();
  max_datagram_ = core_->transport().max_datagram();
  return ok_status();
}

Status ServerLoop::start(int cpu) {
  thread_ = std::thread([this] { run(); });
  return pin_thread(thread_, cpu);
}

void ServerLoop::stop() {
  stop_.store(true);
  if (core_) core_->wake();
  if (thread_.joinable()) thread_.join();
}

void ServerLoop::post_session(std::unique_ptr<Session> s) {
  {
    std::lock_guard lk(inbox_mu_);
    inbox_.push_back(std::move(s));
    inbox_flag_.store(true, std::memory_order_release);
  }
  core_->wake();
}

void ServerLoop::post_reclaim(uint32_t sid) {
  {
    std::lock_guard lk(inbox_mu_);
    reclaims_.push_back(sid);
    inbox_flag_.store(true, std::memory_order_release);
  }
  core_->wake();
}

void ServerLoop::post_completion(ServerCall* c) {
  {
    std::lock_guard lk(cq_mu_);
    completions_.push_back(c);
    cq_flag_.store(true, std::memory_order_release);
  }
  core_->wake();
}

void ServerLoop::set_faults(const transport::FaultConfig& f) {
  std::lock_guard lk(fault_mu_);
  pending_faults_ = f;
  faults_changed_.store(true);
  if (core_) core_->wake();
}

std::vector<std::pair<std::string, NetAddr>> ServerLoop::sessions() const {
  std::lock_guard lk(sess_mu_);
  std::vector<std::pair<std::string, NetAddr>> out;
  for (auto& [id, s] : sessions_) out.emplace_back(s->name, s->peer);
  return out;
}

bool ServerLoop::drain_inbox() {
  if (!inbox_flag_.load(std::memory_order_acquire)) return false;
  std::vector<std::unique_ptr<Session>> in;
  {
    std::lock_guard lk(inbox_mu_);
    in.swap(inbox_);
    drop_.insert(drop_.end(), reclaims_.begin(), reclaims_.end());
    reclaims_.clear();
    inbox_flag_.store(false, std::memory_order_relaxed);
  }
  {
    std::lock_guard lk(sess_mu_);
    for (auto& s : in) {
      uint32_t id = s->id;
      sessions_.emplace(id, std::move(s));
    }
    n_sessions_.store(static_cast<uint32_t>(sessions_.size()), std::memory_order_relaxed);
  }
  return !in.empty();
}

// Sessions reclaimed to admit new ones (admit()): their clients get
// kSessionReset at their next packet and reconnect. Run between packets
// only (never while a session's packet is being handled).
void ServerLoop::drop_reclaimed() {
  for (uint32_t sid : drop_) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) continue;
    counters_.sessions_reclaimed.fetch_add(1, std::memory_order_relaxed);
    erase_session(it);
  }
  drop_.clear();
}

size_t ServerLoop::drain_completions() {
  if (!cq_flag_.load(std::memory_order_acquire)) return 0;
  {
    std::lock_guard lk(cq_mu_);
    completing_.swap(completions_);
    cq_flag_.store(false, std::memory_order_relaxed);
  }
  for (ServerCall* c : completing_) finish(*c);
  size_t n = completing_.size();
  completing_.clear();
  return n;
}

void ServerLoop::run() {
  if (server_.opts().attach) attach_ = server_.opts().attach(index_);
  const uint64_t busy_poll_ns = server_.opts().busy_poll_ns;
  const int attach_fd = attach_ ? attach_->notify_fd() : -1;
  uint64_t idle_since = mono_ns();
  SpinHold spin(&server_.spin_slots());
  while (!stop_.load(std::memory_order_relaxed)) {
    if (faults_changed_.load(std::memory_order_relaxed)) {
      std::lock_guard lk(fault_mu_);
      core_->flush();
      core_->faults().set_faults(pending_faults_);
      faults_changed_.store(false);
    }
    bool busy = drain_inbox();
    if (!drop_.empty()) drop_reclaimed();
    size_t n = core_->receive([this](NetAddr src, NetAddr dst, const PacketHeader& h, std::span<const uint8_t> p,
                                     bool bad_version) {
      reply_from_ = dst;
      on_packet(src, h, p, bad_version);
    });
    busy |= n > 0;
    busy |= drain_completions() > 0;
    if (attach_) busy |= attach_->poll() > 0 || attach_->has_pending();
    busy |= core_->pending_tx();
    core_->flush();
    uint64_t now = mono_ns();
    if (now - last_gc_ns_ > 1'000'000'000) gc_sessions(now);
    if (busy) {
      idle_since = now;
      continue;
    }
    if (core_->busy_polls()) {
      core_->wait(0);  // yields only
      continue;
    }
    if (now - idle_since < busy_poll_ns && spin.spin()) continue;
    spin.release();
    core_->wait(attach_ && attach_->inflight() > 0 ? 1'000'000 : 50'000'000, attach_fd);
    idle_since = mono_ns();
  }
  // The attachment drains its in-flight work now, while sessions and the
  // transport still exist (its completions finish calls).
  attach_.reset();
  core_->flush();
  // Calls still deferred come back through the completion queue; their
  // objects are freed with the loop after the workers stopped.
}

// ---------------------------------------------------------------- calls

ServerCall* ServerLoop::take_call() {
  if (!free_calls_.empty()) {
    ServerCall* c = free_calls_.back();
    free_calls_.pop_back();
    return c;
  }
  calls_.push_back(std::make_unique<ServerCall>());
  ServerCall* c = calls_.back().get();
  c->loop_ = this;
  c->loop_index_ = index_;
  return c;
}

void ServerLoop::recycle(ServerCall* c) {
  // A buffer that grew for a rare huge message is not kept.
  if (c->req_.capacity() > (4u << 20)) c->req_.release();
  if (c->resp_.capacity() > (4u << 20)) c->resp_.release();
  c->work_.reset();
  c->principal_.reset();
  free_calls_.push_back(c);
}

void ServerLoop::execute(Session& s, uint32_t slot_index) {
  Slot& sl = s.slots[slot_index];
  ServerCall* c = take_call();
  std::swap(c->req_, sl.req);  // the slot keeps the call's old buffer for its next request
  c->resp_.clear();
  c->slot_ = slot_index;
  c->name_ = s.name;
  c->principal_ = s.principal;
  c->info_ = RequestInfo{s.peer, s.id, sl.req_id, sl.opcode, &c->name_, s.client_id, sl.resent, c->principal_.get()};
  c->priority_ = false;
  server_.handler()(*c);
}

void ServerLoop::run_deferred(ServerCall& c) {
  c.work_(c);
  c.loop_->post_completion(&c);
}

void ServerLoop::defer(ServerCall& c) {
  counters_.deferred_requests.fetch_add(1, std::memory_order_relaxed);
  server_.enqueue(&c);
}

void ServerLoop::finish(ServerCall& c) {
  counters_.requests_executed.fetch_add(1, std::memory_order_relaxed);
  if (!c.work_) counters_.inline_requests.fetch_add(1, std::memory_order_relaxed);
  Session* s = find_session(c.info_.session_id);
  if (s == nullptr || c.slot_ >= s->slots.size()) return recycle(&c);  // the client went away
  Slot& sl = s->slots[c.slot_];
  if (sl.req_id != c.info_.request_id || sl.state != SlotState::kExecuting) return recycle(&c);
  if (c.resp_.size() > proto::kMaxMessage) {
    LOG_ERROR("handler for opcode {} produced {} bytes (max {}); answering kInternal", sl.opcode, c.resp_.size(),
              proto::kMaxMessage);
    Buffer e;
    Encoder enc(&e);
    enc.i32(static_cast<int32_t>(Errc::kInternal));
    enc.str("response too large");
    c.resp_.assign(e);
  }
  std::swap(sl.resp, c.resp_);  // the slot keeps the response (reply cache)
  sl.resp_pkts = static_cast<uint16_t>(packets_for(sl.resp.size(), s->per_packet));
  sl.state = SlotState::kDone;
  // Push the first packets now; the client asks for the rest.
  uint16_t push = static_cast<uint16_t>(std::clamp<uint32_t>(s->push, 1, sl.resp_pkts));
  for (uint16_t j = 0; j < push; ++j) {
    send_response_pkt(*s, sl, j, sl.last_gen);
    // Keyed: the client checks these while we seal the next (LoopCore::
    // kPipelineBytes; the client does the same for a request's packets).
    if (s->mac && push > 1) core_->flush_at(LoopCore::kPipelineBytes);
  }
  recycle(&c);
}

// -------------------------------------------------------------- packets

void ServerLoop::send_simple(NetAddr dst, PktType type, uint32_t sid, uint64_t rid, uint16_t pkt_num,
                             uint16_t pkt_count, uint16_t gen, std::span<const uint8_t> body, bool single,
                             Session* keyed) {
  PacketHeader h;
  h.type = type;
  h.session_id = sid;
  h.request_id = rid;
  h.pkt_num = pkt_num;
  h.pkt_count = pkt_count;
  h.generation = gen;
  h.msg_len = static_cast<uint32_t>(body.size());
  proto::SessionMac* mac = keyed ? keyed->mac.get() : nullptr;
  if (mac) h.seq = ++keyed->tx_seq;
  core_->send(dst, h, body, {}, reply_from_, single, mac);  // every simple packet answers the one just received
}

Session* ServerLoop::find_session(uint32_t sid) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end() && drain_inbox()) it = sessions_.find(sid);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void ServerLoop::on_packet(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload, bool bad_version) {
  if (bad_version) {
    // Another protocol version: say which one we speak, never guess theirs.
    if (h.type == PktType::kConnect) {
      counters_.version_rejects.fetch_add(1, std::memory_order_relaxed);
      Buffer body;
      Encoder e(&body);
      e.i32(static_cast<int32_t>(Errc::kVersion));
      e.u8(proto::kVersion);
      send_simple(src, PktType::kConnectReject, 0, h.request_id, 0, 1, 0, body);
      core_->flush();  // body is local
    }
    return;
  }
  switch (h.type) {
    case PktType::kConnect:
      on_connect(src, h, payload);
      return;
    case PktType::kPing:
      if (h.flags & proto::kFlagMac) break;  // a keyed session's probe: answered with a MAC below
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
  Session* sp = find_session(h.session_id);
  if (sp == nullptr) {
    counters_.unknown_session.fetch_add(1, std::memory_order_relaxed);
    if (h.type != PktType::kDisconnect)
      send_simple(src, PktType::kSessionReset, h.session_id, h.request_id, 0, 1, h.generation);
    return;
  }
  Session& s = *sp;
  // A keyed session acts on nothing whose MAC does not verify or that it
  // has seen (a forgery, a replay); an unkeyed one on nothing keyed.
  if (s.mac ? !core_->authentic(*s.mac, s.rx_window, h, payload) : (h.flags & proto::kFlagMac) != 0) {
    if (!s.mac) core_->count_bad_mac();
    return;
  }
  if (h.type == PktType::kPing) {
    send_simple(src, PktType::kPong, h.session_id, h.request_id, 0, 1, h.generation, {}, false, &s);
    return;
  }
  if (s.peer != src || s.local != reply_from_) {
    // The client moved the session to another path (HA failover, load
    // balancing): answer on the path its packets now take. The session id
    // is random and the request ids must match, so strays cannot hijack it.
    s.peer = src;
    s.local = reply_from_;
  }
  s.last_active_ns.store(mono_ns(), std::memory_order_relaxed);
  if (h.type == PktType::kRequest) on_request(s, h, payload);
  else if (h.type == PktType::kRfr) on_rfr(s, h);
  else erase_session(sessions_.find(h.session_id));
}

void ServerLoop::reset_slot(Slot& sl, const PacketHeader& h) {
  core_->flush();  // queued packets may point into the old response
  sl.req_id = h.request_id;
  sl.state = SlotState::kReceiving;
  sl.opcode = h.opcode;
  sl.req_pkts = h.pkt_count;
  sl.got_count = 0;
  sl.last_gen = 0;
  sl.resent = false;
  sl.frag_len = 0;
  sl.last_off = ~0u;
  sl.req.resize_uninit(h.msg_len);
  sl.got.assign(h.pkt_count, false);
  sl.resp.clear();
  sl.resp_pkts = 0;
}


bool ServerLoop::reserve(Session& s, Slot& sl, const PacketHeader& h) {
  if (h.pkt_count == 1) return true;  // all of it is in this datagram
  const ServerOptions& o = server_.opts();
  const uint64_t loop_cap =
      std::max<uint64_t>(o.max_reassembly_bytes / server_.nloops(), proto::kMaxMessage);
  const uint64_t held = reassembly_bytes_.load(std::memory_order_relaxed);
  if (s.reassembly + h.msg_len > o.max_session_reassembly_bytes || held + h.msg_len > loop_cap) {
    counters_.reassembly_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  sl.reserved = h.msg_len;
  s.reassembly += h.msg_len;
  reassembly_bytes_.store(held + h.msg_len, std::memory_order_relaxed);
  return true;
}

void ServerLoop::unreserve(Session& s, Slot& sl) {
  s.reassembly -= sl.reserved;
  reassembly_bytes_.store(reassembly_bytes_.load(std::memory_order_relaxed) - sl.reserved, std::memory_order_relaxed);
  sl.reserved = 0;
}

void ServerLoop::on_request(Session& s, const PacketHeader& h, std::span<const uint8_t> payload) {
  const uint32_t slot_index = static_cast<uint32_t>(h.request_id % s.slots.size());
  Slot& sl = s.slots[slot_index];
  if (h.request_id < sl.req_id) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.request_id > sl.req_id) {
    if (s.auth_epoch != server_.auth_epoch.load(std::memory_order_relaxed)) {
      // Who may do what changed (RpcServer::reset_sessions): a new request
      // makes its client connect (and authenticate) again. Requests begun
      // before finish and their replies can still be fetched: the one that
      // made the change (an fs create) must not run twice as a resend.
      const NetAddr peer = s.peer;
      const uint32_t sid = s.id;
      erase_session(sessions_.find(sid));
      send_simple(peer, PktType::kSessionReset, sid, h.request_id, 0, 1, h.generation);
      return;
    }
    if (!proto::fragment_fits(h, payload.size(), 0, ~0u)) {
      counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // A request still being received here was given up by its client
    // (it moved on to a newer id): its memory goes back first.
    if (sl.reserved) {
      unreserve(s, sl);
      sl.state = SlotState::kEmpty;  // its late fragments are dropped
    }
    if (!reserve(s, sl, h)) return;  // its client resends
    reset_slot(sl, h);
  } else if (h.pkt_count != sl.req_pkts || (sl.state == SlotState::kReceiving && h.msg_len != sl.req.size())) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  } else if (sl.state == SlotState::kReceiving && !proto::fragment_fits(h, payload.size(), sl.frag_len, sl.last_off)) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint16_t last = static_cast<uint16_t>(sl.req_pkts - 1);
  if (h.pkt_num == last) sl.last_gen = std::max(sl.last_gen, h.generation);
  if (h.flags & proto::kFlagResent) sl.resent = true;
  switch (sl.state) {
    case SlotState::kReceiving: {
      if (!sl.got[h.pkt_num]) {
        if (!payload.empty()) std::memcpy(sl.req.data() + h.frag_offset, payload.data(), payload.size());
        sl.got[h.pkt_num] = true;
        ++sl.got_count;
        if (h.pkt_num == last) sl.last_off = h.frag_offset;
        else sl.frag_len = static_cast<uint32_t>(payload.size());
      } else {
        counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      }
      if (sl.got_count == sl.req_pkts) {
        sl.state = SlotState::kExecuting;
        if (sl.reserved) unreserve(s, sl);  // the buffer goes to the call
        if (h.pkt_num != last)
          send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation, {}, s.single, &s);
        execute(s, slot_index);  // may finish (and send) at once
      } else {
        send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation, {}, s.single, &s);
      }
      return;
    }
    case SlotState::kExecuting:
      // Still running: acknowledge so the client keeps waiting, never re-run.
      counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation, {}, s.single, &s);
      return;
    case SlotState::kDone:
      counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      if (h.pkt_num == last) {
        counters_.replies_from_cache.fetch_add(1, std::memory_order_relaxed);
        send_response_pkt(s, sl, 0, h.generation);
      } else {
        send_simple(s.peer, PktType::kCreditReturn, s.id, h.request_id, h.pkt_num, sl.req_pkts, h.generation, {}, s.single, &s);
      }
      return;
    case SlotState::kEmpty:
      return;
  }
}

void ServerLoop::on_rfr(Session& s, const PacketHeader& h) {
  Slot& sl = s.slots[h.request_id % s.slots.size()];
  if (h.request_id != sl.req_id || sl.state != SlotState::kDone || h.pkt_num == 0 || h.pkt_num >= sl.resp_pkts) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  send_response_pkt(s, sl, h.pkt_num, h.generation);
}

void ServerLoop::send_response_pkt(Session& s, Slot& sl, uint16_t j, uint16_t gen) {
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
  if (s.mac) h.seq = ++s.tx_seq;
  core_->send(s.peer, h, sl.resp.span().subspan(std::min(off, sl.resp.size()), len), {}, s.local, s.single,
              s.mac.get());
}

void ServerLoop::erase_session(std::unordered_map<uint32_t, std::unique_ptr<Session>>::iterator it) {
  core_->flush();  // queued packets may point into its reply caches
  reassembly_bytes_.store(reassembly_bytes_.load(std::memory_order_relaxed) - it->second->reassembly,
                          std::memory_order_relaxed);
  server_.session_gone(it->first);
  std::lock_guard lk(sess_mu_);
  sessions_.erase(it);
  n_sessions_.store(static_cast<uint32_t>(sessions_.size()), std::memory_order_relaxed);
}

void ServerLoop::gc_sessions(uint64_t now) {
  last_gc_ns_ = now;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (now - it->second->last_active_ns.load(std::memory_order_relaxed) > server_.opts().session_idle_ns)
      erase_session(it);
    it = next;
  }
  if (index_ == 0) {
    // Resent connects arrive within seconds; forget older ones.
    for (auto it = server_.by_nonce.begin(); it != server_.by_nonce.end();) {
      if (now - it->second.at_ns > 60'000'000'000ull || !server_.session_live(it->second.sid)) it = server_.by_nonce.erase(it);
      else ++it;
    }
  }
}

}  // namespace lanefs::rpc

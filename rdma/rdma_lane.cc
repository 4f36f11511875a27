// RdmaLane control path: setup, the lane thread, rdma_cm events, connect.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>

#include "common/clock.h"
#include "common/log.h"
#include "rdma/rdma_lane_impl.h"

namespace lanefs::transport {
namespace rdma {
namespace {

constexpr uint32_t kMaxSendWr = 128;
constexpr size_t kMrCacheEntries = 256;
// One address-resolution attempt; retried within the connect timeout.
constexpr uint32_t kResolveMs = 2000;

Status set_nonblocking(int fd, const char* what) {
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return sys_error(std::string("rdma: fcntl O_NONBLOCK on ") + what, errno);
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<RdmaLane>> RdmaLaneImpl::create(const RdmaLaneConfig& config) {
  if (config.buffer_bytes == 0 || config.max_buffers == 0)
    return make_error(Errc::kInvalid, "RdmaLaneConfig: buffer_bytes and max_buffers must be > 0");
  std::unique_ptr<RdmaLaneImpl> lane(new RdmaLaneImpl(config));
  LANEFS_TRY(lane->init());
  return std::unique_ptr<RdmaLane>(std::move(lane));
}

Status RdmaLaneImpl::init() {
  rdma_event_channel* ch = rdma_create_event_channel();
  if (ch == nullptr)
    return make_error(Errc::kNotSupported,
                      "RDMA lane: rdma_create_event_channel: " + std::string(strerror(errno)));
  cm_channel_.reset(ch);
  LANEFS_TRY(set_nonblocking(cm_channel_->fd, "the rdma_cm event channel"));

  // The device: the one rdma_cm binds the address to, else the first one.
  if (config_.listen || config_.bind.ip != 0) {
    if (rdma_create_id(cm_channel_.get(), &listen_id_, nullptr, RDMA_PS_TCP) != 0)
      return call_error("rdma_create_id", errno);
    NetAddr b = config_.bind;
    if (!config_.listen) b.port = 0;
    sockaddr_in sa = to_sockaddr(b);
    if (rdma_bind_addr(listen_id_, reinterpret_cast<sockaddr*>(&sa)) != 0) {
      const int err = errno;
      return make_error(err == ENODEV || err == EADDRNOTAVAIL ? Errc::kNotFound : from_errno(err),
                        "rdma: rdma_bind_addr " + b.to_string() + ": " + strerror(err));
    }
    ctx_ = listen_id_->verbs;
    if (ctx_ == nullptr && config_.bind.ip != 0)
      return make_error(Errc::kNotFound, "no RDMA device serves " + b.ip_string());
  }
  if (ctx_ == nullptr) {
    LANEFS_ASSIGN_OR_RETURN(ctx_, first_cm_device());
  }
  device_ = describe_port(ctx_, listen_id_ && listen_id_->verbs ? listen_id_->port_num : 1);
  local_ = NetAddr{config_.bind.ip, 0};
  if (config_.listen) {
    if (rdma_listen(listen_id_, 64) != 0) return call_error("rdma_listen", errno);
    local_.port = ntohs(rdma_get_src_port(listen_id_));
  } else if (listen_id_ != nullptr) {
    rdma_destroy_id(listen_id_);  // only used to find the device
    listen_id_ = nullptr;
  }
  LANEFS_TRY(init_verbs());

  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return sys_error("rdma: eventfd", errno);
  if (int rc = ibv_req_notify_cq(cq_.get(), 0); rc != 0) return call_error("ibv_req_notify_cq", rc);
  thread_ = std::thread([this] { run(); });
  LOG_INFO("rdma lane on {} port {} ({}, {}) {} {}", device_.device, device_.port, device_.netdev,
           link_layer_name(device_.link), config_.listen ? "listening on" : "bound to",
           local_.to_string());
  return ok_status();
}

Status RdmaLaneImpl::init_verbs() {
  rd_depth_ = rd_atomic_depth(ctx_);
  pd_.reset(ibv_alloc_pd(ctx_));
  if (!pd_) return call_error("ibv_alloc_pd", errno);
  comp_.reset(ibv_create_comp_channel(ctx_));
  if (!comp_) return call_error("ibv_create_comp_channel", errno);
  LANEFS_TRY(set_nonblocking(comp_->fd, "the completion channel"));
  num_slots_ = std::max<uint32_t>(64, config_.max_buffers * 2);
  slots_ = std::make_unique<Slot[]>(num_slots_);
  cq_.reset(ibv_create_cq(ctx_, static_cast<int>(num_slots_ + 64), nullptr, comp_.get(), 0));
  if (!cq_) return call_error("ibv_create_cq", errno);

  pool_bytes_ = size_t(config_.buffer_bytes) * config_.max_buffers;
  const size_t page = 4096;
  pool_mem_ = static_cast<uint8_t*>(std::aligned_alloc(page, (pool_bytes_ + page - 1) / page * page));
  if (pool_mem_ == nullptr) return make_error(Errc::kNoSpace, "rdma: buffer pool allocation");
  pool_mr_.reset(ibv_reg_mr(pd_.get(), pool_mem_, pool_bytes_, kMrAccess));
  if (!pool_mr_) return call_error("ibv_reg_mr (buffer pool)", errno);
  for (uint32_t i = config_.max_buffers; i-- > 0;) pool_free_.push_back(i);
  mr_cache_ = std::make_unique<MrCache>(pd_.get(), kMrCacheEntries);
  return ok_status();
}

RdmaLaneImpl::~RdmaLaneImpl() {
  if (thread_.joinable()) {
    stop_ = true;
    wake();
    thread_.join();
  }
  {
    std::lock_guard lk(mu_);
    std::vector<std::shared_ptr<Conn>> all;
    for (auto& [t, c] : by_token_) all.push_back(c);
    for (auto& [p, c] : by_peer_) all.push_back(c);
    for (auto& c : all)
      if (c->state != ConnState::kDown) drop_locked(c, "lane destroyed");
  }
  reaper_.drain();
  if (listen_id_ != nullptr) rdma_destroy_id(listen_id_);
  mr_cache_.reset();
  pool_mr_.reset();
  std::free(pool_mem_);
  cq_.reset();
  comp_.reset();
  pd_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
  cm_channel_.reset();
  if (dead_) {
    // librdmacm keeps its own context of a device open after the last id on
    // it is gone; a soft-RoCE (or any driver without disassociate support)
    // device cannot finish unregistering while that file is open. Listing
    // the devices makes librdmacm notice the removal and close it.
    int n = 0;
    if (ibv_context** list = rdma_get_devices(&n)) rdma_free_devices(list);
  }
}

void RdmaLaneImpl::wake() noexcept {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

// The lane thread: rping's completion idiom (get CQ event -> re-arm -> drain
// -> ack) and rdma_cm events, with a bounded poll so stop_ is always seen.
void RdmaLaneImpl::run() noexcept {
  pollfd fds[3] = {{comp_->fd, POLLIN, 0}, {cm_channel_->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stop_) {
    if (poll(fds, 3, 200) < 0 && errno != EINTR) {
      LOG_ERROR("rdma lane: poll: {}", strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      ibv_cq* cq = nullptr;
      void* cq_ctx = nullptr;
      unsigned events = 0;
      while (ibv_get_cq_event(comp_.get(), &cq, &cq_ctx) == 0) ++events;
      if (events > 0) {
        if (int rc = ibv_req_notify_cq(cq_.get(), 0); rc != 0)
          LOG_ERROR("rdma lane: ibv_req_notify_cq: {}", strerror(rc));
        drain_cq();
        ibv_ack_cq_events(cq_.get(), events);
      }
    }
    if (fds[1].revents & POLLIN) {
      rdma_cm_event* ev = nullptr;
      while (rdma_get_cm_event(cm_channel_.get(), &ev) == 0) {
        on_cm_event(ev);
        rdma_ack_cm_event(ev);
      }
    }
    if (fds[2].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    // A completion that raced the re-arm is picked up here at the latest.
    drain_cq();
  }
}

void RdmaLaneImpl::bury_locked(const std::shared_ptr<Conn>& c) {
  rdma_cm_id* id = c->id;
  c->id = nullptr;
  if (id != nullptr) reaper_.push([c, id] { destroy_cm_id(id); });
}

std::shared_ptr<RdmaLaneImpl::Conn> RdmaLaneImpl::find_locked(void* context) const {
  auto it = by_serial_.find(reinterpret_cast<uintptr_t>(context));
  return it == by_serial_.end() ? nullptr : it->second;
}

std::shared_ptr<RdmaLaneImpl::Conn> RdmaLaneImpl::new_conn_locked(rdma_cm_id* id) {
  auto c = std::make_shared<Conn>();
  c->serial = next_serial_++;
  c->id = id;
  if (id != nullptr) id->context = reinterpret_cast<void*>(uintptr_t(c->serial));
  by_serial_[c->serial] = c;
  return c;
}

void RdmaLaneImpl::drop_locked(const std::shared_ptr<Conn>& c, std::string why) {
  if (c->state == ConnState::kDown) return;
  if (c->state == ConnState::kUp) ++n_.connection_errors;
  c->state = ConnState::kDown;
  c->why = std::move(why);
  LOG_DEBUG("rdma lane: connection {} to {} dropped: {}", c->token, c->peer.to_string(), c->why);
  if (auto it = by_token_.find(c->token); it != by_token_.end() && it->second == c)
    by_token_.erase(it);
  if (auto it = by_peer_.find(c->peer); it != by_peer_.end() && it->second == c)
    by_peer_.erase(it);
  by_serial_.erase(c->serial);
  for (uint32_t i = 0; i < num_slots_; ++i) {
    Slot& s = slots_[i];
    if (s.busy && !s.done && s.conn == c.get()) {
      s.done = true;
      s.status = IBV_WC_WR_FLUSH_ERR;
      s.cv.notify_all();
    }
  }
  if (c->id != nullptr) {
    rdma_disconnect(c->id);  // QP to error: outstanding WRs flush
    bury_locked(c);
  }
  conn_cv_.notify_all();
  wake();
}

void RdmaLaneImpl::fail_connect_locked(const std::shared_ptr<Conn>& c, std::string why) {
  ++n_.connection_errors;
  drop_locked(c, std::move(why));
}

rdma_conn_param RdmaLaneImpl::conn_param(const WireHello* hello) const {
  rdma_conn_param p{};
  p.private_data = hello;
  p.private_data_len = hello ? sizeof(WireHello) : 0;
  p.responder_resources = rd_depth_;
  p.initiator_depth = rd_depth_;
  p.retry_count = std::min<uint8_t>(config_.qp_retry_count, 7);
  p.rnr_retry_count = 7;  // infinite: the lane posts no receives anyway
  return p;
}

Status RdmaLaneImpl::create_qp(rdma_cm_id* id) {
  if (id->verbs != ctx_)
    return make_error(Errc::kUnreachable, "rdma: peer is reached through device " +
                                              std::string(ibv_get_device_name(id->verbs->device)) +
                                              ", this lane uses " + device_.device);
  // Soft-RoCE under load needs a long RC retransmission timeout.
  uint8_t timeout = config_.qp_timeout;
  if (rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout, sizeof timeout) != 0)
    return call_error("rdma_set_option(RDMA_OPTION_ID_ACK_TIMEOUT)", errno);
  ibv_qp_init_attr a{};
  a.send_cq = cq_.get();
  a.recv_cq = cq_.get();
  a.qp_type = IBV_QPT_RC;
  a.cap.max_send_wr = kMaxSendWr;
  a.cap.max_recv_wr = 1;
  a.cap.max_send_sge = 1;
  a.cap.max_recv_sge = 1;
  if (rdma_create_qp(id, pd_.get(), &a) != 0) return call_error("rdma_create_qp", errno);
  return ok_status();
}

void RdmaLaneImpl::on_connect_request(rdma_cm_event* ev) {
  rdma_cm_id* id = ev->id;
  WireHello hello;
  std::lock_guard lk(mu_);
  const bool ok_hello = parse_hello(ev->param.conn.private_data, ev->param.conn.private_data_len,
                                    WireHello::kLane, &hello);
  if (!ok_hello || hello.token == 0 || by_token_.count(hello.token) || dead_) {
    LOG_WARN("rdma lane: rejecting a connection request ({})",
             ok_hello ? "token in use" : "no lanefs hello");
    rdma_reject(id, nullptr, 0);
    auto c = std::make_shared<Conn>();
    c->id = id;
    c->state = ConnState::kDown;
    bury_locked(c);
    return;
  }
  auto c = new_conn_locked(id);
  c->token = hello.token;
  c->peer = from_sockaddr(rdma_get_peer_addr(id));
  Status st = create_qp(id);
  rdma_conn_param p = conn_param(nullptr);
  if (st.ok() && rdma_accept(id, &p) != 0) st = call_error("rdma_accept", errno);
  if (!st.ok()) {
    LOG_WARN("rdma lane: accepting {}: {}", c->peer.to_string(), st.error().to_string());
    ++n_.connection_errors;
    rdma_reject(id, nullptr, 0);
    c->state = ConnState::kDown;
    by_serial_.erase(c->serial);
    bury_locked(c);
    return;
  }
  by_token_[c->token] = c;  // kConnecting until ESTABLISHED; ops wait for it
}

void RdmaLaneImpl::on_cm_event(rdma_cm_event* ev) {
  LOG_DEBUG("rdma lane {}: {} (status {})", local_.to_string(), rdma_event_str(ev->event),
            ev->status);
  if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) return on_connect_request(ev);
  if (ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL) {
    std::lock_guard lk(mu_);
    dead_ = true;
    dead_why_ = "RDMA device " + device_.device + " removed";
    LOG_WARN("rdma lane: {}", dead_why_);
    std::vector<std::shared_ptr<Conn>> all;
    for (auto& [t, c] : by_token_) all.push_back(c);
    for (auto& [p, c] : by_peer_) all.push_back(c);
    for (auto& c : all) drop_locked(c, dead_why_);
    return;
  }
  std::lock_guard lk(mu_);
  auto c = find_locked(ev->id->context);
  if (!c) return;  // a connection already dropped: its id waits in the graveyard
  WireHello hello;
  hello.kind = WireHello::kLane;
  hello.token = c->token;
  switch (ev->event) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
      if (rdma_resolve_route(c->id, static_cast<int>(config_.timeout_ms)) != 0)
        fail_connect_locked(c, call_error("rdma_resolve_route", errno).message);
      break;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
      Status st = create_qp(c->id);
      rdma_conn_param p = conn_param(&hello);
      if (st.ok() && rdma_connect(c->id, &p) != 0) st = call_error("rdma_connect", errno);
      if (!st.ok()) fail_connect_locked(c, st.error().message);
      break;
    }
    case RDMA_CM_EVENT_ESTABLISHED:
      c->state = ConnState::kUp;
      ++n_.connections;
      conn_cv_.notify_all();
      break;
    case RDMA_CM_EVENT_ADDR_ERROR:
      // The first resolution on a cold soft-RoCE pair can fail to resolve the
      // neighbour; retry on the same id while the connect deadline allows.
      if (c->outgoing && mono_ns() + kResolveMs * 1'000'000ull < c->deadline_ns) {
        LOG_DEBUG("rdma lane: address resolution of {} failed, retrying", c->peer.to_string());
        sockaddr_in src = to_sockaddr(NetAddr{config_.bind.ip, 0});
        sockaddr_in dst = to_sockaddr(c->peer);
        if (rdma_resolve_addr(c->id, config_.bind.ip ? reinterpret_cast<sockaddr*>(&src) : nullptr,
                              reinterpret_cast<sockaddr*>(&dst), kResolveMs) == 0)
          break;
      }
      fail_connect_locked(c, "rdma_cm: RDMA_CM_EVENT_ADDR_ERROR (status " +
                                 std::to_string(ev->status) + ")");
      break;
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_CONNECT_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
    case RDMA_CM_EVENT_REJECTED:
      fail_connect_locked(c, std::string("rdma_cm: ") + rdma_event_str(ev->event) +
                                   " (status " + std::to_string(ev->status) + ")");
      break;
    case RDMA_CM_EVENT_DISCONNECTED:
      drop_locked(c, "peer disconnected");
      break;
    default:
      break;  // TIMEWAIT_EXIT, ADDR_CHANGE: nothing to do
  }
}

uint64_t RdmaLaneImpl::new_token_locked() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t t;
  do t = rng();
  while (t == 0 || by_token_.count(t));
  return t;
}

Result<uint64_t> RdmaLaneImpl::connect(NetAddr peer) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.timeout_ms);
  std::unique_lock lk(mu_);
  if (dead_) return make_error(Errc::kUnreachable, dead_why_);
  std::shared_ptr<Conn> c;
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) c = it->second;
  if (!c) {
    rdma_cm_id* id = nullptr;
    if (rdma_create_id(cm_channel_.get(), &id, nullptr, RDMA_PS_TCP) != 0)
      return call_error("rdma_create_id", errno);
    c = new_conn_locked(id);
    c->peer = peer;
    c->outgoing = true;
    c->token = new_token_locked();
    c->deadline_ns = mono_ns() + uint64_t(config_.timeout_ms) * 1'000'000;
    sockaddr_in src = to_sockaddr(NetAddr{config_.bind.ip, 0});
    sockaddr_in dst = to_sockaddr(peer);
    if (rdma_resolve_addr(c->id, config_.bind.ip ? reinterpret_cast<sockaddr*>(&src) : nullptr,
                          reinterpret_cast<sockaddr*>(&dst),
                          static_cast<int>(std::min(config_.timeout_ms, kResolveMs))) != 0) {
      Error e = call_error("rdma_resolve_addr " + peer.to_string(), errno);
      c->state = ConnState::kDown;
      by_serial_.erase(c->serial);
      bury_locked(c);
      wake();
      return e;
    }
    by_peer_[peer] = c;
    by_token_[c->token] = c;
  }
  if (!conn_cv_.wait_until(lk, deadline, [&] { return c->state != ConnState::kConnecting; })) {
    ++n_.connection_errors;
    drop_locked(c, "connect timed out");
    return make_error(Errc::kTimeout, "rdma: connect to " + peer.to_string() + " timed out after " +
                                          std::to_string(config_.timeout_ms) + " ms");
  }
  if (c->state != ConnState::kUp)
    return make_error(Errc::kUnreachable, "rdma: connect to " + peer.to_string() + ": " + c->why);
  return c->token;
}

void RdmaLaneImpl::disconnect(NetAddr peer) {
  std::lock_guard lk(mu_);
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) drop_locked(it->second, "disconnect()");
}

RdmaLaneStats RdmaLaneImpl::stats() const {
  RdmaLaneStats s;
  s.connections = n_.connections;
  s.connection_errors = n_.connection_errors;
  s.reads = n_.reads;
  s.read_bytes = n_.read_bytes;
  s.writes = n_.writes;
  s.write_bytes = n_.write_bytes;
  s.op_errors = n_.op_errors;
  s.mr_registrations = n_.mr_registrations;
  s.mr_cache_hits = n_.mr_cache_hits;
  return s;
}

}  // namespace rdma

Result<std::unique_ptr<RdmaLane>> make_rdma_lane(const RdmaLaneConfig& config) {
  return rdma::RdmaLaneImpl::create(config);
}

}  // namespace lanefs::transport

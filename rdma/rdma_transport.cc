// RdmaTransport control path: setup, the rdma_cm thread, connections.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>

#include "common/clock.h"
#include "common/log.h"
#include "rdma/rdma_transport_impl.h"

namespace lanefs::transport {
namespace rdma {
namespace {

Status set_nonblocking(int fd, const char* what) {
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return sys_error(std::string("rdma: fcntl O_NONBLOCK on ") + what, errno);
  return ok_status();
}

}  // namespace

RdmaTransport::Conn::~Conn() {
  if (recv_mr != nullptr) ibv_dereg_mr(recv_mr);
  std::free(recv_mem);
}

RdmaTransport::RdmaTransport(const TransportConfig& config)
    : config_(config), max_dgram_(config.mtu ? config.mtu : kDefaultMaxDatagram) {}

Result<std::unique_ptr<Transport>> RdmaTransport::create(const TransportConfig& config) {
  std::unique_ptr<RdmaTransport> t(new RdmaTransport(config));
  LANEFS_TRY(t->init());
  return std::unique_ptr<Transport>(std::move(t));
}

Status RdmaTransport::init() {
  rdma_event_channel* ch = rdma_create_event_channel();
  if (ch == nullptr)
    return make_error(Errc::kNotSupported,
                      "RDMA lane: rdma_create_event_channel: " + std::string(strerror(errno)));
  cm_channel_.reset(ch);
  LANEFS_TRY(set_nonblocking(cm_channel_->fd, "the rdma_cm event channel"));
  if (rdma_create_id(cm_channel_.get(), &listen_id_, nullptr, RDMA_PS_TCP) != 0)
    return call_error("rdma_create_id", errno);
  sockaddr_in sa = to_sockaddr(config_.bind);
  if (rdma_bind_addr(listen_id_, reinterpret_cast<sockaddr*>(&sa)) != 0) {
    const int err = errno;
    return make_error(err == ENODEV || err == EADDRNOTAVAIL ? Errc::kNotFound : from_errno(err),
                      "RDMA lane: rdma_bind_addr " + config_.bind.to_string() + ": " +
                          strerror(err));
  }
  ctx_ = listen_id_->verbs;
  if (ctx_ == nullptr) {
    if (config_.bind.ip != 0)
      return make_error(Errc::kNotFound, "RDMA lane: no RDMA device serves " +
                                             config_.bind.ip_string());
    LANEFS_ASSIGN_OR_RETURN(ctx_, first_cm_device());
  }
  if (rdma_listen(listen_id_, 64) != 0) return call_error("rdma_listen", errno);
  local_ = NetAddr{config_.bind.ip, ntohs(rdma_get_src_port(listen_id_))};
  rd_depth_ = rd_atomic_depth(ctx_);

  pd_.reset(ibv_alloc_pd(ctx_));
  if (!pd_) return call_error("ibv_alloc_pd", errno);
  recv_comp_.reset(ibv_create_comp_channel(ctx_));
  if (!recv_comp_) return call_error("ibv_create_comp_channel", errno);
  LANEFS_TRY(set_nonblocking(recv_comp_->fd, "the completion channel"));
  recv_cq_.reset(ibv_create_cq(ctx_, kRecvDepth * kMaxConns, nullptr, recv_comp_.get(), 0));
  if (!recv_cq_) return call_error("ibv_create_cq (receive)", errno);
  send_cq_.reset(ibv_create_cq(ctx_, kSendBufs, nullptr, nullptr, 0));
  if (!send_cq_) return call_error("ibv_create_cq (send)", errno);
  if (int rc = ibv_req_notify_cq(recv_cq_.get(), 0); rc != 0)
    return call_error("ibv_req_notify_cq", rc);

  const size_t bytes = size_t(kSendBufs) * max_dgram_;
  send_mem_ = static_cast<uint8_t*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096));
  if (send_mem_ == nullptr) return make_error(Errc::kNoSpace, "rdma: send buffer allocation");
  send_mr_.reset(ibv_reg_mr(pd_.get(), send_mem_, bytes, IBV_ACCESS_LOCAL_WRITE));
  if (!send_mr_) return call_error("ibv_reg_mr (send buffers)", errno);
  for (uint32_t i = kSendBufs; i-- > 0;) send_free_.push_back(i);

  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return sys_error("rdma: eventfd", errno);
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

RdmaTransport::~RdmaTransport() {
  if (thread_.joinable()) {
    stop_ = true;
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  {
    std::lock_guard lk(mu_);
    held_.clear();
    std::vector<std::shared_ptr<Conn>> all;
    for (auto& [p, c] : by_peer_) all.push_back(c);
    for (auto& [q, c] : by_qp_) all.push_back(c);
    for (auto& c : all) drop_locked(c, "transport destroyed");
    by_peer_.clear();
  }
  reaper_.drain();
  if (listen_id_ != nullptr) rdma_destroy_id(listen_id_);
  send_mr_.reset();
  std::free(send_mem_);
  // Unacked CQ events would make ibv_destroy_cq wait: consume them first.
  ibv_cq* cq;
  void* ctx;
  while (recv_comp_ && ibv_get_cq_event(recv_comp_.get(), &cq, &ctx) == 0)
    ibv_ack_cq_events(cq, 1);
  send_cq_.reset();
  recv_cq_.reset();
  recv_comp_.reset();
  pd_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
  cm_channel_.reset();
}

void RdmaTransport::run() noexcept {
  pollfd fds[2] = {{cm_channel_->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stop_) {
    if (poll(fds, 2, 200) < 0 && errno != EINTR) {
      LOG_ERROR("rdma transport: poll: {}", strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      rdma_cm_event* ev = nullptr;
      while (rdma_get_cm_event(cm_channel_.get(), &ev) == 0) {
        on_cm_event(ev);
        rdma_ack_cm_event(ev);
      }
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
  }
}

// Once kDown nobody posts to the QP (tx and reposts check the state under
// mu_), so the reaper may destroy it without the lock.
void RdmaTransport::bury_locked(const std::shared_ptr<Conn>& c) {
  rdma_cm_id* id = c->id;
  c->id = nullptr;
  if (id != nullptr) reaper_.push([c, id] { destroy_cm_id(id); });
}

std::shared_ptr<RdmaTransport::Conn> RdmaTransport::find_locked(Conn* raw) const {
  if (raw == nullptr) return nullptr;
  if (auto it = by_peer_.find(raw->peer); it != by_peer_.end() && it->second.get() == raw)
    return it->second;
  for (auto& [q, c] : by_qp_)
    if (c.get() == raw) return c;
  return nullptr;
}

std::shared_ptr<RdmaTransport::Conn> RdmaTransport::by_context_locked(void* context) const {
  auto it = by_serial_.find(reinterpret_cast<uintptr_t>(context));
  return it == by_serial_.end() ? nullptr : it->second;
}

std::shared_ptr<RdmaTransport::Conn> RdmaTransport::new_conn_locked(rdma_cm_id* id) {
  auto c = std::make_shared<Conn>();
  c->serial = next_serial_++;
  c->id = id;
  if (id != nullptr) id->context = reinterpret_cast<void*>(uintptr_t(c->serial));
  by_serial_[c->serial] = c;
  return c;
}

void RdmaTransport::drop_locked(const std::shared_ptr<Conn>& c, const char* why) {
  if (c->state == State::kDown) return;
  LOG_DEBUG("rdma transport {}: connection to {} dropped: {}", local_.to_string(),
            c->peer.to_string(), why);
  c->state = State::kDown;
  c->down_ns = mono_ns();
  by_serial_.erase(c->serial);
  stats_.tx_dropped += c->pending.size();
  c->pending.clear();
  if (c->id != nullptr) {
    if (c->id->qp != nullptr) by_qp_.erase(c->id->qp->qp_num);
    rdma_disconnect(c->id);
    bury_locked(c);
  }
  // Stays in by_peer_ (kDown) for a second: datagrams to it are dropped and
  // counted instead of reconnecting on every send.
}

rdma_conn_param RdmaTransport::conn_param(const WireHello* hello) const {
  rdma_conn_param p{};
  p.private_data = hello;
  p.private_data_len = sizeof(WireHello);
  p.responder_resources = rd_depth_;
  p.initiator_depth = rd_depth_;
  p.retry_count = 7;
  p.rnr_retry_count = 7;  // infinite: a receiver that is slow to repost is not an error
  return p;
}

// QP with both CQs, its receive ring registered and posted (before connect /
// accept, so the peer's first SEND finds a buffer).
Status RdmaTransport::setup_qp(const std::shared_ptr<Conn>& c) {
  if (c->id->verbs != ctx_)
    return make_error(Errc::kUnreachable, "rdma: peer is reached through another device");
  if (by_qp_.size() >= kMaxConns)
    return make_error(Errc::kBusy, "rdma transport: connection limit reached");
  uint8_t timeout = 18;  // soft-RoCE under load needs a long RC timeout
  if (rdma_set_option(c->id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout, sizeof timeout))
    return call_error("rdma_set_option(RDMA_OPTION_ID_ACK_TIMEOUT)", errno);
  ibv_qp_init_attr a{};
  a.send_cq = send_cq_.get();
  a.recv_cq = recv_cq_.get();
  a.qp_type = IBV_QPT_RC;
  a.cap.max_send_wr = kSendDepth;
  a.cap.max_recv_wr = kRecvDepth;
  a.cap.max_send_sge = 1;
  a.cap.max_recv_sge = 1;
  if (rdma_create_qp(c->id, pd_.get(), &a) != 0) return call_error("rdma_create_qp", errno);
  const size_t bytes = size_t(kRecvDepth) * max_dgram_;
  c->recv_mem = static_cast<uint8_t*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096));
  if (c->recv_mem == nullptr) return make_error(Errc::kNoSpace, "rdma: receive ring allocation");
  c->recv_mr = ibv_reg_mr(pd_.get(), c->recv_mem, bytes, IBV_ACCESS_LOCAL_WRITE);
  if (c->recv_mr == nullptr) return call_error("ibv_reg_mr (receive ring)", errno);
  by_qp_[c->id->qp->qp_num] = c;
  for (uint32_t i = 0; i < kRecvDepth; ++i) repost_recv_locked(*c, i);
  return ok_status();
}

std::shared_ptr<RdmaTransport::Conn> RdmaTransport::start_connect_locked(NetAddr peer) {
  rdma_cm_id* id = nullptr;
  if (rdma_create_id(cm_channel_.get(), &id, nullptr, RDMA_PS_TCP) != 0) {
    LOG_WARN("rdma transport: rdma_create_id: {}", strerror(errno));
    id = nullptr;
  }
  auto c = new_conn_locked(id);
  c->peer = peer;
  by_peer_[peer] = c;
  if (id == nullptr) {
    drop_locked(c, "rdma_create_id failed");
    return c;
  }
  if (!resolve_locked(*c)) drop_locked(c, "rdma_resolve_addr failed");
  return c;
}

bool RdmaTransport::resolve_locked(Conn& c) {
  ++c.resolve_tries;
  sockaddr_in src = to_sockaddr(NetAddr{local_.ip, 0});
  sockaddr_in dst = to_sockaddr(c.peer);
  if (rdma_resolve_addr(c.id, local_.ip ? reinterpret_cast<sockaddr*>(&src) : nullptr,
                        reinterpret_cast<sockaddr*>(&dst), kResolveMs) != 0) {
    LOG_WARN("rdma transport: rdma_resolve_addr {}: {}", c.peer.to_string(), strerror(errno));
    return false;
  }
  return true;
}

void RdmaTransport::on_connect_request(rdma_cm_event* ev) {
  WireHello hello;
  std::lock_guard lk(mu_);
  auto c = new_conn_locked(ev->id);
  if (!parse_hello(ev->param.conn.private_data, ev->param.conn.private_data_len,
                   WireHello::kDatagram, &hello)) {
    LOG_WARN("rdma transport: rejecting a connection request without a lanefs hello");
    rdma_reject(c->id, nullptr, 0);
    c->state = State::kDown;
    by_serial_.erase(c->serial);
    bury_locked(c);
    return;
  }
  c->peer = NetAddr{hello.listen_ip, hello.listen_port};
  c->peer_max = hello.max_datagram;
  // Registered by peer address only when we have no connection to it yet,
  // so replies reuse it; otherwise it is known by its QP number only.
  auto [it, fresh] = by_peer_.try_emplace(c->peer, c);
  if (!fresh && it->second->state == State::kDown) {
    it->second = c;
    fresh = true;
  }
  Status st = setup_qp(c);
  WireHello reply;
  reply.kind = WireHello::kDatagram;
  reply.listen_ip = local_.ip;
  reply.listen_port = local_.port;
  reply.max_datagram = max_dgram_;
  rdma_conn_param p = conn_param(&reply);
  if (st.ok() && rdma_accept(c->id, &p) != 0) st = call_error("rdma_accept", errno);
  if (!st.ok()) {
    LOG_WARN("rdma transport: accepting {}: {}", c->peer.to_string(), st.error().to_string());
    rdma_reject(c->id, nullptr, 0);
    if (c->id->qp != nullptr) by_qp_.erase(c->id->qp->qp_num);
    if (fresh) by_peer_.erase(c->peer);
    c->state = State::kDown;
    by_serial_.erase(c->serial);
    bury_locked(c);
  }
}

void RdmaTransport::on_cm_event(rdma_cm_event* ev) {
  if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) return on_connect_request(ev);
  std::lock_guard lk(mu_);
  if (ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL && ev->id == listen_id_) {
    LOG_WARN("rdma transport {}: RDMA device removed", local_.to_string());
    std::vector<std::shared_ptr<Conn>> all;
    for (auto& [p, c] : by_peer_) all.push_back(c);
    for (auto& [q, c] : by_qp_) all.push_back(c);
    for (auto& c : all) drop_locked(c, "device removed");
    return;
  }
  auto c = by_context_locked(ev->id->context);
  if (!c || c->state == State::kDown) return;
  switch (ev->event) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
      if (rdma_resolve_route(c->id, 5000) != 0) drop_locked(c, "rdma_resolve_route failed");
      break;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
      Status st = setup_qp(c);
      WireHello hello;
      hello.kind = WireHello::kDatagram;
      hello.listen_ip = local_.ip;
      hello.listen_port = local_.port;
      hello.max_datagram = max_dgram_;
      rdma_conn_param p = conn_param(&hello);
      if (st.ok() && rdma_connect(c->id, &p) != 0) st = call_error("rdma_connect", errno);
      if (!st.ok()) {
        LOG_WARN("rdma transport: connecting {}: {}", c->peer.to_string(), st.error().to_string());
        drop_locked(c, "connect setup failed");
      }
      break;
    }
    case RDMA_CM_EVENT_ESTABLISHED: {
      WireHello hello;
      if (parse_hello(ev->param.conn.private_data, ev->param.conn.private_data_len,
                      WireHello::kDatagram, &hello))
        c->peer_max = hello.max_datagram;
      if (c->peer_max == 0) c->peer_max = max_dgram_;
      c->state = State::kUp;
      flush_pending_locked(*c);
      break;
    }
    case RDMA_CM_EVENT_DISCONNECTED:
      drop_locked(c, "peer disconnected");
      break;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
      drop_locked(c, "device removed");
      break;
    case RDMA_CM_EVENT_ADDR_ERROR:
      if (c->resolve_tries < kResolveTries && resolve_locked(*c)) break;
      LOG_WARN("rdma transport: connection to {}: address resolution failed", c->peer.to_string());
      drop_locked(c, "RDMA_CM_EVENT_ADDR_ERROR");
      break;
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_CONNECT_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
    case RDMA_CM_EVENT_REJECTED:
      LOG_WARN("rdma transport: connection to {}: {}", c->peer.to_string(),
               rdma_event_str(ev->event));
      drop_locked(c, rdma_event_str(ev->event));
      break;
    default:
      break;
  }
}

Result<std::unique_ptr<MemRegion>> RdmaTransport::register_memory(void* addr, size_t len) {
  ibv_mr* mr = ibv_reg_mr(pd_.get(), addr, len, IBV_ACCESS_LOCAL_WRITE);
  if (mr == nullptr) return call_error("ibv_reg_mr", errno);
  class Region final : public MemRegion {
   public:
    Region(void* a, size_t l, ibv_mr* mr) : MemRegion(a, l), mr_(mr) {}
    ~Region() override { ibv_dereg_mr(mr_); }

   private:
    ibv_mr* mr_;
  };
  return std::unique_ptr<MemRegion>(std::make_unique<Region>(addr, len, mr));
}

}  // namespace rdma

Result<std::unique_ptr<Transport>> make_rdma_transport(const TransportConfig& config) {
  return rdma::RdmaTransport::create(config);
}

}  // namespace lanefs::transport

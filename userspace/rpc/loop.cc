#include "rpc/loop.h"
#include "rpc/spin.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/log.h"

namespace lanefs::rpc {

uint64_t RpcCounters::rx_invalid_total() const {
  uint64_t t = 0;
  for (const auto& c : rx_invalid) t += c.load(std::memory_order_relaxed);
  return t;
}

Result<std::unique_ptr<LoopCore>> LoopCore::create(const transport::TransportConfig& cfg,
                                                   RpcCounters* counters) {
  transport::TransportConfig inner_cfg = cfg;
  inner_cfg.faults = {};
  LANEFS_ASSIGN_OR_RETURN(auto inner, transport::make_transport(inner_cfg));
  std::unique_ptr<LoopCore> core(new LoopCore());
  // Always behind the fault layer so tests can switch faults at run time;
  // with no faults configured it is a pass-through.
  core->transport_ = std::make_unique<transport::FaultTransport>(std::move(inner), cfg.faults);
  core->counters_ = counters;
  uint32_t maxd = core->transport_->max_datagram();
  if (maxd <= proto::kHeaderSize + 64)
    return make_error(Errc::kInvalid, "transport datagram size too small: " + std::to_string(maxd));
  core->payload_per_packet_ = maxd - proto::kHeaderSize;
  core->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (core->wake_fd_ < 0) return sys_error("eventfd", errno);
  core->tx_.reserve(kBatch);
  core->tx_hdrs_.resize(kBatch);
  core->rx_.resize(kBatch);
  return core;
}

LoopCore::~LoopCore() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

void LoopCore::send(NetAddr dst, const proto::PacketHeader& h, std::span<const uint8_t> a,
                    std::span<const uint8_t> b, NetAddr src, bool single, proto::SessionMac* mac) {
  if (tx_.size() == kBatch) flush();
  auto& hb = tx_hdrs_[tx_.size()];
  proto::PacketHeader hh = h;
  hh.payload_len = static_cast<uint32_t>(a.size() + b.size());
  if (mac) mac->seal_header(hh, a, b, hb.data());
  else proto::encode_header(hh, a, b, hb.data());
  transport::TxDatagram d{dst, hb.data(), proto::kHeaderSize, a.data(), static_cast<uint32_t>(a.size()), src};
  d.body2 = b.data();
  d.body2_len = static_cast<uint32_t>(b.size());
  d.single = single;
  tx_.push_back(d);
  tx_bytes_ += a.size() + b.size();
}

bool LoopCore::authentic(proto::SessionMac& mac, proto::ReplayWindow& window, const proto::PacketHeader& h,
                         std::span<const uint8_t> payload) {
  if (!mac.verify(h, payload)) {
    count_bad_mac();
    return false;
  }
  if (!window.accept(h.seq)) {
    counters_->rx_invalid[int(proto::DecodeError::kReplayed)].fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void LoopCore::flush() {
  size_t off = 0;
  int spins = 0;
  while (off < tx_.size()) {
    auto r = transport_->tx_burst(std::span(tx_).subspan(off));
    if (!r.ok()) {
      // A failing send path looks like loss to the protocol; it recovers by
      // retransmission, so log and drop the rest of the batch.
      LOG_WARN("tx_burst: {}", r.error().to_string());
      break;
    }
    off += *r;
    if (*r == 0 && ++spins > 1000) break;  // ring full for too long: drop, RTO resends
  }
  counters_->tx_packets.fetch_add(off, std::memory_order_relaxed);
  sent_ += off;
  tx_.clear();
  tx_bytes_ = 0;
}

size_t LoopCore::rx_raw() {
  auto r = transport_->rx_burst(rx_);
  if (!r.ok()) {
    LOG_WARN("rx_burst: {}", r.error().to_string());
    return 0;
  }
  return *r;
}

void LoopCore::sleep(uint64_t timeout_ns) {
  auto st = transport_->arm_notify();
  if (!st.ok()) LOG_WARN("arm_notify: {}", st.error().to_string());
  pollfd fds[2] = {{transport_->notify_fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
  if (ppoll(fds, 2, &ts, nullptr) > 0 && (fds[1].revents & POLLIN)) {
    uint64_t v;
    [[maybe_unused]] ssize_t rr = read(wake_fd_, &v, sizeof v);
  }
}

std::array<int, 2> LoopCore::arm(uint64_t* timeout_ns) {
  // A busy-polling port that another thread polls hands datagrams over
  // with a wake-up; look again within 1 ms as run() does.
  if (transport_->busy_polls()) *timeout_ns = std::min<uint64_t>(*timeout_ns, 1'000'000);
  if (transport_->has_pending()) *timeout_ns = std::min<uint64_t>(*timeout_ns, 100'000);
  auto st = transport_->arm_notify();
  if (!st.ok()) LOG_WARN("arm_notify: {}", st.error().to_string());
  return {transport_->notify_fd(), wake_fd_};
}

void LoopCore::drain_wake() {
  uint64_t v;
  [[maybe_unused]] ssize_t rr = read(wake_fd_, &v, sizeof v);  // non-blocking
}

void LoopCore::wait(uint64_t timeout_ns, int extra_fd) {
  if (transport_->busy_polls()) {
    // A dedicated core polls: no sleep and no system call beyond a yield,
    // so FUSE and worker threads on the same CPU still get their turn.
    sched_yield();
    return;
  }
  if (transport_->has_pending()) timeout_ns = std::min<uint64_t>(timeout_ns, 100'000);
  auto st = transport_->arm_notify();
  if (!st.ok()) LOG_WARN("arm_notify: {}", st.error().to_string());
  pollfd fds[3] = {{transport_->notify_fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}, {extra_fd, POLLIN, 0}};
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
              static_cast<long>(timeout_ns % 1'000'000'000)};
  int n = ppoll(fds, extra_fd >= 0 ? 3 : 2, &ts, nullptr);
  if (n > 0 && (fds[1].revents & POLLIN)) {
    uint64_t v;
    [[maybe_unused]] ssize_t rr = read(wake_fd_, &v, sizeof v);
  }
}

Status cpu_usable(int cpu) {
  if (cpu < 0) return ok_status();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  std::string have;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) have += (have.empty() ? "" : ",") + std::to_string(c);
  if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed))
    return make_error(Errc::kInvalid, "core " + std::to_string(cpu) + " is not available (usable CPUs: " + have + ")");
  return ok_status();
}

Status pin_thread(std::thread& t, int cpu) {
  if (cpu < 0) return ok_status();
  LANEFS_TRY(cpu_usable(cpu));
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (int rc = pthread_setaffinity_np(t.native_handle(), sizeof one, &one); rc != 0)
    return make_error(Errc::kInvalid, "core " + std::to_string(cpu) + ": pthread_setaffinity_np: " + std::strerror(rc));
  return ok_status();
}

uint32_t usable_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
  return static_cast<uint32_t>(std::max(1, CPU_COUNT(&allowed)));
}

uint32_t spin_slots_for(int configured) {
  return configured >= 0 ? static_cast<uint32_t>(configured) : usable_cpus() / 4;
}

bool LoopCore::reads_raw_frames() const { return transport_->kind() == transport::TransportKind::kDpdk; }

void LoopCore::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t rr = write(wake_fd_, &one, sizeof one);
}

}  // namespace lanefs::rpc

namespace lanefs::rpc {

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
  s.connects_refused = ld(c.connects_refused);
  s.connect_challenges = ld(c.connect_challenges);
  s.auth_refused = ld(c.auth_refused);
  s.sessions_reclaimed = ld(c.sessions_reclaimed);
  s.reassembly_refused = ld(c.reassembly_refused);
  s.unexpected_packets = ld(c.unexpected_packets);
  s.tx_packets = ld(c.tx_packets);
  s.rx_packets = ld(c.rx_packets);
  s.inline_requests = ld(c.inline_requests);
  s.deferred_requests = ld(c.deferred_requests);
  s.pushed_packets = ld(c.pushed_packets);
  s.rx_invalid_total = c.rx_invalid_total();
  for (int i = 0; i < static_cast<int>(proto::DecodeError::kCount); ++i) s.rx_invalid[i] = ld(c.rx_invalid[i]);
  for (size_t i = 0; i < RpcCounters::kOpSlots; ++i) s.calls_by_op[i] = ld(c.calls_by_op[i]);
  return s;
}

void RpcStatsSnapshot::add(const RpcStatsSnapshot& o) {
  calls_ok += o.calls_ok;
  calls_failed += o.calls_failed;
  calls_timed_out += o.calls_timed_out;
  retransmits += o.retransmits;
  rto_events += o.rto_events;
  session_resets += o.session_resets;
  requests_executed += o.requests_executed;
  replies_from_cache += o.replies_from_cache;
  stale_dropped += o.stale_dropped;
  duplicate_fragments += o.duplicate_fragments;
  unknown_session += o.unknown_session;
  connects += o.connects;
  version_rejects += o.version_rejects;
  connects_refused += o.connects_refused;
  connect_challenges += o.connect_challenges;
  auth_refused += o.auth_refused;
  sessions_reclaimed += o.sessions_reclaimed;
  reassembly_refused += o.reassembly_refused;
  reassembly_bytes += o.reassembly_bytes;
  unexpected_packets += o.unexpected_packets;
  tx_packets += o.tx_packets;
  rx_packets += o.rx_packets;
  rx_invalid_total += o.rx_invalid_total;
  inline_requests += o.inline_requests;
  deferred_requests += o.deferred_requests;
  pushed_packets += o.pushed_packets;
  for (int i = 0; i < static_cast<int>(proto::DecodeError::kCount); ++i) rx_invalid[i] += o.rx_invalid[i];
  for (size_t i = 0; i < RpcCounters::kOpSlots; ++i) calls_by_op[i] += o.calls_by_op[i];
  sessions += o.sessions;
  endpoints += o.endpoints;
}

Buffer Response::to_buffer() const {
  Buffer out;
  out.reserve(size());
  out.insert(out.end(), head.begin(), head.end());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

bool Response::read_at(size_t off, void* dst, size_t n) const {
  if (off + n > size()) return false;
  auto* d = static_cast<uint8_t*>(dst);
  if (off < head.size()) {
    size_t k = std::min(n, head.size() - off);
    std::memcpy(d, head.data() + off, k);
    d += k;
    n -= k;
    off = head.size();
  }
  if (n > 0) std::memcpy(d, body.data() + (off - head.size()), n);
  return true;
}

}  // namespace lanefs::rpc

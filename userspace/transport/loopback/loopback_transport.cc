#include "transport/loopback/loopback_transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace lanefs::transport {
namespace {

constexpr uint32_t kLocalhost = 0x7f000001;

class PlainRegion final : public MemRegion {
 public:
  PlainRegion(void* addr, size_t len) : MemRegion(addr, len) {}
};

}  // namespace

// One endpoint's receive queue. Senders fill `incoming_`; the owner reads
// `delivering_` and swaps the two when it has consumed everything, so slot
// buffers are reused (no allocation once warmed up) and a datagram handed to
// the owner is never overwritten before its next rx_burst().
class LoopbackPort {
 public:
  explicit LoopbackPort(size_t limit) : limit_(limit) {}
  ~LoopbackPort() {
    if (efd_ >= 0) close(efd_);
  }

  Status open() {
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) return sys_error("eventfd", errno);
    return ok_status();
  }
  int fd() const { return efd_; }

  // Any thread (with the hub lock held). False when the queue is full.
  bool push(NetAddr src, const TxDatagram& d) {
    std::lock_guard lock(mu_);
    const size_t queued = queued_locked();
    if (queued >= limit_) return false;
    if (in_n_ == in_.size()) in_.emplace_back();
    Slot& s = in_[in_n_++];
    const auto len = static_cast<uint32_t>(d.size());  // the sender checked the limit
    if (s.buf.size() < len) s.buf.resize(len);
    copy_datagram(d, s.buf.data());
    s.src = src;
    s.len = len;
    // The eventfd counter is non-zero exactly while the queue is non-empty:
    // set on the empty -> non-empty edge, cleared in pop() on the way back,
    // both under mu_, so no wake-up can be lost or left stale.
    if (queued == 0) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t r = write(efd_, &one, sizeof one);
    }
    return true;
  }

  // Owner thread only.
  size_t pop(std::span<RxDatagram> out, uint32_t max_len, TransportStats* stats) {
    std::lock_guard lock(mu_);
    size_t k = 0;
    for (;;) {
      // Swap only while nothing was returned by this call: returned slots
      // must not go back to the senders before the next rx_burst().
      if (out_pos_ == out_n_) {
        if (k > 0 || in_n_ == 0) break;
        std::swap(in_, out_);
        out_n_ = std::exchange(in_n_, 0);
        out_pos_ = 0;
      }
      if (k == out.size()) break;
      const Slot& s = out_[out_pos_++];
      if (s.len > max_len) {
        ++stats->rx_truncated;
        continue;
      }
      out[k++] = RxDatagram{s.src, s.buf.data(), s.len};
      ++stats->rx_packets;
      stats->rx_bytes += s.len;
    }
    if (queued_locked() == 0) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(efd_, &v, sizeof v);
    }
    return k;
  }

 private:
  struct Slot {
    NetAddr src;
    uint32_t len = 0;
    std::vector<uint8_t> buf;  // capacity kept across reuse
  };
  size_t queued_locked() const { return in_n_ + (out_n_ - out_pos_); }

  const size_t limit_;
  int efd_ = -1;
  std::mutex mu_;
  std::vector<Slot> in_;  // filled by senders
  size_t in_n_ = 0;
  std::vector<Slot> out_;  // read by the owner
  size_t out_n_ = 0, out_pos_ = 0;
};

size_t LoopbackHub::endpoints() const {
  std::lock_guard lock(mu_);
  return ports_.size();
}

Result<NetAddr> LoopbackHub::attach(NetAddr want, LoopbackPort* port) {
  std::lock_guard lock(mu_);
  if (want.port == 0) {
    constexpr uint32_t kRange = 65536 - kFirstEphemeralPort;
    for (uint32_t i = 0; i < kRange; ++i) {
      NetAddr a{want.ip, next_port_};
      next_port_ = next_port_ == 65535 ? kFirstEphemeralPort : uint16_t(next_port_ + 1);
      if (ports_.emplace(a, port).second) return a;
    }
    return make_error(Errc::kBusy, "loopback: no free port on " + want.ip_string());
  }
  if (!ports_.emplace(want, port).second)
    return make_error(Errc::kExists, "loopback: address " + want.to_string() + " already in use");
  return want;
}

void LoopbackHub::detach(NetAddr addr) {
  std::lock_guard lock(mu_);
  ports_.erase(addr);
}

Result<std::unique_ptr<LoopbackTransport>> LoopbackTransport::create(
    const TransportConfig& config) {
  if (!config.hub) return make_error(Errc::kInvalid, "loopback transport needs a LoopbackHub");
  std::unique_ptr<LoopbackTransport> t(new LoopbackTransport());
  t->hub_ = config.hub;
  t->max_datagram_ = config.mtu == 0 ? kDefaultDatagram : std::min(config.mtu, kMaxDatagram);
  t->port_ = std::make_unique<LoopbackPort>(config.hub->queue_limit());
  LANEFS_TRY(t->port_->open());
  NetAddr want = config.bind;
  if (want.ip == 0) want.ip = kLocalhost;  // peers need a concrete address to send to
  LANEFS_ASSIGN_OR_RETURN(t->local_, t->hub_->attach(want, t->port_.get()));
  t->attached_ = true;
  return t;
}

LoopbackTransport::~LoopbackTransport() {
  // After detach() returns no sender can reach port_ (they hold the hub lock
  // while copying), so destroying it afterwards is safe.
  if (attached_) hub_->detach(local_);
}

int LoopbackTransport::notify_fd() const noexcept { return port_->fd(); }

Result<size_t> LoopbackTransport::tx_burst(std::span<const TxDatagram> pkts) {
  // One hub lock per burst, not per datagram.
  std::lock_guard lock(hub_->mu_);
  for (const TxDatagram& p : pkts) {
    const uint64_t len = p.size();
    auto it = len <= max_datagram_ ? hub_->ports_.find(p.dst) : hub_->ports_.end();
    if (it == hub_->ports_.end() || !it->second->push(local_, p)) {
      ++stats_.tx_dropped;
      continue;
    }
    ++stats_.tx_packets;
    stats_.tx_bytes += len;
  }
  return pkts.size();
}

Result<size_t> LoopbackTransport::rx_burst(std::span<RxDatagram> out) {
  return port_->pop(out, max_datagram_, &stats_);
}

Result<std::unique_ptr<MemRegion>> LoopbackTransport::register_memory(void* addr, size_t len) {
  if (addr == nullptr && len > 0)
    return make_error(Errc::kInvalid, "register_memory: null address");
  return std::unique_ptr<MemRegion>(new PlainRegion(addr, len));
}

}  // namespace lanefs::transport

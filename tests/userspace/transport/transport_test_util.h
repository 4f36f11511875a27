// Helpers shared by the transport tests: building datagrams, sending a whole
// burst, and receiving with poll() on notify_fd() under a generous timeout.
#pragma once

#include <poll.h>

#include <cstdint>
#include <span>
#include <vector>

#include "common/clock.h"
#include "transport/transport.h"

namespace lanefs::transport::test {

struct Received {
  NetAddr src;
  std::vector<uint8_t> data;
};

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

inline TxDatagram dgram(NetAddr dst, const std::vector<uint8_t>& bytes) {
  return TxDatagram{dst, nullptr, 0, bytes.data(), static_cast<uint32_t>(bytes.size())};
}

inline bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

// Sends every datagram, retrying while the transport reports "ring full".
// Returns false if a burst fails or no progress is made for a long time.
inline bool send_all(Transport& tx, std::span<const TxDatagram> pkts) {
  size_t off = 0;
  const uint64_t deadline = mono_ns() + 5'000'000'000ull;
  while (off < pkts.size()) {
    auto r = tx.tx_burst(pkts.subspan(off));
    if (!r.ok()) return false;
    off += *r;
    if (mono_ns() > deadline) return false;
  }
  return true;
}

// Receives until `want` datagrams arrived or `timeout_ms` passed, sleeping on
// notify_fd() in between. `pump` (the sender), when given, has rx_burst()
// called on every round so datagrams it holds (fault delay) are released.
inline std::vector<Received> receive(Transport& rx, size_t want, int timeout_ms,
                                     Transport* pump = nullptr) {
  std::vector<Received> got;
  std::vector<RxDatagram> buf(64);
  const uint64_t deadline = mono_ns() + uint64_t(timeout_ms) * 1'000'000;
  for (;;) {
    if (pump) (void)pump->rx_burst({});
    auto r = rx.rx_burst(buf);
    if (!r.ok()) return got;
    for (size_t i = 0; i < *r; ++i)
      got.push_back({buf[i].src, std::vector<uint8_t>(buf[i].data, buf[i].data + buf[i].len)});
    if (got.size() >= want) return got;
    if (*r > 0) continue;
    const uint64_t now = mono_ns();
    if (now >= deadline) return got;
    (void)rx.arm_notify();
    int wait_ms = static_cast<int>((deadline - now) / 1'000'000) + 1;
    if (pump && pump->has_pending()) wait_ms = 1;
    readable(rx.notify_fd(), wait_ms);
  }
}

}  // namespace lanefs::transport::test

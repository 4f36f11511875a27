// UDP lane micro-benchmark: datagrams/s and bytes/s through UdpTransport with
// the kernel's offloads (GSO on the sender, GRO on the receiver) on or off.
// A sender thread pushes bursts of equal datagrams (one session, so every
// burst qualifies for GSO) as fast as tx_burst takes them; a receiver thread
// drains with rx_burst. Prints one line of key=value results. Measures; never
// asserts. bench/run_udp_gso_bench.sh runs it over loopback and a veth pair.
//
//   udp_gso_bench --size 1472 --burst 32 --offload on --seconds 2
//       --tx-ip 192.0.2.1 --rx-ip 192.0.2.2 [--rx-netns NAME]   (one line)
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "transport/transport.h"

using namespace lanefs;
using namespace lanefs::transport;

namespace {

Result<uint32_t> parse_ip(const std::string& s) {
  auto a = parse_net_addr(s + ":1");
  if (!a.ok()) return a.error();
  return a->ip;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"UDP GSO/GRO micro-benchmark"};
  uint32_t size = 1472, burst = 32;
  double seconds = 2;
  std::string offload = "on", tx_ip = "127.0.0.1", rx_ip = "127.0.0.1", rx_netns;
  app.add_option("--size", size, "datagram bytes")->check(CLI::Range(12, 65507));
  app.add_option("--burst", burst, "datagrams per tx_burst")->check(CLI::Range(1, 4096));
  app.add_option("--offload", offload, "on: GSO + GRO, off: neither")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--seconds", seconds, "sending time");
  app.add_option("--tx-ip", tx_ip, "sender's address");
  app.add_option("--rx-ip", rx_ip, "receiver's address");
  app.add_option("--rx-netns", rx_netns, "create the receiver in this named netns");
  CLI11_PARSE(app, argc, argv);

  auto txa = parse_ip(tx_ip), rxa = parse_ip(rx_ip);
  if (!txa.ok() || !rxa.ok()) {
    std::fprintf(stderr, "bad address\n");
    return 2;
  }
  const UdpOffload mode = offload == "on" ? UdpOffload::kAuto : UdpOffload::kOff;
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.gso = c.gro = mode;

  // The receiver's socket, in another namespace when asked (setns on this
  // thread, then back; the socket stays where it was made).
  c.bind = NetAddr{*rxa, 0};
  int self = -1;
  if (!rx_netns.empty()) {
    self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns = open(("/run/netns/" + rx_netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (self < 0 || ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      std::perror("setns (receiver netns)");
      return 1;
    }
    close(ns);
  }
  auto rx = make_transport(c);
  if (self >= 0 && setns(self, CLONE_NEWNET) != 0) {
    std::perror("setns (back)");
    return 1;
  }
  c.bind = NetAddr{*txa, 0};
  auto tx = make_transport(c);
  if (!rx.ok() || !tx.ok()) {
    std::fprintf(stderr, "transport: %s\n",
                 (!rx.ok() ? rx.error() : tx.error()).to_string().c_str());
    return 1;
  }
  if (size > (*tx)->max_datagram() || size > (*rx)->max_datagram()) {
    std::fprintf(stderr, "size %u is above the link's limit %u\n", size,
                 std::min((*tx)->max_datagram(), (*rx)->max_datagram()));
    return 2;
  }

  std::atomic<bool> sending{true};
  std::atomic<uint64_t> rx_pkts{0}, rx_bytes{0};
  std::thread receiver([&] {
    Transport& t = **rx;
    std::vector<RxDatagram> out(64);
    uint64_t idle_since = 0, n = 0, b = 0;
    for (;;) {
      auto r = t.rx_burst(out);
      if (!r.ok()) break;
      for (size_t i = 0; i < *r; ++i) b += out[i].len;
      n += *r;
      if (*r > 0) {
        idle_since = 0;
        continue;
      }
      rx_pkts.store(n, std::memory_order_relaxed);
      rx_bytes.store(b, std::memory_order_relaxed);
      const uint64_t now = mono_ns();
      if (!sending.load(std::memory_order_relaxed)) {
        if (idle_since == 0) idle_since = now;
        if (now - idle_since > 200'000'000) break;  // drained
      }
      pollfd p{t.notify_fd(), POLLIN, 0};
      poll(&p, 1, 10);
    }
    rx_pkts.store(n);
    rx_bytes.store(b);
  });

  // One burst of equal datagrams, session field constant (bytes 8..11).
  std::vector<uint8_t> payload(size_t{size} * burst);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 131 + 7);
  std::vector<TxDatagram> pkts(burst);
  const NetAddr dst = (*rx)->local_addr();
  for (uint32_t i = 0; i < burst; ++i) {
    uint8_t* p = payload.data() + size_t{i} * size;
    std::memset(p + 8, 0x2a, 4);
    pkts[i] = TxDatagram{dst, p, 44 < size ? 44 : size, p + (44 < size ? 44 : size),
                         size - (44 < size ? 44 : size)};
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // receiver ready, ARP done
  const double cpu0 = cpu_seconds();
  const uint64_t t0 = mono_ns(), end = t0 + uint64_t(seconds * 1e9);
  uint64_t sent = 0;
  while (mono_ns() < end) {
    size_t off = 0;
    while (off < pkts.size()) {
      auto r = (*tx)->tx_burst(std::span<const TxDatagram>(pkts).subspan(off));
      if (!r.ok()) {
        std::fprintf(stderr, "tx_burst: %s\n", r.error().to_string().c_str());
        return 1;
      }
      off += *r;
      if (*r == 0) sched_yield();  // socket buffer full
    }
    sent += burst;
  }
  const double elapsed = double(mono_ns() - t0) * 1e-9;
  sending = false;
  receiver.join();
  const double cpu = cpu_seconds() - cpu0;
  const auto& ts = (*tx)->stats();
  const auto& rs = (*rx)->stats();
  const uint64_t got = rx_pkts.load();
  std::printf(
      "size=%u burst=%u offload=%s gso_active=%d gro_active=%d tx_pps=%.0f rx_pps=%.0f "
      "rx_MBps=%.1f loss_pct=%.2f tx_gso_sends=%llu rx_gro_messages=%llu "
      "cpu_us_per_dgram=%.3f\n",
      size, burst, offload.c_str(), int(ts.gso_active), int(rs.gro_active), double(sent) / elapsed,
      double(got) / elapsed, double(rx_bytes.load()) / elapsed / 1e6,
      sent ? 100.0 * double(sent - std::min(got, sent)) / double(sent) : 0.0,
      static_cast<unsigned long long>(ts.tx_gso_sends),
      static_cast<unsigned long long>(rs.rx_gro_messages), got ? cpu * 1e6 / double(got) : 0.0);
  return 0;
}

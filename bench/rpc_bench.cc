// Small-RPC benchmark over kernel UDP on 127.0.0.1: a raw UDP ping-pong
// baseline (two sockets, blocking sendto/recvfrom, two threads), lanefs RPC
// latency with one call outstanding, and lanefs RPC rate with many calls
// outstanding. Rounds interleave baseline and RPC so both see the same
// machine state; medians over rounds are reported. Measures, never asserts.
//
// Output: a Markdown table (default) or key=value lines (--format kv).
#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "rpc/rpc.h"

namespace lanefs::bench {
namespace {

constexpr uint32_t kLocalhost = 0x7f000001;
constexpr uint16_t kOpEcho = 1;
constexpr uint64_t kCallTimeout = 5'000'000'000;

struct Options {
  int rounds = 5;
  double seconds = 1.0;            // per phase per round
  uint64_t max_iters = 2'000'000;  // per phase per round (bounds the loop by count too)
  uint32_t payload = 64;
  int outstanding = 32;
  uint32_t workers = rpc::ServerOptions{}.workers;
  uint32_t loops = 0;               // server loops (0: one per CPU)
  std::string handler = "inline";   // inline | worker
  int spin_slots = -1;              // client and server spinners (-1: library default)
  std::string format = "md";
};

struct Latency {
  double p50_us = 0, p99_us = 0, rate = 0;  // rate: completed round trips per second
  uint64_t n = 0, lost = 0;
};

Latency summarize(std::vector<uint64_t>& ns, double elapsed_s) {
  Latency l;
  l.n = ns.size();
  if (ns.empty()) return l;
  std::sort(ns.begin(), ns.end());
  l.p50_us = static_cast<double>(ns[ns.size() / 2]) / 1e3;
  l.p99_us = static_cast<double>(ns[std::min(ns.size() - 1, ns.size() * 99 / 100)]) / 1e3;
  l.rate = static_cast<double>(ns.size()) / elapsed_s;
  return l;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// ------------------------------------------------------------ raw UDP baseline
int udp_socket(int rcv_timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    return -1;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(kLocalhost);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    perror("bind");
    close(fd);
    return -1;
  }
  timeval tv{rcv_timeout_ms / 1000, (rcv_timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

sockaddr_in addr_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return a;
}

// Two sockets on 127.0.0.1; an echo thread answers every datagram, the
// calling thread sends and waits for the echo, one at a time.
Latency udp_ping_pong(const Options& o) {
  Latency bad;
  int echo_fd = udp_socket(50);
  int ping_fd = udp_socket(200);
  if (echo_fd < 0 || ping_fd < 0) return bad;
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    std::vector<uint8_t> buf(65536);
    while (!stop.load(std::memory_order_relaxed)) {
      sockaddr_in src{};
      socklen_t len = sizeof src;
      ssize_t n =
          recvfrom(echo_fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&src), &len);
      if (n < 0) continue;  // receive timeout: re-check stop
      sendto(echo_fd, buf.data(), static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&src),
             len);
    }
  });
  const sockaddr_in to = addr_of(echo_fd);
  std::vector<uint8_t> msg(o.payload, 0x5a), in(65536);
  std::vector<uint64_t> samples;
  samples.reserve(1 << 20);
  uint64_t lost = 0;
  const uint64_t t0 = mono_ns();
  const uint64_t end = t0 + static_cast<uint64_t>(o.seconds * 1e9);
  for (uint64_t i = 0; i < o.max_iters && mono_ns() < end; ++i) {
    const uint64_t s = mono_ns();
    sendto(ping_fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    ssize_t n = recv(ping_fd, in.data(), in.size(), 0);
    if (n < 0) {
      ++lost;
      continue;
    }
    samples.push_back(mono_ns() - s);
  }
  const double elapsed = static_cast<double>(mono_ns() - t0) / 1e9;
  stop.store(true);
  echo.join();
  close(echo_fd);
  close(ping_fd);
  Latency l = summarize(samples, elapsed);
  l.lost = lost;
  return l;
}

// ------------------------------------------------------------------ lanefs RPC
struct RpcPair {
  std::unique_ptr<rpc::RpcServer> server;
  std::unique_ptr<rpc::RpcClient> client;
  NetAddr to;
};

bool make_pair(const Options& o, RpcPair* p) {
  rpc::ServerOptions so;
  so.transport.kind = transport::TransportKind::kUdp;
  so.transport.bind = NetAddr{kLocalhost, 0};
  so.name = "rpc-bench-server";
  so.workers = o.workers;
  so.loops = o.loops;
  so.spin_slots = o.spin_slots;
  // The echo runs inline on the loop that received the request (as a
  // backend answers a read), or on a worker (as a metadata change).
  auto s = o.handler == "worker"
               ? rpc::RpcServer::create(std::move(so),
                                        [](const rpc::RequestInfo&, std::span<const uint8_t> req, rpc::Buffer* resp) {
                                          resp->assign(req.begin(), req.end());
                                        })
               : rpc::RpcServer::create(std::move(so), [](rpc::ServerCall& c) {
                   c.response().assign(c.request());
                   c.finish();
                 });
  if (!s.ok()) {
    fmt::print(stderr, "server: {}\n", s.error().to_string());
    return false;
  }
  rpc::ClientOptions co;
  co.transport.kind = transport::TransportKind::kUdp;
  co.transport.bind = NetAddr{kLocalhost, 0};
  co.name = "rpc-bench-client";
  co.spin_slots = o.spin_slots;
  auto c = rpc::RpcClient::create(std::move(co));
  if (!c.ok()) {
    fmt::print(stderr, "client: {}\n", c.error().to_string());
    return false;
  }
  p->server = std::move(s).value();
  p->client = std::move(c).value();
  p->to = p->server->local_addr();
  return true;
}

Latency rpc_latency(const Options& o, RpcPair& p) {
  const rpc::Buffer req(o.payload, 0x5a);
  std::vector<uint64_t> samples;
  samples.reserve(1 << 20);
  uint64_t failed = 0;
  const uint64_t t0 = mono_ns();
  const uint64_t end = t0 + static_cast<uint64_t>(o.seconds * 1e9);
  for (uint64_t i = 0; i < o.max_iters && mono_ns() < end; ++i) {
    const uint64_t s = mono_ns();
    auto r = p.client->call(p.to, kOpEcho, req, kCallTimeout);
    if (!r.ok() || r->size() != req.size()) {
      ++failed;
      continue;
    }
    samples.push_back(mono_ns() - s);
  }
  Latency l = summarize(samples, static_cast<double>(mono_ns() - t0) / 1e9);
  l.lost = failed;
  return l;
}

// Keeps `outstanding` calls in flight for the phase; returns completed calls/s
// (and the latency of those calls, which includes queueing).
Latency rpc_rate(const Options& o, RpcPair& p) {
  uint64_t failed = 0;
  std::vector<uint64_t> samples;
  samples.reserve(1 << 20);
  const rpc::Buffer req(o.payload, 0x5a);
  const uint64_t t0 = mono_ns();
  const uint64_t end = t0 + static_cast<uint64_t>(o.seconds * 1e9);
  uint64_t issued = 0;
  {
    // One thread keeps `outstanding` calls in flight on its endpoint: it
    // sends them, reaps the replies and issues new ones itself.
    rpc::RpcClient::Batch batch(*p.client);
    while (issued < o.max_iters && mono_ns() < end) {
      while (batch.outstanding() < static_cast<size_t>(o.outstanding) && issued < o.max_iters) {
        ++issued;
        const uint64_t s = mono_ns();
        rpc::CallArgs a;
        a.server = p.to;
        a.opcode = kOpEcho;
        a.req = req;
        a.timeout_ns = kCallTimeout;
        batch.start(a, [&samples, &failed, s, end](Result<rpc::Response> r) {
          const uint64_t now = mono_ns();
          if (!r.ok()) ++failed;
          else if (now <= end) samples.push_back(now - s);
        });
      }
      batch.wait_any();
    }
  }  // drains: every call ends by its 5 s deadline
  const double elapsed = static_cast<double>(mono_ns() - t0) / 1e9;
  Latency l = summarize(samples, elapsed);
  l.lost = failed;
  return l;
}

}  // namespace
}  // namespace lanefs::bench

int main(int argc, char** argv) {
  using namespace lanefs::bench;
  Options o;
  CLI::App app{"lanefs small-RPC benchmark over UDP on 127.0.0.1"};
  app.add_option("--rounds", o.rounds, "interleaved rounds (baseline, rpc latency, rpc rate)")
      ->check(CLI::Range(1, 100));
  app.add_option("--seconds", o.seconds, "duration of each phase in each round")
      ->check(CLI::Range(0.05, 60.0));
  app.add_option("--max-iters", o.max_iters, "iteration cap of each phase");
  app.add_option("--payload", o.payload, "request/response bytes")->check(CLI::Range(1, 1400));
  app.add_option("--outstanding", o.outstanding, "calls in flight for the rate phase")
      ->check(CLI::Range(1, 1024));
  app.add_option("--workers", o.workers, "server worker threads (--handler worker)")->check(CLI::Range(1, 64));
  app.add_option("--loops", o.loops, "server loop threads (0: one per CPU)")->check(CLI::Range(0, 64));
  app.add_option("--handler", o.handler, "echo on the receiving loop (inline) or on a worker")
      ->check(CLI::IsMember({"inline", "worker"}));
  app.add_option("--spin-slots", o.spin_slots,
                 "threads per process that may busy-poll before sleeping (-1: a quarter of the CPUs)")
      ->check(CLI::Range(-1, 64));
  app.add_option("--format", o.format, "md or kv")->check(CLI::IsMember({"md", "kv"}));
  CLI11_PARSE(app, argc, argv);

  RpcPair pair;
  if (!make_pair(o, &pair)) return 1;
  // Warm up: session, caches, RTT estimate.
  for (int i = 0; i < 2000; ++i) {
    auto r = pair.client->call(pair.to, kOpEcho, lanefs::rpc::Buffer(o.payload), kCallTimeout);
    if (!r.ok()) {
      fmt::print(stderr, "warm-up call failed: {}\n", r.error().to_string());
      return 1;
    }
  }

  std::vector<double> udp_p50, udp_p99, udp_rate, rpc_p50, rpc_p99, rpc_rate1, rate_n, rate_p50;
  uint64_t udp_lost = 0, rpc_failed = 0;
  for (int round = 0; round < o.rounds; ++round) {
    Latency u = udp_ping_pong(o);
    Latency r = rpc_latency(o, pair);
    Latency m = rpc_rate(o, pair);
    udp_p50.push_back(u.p50_us);
    udp_p99.push_back(u.p99_us);
    udp_rate.push_back(u.rate);
    rpc_p50.push_back(r.p50_us);
    rpc_p99.push_back(r.p99_us);
    rpc_rate1.push_back(r.rate);
    rate_n.push_back(m.rate);
    rate_p50.push_back(m.p50_us);
    udp_lost += u.lost;
    rpc_failed += r.lost + m.lost;
    fmt::print(stderr,
               "round {}: udp p50 {:.1f} us p99 {:.1f} us ({:.0f}/s) | rpc p50 {:.1f} us p99 "
               "{:.1f} us ({:.0f}/s) | rpc x{} {:.0f} calls/s\n",
               round + 1, u.p50_us, u.p99_us, u.rate, r.p50_us, r.p99_us, r.rate, o.outstanding,
               m.rate);
  }
  const double up50 = median(udp_p50), up99 = median(udp_p99), urate = median(udp_rate);
  const double rp50 = median(rpc_p50), rp99 = median(rpc_p99), rrate = median(rpc_rate1);
  const double mrate = median(rate_n), mp50 = median(rate_p50);
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  const auto stats = pair.client->stats();

  if (o.format == "kv") {
    fmt::print("udp_p50_us={:.2f}\nudp_p99_us={:.2f}\nudp_rate={:.0f}\n", up50, up99, urate);
    fmt::print("rpc_p50_us={:.2f}\nrpc_p99_us={:.2f}\nrpc_rate_1={:.0f}\n", rp50, rp99, rrate);
    fmt::print("rpc_rate_{}={:.0f}\nrpc_rate_{}_p50_us={:.2f}\n", o.outstanding, mrate,
               o.outstanding, mp50);
    fmt::print("ratio_p50={:.2f}\nratio_p99={:.2f}\n", ratio(rp50, up50), ratio(rp99, up99));
    fmt::print("udp_lost={}\nrpc_failed={}\nrpc_retransmits={}\n", udp_lost, rpc_failed,
               stats.retransmits);
    return 0;
  }
  fmt::print(
      "{} rounds, {:.1f} s per phase, {} B request and response, echo {} ({} server loops), medians "
      "over rounds.\n\n",
      o.rounds, o.seconds, o.payload, o.handler == "worker" ? "on a worker" : "inline on the loop",
      o.loops ? std::to_string(o.loops) : std::string("one per CPU"));
  fmt::print("| measure | raw UDP ping-pong | lanefs RPC | RPC / UDP |\n");
  fmt::print("|---|---:|---:|---:|\n");
  fmt::print("| latency p50, 1 outstanding (µs) | {:.1f} | {:.1f} | {:.2f}x |\n", up50, rp50,
             ratio(rp50, up50));
  fmt::print("| latency p99, 1 outstanding (µs) | {:.1f} | {:.1f} | {:.2f}x |\n", up99, rp99,
             ratio(rp99, up99));
  fmt::print("| round trips/s, 1 outstanding | {:.0f} | {:.0f} | {:.2f}x |\n", urate, rrate,
             ratio(rrate, urate));
  fmt::print("| calls/s, {} outstanding | — | {:.0f} | {:.2f}x of UDP ping-pong |\n", o.outstanding,
             mrate, ratio(mrate, urate));
  fmt::print("| latency p50, {} outstanding (µs) | — | {:.1f} | |\n", o.outstanding, mp50);
  fmt::print("\nUDP datagrams lost: {}; RPC calls failed: {}; RPC retransmits: {}.\n", udp_lost,
             rpc_failed, stats.retransmits);
  return 0;
}

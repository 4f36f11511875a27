// HA paths in the RPC layer over real UDP sockets, in a network namespace of
// the test's own (unshared at start: loopback only, gone with the process),
// with loss made by nftables rules on (source, destination) pairs:
//   - four paths, two labels: while healthy only same-label paths carry
//     data; when both same-label paths drop everything, the cross-label
//     paths carry it and every call still succeeds;
//   - 30% loss on one of two paths: its health drops and most traffic
//     moves to the other;
//   - one-packet requests leave a dead path too (found by a probe);
//   - a path that dies mid-run: every call succeeds and each request runs
//     exactly once (the session, and its reply cache, is the same on every
//     path); the path recovers and gets traffic again (failback).
// Needs root (unshare, nft); skipped with the reason otherwise.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "rpc/rpc.h"
#include "support/test_support.h"

namespace lanefs::rpc {
namespace {

std::string g_skip;

int sh(const std::vector<std::string>& argv) { return lanefs::test::run_command(argv); }

class NetnsEnv : public ::testing::Environment {
 public:
  void SetUp() override { g_skip = lanefs::test::enter_netns_with_nft("lfha"); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new NetnsEnv);

constexpr uint32_t ip(uint8_t last) { return 0x7f000000u | last; }  // 127.0.0.last

// Drops `pct`% of packets from src to dst (100: all).
void drop(uint8_t src, uint8_t dst, int pct) {
  std::string rule = "ip saddr 127.0.0." + std::to_string(src) + " ip daddr 127.0.0." + std::to_string(dst);
  std::vector<std::string> argv = {"nft", "add", "rule", "inet", "lfha", "out"};
  for (size_t at = 0; at < rule.size();) {
    size_t sp = rule.find(' ', at);
    argv.push_back(rule.substr(at, sp == std::string::npos ? std::string::npos : sp - at));
    if (sp == std::string::npos) break;
    at = sp + 1;
  }
  if (pct < 100) {
    for (const char* w : {"numgen", "random", "mod", "100", "<"}) argv.push_back(w);
    argv.push_back(std::to_string(pct));
  }
  argv.push_back("drop");
  ASSERT_EQ(sh(argv), 0) << "nft rule " << rule;
}
void clear_drops() { ASSERT_EQ(sh({"nft", "flush", "chain", "inet", "lfha", "out"}), 0); }

// A server on 127.0.0.2 and 127.0.0.4 (same port) that echoes the request and
// counts how often each request body ran.
struct Server {
  std::mutex mu;
  std::map<std::string, int> runs;
  std::unique_ptr<RpcServer> rpc;
  Server() {
    ServerOptions so;
    so.transport.kind = transport::TransportKind::kUdp;
    so.transport.bind = NetAddr{ip(2), 0};
    so.transport.extra_binds = {NetAddr{ip(4), 0}};
    so.workers = 2;
    auto r = RpcServer::create(so, [this](const RequestInfo&, std::span<const uint8_t> req, Buffer* resp) {
      {
        std::lock_guard lk(mu);
        ++runs[std::string(req.begin(), req.end())];
      }
      resp->assign(req.begin(), req.end());
    });
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    if (r.ok()) rpc = std::move(*r);
    g_server = rpc.get();
  }
  ~Server() { g_server = nullptr; }
  static inline RpcServer* g_server = nullptr;  // for failure messages
};

std::unique_ptr<RpcClient> client() {
  ClientOptions co;
  co.transport.kind = transport::TransportKind::kUdp;
  co.transport.bind = NetAddr{ip(1), 0};
  co.transport.extra_binds = {NetAddr{ip(3), 0}};
  co.connect_timeout_ns = 3'000'000'000ull;
  auto r = RpcClient::create(co);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? std::move(*r) : nullptr;
}

PathSpec path(uint8_t local, NetAddr remote, bool preferred, const char* label) {
  return PathSpec{NetAddr{ip(local), 0}, remote, preferred, label};
}

// The path stats of the one session, by "local->remote last octets".
std::map<std::string, PathStats> stats_of(RpcClient& c) {
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // published every 100 ms
  std::map<std::string, PathStats> out;
  for (auto& [server, paths] : c.path_stats())
    for (auto& p : paths)
      out[std::to_string(p.spec.local.ip & 0xff) + "->" + std::to_string(p.spec.remote.ip & 0xff)] = p;
  return out;
}

// What went wrong in the last run_calls (for failure messages): the first
// failures with when they happened, and the paths afterwards.
std::string g_calls_detail;

std::string paths_text(RpcClient& c) {
  std::string out;
  for (auto& [server, paths] : c.path_stats())
    for (auto& p : paths)
      out += "  " + std::to_string(p.spec.local.ip & 0xff) + "->" + std::to_string(p.spec.remote.ip & 0xff) +
             " health " + std::to_string(p.health) + (p.healthy ? " up" : " down") + " tx " +
             std::to_string(p.tx_bytes) + " rx_pkts " + std::to_string(p.rx_packets) + " timeouts " +
             std::to_string(p.timeouts) + " failovers " + std::to_string(p.failovers) + "\n";
  return out;
}

// n calls of ~20 KiB each (several packets); returns how many failed.
int run_calls(RpcClient& c, NetAddr server, int n, const std::string& tag) {
  int failed = 0;
  g_calls_detail.clear();
  const uint64_t t0 = mono_ns();
  // Bounded in time too, so that a stall reports what it saw well before
  // ctest's timeout (180 s) kills the test without a word.
  const uint64_t give_up = t0 + 60'000'000'000ull;
  for (int i = 0; i < n; ++i) {
    if (mono_ns() > give_up) {
      failed += n - i;
      g_calls_detail += "  gave up after 60 s with " + std::to_string(n - i) + " calls not made\n";
      break;
    }
    std::string body = tag + ":" + std::to_string(i) + ":" + std::string(20000, char('a' + i % 26));
    const uint64_t t = mono_ns();
    auto r = c.call(server, 7, Buffer(body.begin(), body.end()), 10'000'000'000ull);
    if (!r.ok() || std::string(r->begin(), r->end()) != body) {
      if (++failed <= 5)
        g_calls_detail += "  call " + std::to_string(i) + " at " + std::to_string((t - t0) / 1'000'000) +
                          " ms took " + std::to_string((mono_ns() - t) / 1'000'000) + " ms: " +
                          (r.ok() ? std::string("wrong body") : r.error().to_string()) + "\n";
    }
  }
  if (failed) {
    const RpcStatsSnapshot cs = c.stats();
    g_calls_detail += "paths after the run:\n" + paths_text(c) + "client: endpoints " + std::to_string(cs.endpoints) +
                      " sessions " + std::to_string(cs.sessions) + " session_resets " +
                      std::to_string(cs.session_resets) + " connects " + std::to_string(cs.connects) +
                      " calls_timed_out " + std::to_string(cs.calls_timed_out) + " stale_dropped " +
                      std::to_string(cs.stale_dropped) + " retransmits " + std::to_string(cs.retransmits) + "\n";
    if (Server::g_server) {
      const RpcStatsSnapshot ss = Server::g_server->stats();
      g_calls_detail += "server: loops " + std::to_string(ss.endpoints) + " sessions " + std::to_string(ss.sessions) +
                        " connects " + std::to_string(ss.connects) + " unknown_session " +
                        std::to_string(ss.unknown_session) + " stale_dropped " + std::to_string(ss.stale_dropped) +
                        " unexpected " + std::to_string(ss.unexpected_packets) + "\n";
    }
  }
  return failed;
}

class RpcPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_skip.empty()) GTEST_SKIP() << g_skip;
    clear_drops();
  }
};

TEST_F(RpcPaths, SameLabelPreferredThenCrossLabel) {
  Server srv;
  ASSERT_TRUE(srv.rpc);
  auto addrs = srv.rpc->local_addrs();
  ASSERT_EQ(addrs.size(), 2u);
  EXPECT_EQ(addrs[0].port, addrs[1].port) << "legs share the port";
  NetAddr a = addrs[0], b = addrs[1];  // .2 label A, .4 label B
  auto c = client();
  ASSERT_TRUE(c);
  // Client legs .1 (A) and .3 (B): four paths, two of them cross-label.
  c->set_paths(a, {path(1, a, true, "A"), path(3, b, true, "B"), path(1, b, false, "A/B"), path(3, a, false, "B/A")});
  EXPECT_EQ(run_calls(*c, a, 200, "healthy"), 0) << g_calls_detail;
  auto s = stats_of(*c);
  ASSERT_EQ(s.size(), 4u);
  uint64_t same = s["1->2"].tx_bytes + s["3->4"].tx_bytes, cross = s["1->4"].tx_bytes + s["3->2"].tx_bytes;
  EXPECT_GT(s["1->2"].tx_bytes, 1'000'000u);
  EXPECT_GT(s["3->4"].tx_bytes, 1'000'000u) << "both same-label paths carry load";
  EXPECT_LT(cross, same / 100) << "cross-label paths carried data while same-label ones were healthy";

  // Both same-label paths drop everything: the cross-label ones take over.
  drop(1, 2, 100);
  drop(3, 4, 100);
  EXPECT_EQ(run_calls(*c, a, 100, "cross"), 0) << g_calls_detail;
  auto t = stats_of(*c);
  EXPECT_FALSE(t["1->2"].healthy);
  EXPECT_FALSE(t["3->4"].healthy);
  EXPECT_GE(t["1->2"].failovers, 1u);
  uint64_t cross_now = t["1->4"].tx_bytes + t["3->2"].tx_bytes - cross;
  EXPECT_GT(cross_now, 1'000'000u) << "cross-label paths did not carry the traffic";
  EXPECT_GT(t["1->4"].tx_bytes - s["1->4"].tx_bytes, 100'000u);
  EXPECT_GT(t["3->2"].tx_bytes - s["3->2"].tx_bytes, 100'000u);

  // The same-label paths recover: probes bring them back and they carry the
  // traffic again (failback).
  clear_drops();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto u0 = stats_of(*c);
  EXPECT_TRUE(u0["1->2"].healthy);
  EXPECT_TRUE(u0["3->4"].healthy);
  EXPECT_GE(u0["1->2"].failbacks, 1u);
  EXPECT_EQ(run_calls(*c, a, 100, "back"), 0) << g_calls_detail;
  auto u = stats_of(*c);
  EXPECT_GT(u["1->2"].tx_bytes - u0["1->2"].tx_bytes, 500'000u);
  EXPECT_GT(u["3->4"].tx_bytes - u0["3->4"].tx_bytes, 500'000u);
  EXPECT_LT(u["1->4"].tx_bytes + u["3->2"].tx_bytes - u0["1->4"].tx_bytes - u0["3->2"].tx_bytes, 100'000u);
}

// A session that has never heard the server while its preferred paths are
// dead — a new endpoint the pool opens during an outage (its caller found
// every endpoint busy), or a reconnect after a server restart — connects
// over another path (issue 13 item 17: its connects all went to the dead
// preferred paths until the connect timeout, 3 s here).
TEST_F(RpcPaths, NewSessionConnectsWhenThePreferredPathsAreDead) {
  Server srv;
  ASSERT_TRUE(srv.rpc);
  auto addrs = srv.rpc->local_addrs();
  ASSERT_EQ(addrs.size(), 2u);
  NetAddr a = addrs[0], b = addrs[1];
  auto c = client();
  ASSERT_TRUE(c);
  c->set_paths(a, {path(1, a, true, "A"), path(3, b, true, "B"), path(1, b, false, "A/B"), path(3, a, false, "B/A")});
  drop(1, 2, 100);
  drop(3, 4, 100);
  EXPECT_EQ(run_calls(*c, a, 20, "fresh"), 0) << g_calls_detail;
}

TEST_F(RpcPaths, LossyPathLosesMostTraffic) {
  Server srv;
  ASSERT_TRUE(srv.rpc);
  auto addrs = srv.rpc->local_addrs();
  NetAddr a = addrs[0], b = addrs[1];
  auto c = client();
  ASSERT_TRUE(c);
  c->set_paths(a, {path(1, a, true, ""), path(3, b, true, "")});
  EXPECT_EQ(run_calls(*c, a, 50, "warm"), 0);
  auto s = stats_of(*c);
  drop(3, 4, 30);  // 30% loss on the second path, requests and probes alike
  uint64_t end = mono_ns() + 4'000'000'000ull;
  int failed = 0, calls = 0;
  while (mono_ns() < end && calls < 2000) failed += run_calls(*c, a, 10, "lossy" + std::to_string(calls++));
  EXPECT_EQ(failed, 0);
  auto t = stats_of(*c);
  uint64_t good = t["1->2"].tx_bytes - s["1->2"].tx_bytes, bad = t["3->4"].tx_bytes - s["3->4"].tx_bytes;
  EXPECT_GT(t["3->4"].timeouts, s["3->4"].timeouts) << "the lossy path saw no timeouts";
  EXPECT_GE(t["3->4"].failovers, 1u) << "the lossy path never turned unhealthy";
  EXPECT_LT(bad * 10, (good + bad) * 3) << "lossy path carried " << bad << " of " << good + bad << " bytes";
}

TEST_F(RpcPaths, PathDiesMidRunExactlyOnce) {
  Server srv;
  ASSERT_TRUE(srv.rpc);
  auto addrs = srv.rpc->local_addrs();
  NetAddr a = addrs[0], b = addrs[1];
  auto c = client();
  ASSERT_TRUE(c);
  c->set_paths(a, {path(1, a, true, ""), path(3, b, true, "")});
  std::atomic<int> failed{0};
  std::thread io([&] {
    for (int k = 0; k < 10; ++k) failed += run_calls(*c, a, 60, "once" + std::to_string(k));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  drop(1, 2, 100);  // requests on the first path vanish,
  drop(2, 1, 100);  // and so do replies on it
  io.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(stats_of(*c)["1->2"].failovers, 1u) << "the path did not die while calls ran";
  std::lock_guard lk(srv.mu);
  EXPECT_EQ(srv.runs.size(), 600u);
  for (const auto& [body, n] : srv.runs) EXPECT_EQ(n, 1) << body.substr(0, 12) << " ran " << n << " times";
}

// One-packet requests (most metadata operations) wait on execution, not on
// credit returns: a dead path must still be found (by a probe) and left.
TEST_F(RpcPaths, SmallRequestsLeaveADeadPath) {
  Server srv;
  ASSERT_TRUE(srv.rpc);
  auto addrs = srv.rpc->local_addrs();
  NetAddr a = addrs[0], b = addrs[1];
  auto c = client();
  ASSERT_TRUE(c);
  c->set_paths(a, {path(1, a, true, ""), path(3, b, true, "")});
  auto small = [&](int n, const std::string& tag) {
    int failed = 0;
    for (int i = 0; i < n; ++i) {
      std::string body = tag + std::to_string(i);
      auto r = c->call(a, 7, Buffer(body.begin(), body.end()), 10'000'000'000ull);
      if (!r.ok() || std::string(r->begin(), r->end()) != body) ++failed;
    }
    return failed;
  };
  EXPECT_EQ(small(50, "warm"), 0);
  drop(1, 2, 100);
  drop(2, 1, 100);
  auto s0 = stats_of(*c);
  EXPECT_EQ(small(300, "small"), 0);
  auto s1 = stats_of(*c);
  EXPECT_FALSE(s1["1->2"].healthy) << "the dead path was never marked down";
  EXPECT_GE(s1["1->2"].failovers, 1u);
  uint64_t on_dead = s1["1->2"].tx_packets - s0["1->2"].tx_packets;
  uint64_t on_live = s1["3->4"].tx_packets - s0["3->4"].tx_packets;
  EXPECT_GE(on_live, 300u);  // every request (at least) went the live way
  EXPECT_LT(on_dead, 30u) << "requests kept going to the dead path (" << on_dead << " packets)";
}

}  // namespace
}  // namespace lanefs::rpc

// RPC on the DPDK lane's dedicated cores (dedicated_mode=full), on a real
// net_tap port in a network namespace of its own: a client whose port
// polls on one dedicated core, called from many threads at once, against a
// kernel-UDP server, with drop/duplicate/reorder on both ends.
//   - every call completes with the right bytes, whether its reply goes to
//     the caller's sink (reassembled there by the core) or is handed back;
//   - every request runs exactly once on the server;
//   - a completion may start the next call (it runs on the calling thread);
//   - the pool has one endpoint per core: callers never open their own.
// Needs root (unshare, tap devices); skipped with the reason otherwise.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "lanefs/config.h"
#include "rpc/rpc.h"
#include "support/test_support.h"

namespace lanefs::rpc {
namespace {

std::string g_netns_error;

class NetnsEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!LANEFS_HAVE_DPDK) g_netns_error = "lanefs built without the DPDK lane";
    else if (geteuid() != 0) g_netns_error = "needs root (network namespace, tap devices)";
    else if (unshare(CLONE_NEWNET) != 0) g_netns_error = std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
    else if (test::run_command({"ip", "link", "set", "lo", "up"}) != 0) g_netns_error = "ip link set lo up failed";
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new NetnsEnv);

constexpr uint32_t kKernelIp = 0xc0000281, kDpdkIp = 0xc0000282;  // 192.0.2.129 / .130
constexpr uint16_t kOp = 9;

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

// Request: u64 token + payload; response: u64 ~token + the payload, each
// byte xored with the token's low byte. Sizes: mostly small, every 8th
// 20..120 KB (14..82 packets at 1472 bytes).
Buffer payload(uint64_t token) {
  const uint64_t h = mix(token + 7);
  Buffer v(token % 8 == 3 ? 20'000 + h % 100'001 : h % 1400);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(mix(token * 131 + i / 8) >> (i % 8 * 8));
  return v;
}

Buffer expected(uint64_t token) {
  Buffer p = payload(token), out(8 + p.size());
  uint64_t nt = ~token;
  std::memcpy(out.data(), &nt, 8);
  for (size_t i = 0; i < p.size(); ++i) out[8 + i] = p[i] ^ static_cast<uint8_t>(token);
  return out;
}

class DpdkRpc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_netns_error.empty()) GTEST_SKIP() << g_netns_error;
  }
};

TEST_F(DpdkRpc, ManyCallersShareOneDedicatedCoreExactlyOnceUnderFaults) {
  constexpr int kCalls = 1500, kThreads = 6, kPerThread = 8;
  transport::FaultConfig f;
  f.drop_pct = 10;
  f.duplicate_pct = 5;
  f.reorder_pct = 5;

  std::vector<std::atomic<uint32_t>> runs(kCalls);
  ServerOptions so;
  so.transport.kind = transport::TransportKind::kUdp;
  so.transport.bind = NetAddr{kKernelIp, 0};
  so.transport.mtu = 1472;
  so.transport.faults = f;
  so.transport.faults.seed = 5;

  transport::TransportConfig ct;
  ct.kind = transport::TransportKind::kDpdk;
  ct.dpdk.port = "net_tap8,iface=dtap8";
  ct.dpdk.ip = kDpdkIp;
  ct.dpdk.prefix_bits = 28;
  ct.bind = NetAddr{kDpdkIp, 0};
  ct.faults = f;
  ct.faults.seed = 6;
  ClientOptions co;
  co.transport = ct;
  co.name = "dpdk-rpc-test";
  auto client = RpcClient::create(co);
  ASSERT_OK(client);
  ASSERT_EQ(test::run_command({"ip", "addr", "add", "192.0.2.129/28", "dev", "dtap8"}), 0);
  ASSERT_EQ(test::run_command({"ip", "link", "set", "dtap8", "up"}), 0);
  auto server = RpcServer::create(std::move(so), [&](const RequestInfo&, std::span<const uint8_t> req, Buffer* resp) {
    Decoder d(req);
    uint64_t token = d.u64();
    if (!d.ok() || token >= kCalls) return;
    runs[token].fetch_add(1);
    auto p = d.rest();
    resp->resize(8 + p.size());
    uint64_t nt = ~token;
    std::memcpy(resp->data(), &nt, 8);
    for (size_t i = 0; i < p.size(); ++i) (*resp)[8 + i] = p[i] ^ static_cast<uint8_t>(token);
  });
  ASSERT_OK(server);
  const NetAddr to = (*server)->local_addr();

  std::mutex mu;
  std::vector<std::string> errors;
  std::atomic<int> next{0}, ok{0}, chained{0};
  auto drive = [&] {
    struct Pending {
      Buffer req, head, body;
    };
    std::vector<Pending> pend(kPerThread);
    std::vector<int> free_slots;
    for (int i = 0; i < kPerThread; ++i) free_slots.push_back(i);
    RpcClient::Batch batch(**client);
    std::function<void(int, uint64_t)> start;
    std::function<void(int, uint64_t, Result<Response>)> finish = [&](int s, uint64_t token, Result<Response> r) {
      std::string err;
      if (!r.ok()) err = r.error().to_string();
      else if (r->to_buffer() != expected(token)) err = "wrong bytes (" + std::to_string(r->size()) + ")";
      else if ((token % 2 == 1) != r->in_sink) err = "reply not where it was asked for";
      if (!err.empty()) {
        std::lock_guard lk(mu);
        if (errors.size() < 10) errors.push_back("token " + std::to_string(token) + ": " + err);
      } else {
        ok.fetch_add(1);
      }
      // The next call starts from this completion, in the same slot.
      int i = next.fetch_add(1);
      if (i < kCalls) {
        chained.fetch_add(1);
        start(s, uint64_t(i));
      } else {
        free_slots.push_back(s);
      }
    };
    // Starts call `token` in slot `s`; odd tokens get their reply in a sink
    // (8-byte head, the rest in body), even ones are handed back.
    start = [&](int s, uint64_t token) {
      Pending& p = pend[s];
      p.req.resize(8);
      std::memcpy(p.req.data(), &token, 8);
      Buffer pl = payload(token);
      p.req.insert(p.req.end(), pl.begin(), pl.end());
      CallArgs a;
      a.server = to;
      a.opcode = kOp;
      a.req = p.req;
      a.timeout_ns = 60'000'000'000ull;
      if (token % 2 == 1) {
        p.head.assign(8, 0);
        p.body.assign(pl.size(), 0);
        a.sink = RespSink{p.head, p.body};
      }
      batch.start(a, [fin = &finish, s, token](Result<Response> r) { (*fin)(s, token, std::move(r)); });
    };
    for (int k = 0; k < kPerThread; ++k) {
      int i = next.fetch_add(1);
      if (i >= kCalls) break;
      free_slots.pop_back();
      start(k, uint64_t(i));
    }
    batch.wait();
  };
  const uint64_t t0 = mono_ns();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(drive);
  for (auto& t : threads) t.join();
  std::cout << kCalls << " calls in " << double(mono_ns() - t0) / 1e9 << " s" << std::endl;

  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_GT(chained.load(), 0);
  int never = 0, twice = 0;
  for (auto& r : runs) {
    uint32_t n = r.load();
    if (n == 0) ++never;
    else if (n > 1) ++twice;
  }
  EXPECT_EQ(never, 0) << "requests never executed";
  EXPECT_EQ(twice, 0) << "requests executed more than once";
  RpcStatsSnapshot st = (*client)->stats();
  EXPECT_EQ(st.endpoints, 1u) << "callers opened endpoints of their own instead of using the dedicated core";
  EXPECT_GT(st.retransmits, 0u) << "the loss path did not run";
  EXPECT_EQ(st.calls_ok, uint64_t{kCalls});
  client->reset();
  server->reset();
}

}  // namespace
}  // namespace lanefs::rpc

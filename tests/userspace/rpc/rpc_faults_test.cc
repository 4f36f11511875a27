// The RPC acceptance test under injected faults: thousands of pipelined calls
// with drop, duplicate, reorder and delay (or corruption) on both ends, over
// loopback and UDP. Every call must complete with an intact payload and every
// request must execute exactly once, which is the reply cache's promise;
// counters must show that the loss and duplicate paths actually ran.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "rpc/rpc.h"
#include "support/test_support.h"
#include "transport/loopback/loopback_transport.h"
#include "transport/transport.h"

namespace lanefs::rpc {
namespace {

using transport::FaultConfig;
using transport::TransportKind;

constexpr uint32_t kLocalhost = 0x7f000001;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint16_t kOpTransform = 7;
constexpr int kMaxOutstanding = 64;
constexpr int kClients = 4;
// A whole run must finish well inside the ctest timeout even on a loaded
// machine; a hang is reported with the counters instead of a ctest kill.
constexpr uint64_t kRunDeadline = 110 * kSec;
constexpr uint64_t kCallTimeout = 100 * kSec;

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

// Mostly small requests; 3% of them 20..200 KB (15..140 packets).
size_t payload_size(uint64_t token) {
  const uint64_t h = mix(token + 1);
  if (h % 100 < 3) return 20'000 + (h >> 8) % 180'001;
  return (h >> 8) % 1200;
}

Buffer payload(uint64_t token) {
  Buffer v(payload_size(token));
  uint64_t x = mix(token ^ 0x5eed);
  for (size_t i = 0; i < v.size(); ++i) {
    if (i % 8 == 0) x = mix(x + i);
    v[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
  }
  return v;
}

// Request: u64 token, then payload(token). Response: u64 ~token, then the
// payload reversed and xored with the token's low byte.
Buffer make_request(uint64_t token) {
  Buffer b;
  Encoder e(&b);
  e.u64(token);
  const Buffer p = payload(token);
  e.raw(p.data(), p.size());
  return b;
}

Buffer expected_response(uint64_t token) {
  const Buffer p = payload(token);
  Buffer b;
  Encoder e(&b);
  e.u64(~token);
  const uint8_t k = static_cast<uint8_t>(token);
  for (size_t i = 0; i < p.size(); ++i) e.u8(p[p.size() - 1 - i] ^ k);
  return b;
}

class RpcFaults : public testing::TestWithParam<TransportKind> {
 protected:
  transport::TransportConfig tcfg(const FaultConfig& faults) {
    transport::TransportConfig c;
    c.kind = GetParam();
    c.bind = NetAddr{kLocalhost, 0};
    c.hub = hub_;
    c.faults = faults;
    // Ethernet-sized datagrams on both lanes (UDP over lo would otherwise use
    // the interface's 64 KiB MTU), so 20..200 KB calls are 15..140 packets.
    c.mtu = 1472;
    return c;
  }

  // Counts executions per token; answers per the request format above.
  void handle(std::span<const uint8_t> req, Buffer* resp) {
    Decoder d(req);
    const uint64_t token = d.u64();
    if (!d.ok() || token >= executions_.size()) {
      bogus_.fetch_add(1);
      return;
    }
    executions_[token].fetch_add(1);
    auto p = d.rest();
    Encoder e(resp);
    e.u64(~token);
    resp->resize(8 + p.size());
    const uint8_t k = static_cast<uint8_t>(token);
    for (size_t i = 0; i < p.size(); ++i) (*resp)[8 + i] = p[p.size() - 1 - i] ^ k;
  }

  struct Outcome {
    int completed = 0, ok = 0, wrong = 0, failed = 0;
    std::vector<std::string> errors;  // the first few
    bool timed_out = false;
    double seconds = 0;
    RpcStatsSnapshot client{}, server{};
  };

  // Runs `calls` pipelined calls (at most kMaxOutstanding in flight) with the
  // given faults on both ends. server_faults_at_runtime: the server's faults
  // are switched on with set_faults() instead of its options.
  Outcome run(int calls, const FaultConfig& client_faults, const FaultConfig& server_faults,
              bool server_faults_at_runtime) {
    executions_ = std::vector<std::atomic<uint32_t>>(calls);
    Outcome out;
    // Declared before clients and server: their destructors may still run
    // callbacks / handlers that touch it.
    std::mutex mu;

    ServerOptions so;
    so.transport = tcfg(server_faults_at_runtime ? FaultConfig{} : server_faults);
    so.workers = 2;
    auto server =
        RpcServer::create(std::move(so), [this](const RequestInfo&, std::span<const uint8_t> req,
                                                Buffer* resp) { handle(req, resp); });
    EXPECT_OK(server);
    if (!server.ok()) return out;
    if (server_faults_at_runtime) (*server)->set_faults(server_faults);
    // Several clients (sessions, each with its own congestion window) share
    // the load: under 10% loss each window spends much of its time at 1.
    std::vector<std::unique_ptr<RpcClient>> clients;
    for (int c = 0; c < kClients; ++c) {
      ClientOptions co;
      co.transport = tcfg(client_faults);
      co.transport.faults.seed += static_cast<uint64_t>(c);
      co.name = "faults-client-" + std::to_string(c);
      auto client = RpcClient::create(std::move(co));
      EXPECT_OK(client);
      if (!client.ok()) return out;
      clients.push_back(std::move(client).value());
    }
    const NetAddr to = (*server)->local_addr();

    const uint64_t t0 = mono_ns();
    const uint64_t deadline = t0 + kRunDeadline;
    // One thread per client drives its own calls (run to completion), up to
    // its share of kMaxOutstanding in flight.
    std::atomic<int> next{0};
    auto drive = [&](int ci) {
      std::map<uint64_t, Buffer> reqs;  // each request lives until its call completes (outlives the batch)
      RpcClient::Batch batch(*clients[ci]);
      const size_t share = kMaxOutstanding / kClients + 1;
      for (;;) {
        if (mono_ns() > deadline) {
          std::lock_guard lk(mu);
          out.timed_out = true;
          break;
        }
        while (batch.outstanding() < share) {
          int i = next.fetch_add(1);
          if (i >= calls) break;
          const uint64_t token = static_cast<uint64_t>(i);
          Buffer& rq = reqs[token] = make_request(token);
          CallArgs a;
          a.server = to;
          a.opcode = kOpTransform;
          a.req = rq;
          a.timeout_ns = kCallTimeout;
          batch.start(a, [&, token](Result<Response> r) {
            std::string err;
            bool good = false;
            if (!r.ok()) {
              err = "token " + std::to_string(token) + ": " + r.error().to_string();
            } else if (r->to_buffer() != expected_response(token)) {
              err = "token " + std::to_string(token) + ": wrong response (" + std::to_string(r->size()) + " bytes)";
            } else {
              good = true;
            }
            reqs.erase(token);
            std::lock_guard lk(mu);
            ++out.completed;
            if (good) {
              ++out.ok;
            } else {
              ++(r.ok() ? out.wrong : out.failed);
              if (out.errors.size() < 10) out.errors.push_back(err);
            }
          });
        }
        if (batch.outstanding() == 0) break;
        batch.wait_any();
      }
    };
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) threads.emplace_back(drive, c);
    for (auto& t : threads) t.join();
    out.seconds = static_cast<double>(mono_ns() - t0) / 1e9;
    for (auto& c : clients) add(&out.client, c->stats());
    out.server = (*server)->stats();
    clients.clear();  // fails what is left with kShutdown, then stops
    server->reset();
    return out;
  }

  static void add(RpcStatsSnapshot* sum, const RpcStatsSnapshot& s) {
    sum->calls_ok += s.calls_ok;
    sum->retransmits += s.retransmits;
    sum->rto_events += s.rto_events;
    sum->session_resets += s.session_resets;
    sum->duplicate_fragments += s.duplicate_fragments;
    sum->stale_dropped += s.stale_dropped;
    sum->rx_invalid_total += s.rx_invalid_total;
    for (int i = 0; i < static_cast<int>(proto::DecodeError::kCount); ++i)
      sum->rx_invalid[i] += s.rx_invalid[i];
  }

  void expect_exactly_once(int calls) {
    int never = 0, twice = 0;
    std::string first;
    for (int t = 0; t < calls; ++t) {
      const uint32_t n = executions_[t].load();
      if (n == 1) continue;
      (n == 0 ? never : twice) += 1;
      if (first.empty()) first = "token " + std::to_string(t) + " ran " + std::to_string(n) + "x";
    }
    EXPECT_EQ(never, 0) << first;
    EXPECT_EQ(twice, 0) << first;
    EXPECT_EQ(bogus_.load(), 0);
  }

  static void report(const char* what, const Outcome& o) {
    const auto& c = o.client;
    const auto& s = o.server;
    std::cout << what << ": " << o.ok << "/" << o.completed << " ok in " << o.seconds
              << " s; client retransmits=" << c.retransmits << " rto_events=" << c.rto_events
              << " dup_frags=" << c.duplicate_fragments << " stale=" << c.stale_dropped
              << " rx_invalid=" << c.rx_invalid_total << "; server executed=" << s.requests_executed
              << " from_cache=" << s.replies_from_cache << " dup_frags=" << s.duplicate_fragments
              << " stale=" << s.stale_dropped << " rx_invalid=" << s.rx_invalid_total << std::endl;
  }

  static void expect_all_ok(const Outcome& o, int calls) {
    EXPECT_FALSE(o.timed_out) << o.completed << " of " << calls << " calls completed";
    EXPECT_EQ(o.completed, calls);
    EXPECT_EQ(o.ok, calls);
    EXPECT_EQ(o.wrong, 0);
    EXPECT_EQ(o.failed, 0);
    for (const auto& e : o.errors) ADD_FAILURE() << e;
  }

  std::shared_ptr<transport::LoopbackHub> hub_ = std::make_shared<transport::LoopbackHub>();
  std::vector<std::atomic<uint32_t>> executions_;
  std::atomic<int> bogus_{0};
};

TEST_P(RpcFaults, DropDuplicateReorderDelayExactlyOnce) {
  constexpr int kCalls = 10'000;
  FaultConfig f;
  f.drop_pct = 10;
  f.duplicate_pct = 5;
  f.reorder_pct = 5;
  f.delay_pct = 5;
  f.delay_us = 500;
  FaultConfig cf = f, sf = f;
  cf.seed = 11;
  sf.seed = 22;
  const Outcome o = run(kCalls, cf, sf, /*server_faults_at_runtime=*/false);
  report("drop/dup/reorder/delay", o);
  expect_all_ok(o, kCalls);
  expect_exactly_once(kCalls);
  EXPECT_EQ(o.server.requests_executed, uint64_t{kCalls});
  // Proof that the fault paths ran: lost packets were resent, duplicates
  // reached the server and were answered without re-executing.
  EXPECT_GT(o.client.retransmits, 0u);
  EXPECT_GT(o.client.rto_events, 0u);
  EXPECT_GT(o.server.replies_from_cache + o.server.duplicate_fragments, 0u);
  EXPECT_GT(o.server.replies_from_cache, 0u);
  EXPECT_GT(o.server.duplicate_fragments, 0u);
  EXPECT_EQ(o.client.calls_ok, uint64_t{kCalls});
  EXPECT_EQ(o.client.session_resets, 0u);
}

TEST_P(RpcFaults, CorruptionIsDetectedAndRecovered) {
  constexpr int kCalls = 3'000;
  FaultConfig f;
  f.corrupt_pct = 5;
  FaultConfig cf = f, sf = f;
  cf.seed = 33;
  sf.seed = 44;
  const Outcome o = run(kCalls, cf, sf, /*server_faults_at_runtime=*/true);
  report("corrupt", o);
  expect_all_ok(o, kCalls);
  expect_exactly_once(kCalls);
  EXPECT_EQ(o.server.requests_executed, uint64_t{kCalls});
  const int bad_crc = static_cast<int>(proto::DecodeError::kBadCrc);
  // The client's corruption shows at the server and the server's (switched
  // on at run time) at the client; the CRC caught them and loss recovery
  // resent the packets.
  EXPECT_GT(o.server.rx_invalid[bad_crc], 0u);
  EXPECT_GT(o.client.rx_invalid[bad_crc], 0u);
  EXPECT_GT(o.client.retransmits, 0u);
}

std::string kind_name(const testing::TestParamInfo<TransportKind>& info) {
  return std::string(transport::transport_kind_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Lanes, RpcFaults,
                         testing::Values(TransportKind::kLoopback, TransportKind::kUdp), kind_name);

}  // namespace
}  // namespace lanefs::rpc

// Connect floods against an RpcServer on kernel UDP (127.0.0.0/8 only): a
// flood from one address cannot hold more than max_sessions_per_addr
// sessions, so another address still connects at once; a flood from many
// addresses that fills max_sessions gives way to a new client once its
// sessions have been idle for reclaim_idle_ns; a client whose idle session
// was reclaimed reconnects at its next call without an error (once some
// session is idle enough to make room for it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "proto/wire.h"
#include "rpc/rpc.h"
#include "support/test_support.h"

namespace lanefs::rpc {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint16_t kEcho = 1;

uint32_t loopback(uint8_t last) { return 0x7f000000u | last; }

template <class F>
bool eventually(F pred, uint64_t timeout_ns) {
  const uint64_t deadline = mono_ns() + timeout_ns;
  while (!pred()) {
    if (mono_ns() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Sends kConnects from one loopback address, never answering anything.
class Flooder {
 public:
  explicit Flooder(uint32_t ip) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(ip);
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Flooder() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }
  // `n` connects with fresh nonces; the answers are read and dropped so
  // the socket buffer never fills.
  void connect_flood(NetAddr server, int n) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(server.ip);
    a.sin_port = htons(server.port);
    for (int i = 0; i < n; ++i) {
      Buffer body;
      Encoder e(&body);
      e.u32(4);
      e.str("flood");
      proto::PacketHeader h;
      h.type = proto::PktType::kConnect;
      h.request_id = ++nonce_;
      h.pkt_count = 1;
      h.msg_len = static_cast<uint32_t>(body.size());
      h.payload_len = static_cast<uint32_t>(body.size());
      Buffer pkt(proto::kHeaderSize + body.size());
      std::copy(body.begin(), body.end(), pkt.begin() + proto::kHeaderSize);
      proto::encode_header(h, body, pkt.data());
      (void)sendto(fd_, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      uint8_t junk[2048];
      while (::recv(fd_, junk, sizeof junk, MSG_DONTWAIT) > 0) {
      }
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(200));  // the server's socket buffer
    }
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  uint64_t nonce_ = 0x5eed0000;
};

class RpcFlood : public testing::Test {
 protected:
  void start(uint32_t max_sessions, uint32_t per_addr, uint64_t reclaim_idle_ns) {
    ServerOptions o;
    o.transport.kind = transport::TransportKind::kUdp;
    o.transport.bind = NetAddr{loopback(1), 0};
    o.name = "flood-test-server";
    o.loops = 2;
    o.max_sessions = max_sessions;
    o.max_sessions_per_addr = per_addr;
    o.reclaim_idle_ns = reclaim_idle_ns;
    auto s = RpcServer::create(std::move(o), [](const RequestInfo&, std::span<const uint8_t> req, Buffer* resp) {
      resp->assign(req.begin(), req.end());
    });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(s).value();
    addr_ = server_->local_addr();
  }
  std::unique_ptr<RpcClient> client(uint8_t last) {
    ClientOptions o;
    o.transport.kind = transport::TransportKind::kUdp;
    o.transport.bind = NetAddr{loopback(last), 0};
    o.connect_timeout_ns = 2 * kSec;
    auto c = RpcClient::create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.error().to_string();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  // One echo from a fresh client at 127.0.0.<last>; its time in seconds, or -1.
  double echo_from(uint8_t last) {
    auto c = client(last);
    if (!c) return -1;
    const uint64_t t0 = mono_ns();
    auto r = c->call(addr_, kEcho, Buffer{1, 2, 3}, 5 * kSec);
    if (!r.ok()) {
      ADD_FAILURE() << "echo from 127.0.0." << int(last) << ": " << r.error().to_string();
      return -1;
    }
    return double(mono_ns() - t0) / 1e9;
  }

  std::unique_ptr<RpcServer> server_;
  NetAddr addr_;
};

TEST_F(RpcFlood, OneAddressCannotTakeEverySession) {
  start(/*max_sessions=*/256, /*per_addr=*/64, /*reclaim_idle_ns=*/60 * kSec);
  Flooder f(loopback(2));
  ASSERT_TRUE(f.ok());
  f.connect_flood(addr_, 4200);
  ASSERT_TRUE(eventually([&] { return server_->stats().connects_refused > 0; }, 10 * kSec));
  auto st = server_->stats();
  EXPECT_LE(st.sessions, 64u) << "one address holds more than its share";
  EXPECT_GE(st.connects_refused, 4000u);
  const double t = echo_from(3);
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1.0) << "another address waited while the flood held its sessions";
}

TEST_F(RpcFlood, ManyAddressesGiveWayToANewClientOnceIdle) {
  start(/*max_sessions=*/128, /*per_addr=*/32, /*reclaim_idle_ns=*/kSec / 2);
  for (uint8_t a = 10; a < 14; ++a) {  // 4 x 32: every session taken
    Flooder f(loopback(a));
    ASSERT_TRUE(f.ok());
    f.connect_flood(addr_, 200);
  }
  ASSERT_TRUE(eventually([&] { return server_->stats().sessions >= 128; }, 10 * kSec));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the flood's sessions are idle now
  const double t = echo_from(3);
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1.0);
  auto st = server_->stats();
  EXPECT_GE(st.sessions_reclaimed, 1u);
  EXPECT_LE(st.sessions, 128u);
}

TEST_F(RpcFlood, AReclaimedClientReconnectsAtItsNextCall) {
  start(/*max_sessions=*/2, /*per_addr=*/2, /*reclaim_idle_ns=*/kSec / 5);
  auto a = client(4);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->call(addr_, kEcho, Buffer{9}, 5 * kSec).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a's session is idle
  Flooder f(loopback(5));
  ASSERT_TRUE(f.ok());
  f.connect_flood(addr_, 2);  // two sessions from elsewhere: a's is reclaimed for the second
  ASSERT_TRUE(eventually([&] { return server_->stats().sessions_reclaimed >= 1; }, 5 * kSec));
  // Its reconnect needs room too: by now the flood's sessions are the idle ones.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = a->call(addr_, kEcho, Buffer{7, 7}, 10 * kSec);
  ASSERT_TRUE(r.ok()) << "a reclaimed session must not fail its client's next call: " << r.error().to_string();
  EXPECT_EQ(*r, (Buffer{7, 7}));
}

}  // namespace
}  // namespace lanefs::rpc

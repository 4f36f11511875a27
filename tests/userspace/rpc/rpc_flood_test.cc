// Floods against an RpcServer on kernel UDP (127.0.0.0/8 only). Connects: a
// flood from one address cannot hold more than max_sessions_per_addr
// sessions, so another address still connects at once; a flood from many
// addresses that fills max_sessions gives way to a new client once its
// sessions have been idle for reclaim_idle_ns; a client whose idle session
// was reclaimed reconnects at its next call without an error (once some
// session is idle enough to make room for it). Fragments: first fragments
// announcing 16 MiB messages hold no more reassembly memory than the
// budget while a client still gets answers, and fragments that do not
// cover their message exactly never make a request.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
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
  // `n` connects with fresh nonces, each completed like a real client at
  // this address would (the cookie challenge answered); other answers are
  // read and dropped so the socket buffer never fills. `answer` false: a
  // forged source, which never sees its challenges.
  void connect_flood(NetAddr server, int n, bool answer = true) {
    server_ = server;
    for (int i = 0; i < n; ++i) {
      const Buffer body = connect_body("flood");
      send(connect_header(body, ++nonce_), body);
      drain(answer);
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(200));  // the server's socket buffer
    }
    const uint64_t until = mono_ns() + kSec / 5;
    while (mono_ns() < until) drain(answer);
  }

  // A session of its own (kConnect, the challenge answered, kConnectOk): its id, or 0.
  uint32_t open_session(NetAddr server) {
    server_ = server;
    const uint64_t nonce = ++nonce_;
    Buffer body = connect_body("raw");
    for (int tries = 0; tries < 20; ++tries) {
      send(connect_header(body, nonce), body);
      proto::PacketHeader rh;
      auto cookie = await(proto::PktType::kConnectChallenge, nonce, 200, &rh);
      if (!cookie) continue;
      body = connect_body("raw", *cookie);
      send(connect_header(body, nonce), body);
      if (await(proto::PktType::kConnectOk, nonce, 200, &rh)) return rh.session_id;
    }
    return 0;
  }
  // One request fragment on session `sid`.
  void fragment(uint32_t sid, uint64_t req, uint16_t num, uint16_t count, uint32_t msg_len, uint32_t off,
                const Buffer& data) {
    proto::PacketHeader h;
    h.type = proto::PktType::kRequest;
    h.session_id = sid;
    h.request_id = req;
    h.opcode = kEcho;
    h.pkt_num = num;
    h.pkt_count = count;
    h.msg_len = msg_len;
    h.frag_offset = off;
    send(h, data);
  }
  // The first response datagram to request `req`, if one comes within `ms`.
  std::optional<Buffer> response(uint64_t req, int ms) {
    proto::PacketHeader rh;
    return await(proto::PktType::kResponse, req, ms, &rh);
  }

 private:
  // Answers every challenge that arrived (or only reads them).
  void drain(bool answer) {
    uint8_t buf[2048];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      proto::PacketHeader rh;
      std::span<const uint8_t> payload;
      if (!answer || proto::decode_packet({buf, size_t(n)}, &rh, &payload) != proto::DecodeError::kOk ||
          rh.type != proto::PktType::kConnectChallenge)
        continue;
      const Buffer body = connect_body("flood", Buffer(payload.begin(), payload.end()));
      send(connect_header(body, rh.request_id), body);
    }
  }
  static proto::PacketHeader connect_header(const Buffer& body, uint64_t nonce) {
    proto::PacketHeader h;
    h.type = proto::PktType::kConnect;
    h.request_id = nonce;
    h.pkt_count = 1;
    h.msg_len = static_cast<uint32_t>(body.size());
    return h;
  }
  static Buffer connect_body(const std::string& name, const Buffer& cookie = {}) {
    Buffer body;
    Encoder e(&body);
    e.u32(64);        // slots
    e.str(name);
    e.u32(1500);      // datagram limit
    e.u32(0);         // pushed packets
    e.u32(0);         // flags
    e.u64(0);         // client id
    e.str("");        // user: none (this server authenticates nobody)
    e.bytes(cookie);
    e.bytes({});      // proof
    return body;
  }
  // The payload of the first datagram of `type` for request `req` within `ms` (its header in *rh).
  std::optional<Buffer> await(proto::PktType type, uint64_t req, int ms, proto::PacketHeader* rh) {
    const uint64_t deadline = mono_ns() + uint64_t(ms) * 1'000'000;
    while (mono_ns() < deadline) {
      uint8_t buf[70000];
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::span<const uint8_t> payload;
      if (proto::decode_packet({buf, size_t(n)}, rh, &payload) == proto::DecodeError::kOk && rh->type == type &&
          rh->request_id == req)
        return Buffer(payload.begin(), payload.end());
    }
    return std::nullopt;
  }
  void send(proto::PacketHeader h, const Buffer& body) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(server_.ip);
    a.sin_port = htons(server_.port);
    h.payload_len = static_cast<uint32_t>(body.size());
    Buffer pkt(proto::kHeaderSize + body.size());
    std::copy(body.begin(), body.end(), pkt.begin() + proto::kHeaderSize);
    proto::encode_header(h, body, pkt.data());
    (void)sendto(fd_, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  int fd_ = -1;
  bool ok_ = false;
  uint64_t nonce_ = 0x5eed0000;
  NetAddr server_;
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
  // Every completed handshake past the cap was refused (how many complete
  // depends on the machine's load: each needs its challenge answered).
  EXPECT_LE(st.connects, 64u + st.sessions_reclaimed);
  const double t = echo_from(3);
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1.0) << "another address waited while the flood held its sessions";
}

TEST_F(RpcFlood, ForgedConnectsCostNoState) {
  // Connects whose source never answers (a forged address) get a cookie
  // challenge each and no session: nothing to refuse, nothing to reclaim.
  start(/*max_sessions=*/256, /*per_addr=*/64, /*reclaim_idle_ns=*/60 * kSec);
  Flooder f(loopback(2));
  ASSERT_TRUE(f.ok());
  f.connect_flood(addr_, 4200, /*answer=*/false);
  ASSERT_TRUE(eventually([&] { return server_->stats().connect_challenges >= 4000; }, 10 * kSec))
      << server_->stats().connect_challenges;
  auto st = server_->stats();
  EXPECT_EQ(st.sessions, 0u);
  EXPECT_EQ(st.connects_refused, 0u);
  const double t = echo_from(3);
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1.0);
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

TEST_F(RpcFlood, FirstFragmentsOfHugeMessagesStayWithinTheBudget) {
  start(/*max_sessions=*/256, /*per_addr=*/64, /*reclaim_idle_ns=*/60 * kSec);
  // The budget the test sets: 32 MiB per session, 64 MiB in all (2 loops).
  // (start() uses the defaults; a server with smaller ones:)
  server_.reset();
  {
    ServerOptions o;
    o.transport.kind = transport::TransportKind::kUdp;
    o.transport.bind = NetAddr{loopback(1), 0};
    o.loops = 2;
    o.max_session_reassembly_bytes = 32ull << 20;
    o.max_reassembly_bytes = 64ull << 20;
    auto sv = RpcServer::create(std::move(o), [](const RequestInfo&, std::span<const uint8_t> req, Buffer* resp) {
      resp->assign(req.begin(), req.end());
    });
    ASSERT_TRUE(sv.ok()) << sv.error().to_string();
    server_ = std::move(sv).value();
    addr_ = server_->local_addr();
  }
  const uint32_t huge = 16u << 20, frag = 1000;
  const uint16_t count = static_cast<uint16_t>((huge + frag - 1) / frag);
  std::vector<std::unique_ptr<Flooder>> peers;
  for (uint8_t a = 20; a < 28; ++a) {  // 8 sessions x 64 slots x 16 MiB announced: 8 GiB
    auto f = std::make_unique<Flooder>(loopback(a));
    ASSERT_TRUE(f->ok());
    const uint32_t sid = f->open_session(addr_);
    ASSERT_NE(sid, 0u);
    for (uint64_t r = 1; r <= 64; ++r) f->fragment(sid, r, 0, count, huge, 0, Buffer(frag, 0xee));
    peers.push_back(std::move(f));
  }
  ASSERT_TRUE(eventually([&] { return server_->stats().reassembly_refused >= 8 * 64 - 8; }, 10 * kSec))
      << server_->stats().reassembly_refused;
  auto st = server_->stats();
  EXPECT_LE(st.reassembly_bytes, 2 * (32ull << 20)) << "reserved more than the budget of the two loops";
  const double t = echo_from(3);  // a small call needs no reassembly memory
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1.0);
}

TEST_F(RpcFlood, FragmentsThatDoNotCoverTheMessageMakeNoRequest) {
  start(/*max_sessions=*/16, /*per_addr=*/16, /*reclaim_idle_ns=*/60 * kSec);
  Flooder f(loopback(30));
  ASSERT_TRUE(f.ok());
  const uint32_t sid = f.open_session(addr_);
  ASSERT_NE(sid, 0u);
  const auto before = server_->stats().requests_executed;
  // One datagram announcing more than it carries: the rest would be whatever the buffer held.
  f.fragment(sid, 1, 0, 1, 4096, 0, Buffer(10, 1));
  // Two fragments, both at offset 0, their lengths adding up to the message.
  f.fragment(sid, 2, 0, 2, 2000, 0, Buffer(1000, 2));
  f.fragment(sid, 2, 1, 2, 2000, 0, Buffer(1000, 2));
  // A last fragment that ends short of the message.
  f.fragment(sid, 3, 0, 2, 2000, 0, Buffer(1000, 3));
  f.fragment(sid, 3, 1, 2, 2000, 900, Buffer(1000, 3));
  EXPECT_FALSE(f.response(1, 300).has_value());
  EXPECT_FALSE(f.response(2, 100).has_value());
  EXPECT_FALSE(f.response(3, 100).has_value());
  EXPECT_EQ(server_->stats().requests_executed, before) << "a request ran with bytes nobody sent";
  // A well-formed one on the same session is answered, byte for byte.
  Buffer a(600, 4), b(300, 5);  // the echo fits one response datagram
  f.fragment(sid, 4, 1, 2, 900, 600, b);
  f.fragment(sid, 4, 0, 2, 900, 0, a);
  auto r = f.response(4, 2000);
  ASSERT_TRUE(r.has_value());
  Buffer want = a;
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(*r, want);
}

}  // namespace
}  // namespace lanefs::rpc

namespace lanefs::rpc {
namespace {

// RpcServer::reset_sessions() called by the request it serves (an fs create
// that ends a backend's joinable state, a user deleted): with replies lost
// on the way, the client's retransmissions of that request must still be
// answered from the reply cache, never run it a second time as a resend on
// a new session; the client's next request reconnects.
TEST(RpcReset, TheRequestThatResetsRunsOnce) {
  std::atomic<int> runs{0};
  std::atomic<RpcServer*> self{nullptr};
  ServerOptions o;
  o.transport.kind = transport::TransportKind::kUdp;
  o.transport.bind = NetAddr{loopback(1), 0};
  o.loops = 1;
  o.transport.faults.drop_pct = 40;  // replies lost: the client retransmits
  o.transport.faults.seed = 11;
  auto s = RpcServer::create(std::move(o), [&](const RequestInfo&, std::span<const uint8_t> req, Buffer* resp) {
    runs.fetch_add(1);
    if (RpcServer* srv = self.load()) srv->reset_sessions();
    resp->assign(req.begin(), req.end());
  });
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  self.store(s->get());
  ClientOptions co;
  co.transport.kind = transport::TransportKind::kUdp;
  co.transport.bind = NetAddr{loopback(6), 0};
  auto c = RpcClient::create(std::move(co));
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    auto r = (*c)->call((*s)->local_addr(), kEcho, Buffer{uint8_t(i)}, 20 * kSec);
    ASSERT_TRUE(r.ok()) << "call " << i << ": " << r.error().to_string();
    EXPECT_EQ(*r, Buffer{uint8_t(i)});
  }
  EXPECT_EQ(runs.load(), kCalls) << "a request ran again after the reset it caused";
  EXPECT_GE((*c)->stats().session_resets, 1u);
}

}  // namespace
}  // namespace lanefs::rpc

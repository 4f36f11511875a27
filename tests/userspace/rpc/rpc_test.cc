// RpcClient/RpcServer end to end over every lane that runs in a test process
// (in-process loopback and kernel UDP on 127.0.0.1): round trips of every
// size, concurrency, what the handler sees, failure modes (unreachable,
// timeout, server restart) and hostile input (other protocol versions,
// garbage datagrams) that must be rejected, counted and survived.
#include "rpc/rpc.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "proto/wire.h"
#include "support/test_support.h"
#include "transport/loopback/loopback_transport.h"
#include "transport/transport.h"

namespace lanefs::rpc {
namespace {

using transport::TransportKind;

constexpr uint32_t kLocalhost = 0x7f000001;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kCallTimeout = 30 * kSec;

enum Op : uint16_t { kEcho = 1, kTransform = 2, kWhoAmI = 3, kSlow = 4 };

Buffer pattern(size_t n, uint32_t seed) {
  Buffer v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

// The kTransform answer: reversed and xored, so a response that merely
// echoes (or reassembles fragments out of place) does not pass.
Buffer transform(std::span<const uint8_t> in) {
  Buffer out(in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = in[in.size() - 1 - i] ^ 0xA5;
  return out;
}

// Holds kSlow handlers until released (or a generous cap passes).
class Gate {
 public:
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(30), [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

struct Seen {
  uint16_t opcode = 0;
  std::string client_name;
  NetAddr peer;
  uint64_t request_id = 0;
  uint32_t session_id = 0;
};

// Polls `pred` until it holds or `timeout_ns` passes.
template <class F>
bool eventually(F pred, uint64_t timeout_ns = 10 * kSec) {
  const uint64_t deadline = mono_ns() + timeout_ns;
  while (!pred()) {
    if (mono_ns() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A peer that speaks raw datagrams, not the protocol: a plain UDP socket for
// the UDP lane, a bare transport on the hub for loopback.
class RawPeer {
 public:
  RawPeer(TransportKind kind, std::shared_ptr<transport::LoopbackHub> hub) {
    if (kind == TransportKind::kUdp) {
      fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(kLocalhost);
      ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    } else {
      transport::TransportConfig c;
      c.kind = kind;
      c.bind = NetAddr{kLocalhost, 0};
      c.hub = std::move(hub);
      auto t = transport::make_transport(c);
      ok_ = t.ok();
      if (ok_) t_ = std::move(t).value();
    }
  }
  ~RawPeer() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }

  bool send(NetAddr dst, std::span<const uint8_t> bytes) {
    if (t_) {
      transport::TxDatagram d{dst, nullptr, 0, bytes.data(), static_cast<uint32_t>(bytes.size())};
      auto r = t_->tx_burst({&d, 1});
      return r.ok() && *r == 1;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(dst.ip);
    a.sin_port = htons(dst.port);
    return sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
           static_cast<ssize_t>(bytes.size());
  }

  std::optional<Buffer> recv(int timeout_ms) {
    const uint64_t deadline = mono_ns() + uint64_t(timeout_ms) * 1'000'000;
    for (;;) {
      if (t_) {
        transport::RxDatagram d;
        auto r = t_->rx_burst({&d, 1});
        if (r.ok() && *r == 1) return Buffer(d.data, d.data + d.len);
      } else {
        uint8_t buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n >= 0) return Buffer(buf, buf + n);
      }
      const uint64_t now = mono_ns();
      if (now >= deadline) return std::nullopt;
      pollfd p{t_ ? t_->notify_fd() : fd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>((deadline - now) / 1'000'000) + 1);
    }
  }

 private:
  bool ok_ = false;
  int fd_ = -1;
  std::unique_ptr<transport::Transport> t_;
};

Buffer packet(proto::PacketHeader h, const Buffer& payload) {
  h.payload_len = static_cast<uint32_t>(payload.size());
  Buffer pkt(proto::kHeaderSize + payload.size());
  std::copy(payload.begin(), payload.end(), pkt.begin() + proto::kHeaderSize);
  proto::encode_header(h, payload, pkt.data());
  return pkt;
}

Buffer connect_body(uint32_t slots, const std::string& name) {
  Buffer b;
  Encoder e(&b);
  e.u32(slots);
  e.str(name);
  return b;
}

class RpcTest : public testing::TestWithParam<TransportKind> {
 protected:
  void SetUp() override { start_server(0); }

  void TearDown() override {
    gate_.open();  // never leave a worker blocked while the server stops
  }

  transport::TransportConfig tcfg(uint16_t port) {
    transport::TransportConfig c;
    c.kind = GetParam();
    c.bind = NetAddr{kLocalhost, port};
    c.hub = hub_;
    return c;
  }

  void start_server(uint16_t port) {
    ServerOptions o;
    o.transport = tcfg(port);
    o.name = "rpc-test-server";
    auto s = RpcServer::create(
        std::move(o), [this](const RequestInfo& info, std::span<const uint8_t> req, Buffer* resp) {
          handle(info, req, resp);
        });
    ASSERT_OK(s);
    server_ = std::move(s).value();
    server_addr_ = server_->local_addr();
  }

  std::unique_ptr<RpcClient> make_client(ClientOptions o = {}) {
    o.transport = tcfg(0);
    auto c = RpcClient::create(std::move(o));
    EXPECT_OK(c);
    return c.ok() ? std::move(c).value() : nullptr;
  }

  void handle(const RequestInfo& info, std::span<const uint8_t> req, Buffer* resp) {
    switch (info.opcode) {
      case kEcho:
        resp->assign(req.begin(), req.end());
        return;
      case kTransform:
        *resp = transform(req);
        return;
      case kWhoAmI: {
        std::lock_guard lk(seen_mu_);
        seen_.push_back({info.opcode, info.client_name ? *info.client_name : std::string("<null>"),
                         info.peer, info.request_id, info.session_id});
        Encoder e(resp);
        e.u16(info.opcode);
        e.str(info.client_name ? *info.client_name : "");
        return;
      }
      case kSlow:
        slow_started_.fetch_add(1);
        gate_.wait();
        slow_finished_.fetch_add(1);
        resp->assign(req.begin(), req.end());
        return;
      default:
        resp->clear();
    }
  }

  std::shared_ptr<transport::LoopbackHub> hub_ = std::make_shared<transport::LoopbackHub>();
  // Handler state: declared before the server so it outlives the workers.
  Gate gate_;
  std::atomic<int> slow_started_{0}, slow_finished_{0};
  std::mutex seen_mu_;
  std::vector<Seen> seen_;
  std::unique_ptr<RpcServer> server_;
  NetAddr server_addr_;
};

TEST_P(RpcTest, EchoRoundTrip) {
  auto client = make_client();
  ASSERT_TRUE(client);
  const Buffer req = pattern(100, 1);
  auto r = client->call(server_addr_, kEcho, req, kCallTimeout);
  ASSERT_OK(r);
  EXPECT_EQ(*r, req);
  auto t = client->call(server_addr_, kTransform, req, kCallTimeout);
  ASSERT_OK(t);
  EXPECT_EQ(*t, transform(req));
  EXPECT_NE(*t, req);
  const auto cs = client->stats();
  EXPECT_EQ(cs.calls_ok, 2u);
  EXPECT_EQ(cs.calls_failed, 0u);
  EXPECT_EQ(cs.connects, 1u);
  EXPECT_EQ(cs.sessions, 1u);
  const auto info = client->session_info(server_addr_);
  EXPECT_TRUE(info.connected);
  EXPECT_GT(info.srtt_ns, 0u);
  EXPECT_GT(info.rto_ns, 0u);
  EXPECT_EQ(server_->stats().requests_executed, 2u);
}

TEST_P(RpcTest, EmptyRequestAndResponse) {
  auto client = make_client();
  ASSERT_TRUE(client);
  auto r = client->call(server_addr_, kEcho, {}, kCallTimeout);
  ASSERT_OK(r);
  EXPECT_TRUE(r->empty());
  // Empty request, non-empty response, and the other way round.
  auto who = client->call(server_addr_, kWhoAmI, {}, kCallTimeout);
  ASSERT_OK(who);
  EXPECT_FALSE(who->empty());
  auto none = client->call(server_addr_, 999, pattern(3000, 2), kCallTimeout);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(RpcTest, FourMebibytesEachWayIntact) {
  auto client = make_client();
  ASSERT_TRUE(client);
  const Buffer req = pattern(4u << 20, 7);
  auto r = client->call(server_addr_, kTransform, req, 120 * kSec);
  ASSERT_OK(r);
  ASSERT_EQ(r->size(), req.size());
  const Buffer want = transform(req);
  // Byte compare; report the first difference instead of 4 MiB of output.
  auto mismatch = std::mismatch(r->begin(), r->end(), want.begin());
  EXPECT_TRUE(mismatch.first == r->end())
      << "first difference at byte " << (mismatch.first - r->begin());
  // Sizes around the fragment boundaries of 1472-byte datagrams (1428
  // payload bytes) and of 65507-byte ones (UDP over lo, 64 KiB MTU).
  for (size_t n : {1427u, 1428u, 1429u, 2856u, 2857u, 65462u, 65463u, 65464u, 130927u}) {
    const Buffer q = pattern(n, static_cast<uint32_t>(n));
    auto e = client->call(server_addr_, kTransform, q, kCallTimeout);
    ASSERT_OK(e);
    EXPECT_EQ(*e, transform(q)) << "size " << n;
  }
}

TEST_P(RpcTest, ConcurrentCallsFromSeveralThreads) {
  auto client = make_client();
  ASSERT_TRUE(client);
  constexpr int kThreads = 4, kCalls = 500;
  std::atomic<int> ok{0}, wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        // Mostly single-packet, every 16th call spans three packets.
        const size_t n = i % 16 == 0 ? 4000 : static_cast<size_t>((i * 37) % 600);
        const Buffer req = pattern(n, static_cast<uint32_t>(t * 100000 + i));
        auto r = client->call(server_addr_, kTransform, req, kCallTimeout);
        if (!r.ok()) {
          failed.fetch_add(1);
        } else if (*r != transform(req)) {
          wrong.fetch_add(1);
        } else {
          ok.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kCalls);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(server_->stats().requests_executed, uint64_t{kThreads * kCalls});
  EXPECT_EQ(client->stats().calls_ok, uint64_t{kThreads * kCalls});
}

TEST_P(RpcTest, HandlerSeesOpcodeAndClientName) {
  ClientOptions o;
  o.name = "who-am-i-client";
  auto client = make_client(o);
  ASSERT_TRUE(client);
  auto r = client->call(server_addr_, kWhoAmI, pattern(10, 3), kCallTimeout);
  ASSERT_OK(r);
  Decoder d(*r);
  EXPECT_EQ(d.u16(), kWhoAmI);
  EXPECT_EQ(d.str(), "who-am-i-client");
  EXPECT_TRUE(d.done());
  auto r2 = client->call(server_addr_, kWhoAmI, {}, kCallTimeout);
  ASSERT_OK(r2);
  std::lock_guard lk(seen_mu_);
  ASSERT_EQ(seen_.size(), 2u);
  for (const auto& s : seen_) {
    EXPECT_EQ(s.opcode, kWhoAmI);
    EXPECT_EQ(s.client_name, "who-am-i-client");
    EXPECT_EQ(s.peer, client->local_addr());
    EXPECT_NE(s.session_id, 0u);
    EXPECT_EQ(s.session_id, seen_[0].session_id);
  }
  EXPECT_NE(seen_[0].request_id, seen_[1].request_id);
  const auto sessions = server_->sessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].first, "who-am-i-client");
  EXPECT_EQ(sessions[0].second, client->local_addr());
}

TEST_P(RpcTest, UnreachableServerFailsWithinConnectTimeout) {
  ClientOptions o;
  o.connect_timeout_ns = 500'000'000;
  auto client = make_client(o);
  ASSERT_TRUE(client);
  // Nothing listens there: a free UDP port, or a port nobody attached on the hub.
  const NetAddr nowhere{kLocalhost,
                        GetParam() == TransportKind::kUdp ? test::free_udp_port() : uint16_t{9}};
  const uint64_t t0 = mono_ns();
  auto r = client->call(nowhere, kEcho, pattern(10, 4), 60 * kSec);
  const uint64_t elapsed = mono_ns() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kUnreachable) << r.error().to_string();
  EXPECT_LT(elapsed, 10 * kSec);
  EXPECT_GE(client->stats().calls_failed, 1u);

  // A later call tries again for a whole connect timeout, however long after
  // the first failure it comes: it sends connects before giving up.
  const uint64_t later = mono_ns() + o.connect_timeout_ns + 100'000'000;
  while (mono_ns() < later) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t tx_before = client->stats().tx_packets;
  auto r2 = client->call(nowhere, kEcho, pattern(10, 5), 60 * kSec);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.code(), Errc::kUnreachable) << r2.error().to_string();
  EXPECT_GE(client->stats().tx_packets - tx_before, 2u) << "second call gave up without trying";

  // The same client still reaches a live server.
  auto ok = client->call(server_addr_, kEcho, pattern(10, 6), kCallTimeout);
  EXPECT_OK(ok);
}

TEST_P(RpcTest, SlowHandlerTimesOutAndRunsOnce) {
  auto client = make_client();
  ASSERT_TRUE(client);
  const uint64_t t0 = mono_ns();
  auto r = client->call(server_addr_, kSlow, pattern(10, 8), 300'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kTimeout) << r.error().to_string();
  EXPECT_LT(mono_ns() - t0, 20 * kSec);
  EXPECT_EQ(client->stats().calls_timed_out, 1u);
  EXPECT_EQ(slow_started_.load(), 1);
  gate_.open();
  ASSERT_TRUE(eventually([&] { return slow_finished_.load() == 1; }));
  // The client kept polling while it waited; the handler still ran once.
  ASSERT_TRUE(eventually([&] { return server_->stats().requests_executed == 1; }));
  // The client and session are still usable afterwards.
  auto e = client->call(server_addr_, kEcho, pattern(50, 9), kCallTimeout);
  ASSERT_OK(e);
  EXPECT_EQ(*e, pattern(50, 9));
  EXPECT_EQ(slow_started_.load(), 1);
}

TEST_P(RpcTest, ServerRestartResetsSessionAndNextCallSucceeds) {
  auto client = make_client();
  ASSERT_TRUE(client);
  auto r = client->call(server_addr_, kEcho, pattern(20, 10), kCallTimeout);
  ASSERT_OK(r);
  const uint16_t port = server_addr_.port;
  server_.reset();
  start_server(port);
  ASSERT_EQ(server_->local_addr().port, port);

  // The client still holds the old session: the new server does not know it,
  // answers kSessionReset, the client reconnects and resends.
  const Buffer req = pattern(5000, 11);
  auto r2 = client->call(server_addr_, kTransform, req, 20 * kSec);
  ASSERT_OK(r2);
  EXPECT_EQ(*r2, transform(req));
  const auto cs = client->stats();
  EXPECT_GT(cs.session_resets, 0u);
  EXPECT_EQ(cs.connects, 2u);
  EXPECT_EQ(cs.calls_failed, 0u);
  const auto ss = server_->stats();
  EXPECT_GT(ss.unknown_session, 0u);
  EXPECT_EQ(ss.requests_executed, 1u);
  EXPECT_EQ(ss.sessions, 1u);
}

TEST_P(RpcTest, OtherProtocolVersionIsRejected) {
  RawPeer peer(GetParam(), hub_);
  ASSERT_TRUE(peer.ok());
  proto::PacketHeader h;
  h.version = proto::kVersion + 1;
  h.type = proto::PktType::kConnect;
  h.request_id = 0x1234567890abcdefull;
  const Buffer body = connect_body(8, "from-the-future");
  h.msg_len = static_cast<uint32_t>(body.size());
  const Buffer pkt = packet(h, body);
  // Loopback and UDP on 127.0.0.1 do not lose datagrams, but resend anyway.
  std::optional<Buffer> reply;
  for (int i = 0; i < 10 && !reply; ++i) {
    ASSERT_TRUE(peer.send(server_addr_, pkt));
    reply = peer.recv(1000);
  }
  ASSERT_TRUE(reply.has_value()) << "no answer to a connect of a later version";
  proto::PacketHeader rh;
  std::span<const uint8_t> payload;
  ASSERT_EQ(proto::decode_packet(*reply, &rh, &payload), proto::DecodeError::kOk);
  EXPECT_EQ(rh.type, proto::PktType::kConnectReject);
  EXPECT_EQ(rh.version, proto::kVersion);
  EXPECT_EQ(rh.request_id, h.request_id);
  Decoder d(payload);
  EXPECT_EQ(d.i32(), static_cast<int32_t>(Errc::kVersion));
  EXPECT_EQ(d.u8(), proto::kVersion);
  EXPECT_TRUE(d.done());
  const auto ss = server_->stats();
  EXPECT_GE(ss.rx_invalid[static_cast<int>(proto::DecodeError::kBadVersion)], 1u);
  EXPECT_GE(ss.version_rejects, 1u);
  EXPECT_EQ(ss.sessions, 0u);

  // A non-connect packet of another version is counted and not answered.
  while (peer.recv(50).has_value()) {
  }
  proto::PacketHeader req;
  req.version = 0;
  req.type = proto::PktType::kRequest;
  req.session_id = 1;
  req.request_id = 40;
  req.pkt_count = 1;
  const uint64_t rejects = ss.version_rejects;
  ASSERT_TRUE(peer.send(server_addr_, packet(req, {})));
  ASSERT_TRUE(eventually([&] {
    return server_->stats().rx_invalid[static_cast<int>(proto::DecodeError::kBadVersion)] >=
           ss.rx_invalid[static_cast<int>(proto::DecodeError::kBadVersion)] + 1;
  }));
  EXPECT_EQ(server_->stats().version_rejects, rejects);
  EXPECT_FALSE(peer.recv(100).has_value());
}

TEST_P(RpcTest, GarbageIsCountedAndServerKeepsAnswering) {
  using proto::DecodeError;
  RawPeer peer(GetParam(), hub_);
  ASSERT_TRUE(peer.ok());
  auto client = make_client();
  ASSERT_TRUE(client);
  ASSERT_OK(client->call(server_addr_, kEcho, pattern(10, 12), kCallTimeout));
  const auto before = server_->stats();

  uint64_t want[static_cast<int>(DecodeError::kCount)] = {};
  auto send = [&](const Buffer& b, DecodeError why) {
    ASSERT_TRUE(peer.send(server_addr_, b));
    ++want[static_cast<int>(why)];
  };
  uint32_t x = 12345;
  auto rnd = [&] {
    x = x * 1103515245u + 12345u;
    return x >> 8;
  };
  // Random bytes (first byte never 'L', so never the magic).
  for (int i = 0; i < 30; ++i) {
    Buffer b(proto::kHeaderSize + rnd() % 300);
    for (auto& c : b) c = static_cast<uint8_t>(rnd());
    b[0] = static_cast<uint8_t>(b[0] == 'L' ? 'M' : b[0]);
    send(b, DecodeError::kBadMagic);
  }
  proto::PacketHeader h;
  h.type = proto::PktType::kRequest;
  h.session_id = 77;
  h.request_id = 100;
  h.pkt_count = 1;
  const Buffer payload = pattern(200, 13);
  h.msg_len = static_cast<uint32_t>(payload.size());
  const Buffer good = packet(h, payload);
  // Truncated headers (valid magic), and a payload shorter than announced.
  for (size_t n = 1; n < proto::kHeaderSize; n += 6)
    send(Buffer(good.begin(), good.begin() + n), DecodeError::kTruncated);
  send(Buffer(good.begin(), good.begin() + proto::kHeaderSize + 10), DecodeError::kTruncated);
  // Bad CRC: one flipped bit in the payload, in the header, in the CRC.
  for (size_t at : {size_t{50}, size_t{100}, good.size() - 1, size_t{12}, size_t{28}, size_t{41}}) {
    Buffer b = good;
    b[at] ^= 0x10;
    send(b, DecodeError::kBadCrc);
  }
  // Trailing bytes after the payload.
  {
    Buffer b = good;
    b.push_back(0);
    send(b, DecodeError::kBadLength);
  }
  // Valid CRC, invalid type.
  for (uint8_t t : {uint8_t{0}, uint8_t{13}, uint8_t{255}}) {
    proto::PacketHeader bt = h;
    bt.type = static_cast<proto::PktType>(t);
    send(packet(bt, payload), DecodeError::kBadType);
  }
  // Valid CRC, inconsistent fragment fields.
  {
    proto::PacketHeader b1 = h;
    b1.pkt_num = 1;  // >= pkt_count
    send(packet(b1, payload), DecodeError::kBadLength);
    proto::PacketHeader b2 = h;
    b2.frag_offset = 100;  // 100 + 200 > msg_len
    send(packet(b2, payload), DecodeError::kBadLength);
    proto::PacketHeader b3 = h;
    b3.pkt_count = 0;
    send(packet(b3, payload), DecodeError::kBadLength);
    proto::PacketHeader b4 = h;
    b4.msg_len = proto::kMaxMessage + 1;
    send(packet(b4, payload), DecodeError::kBadLength);
  }
  uint64_t total = 0;
  for (auto w : want) total += w;
  ASSERT_TRUE(eventually([&] {
    return server_->stats().rx_invalid_total >= before.rx_invalid_total + total;
  })) << "server counted "
      << server_->stats().rx_invalid_total - before.rx_invalid_total << " of " << total
      << " invalid datagrams";
  const auto after = server_->stats();
  for (int i = 1; i < static_cast<int>(DecodeError::kCount); ++i) {
    EXPECT_EQ(after.rx_invalid[i] - before.rx_invalid[i], want[i])
        << proto::decode_error_name(static_cast<DecodeError>(i));
  }
  EXPECT_EQ(after.requests_executed, before.requests_executed);

  // A well-formed packet for a session the server does not know is answered
  // with kSessionReset, not executed.
  ASSERT_TRUE(peer.send(server_addr_, good));
  auto reply = peer.recv(5000);
  ASSERT_TRUE(reply.has_value());
  proto::PacketHeader rh;
  std::span<const uint8_t> rp;
  ASSERT_EQ(proto::decode_packet(*reply, &rh, &rp), DecodeError::kOk);
  EXPECT_EQ(rh.type, proto::PktType::kSessionReset);
  EXPECT_EQ(rh.session_id, 77u);
  EXPECT_GE(server_->stats().unknown_session, before.unknown_session + 1);

  // The server keeps answering real calls, on the old session and a new one.
  for (int i = 0; i < 20; ++i) {
    const Buffer q = pattern(i * 300, 14 + i);
    auto r = client->call(server_addr_, kTransform, q, kCallTimeout);
    ASSERT_OK(r);
    EXPECT_EQ(*r, transform(q));
  }
  auto client2 = make_client();
  ASSERT_TRUE(client2);
  EXPECT_OK(client2->call(server_addr_, kEcho, pattern(10, 15), kCallTimeout));
  EXPECT_EQ(server_->stats().requests_executed, before.requests_executed + 21);
}

std::string kind_name(const testing::TestParamInfo<TransportKind>& info) {
  return std::string(transport::transport_kind_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Lanes, RpcTest,
                         testing::Values(TransportKind::kLoopback, TransportKind::kUdp), kind_name);

}  // namespace
}  // namespace lanefs::rpc

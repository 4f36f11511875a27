// Packet MACs on kernel UDP (127.0.0.0/8 only). A session set up with a
// token is keyed: a real client's calls work and nothing it sends fails a
// MAC. A raw-UDP client that holds the token sets up a keyed session by
// hand (the server's kConnectOk verifies under the derived key), and its
// sealed request is answered with a sealed response; the same datagram
// again, one with a byte changed, one with the CRC instead of a MAC, and
// one sealed under another key are each dropped unanswered and counted
// (rx_invalid replayed / bad_mac). A client with a token refuses a server
// that does not key its session, unless told to allow it.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "proto/auth.h"
#include "proto/packet_mac.h"
#include "proto/wire.h"
#include "rpc/rpc.h"
#include "support/raw_session.h"

namespace lanefs::rpc {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint16_t kEcho = 1;

proto::AuthKey alice_key() {
  proto::AuthKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0xa0 + i);
  return k;
}

std::unique_ptr<RpcServer> keyed_server(bool packet_macs = true, uint32_t mtu = 0, transport::FaultConfig faults = {}) {
  ServerOptions o;
  o.transport.kind = transport::TransportKind::kUdp;
  o.transport.bind = NetAddr{0x7f000001u, 0};
  o.transport.mtu = mtu;
  o.transport.faults = faults;
  o.loops = 2;
  o.packet_macs = packet_macs;
  o.authenticate = [](const ConnectAuth& a) -> Result<Admission> {
    if (a.user != "alice") return make_error(Errc::kPermission, "permission denied: unknown user");
    auto want = proto::connect_proof(alice_key(), a.user, a.nonce, a.cookie);
    if (!proto::equal_secret(a.proof, want)) return make_error(Errc::kPermission, "permission denied: wrong token");
    auto who = std::make_shared<const proto::UserRecord>(proto::UserRecord{"alice", proto::Role::kClient, {}, false, 1, 0});
    return Admission{who, alice_key()};
  };
  auto s = RpcServer::create(std::move(o), [](const RequestInfo&, std::span<const uint8_t> req, Buffer* resp) {
    resp->assign(req.begin(), req.end());
  });
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::unique_ptr<RpcClient> alice_client(bool allow_unkeyed = false, uint32_t mtu = 0, transport::FaultConfig faults = {}) {
  ClientOptions o;
  o.transport.kind = transport::TransportKind::kUdp;
  o.transport.bind = NetAddr{0x7f000001u, 0};
  o.transport.mtu = mtu;
  o.transport.faults = faults;
  o.connect_timeout_ns = 2 * kSec;
  o.credentials = [] { return proto::Credentials{"alice", 1, alice_key()}; };
  o.allow_unkeyed = [allow_unkeyed] { return allow_unkeyed; };
  auto c = RpcClient::create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.error().to_string();
  return c.ok() ? std::move(c).value() : nullptr;
}

uint64_t invalid(const RpcServer& s, proto::DecodeError e) { return s.stats().rx_invalid[static_cast<int>(e)]; }

TEST(RpcMac, ATokenSessionIsKeyedAndWorks) {
  auto server = keyed_server();
  ASSERT_TRUE(server);
  auto client = alice_client();
  ASSERT_TRUE(client);
  for (int i = 0; i < 50; ++i) {
    Buffer req(1 + i * 997 % 20000, static_cast<uint8_t>(i));  // up to several fragments
    auto r = client->call(server->local_addr(), kEcho, req, 5 * kSec);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, req);
  }
  EXPECT_EQ(invalid(*server, proto::DecodeError::kBadMac), 0u);
  EXPECT_EQ(invalid(*server, proto::DecodeError::kReplayed), 0u);
  EXPECT_EQ(client->stats().rx_invalid[static_cast<int>(proto::DecodeError::kBadMac)], 0u);
}

// Large keyed messages leave in pieces as they are sealed (LoopCore::
// kPipelineBytes), both ways: with loopback's ~64 KiB datagrams (a send per
// packet) and 1472-byte ones (a send per ~22), under loss, duplicates and
// reordering, every echo comes back whole and no packet fails its MAC.
TEST(RpcMac, LargeKeyedMessagesSurviveLossAtEveryDatagramSize) {
  transport::FaultConfig f;
  f.drop_pct = 3;
  f.duplicate_pct = 3;
  f.reorder_pct = 3;
  for (uint32_t mtu : {0u, 1472u}) {
    transport::FaultConfig cf = f, sf = f;
    cf.seed = 5 + mtu;
    sf.seed = 9 + mtu;
    auto server = keyed_server(true, mtu, sf);
    ASSERT_TRUE(server);
    auto client = alice_client(false, mtu, cf);
    ASSERT_TRUE(client);
    for (int i = 0; i < 8; ++i) {
      Buffer req((1u << 20) - i * 4099, static_cast<uint8_t>(i));
      for (size_t j = 0; j < req.size(); j += 4096) req[j] = static_cast<uint8_t>(j >> 12);
      auto r = client->call(server->local_addr(), kEcho, req, 30 * kSec);
      ASSERT_TRUE(r.ok()) << "mtu " << mtu << ": " << r.error().to_string();
      ASSERT_TRUE(*r == req) << "mtu " << mtu << ", call " << i;
    }
    EXPECT_GT(client->stats().retransmits, 0u) << "mtu " << mtu << ": the loss path did not run";
    EXPECT_EQ(invalid(*server, proto::DecodeError::kBadMac), 0u);
    EXPECT_EQ(client->stats().rx_invalid[static_cast<int>(proto::DecodeError::kBadMac)], 0u);
  }
}

TEST(RpcMac, ForgedAndReplayedPacketsAreDroppedAndCounted) {
  auto server = keyed_server();
  ASSERT_TRUE(server);
  test::RawSession raw(server->local_addr(), proto::Credentials{"alice", 1, alice_key()});
  ASSERT_NE(raw.open_keyed(), 0u);

  const Buffer data{1, 2, 3, 4, 5};
  const Buffer good = raw.request(kEcho, 1, 1, data, &raw.key());
  raw.send_raw(good);
  auto r = raw.response(1, 2000);
  ASSERT_TRUE(r) << "a sealed request was not answered with a sealed response";
  EXPECT_EQ(*r, data);

  // The same datagram again: a replay, dropped before the reply cache.
  raw.send_raw(good);
  ASSERT_TRUE([&] {
    for (int i = 0; i < 200 && invalid(*server, proto::DecodeError::kReplayed) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return invalid(*server, proto::DecodeError::kReplayed) == 1;
  }());
  EXPECT_FALSE(raw.response(1, 100)) << "a replayed packet was answered";

  // A changed byte, a CRC instead of a MAC, another key: forgeries.
  Buffer changed = raw.request(kEcho, 2, 2, data, &raw.key());
  changed.back() ^= 1;
  raw.send_raw(changed);
  raw.send_raw(raw.request(kEcho, 3, 3, data, nullptr));
  proto::SessionKey other = raw.key();
  other.bytes[7] ^= 0x80;
  raw.send_raw(raw.request(kEcho, 4, 4, data, &other));
  for (int i = 0; i < 200 && invalid(*server, proto::DecodeError::kBadMac) < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(invalid(*server, proto::DecodeError::kBadMac), 3u);
  for (uint64_t req : {2, 3, 4}) EXPECT_FALSE(raw.response(req, 50)) << "forged request " << req << " ran";
  EXPECT_EQ(server->stats().requests_executed, 1u);

  // The session still works for its holder.
  raw.send_raw(raw.request(kEcho, 5, 5, data, &raw.key()));
  EXPECT_TRUE(raw.response(5, 2000));
}

TEST(RpcMac, ATokenClientRefusesAServerThatDoesNotKey) {
  auto server = keyed_server(/*packet_macs=*/false);
  ASSERT_TRUE(server);
  auto strict = alice_client();
  ASSERT_TRUE(strict);
  auto r = strict->call(server->local_addr(), kEcho, Buffer{1}, 5 * kSec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kPermission) << r.error().to_string();
  EXPECT_NE(r.error().message.find("without packet MACs"), std::string::npos) << r.error().message;
  auto lenient = alice_client(/*allow_unkeyed=*/true);
  ASSERT_TRUE(lenient);
  auto ok = lenient->call(server->local_addr(), kEcho, Buffer{1}, 5 * kSec);
  EXPECT_TRUE(ok.ok()) << ok.error().to_string();
}

}  // namespace
}  // namespace lanefs::rpc

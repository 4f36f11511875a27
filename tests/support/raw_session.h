// A client that speaks the wire protocol by hand over one UDP socket
// (127.0.0.1), for tests that must send what no RpcClient would: it sets up
// a keyed session with a token (kConnect, the cookie challenge answered with
// the proof, a kConnectOk whose MAC it checks under the key both ends
// derive), then sends single-packet requests sealed under any key (or with
// a CRC) and datagrams of its choice, and reads sealed responses.
// Header-only; one thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "proto/auth.h"
#include "proto/packet_mac.h"
#include "proto/wire.h"

namespace lanefs::test {

class RawSession {
 public:
  using Bytes = std::vector<uint8_t>;
  RawSession(NetAddr server, proto::Credentials creds) : server_(server), creds_(std::move(creds)) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000001u);
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawSession() {
    if (fd_ >= 0) close(fd_);
  }
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;

  // The session id of a keyed session, or 0 (no answer, refused, not keyed,
  // or a kConnectOk whose MAC does not verify).
  uint32_t open_keyed() {
    if (!ok_) return 0;
    const uint64_t nonce = 0x1234567;
    for (int tries = 0; tries < 20; ++tries) {
      send_raw(connect_packet(nonce, {}));
      proto::PacketHeader rh;
      std::span<const uint8_t> body;
      if (!await(proto::PktType::kConnectChallenge, nonce, 200, &rh, &body)) continue;
      const Bytes cookie(body.begin(), body.end());
      send_raw(connect_packet(nonce, cookie));
      if (!await(proto::PktType::kConnectOk, nonce, 1000, &rh, &body)) continue;
      Decoder d(body);
      d.u32();     // slots
      d.str(256);  // server name
      d.u32();     // largest datagram
      d.u32();     // push
      const uint32_t flags = d.u32();
      auto used = d.bytes(64);
      if (!d.ok() || !(flags & proto::kConnectKeyed)) return 0;
      key_ = proto::session_key(creds_.key, nonce, used);
      mac_.emplace(key_);
      if (!mac_->verify(rh, body)) return 0;
      sid_ = rh.session_id;
      return sid_;
    }
    return 0;
  }
  // A single-packet request on the session, sealed under `key` (nullptr: a
  // CRC), numbered `seq`.
  Bytes request(uint16_t opcode, uint64_t req, uint64_t seq, const Bytes& body, const proto::SessionKey* key) {
    std::optional<proto::SessionMac> other;
    proto::SessionMac* mac = nullptr;
    if (key && mac_ && *key == mac_->key()) mac = &*mac_;
    else if (key) mac = &other.emplace(*key);
    proto::PacketHeader h;
    h.type = proto::PktType::kRequest;
    h.session_id = sid_;
    h.request_id = req;
    h.opcode = opcode;
    h.pkt_count = 1;
    h.msg_len = static_cast<uint32_t>(body.size());
    h.payload_len = h.msg_len;
    h.seq = seq;
    Bytes pkt(proto::kHeaderSize + body.size());
    std::copy(body.begin(), body.end(), pkt.begin() + proto::kHeaderSize);
    if (mac) mac->seal_header(h, body, {}, pkt.data());
    else proto::encode_header(h, body, pkt.data());
    return pkt;
  }
  // The payload of the response to `req` if one whose MAC verifies comes
  // within `ms`.
  std::optional<Bytes> response(uint64_t req, int ms) {
    proto::PacketHeader rh;
    std::span<const uint8_t> body;
    if (!await(proto::PktType::kResponse, req, ms, &rh, &body)) return std::nullopt;
    if (!mac_ || !mac_->verify(rh, body)) return std::nullopt;
    return Bytes(body.begin(), body.end());
  }
  void send_raw(const Bytes& pkt) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(server_.ip);
    a.sin_port = htons(server_.port);
    (void)sendto(fd_, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  const proto::SessionKey& key() const { return key_; }

 private:
  Bytes connect_packet(uint64_t nonce, const Bytes& cookie) {
    Bytes body;
    Encoder e(&body);
    e.u32(8);     // slots
    e.str("raw");
    e.u32(1500);  // largest datagram
    e.u32(0);     // push
    e.u32(0);     // flags
    e.u64(7);     // client id
    e.str(creds_.user);
    e.bytes(cookie);
    if (cookie.empty()) {
      e.bytes({});
    } else {
      auto proof = proto::connect_proof(creds_.key, creds_.user, nonce, cookie);
      e.bytes(proof);
    }
    proto::PacketHeader h;
    h.type = proto::PktType::kConnect;
    h.request_id = nonce;
    h.pkt_count = 1;
    h.msg_len = static_cast<uint32_t>(body.size());
    h.payload_len = h.msg_len;
    Bytes pkt(proto::kHeaderSize + body.size());
    std::copy(body.begin(), body.end(), pkt.begin() + proto::kHeaderSize);
    proto::encode_header(h, body, pkt.data());
    return pkt;
  }
  bool await(proto::PktType type, uint64_t req, int ms, proto::PacketHeader* rh, std::span<const uint8_t>* body) {
    const uint64_t deadline = mono_ns() + uint64_t(ms) * 1'000'000;
    while (mono_ns() < deadline) {
      ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (n <= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (proto::decode_packet({buf_.data(), size_t(n)}, rh, body) == proto::DecodeError::kOk && rh->type == type &&
          rh->request_id == req)
        return true;
    }
    return false;
  }
  NetAddr server_;
  proto::Credentials creds_;
  int fd_ = -1;
  bool ok_ = false;
  uint32_t sid_ = 0;
  proto::SessionKey key_;
  std::optional<proto::SessionMac> mac_;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(70000);
};

}  // namespace lanefs::test

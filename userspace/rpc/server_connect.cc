// ServerLoop, session setup (docs/protocol.md, "Sessions"): a kConnect
// without a valid cookie is answered with one (kConnectChallenge) and
// nothing is kept; a kConnect that echoes a fresh cookie for its source
// address and nonce is authenticated (ServerOptions::authenticate), admitted
// under the session caps, and gets its session. A spoofed source never sees
// its cookie, so a connect flood from forged addresses costs no state.
#include <algorithm>
#include <cstring>

#include "common/clock.h"
#include "common/codec.h"
#include "rpc/server_impl.h"

namespace lanefs::rpc {
namespace {

using proto::PacketHeader;
using proto::PktType;

// Cookie: u32 issue time (seconds, monotonic) | 16-byte MAC over the
// client's address, nonce and that time. Valid for kCookieLifeS.
constexpr size_t kCookieMacBytes = 16;
constexpr size_t kCookieBytes = 4 + kCookieMacBytes;
constexpr uint32_t kCookieLifeS = 30;

uint32_t now_s() { return static_cast<uint32_t>(mono_ns() / 1'000'000'000ull); }

void cookie_for(const proto::AuthKey& key, NetAddr src, uint64_t nonce, uint32_t t, uint8_t* out) {
  uint8_t msg[4 + 2 + 8 + 4];
  std::memcpy(msg, &src.ip, 4);
  std::memcpy(msg + 4, &src.port, 2);
  std::memcpy(msg + 6, &nonce, 8);
  std::memcpy(msg + 14, &t, 4);
  std::memcpy(out, &t, 4);
  proto::cookie_mac(key, msg, std::span<uint8_t>(out + 4, kCookieMacBytes));
}

}  // namespace

void ServerLoop::challenge(NetAddr src, const PacketHeader& h) {
  counters_.connect_challenges.fetch_add(1, std::memory_order_relaxed);
  uint8_t cookie[kCookieBytes];
  cookie_for(server_.cookie_key, src, h.request_id, now_s(), cookie);
  send_simple(src, PktType::kConnectChallenge, 0, h.request_id, 0, 1, h.generation, cookie);
  core_->flush();  // cookie is local
}

bool ServerLoop::cookie_valid(NetAddr src, uint64_t nonce, std::span<const uint8_t> cookie) const {
  if (cookie.size() != kCookieBytes) return false;
  uint32_t t = 0;
  std::memcpy(&t, cookie.data(), 4);
  uint32_t now = now_s();
  if (t > now || now - t > kCookieLifeS) return false;
  uint8_t want[kCookieBytes];
  cookie_for(server_.cookie_key, src, nonce, t, want);
  return proto::equal_secret(cookie, want);
}

void ServerLoop::reject(NetAddr src, const PacketHeader& h, Errc code, std::string_view why) {
  Buffer body;
  Encoder e(&body);
  e.i32(static_cast<int32_t>(code));
  e.u8(proto::kVersion);
  e.str(why.substr(0, 400));
  send_simple(src, PktType::kConnectReject, 0, h.request_id, 0, 1, h.generation, body);
  core_->flush();  // body is local
}

void ServerLoop::on_connect(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload) {
  Decoder d(payload);
  uint32_t want_slots = d.u32();
  std::string name = d.str(256);
  uint32_t client_max = d.u32();  // the client's datagram limit
  uint32_t push_want = d.u32();   // response packets it takes unasked
  uint32_t flags = d.u32();
  uint64_t client_id = d.u64();
  std::string user = d.str(64);
  std::span<const uint8_t> cookie = d.bytes(64);
  std::span<const uint8_t> proof = d.bytes(64);
  if (!d.ok() || want_slots == 0 || client_max <= proto::kHeaderSize) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto key = std::make_pair(src, h.request_id);
  auto known = server_.by_nonce.find(key);
  const ServerOptions& o = server_.opts();
  uint32_t slots = std::min(want_slots, o.max_slots);
  uint32_t push = std::min(push_want, o.max_push);
  uint32_t sid = 0;
  if (known != server_.by_nonce.end() && server_.session_live(known->second.sid)) {
    sid = known->second.sid;  // a retransmitted connect: same answer
    slots = known->second.slots;
  } else {
    if (!cookie_valid(src, h.request_id, cookie)) return challenge(src, h);
    std::shared_ptr<const proto::UserRecord> principal;
    if (o.authenticate) {
      auto who = o.authenticate(ConnectAuth{src, user, h.request_id, cookie, proof});
      if (!who.ok()) {
        counters_.auth_refused.fetch_add(1, std::memory_order_relaxed);
        return reject(src, h, who.code(), who.error().message);
      }
      principal = std::move(*who);
    }
    if (!server_.admit(src.ip, mono_ns())) {
      counters_.connects_refused.fetch_add(1, std::memory_order_relaxed);
      return reject(src, h, Errc::kBusy, "too many sessions");
    }
    uint32_t target = server_.next_loop++ % server_.nloops();
    auto s = std::make_unique<Session>();
    sid = server_.new_session_id(target, src.ip, &s->last_active_ns);
    s->id = sid;
    s->peer = src;
    s->local = reply_from_;
    s->connect_from = src;
    s->nonce = h.request_id;
    s->client_id = client_id;
    s->name = std::move(name);
    s->slots.resize(slots);
    s->per_packet = std::min<uint32_t>(per_packet_, client_max - proto::kHeaderSize);
    s->push = push;
    s->single = (flags & proto::kConnectRawFrames) != 0;
    s->auth_epoch = server_.auth_epoch.load(std::memory_order_relaxed);
    s->principal = std::move(principal);
    s->last_active_ns.store(mono_ns(), std::memory_order_relaxed);
    server_.by_nonce[key] = {sid, slots, mono_ns()};
    counters_.connects.fetch_add(1, std::memory_order_relaxed);
    if (target == index_) {
      std::lock_guard lk(sess_mu_);
      sessions_.emplace(sid, std::move(s));
      n_sessions_.store(static_cast<uint32_t>(sessions_.size()), std::memory_order_relaxed);
    } else {
      server_.loop(target).post_session(std::move(s));
    }
  }
  Buffer body;
  Encoder e(&body);
  e.u32(slots);
  e.str(o.name);
  e.u32(max_datagram_);
  e.u32(push);
  e.u32(core_->reads_raw_frames() ? proto::kConnectRawFrames : 0);
  send_simple(src, PktType::kConnectOk, sid, h.request_id, 0, 1, h.generation, body);
  core_->flush();  // body is local
}

}  // namespace lanefs::rpc

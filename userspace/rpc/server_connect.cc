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
#include "proto/session.h"
#include "rpc/server_impl.h"

namespace lanefs::rpc {
namespace {

using proto::PacketHeader;
using proto::PktType;
using Known = RpcServer::Impl::Known;

uint32_t now_s() { return static_cast<uint32_t>(mono_ns() / 1'000'000'000ull); }

}  // namespace

void ServerLoop::challenge(NetAddr src, const PacketHeader& h) {
  counters_.connect_challenges.fetch_add(1, std::memory_order_relaxed);
  uint8_t cookie[proto::kCookieBytes];
  proto::make_cookie(server_.cookie_key, src, h.request_id, now_s(), cookie);
  send_simple(src, PktType::kConnectChallenge, 0, h.request_id, 0, 1, h.generation, cookie);
  core_->flush();  // cookie is local
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
  proto::ConnectBody c;
  Decoder d(payload);
  if (!c.decode(d)) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto key = std::make_pair(src, h.request_id);
  auto known = server_.by_nonce.find(key);
  const ServerOptions& o = server_.opts();
  uint32_t slots = std::min(c.slots, o.max_slots);
  uint32_t push = std::min(c.push, o.max_push);
  uint32_t sid = 0;
  const Known* answer = nullptr;
  if (known != server_.by_nonce.end() && server_.session_live(known->second.sid)) {
    sid = known->second.sid;  // a retransmitted connect: same answer
    slots = known->second.slots;
    answer = &known->second;
  } else {
    if (!proto::cookie_valid(server_.cookie_key, src, h.request_id, c.cookie, now_s())) return challenge(src, h);
    // Read before deciding: a change of who may do what while we decide
    // bumps it, and the new session is dropped at its first packet.
    const uint32_t epoch = server_.auth_epoch.load(std::memory_order_relaxed);
    Admission admitted;
    if (o.authenticate) {
      auto who = o.authenticate(ConnectAuth{src, c.user, h.request_id, c.cookie, c.proof});
      if (!who.ok()) {
        counters_.auth_refused.fetch_add(1, std::memory_order_relaxed);
        return reject(src, h, who.code(), who.error().message);
      }
      admitted = std::move(*who);
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
    s->client_id = c.client_id;
    s->name = std::move(c.name);
    s->slots.resize(slots);
    s->per_packet = std::min<uint32_t>(per_packet_, c.max_datagram - proto::kHeaderSize);
    s->push = push;
    s->single = (c.flags & proto::kConnectRawFrames) != 0;
    s->auth_epoch = epoch;
    s->principal = std::move(admitted.principal);
    std::optional<proto::SessionKey> skey;
    if (admitted.key && o.packet_macs) {
      skey = proto::session_key(*admitted.key, h.request_id, c.cookie);
      s->mac = std::make_unique<proto::SessionMac>(*skey);
    }
    s->last_active_ns.store(mono_ns(), std::memory_order_relaxed);
    Known& k = server_.by_nonce[key];
    k = {sid, slots, mono_ns(), skey, skey ? c.cookie : std::vector<uint8_t>{}};
    answer = &k;
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
  e.u32((core_->reads_raw_frames() ? proto::kConnectRawFrames : 0) | (answer->key ? proto::kConnectKeyed : 0));
  if (!answer->key) {
    send_simple(src, PktType::kConnectOk, sid, h.request_id, 0, 1, h.generation, body);
  } else {
    // Keyed: the cookie the key came from (the client may hold a newer
    // one), and a MAC that proves the answer comes from a holder of the
    // user's key.
    e.bytes(answer->cookie);
    PacketHeader ok;
    ok.type = PktType::kConnectOk;
    ok.session_id = sid;
    ok.request_id = h.request_id;
    ok.pkt_count = 1;
    ok.generation = h.generation;
    ok.msg_len = static_cast<uint32_t>(body.size());
    ok.seq = ++server_.connect_ok_seq;
    proto::SessionMac mac(*answer->key);  // once per connect answered
    core_->send(src, ok, body, {}, reply_from_, false, &mac);
  }
  core_->flush();  // body is local
}

}  // namespace lanefs::rpc

// ClientEndpoint, receive side: what the client does with each packet that
// arrives (connect answers, answers to its request packets, response
// fragments reassembled into the call's sink). The rest of the endpoint is
// in client_endpoint.cc.
#include <algorithm>
#include <cstring>

#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "rpc/client_endpoint.h"

namespace lanefs::rpc {

using proto::PacketHeader;
using proto::PktType;

void ClientEndpoint::on_packet(NetAddr src, const PacketHeader& h, std::span<const uint8_t> payload,
                               bool bad_version) {
  if (bad_version) return;  // counted by LoopCore
  auto it = by_remote_.find(src);
  if (it == by_remote_.end()) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ClientSession& s = *it->second;
  uint64_t now = mono_ns();
  for (auto& p : s.paths) {
    if (p.spec.remote != src || (rx_local_.ip != 0 && p.spec.local.ip != 0 && p.spec.local.ip != rx_local_.ip)) continue;
    ++p.rx_packets;
    p.last_rx_ns = now;
    break;
  }
  // A keyed session acts on nothing of its own whose MAC does not verify or
  // that it has seen; the packets before a session (challenge, reject,
  // reset) cannot carry one (docs/security.md says what a forged one costs).
  const bool own = h.type == PktType::kPong || h.type == PktType::kCreditReturn || h.type == PktType::kResponse;
  if (own && (s.mac || (h.flags & proto::kFlagMac))) {
    if (!s.mac || h.session_id != s.sid) {  // of an earlier session of ours
      counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!core_->authentic(*s.mac, s.rx_window, h, payload)) return;
  }
  switch (h.type) {
    case PktType::kPong: {
      size_t i = h.request_id & 0xff;
      if (i < s.paths.size() && (h.request_id >> 8) == s.paths[i].probe_seq) {
        s.paths[i].probe_outstanding = false;
        path_event(s, i, kProbeGain, now);
      }
      return;
    }
    case PktType::kConnectOk:
      if (s.state == SessState::kConnecting && h.request_id == s.nonce) on_connect_ok(s, h, payload);
      return;
    case PktType::kConnectChallenge:
      // Answer at once, on the path it came by (its cookie is bound to our
      // address there); a second challenge for the same nonce means the
      // cookie expired: the fresh one replaces it.
      if (s.state != SessState::kConnecting || h.request_id != s.nonce || payload.empty() || payload.size() > 64) {
        counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      s.cookie.assign(payload.begin(), payload.end());
      send_connect(s, now, true);
      return;
    case PktType::kConnectReject: {
      if (h.request_id != s.nonce) return;
      Decoder d(payload);
      int32_t raw = d.i32();
      uint8_t server_version = d.u8();
      std::string why = d.remaining() > 0 ? d.str(512) : std::string();
      Errc code = errc_valid(raw) ? static_cast<Errc>(raw) : Errc::kProtocol;
      if (why.empty() || !d.ok()) why = errc_text(code);
      std::string msg = code == Errc::kVersion
                            ? s.server.to_string() + " speaks protocol version " +
                                  std::to_string(server_version) + ", this client version " +
                                  std::to_string(proto::kVersion)
                            : s.server.to_string() + " refused the session: " + why;
      fail_session(s, make_error(code, msg));
      return;
    }
    case PktType::kSessionReset:
      if (s.state == SessState::kConnected && h.session_id == s.sid) {
        counters_.session_resets.fetch_add(1, std::memory_order_relaxed);
        LOG_INFO("session to {} was reset by the server; reconnecting", s.server.to_string());
        s.state = SessState::kConnecting;
        s.sid = 0;
        new_nonce(s);
        s.connect_start_ns = now;
        s.next_connect_ns = 0;
        reset_requests(s);
      }
      return;
    case PktType::kCreditReturn:
    case PktType::kResponse:
      break;
    default:
      counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
      return;
  }
  if (s.state != SessState::kConnected || h.session_id != s.sid) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.flags & proto::kFlagEcn) s.cw.on_ecn(now, s.rtt.srtt_ns());
  ActiveReq& r = s.slots[h.request_id % s.slots.size()];
  if (!r.active || r.req_id != h.request_id) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.type == PktType::kCreditReturn) {
    if (h.pkt_num >= r.req_pkts) return;
    // A credit return for the last packet means "received, still executing".
    on_answer(s, r, h.pkt_num, h.generation, now, h.pkt_num + 1u != r.req_pkts);
    return;
  }
  on_response(s, r, h, payload, now);
}

void ClientEndpoint::on_connect_ok(ClientSession& s, const PacketHeader& h, std::span<const uint8_t> payload) {
  Decoder d(payload);
  uint32_t slots = d.u32();
  (void)d.str(256);  // server name
  uint32_t server_max = d.remaining() >= 4 ? d.u32() : proto::kHeaderSize + 1428;
  uint32_t push = d.remaining() >= 4 ? d.u32() : 0;  // absent: a server that never pushes
  uint32_t flags = d.remaining() >= 4 ? d.u32() : 0;
  if (!d.ok() || slots == 0 || server_max <= proto::kHeaderSize) {
    counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (flags & proto::kConnectKeyed) {
    // The key from the cookie the server used, and its MAC on this answer:
    // only a holder of our token's key could have made it.
    auto cookie = d.bytes(64);
    if (!d.ok() || !s.connect_key) {
      counters_.unexpected_packets.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto mac = std::make_unique<proto::SessionMac>(proto::session_key(*s.connect_key, s.nonce, cookie));
    proto::ReplayWindow once;  // a kConnectOk is taken once, in kConnecting (its own nonce space)
    if (!core_->authentic(*mac, once, h, payload)) return;
    s.mac = std::move(mac);
    s.tx_seq = 0;
    s.rx_window = {};
  } else if (s.connect_key && !(opts_.allow_unkeyed && opts_.allow_unkeyed())) {
    fail_session(s, make_error(Errc::kPermission, "permission denied: " + s.server.to_string() +
                                                      " set up the session without packet MACs (is it a lanefsd "
                                                      "of this cluster?)"));
    return;
  }
  // Request packets must fit the server's datagrams as well as ours.
  s.per_packet = std::min<uint32_t>(core_->payload_per_packet(), server_max - proto::kHeaderSize);
  s.push = push;
  s.single = (flags & proto::kConnectRawFrames) != 0;
  for (auto& r : s.slots) {
    if (!r.active) continue;
    r.req_pkts = static_cast<uint16_t>(packets_for(r.call.args.req.size() + r.call.args.req_data.size(), s.per_packet));
    r.pkts.assign(r.req_pkts, TxPkt{});
    r.first_open = 0;
  }
  // The server may grant fewer slots; never use more than granted.
  if (slots < s.slots.size()) {
    for (size_t i = slots; i < s.slots.size(); ++i) {
      if (!s.slots[i].active) continue;
      s.waiting.push_front(std::move(s.slots[i].call));
      s.slots[i].active = false;
      --s.active;
    }
    s.slots.resize(slots);
    s.next_id.resize(slots);
    // Request ids must map to the same slot modulo the new count.
    for (uint32_t i = 0; i < slots; ++i) {
      uint64_t id = std::max<uint64_t>(s.next_id[i], slots);
      s.next_id[i] = id + (i + slots - id % slots) % slots;
    }
  }
  s.sid = h.session_id;
  s.state = SessState::kConnected;
  s.connect_tries = 0;
  publish_dirty_ = true;
  counters_.connects.fetch_add(1, std::memory_order_relaxed);
}

void ClientEndpoint::on_answer(ClientSession& s, ActiveReq& r, size_t idx, uint16_t gen, uint64_t now,
                               bool delay_sample) {
  TxPkt& p = r.pkts[idx];
  if (p.st == PktState::kAnswered) return;
  if (p.st == PktState::kInflight) --s.inflight;
  uint64_t rtt = 0;
  // Karn: only an answer to a never-retransmitted packet is a clean sample;
  // a pushed packet was never sent by us at all.
  if (!p.retransmitted && !p.pushed && gen == p.gen && p.st == PktState::kInflight) {
    rtt = now - p.sent_ns;
    // A session's first sample is published when the caller's turn ends
    // (session_info() must not report "no RTT yet" for a session in use).
    if (s.rtt.srtt_ns() == 0) publish_dirty_ = true;
    s.rtt.sample(rtt);
  }
  p.st = PktState::kAnswered;
  if (s.paths[std::min<size_t>(p.path, s.paths.size() - 1)].health < kHealthMax) path_event(s, p.path, kAnswerGain, now);
  s.cw.on_ack(now, delay_sample ? rtt : 0, s.rtt.min_rtt_ns(), s.rtt.srtt_ns());
  r.backoff = 0;
  r.last_answer_ns = now;
  while (r.first_open < r.pkts.size() && r.pkts[r.first_open].st == PktState::kAnswered) ++r.first_open;
}

// The first response packet to arrive (any of them: pushed packets may
// overtake packet 0) tells the response's size and packet count.
void ClientEndpoint::init_response(ClientSession& s, ActiveReq& r, const PacketHeader& h, uint64_t now) {
  r.resp_init = true;
  r.resp_pkts = h.pkt_count;
  r.resp_len = h.msg_len;
  r.resp_count = 0;
  const RespSink& sk = r.call.args.sink;
  size_t cap = sk.head.size() + sk.body.size();
  r.to_sink = cap > 0 && h.msg_len <= cap;
  if (!r.to_sink) {
    if (r.spill.capacity() == 0 && !free_bufs_.empty()) {
      r.spill = std::move(free_bufs_.back());
      free_bufs_.pop_back();
    }
    r.spill.resize_uninit(h.msg_len);
  }
  // The server has the whole request: every request packet is answered.
  for (size_t i = 0; i < r.req_pkts; ++i)
    if (r.pkts[i].st != PktState::kAnswered) on_answer(s, r, i, h.generation, now, false);
  uint8_t path = r.req_pkts ? r.pkts[r.req_pkts - 1].path : 0;
  r.pkts.resize(size_t{r.req_pkts} + h.pkt_count - 1);
  // Response packets 1..push-1 come without a request-for-response.
  uint32_t pushed = std::min<uint32_t>(h.pkt_count, s.push);
  for (uint32_t j = 1; j < pushed; ++j) {
    TxPkt& p = r.pkts[size_t{r.req_pkts} + j - 1];
    p = TxPkt{};
    p.st = PktState::kInflight;
    p.pushed = true;
    p.path = path;
    p.sent_ns = now;
    ++s.inflight;
  }
}

void ClientEndpoint::store_fragment(ActiveReq& r, uint32_t off, std::span<const uint8_t> payload) {
  if (payload.empty()) return;
  if (!r.to_sink) {
    std::memcpy(r.spill.data() + off, payload.data(), payload.size());
    return;
  }
  const RespSink& sk = r.call.args.sink;
  const uint8_t* p = payload.data();
  size_t n = payload.size();
  size_t at = off;
  if (at < sk.head.size()) {
    size_t k = std::min(n, sk.head.size() - at);
    std::memcpy(sk.head.data() + at, p, k);
    p += k;
    n -= k;
    at += k;
  }
  if (n > 0) std::memcpy(sk.body.data() + (at - sk.head.size()), p, n);
}

void ClientEndpoint::on_response(ClientSession& s, ActiveReq& r, const PacketHeader& h,
                                 std::span<const uint8_t> payload, uint64_t now) {
  if (!r.resp_init) {
    init_response(s, r, h, now);
  } else if (h.pkt_count != r.resp_pkts || h.msg_len != r.resp_len) {
    counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.pkt_num == 0) {
    // Packet 0 answers the last request packet (sent again to poll for it).
    if (r.req_pkts > 0 && r.pkts[r.req_pkts - 1].st != PktState::kAnswered)
      on_answer(s, r, r.req_pkts - 1, h.generation, now, false);
    if (r.got0) {
      counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    r.got0 = true;
    r.last_answer_ns = now;
  } else {
    size_t idx = size_t{r.req_pkts} + h.pkt_num - 1;
    TxPkt& p = r.pkts[idx];
    if (p.st == PktState::kAnswered) {
      counters_.duplicate_fragments.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (p.pushed) counters_.pushed_packets.fetch_add(1, std::memory_order_relaxed);
    on_answer(s, r, idx, h.generation, now, !p.pushed);
  }
  store_fragment(r, h.frag_offset, payload);
  if (++r.resp_count == r.resp_pkts) {
    counters_.calls_ok.fetch_add(1, std::memory_order_relaxed);
    complete(s, r, nullptr);
  }
}

// ----------------------------------------------------------- packets out

}  // namespace lanefs::rpc

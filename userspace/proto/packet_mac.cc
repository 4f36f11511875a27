#include "proto/packet_mac.h"

#include <nettle/umac.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace lanefs::proto {

SessionKey session_key(const AuthKey& user_key, uint64_t nonce, std::span<const uint8_t> cookie) {
  static constexpr char kLabel[] = "lanefs-session";
  uint8_t msg[sizeof kLabel + 8 + 64];
  const size_t cn = std::min<size_t>(cookie.size(), 64);
  std::memcpy(msg, kLabel, sizeof kLabel);
  std::memcpy(msg + sizeof kLabel, &nonce, 8);
  if (cn) std::memcpy(msg + sizeof kLabel + 8, cookie.data(), cn);
  SessionKey k;
  cookie_mac(user_key, {msg, sizeof kLabel + 8 + cn}, k.bytes);  // truncated HMAC-SHA256, as auth.h does it
  return k;
}

bool packet_macs_enabled() {
  const char* v = std::getenv("LANEFS_PACKET_MAC");
  return v == nullptr || std::string_view(v) != "off";
}

uint8_t mac_direction(PktType t) noexcept {
  switch (t) {
    case PktType::kConnect:
    case PktType::kRequest:
    case PktType::kRfr:
    case PktType::kDisconnect:
    case PktType::kPing:
      return 0;
    case PktType::kConnectOk:
      return 2;
    default:
      return 1;
  }
}

struct SessionMac::Ctx {
  umac64_ctx umac;
};

SessionMac::SessionMac(const SessionKey& key) : key_(key), ctx_(std::make_unique<Ctx>()) {
  umac64_set_key(&ctx_->umac, key.bytes.data());
}

SessionMac::~SessionMac() { OPENSSL_cleanse(ctx_.get(), sizeof *ctx_); }

void SessionMac::tag(const uint8_t* hdr, uint64_t seq, uint8_t dir, std::span<const uint8_t> p1,
                     std::span<const uint8_t> p2, uint8_t* out) {
  uint8_t nonce[12] = {};
  std::memcpy(nonce, &seq, 8);
  nonce[8] = dir;
  umac64_ctx* u = &ctx_->umac;
  umac64_set_nonce(u, sizeof nonce, nonce);
  umac64_update(u, kHeaderSize, hdr);
  if (!p1.empty()) umac64_update(u, p1.size(), p1.data());
  if (!p2.empty()) umac64_update(u, p2.size(), p2.data());
  std::memset(out, 0, kCheckSize);
  umac64_digest(u, UMAC64_DIGEST_SIZE, out);
}

void SessionMac::seal_header(const PacketHeader& h, std::span<const uint8_t> p1, std::span<const uint8_t> p2,
                             uint8_t* out) {
  PacketHeader hh = h;
  hh.flags |= kFlagMac;
  write_header_fields(hh, out);
  tag(out, hh.seq, mac_direction(hh.type), p1, p2, out + kCheckOffset);
}

bool SessionMac::verify(const PacketHeader& h, std::span<const uint8_t> payload) {
  if (!(h.flags & kFlagMac)) return false;
  uint8_t hdr[kHeaderSize];
  write_header_fields(h, hdr);
  uint8_t want[kCheckSize];
  tag(hdr, h.seq, mac_direction(h.type), payload, {}, want);
  return CRYPTO_memcmp(want, h.tag.data(), kCheckSize) == 0;
}

bool ReplayWindow::accept(uint64_t seq) noexcept {
  if (seq == 0) return false;
  auto bit = [&](uint64_t s) -> uint64_t& { return bits_[(s / 64) % bits_.size()]; };
  const uint64_t mask_of = 1;
  if (seq > top_) {
    // Slide: forget what falls out of the window (whole words at a time:
    // the word of the new top is cleared bit by bit below it).
    if (seq - top_ >= kWindow) {
      bits_.fill(0);
    } else {
      for (uint64_t s = top_ + 1; s <= seq; ++s) {
        if (s % 64 == 0 && seq - s >= 64) {  // a whole word: clear and skip it
          bit(s) = 0;
          s += 63;
          continue;
        }
        bit(s) &= ~(mask_of << (s % 64));
      }
    }
    top_ = seq;
    bit(seq) |= mask_of << (seq % 64);
    return true;
  }
  if (top_ - seq >= kWindow) return false;
  uint64_t& w = bit(seq);
  const uint64_t m = mask_of << (seq % 64);
  if (w & m) return false;
  w |= m;
  return true;
}

}  // namespace lanefs::proto

#include "proto/session.h"

#include <cstring>

namespace lanefs::proto {

void ConnectBody::encode(Encoder& e) const {
  e.u32(slots);
  e.str(name);
  e.u32(max_datagram);
  e.u32(push);
  e.u32(flags);
  e.u64(client_id);
  e.str(user);
  e.bytes(cookie);
  e.bytes(proof);
}

bool ConnectBody::decode(Decoder& d) {
  slots = d.u32();
  name = d.str(256);
  max_datagram = d.u32();
  push = d.u32();
  flags = d.u32();
  client_id = d.u64();
  user = d.str(64);
  auto c = d.bytes(64);
  cookie.assign(c.begin(), c.end());
  auto p = d.bytes(64);
  proof.assign(p.begin(), p.end());
  return d.ok() && slots != 0 && max_datagram > kHeaderSize;
}

void make_cookie(const AuthKey& key, NetAddr src, uint64_t nonce, uint32_t now_s, uint8_t* out) {
  uint8_t msg[4 + 2 + 8 + 4];
  std::memcpy(msg, &src.ip, 4);
  std::memcpy(msg + 4, &src.port, 2);
  std::memcpy(msg + 6, &nonce, 8);
  std::memcpy(msg + 14, &now_s, 4);
  std::memcpy(out, &now_s, 4);
  cookie_mac(key, msg, std::span<uint8_t>(out + 4, kCookieBytes - 4));
}

bool cookie_valid(const AuthKey& key, NetAddr src, uint64_t nonce, std::span<const uint8_t> cookie, uint32_t now_s) {
  if (cookie.size() != kCookieBytes) return false;
  uint32_t t = 0;
  std::memcpy(&t, cookie.data(), 4);
  if (t > now_s || now_s - t > kCookieLifeS) return false;
  uint8_t want[kCookieBytes];
  make_cookie(key, src, nonce, t, want);
  return equal_secret(cookie, want);
}

bool fragment_fits(const PacketHeader& h, size_t len, uint32_t frag_len, uint32_t last_off) {
  const uint64_t off = h.frag_offset, n = h.pkt_count, i = h.pkt_num;
  if (n == 0 || i >= n) return false;
  if (n == 1) return off == 0 && len == h.msg_len;
  if (i + 1 < n) {  // a full-size fragment
    if (len == 0 || off != i * len || (n - 1) * len >= h.msg_len || n * len < h.msg_len) return false;
    if (frag_len != 0 && len != frag_len) return false;
    return last_off == ~0u || last_off == (n - 1) * len;
  }
  if (off + len != h.msg_len) return false;  // the last one
  return frag_len == 0 || off == (n - 1) * frag_len;
}

}  // namespace lanefs::proto

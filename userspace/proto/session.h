// The session layer's pure parts (docs/protocol.md, section 2): the kConnect
// body, the server's stateless connect cookie, and the rule that places a
// request fragment in its message. The rpc layer (client_endpoint.cc,
// server_connect.cc, server_loop.cc) uses them; tests/fuzz feeds them
// hostile input.
//
// Threading: pure functions and value types.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/codec.h"
#include "common/net_addr.h"
#include "proto/auth.h"
#include "proto/wire.h"

namespace lanefs::proto {

// kConnect's payload.
struct ConnectBody {
  uint32_t slots = 0;         // concurrent requests asked for
  std::string name;           // the client's name, shown by the server
  uint32_t max_datagram = 0;  // the client's largest datagram
  uint32_t push = 0;          // response packets the server may send unasked
  uint32_t flags = 0;         // kConnectRawFrames
  uint64_t client_id = 0;     // the same on every connect of this client
  std::string user;           // the token's user ("": none)
  std::vector<uint8_t> cookie, proof;
  void encode(Encoder& e) const;
  // False for anything malformed: no slots, a datagram limit not above a
  // header, fields too long or missing.
  bool decode(Decoder& d);
};

// Cookie: u32 issue time (seconds) | 16-byte MAC under `key` over the
// client's address, the nonce and that time. Good for kCookieLifeS.
inline constexpr size_t kCookieBytes = 20;
inline constexpr uint32_t kCookieLifeS = 30;
void make_cookie(const AuthKey& key, NetAddr src, uint64_t nonce, uint32_t now_s, uint8_t* out);
bool cookie_valid(const AuthKey& key, NetAddr src, uint64_t nonce, std::span<const uint8_t> cookie,
                  uint32_t now_s);

// Whether a request fragment sits where the client's fixed-size
// fragmentation puts it (every fragment but the last `frag_len` bytes long,
// at pkt_num * frag_len; the last one ending at msg_len), given what was
// seen of its message so far (frag_len 0, last_off ~0: nothing). Fragments
// that pass cover the message exactly once: no byte of a request reaches a
// handler unwritten.
bool fragment_fits(const PacketHeader& h, size_t len, uint32_t frag_len, uint32_t last_off);

}  // namespace lanefs::proto

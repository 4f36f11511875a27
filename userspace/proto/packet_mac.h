// Per-datagram authentication (docs/protocol.md, "Packet MACs"): once a
// session is set up by challenge-response, every datagram of it carries a
// UMAC-64 tag (RFC 4418, Nettle) under the session's key instead of the
// CRC, so a forged packet fails the tag and a recorded one fails the replay
// window. UMAC-64 rather than AES-GMAC: on this project's machines it runs
// at ~12 GB/s against GMAC's ~7 GB/s (OpenSSL 3.0 without AVX-512), and
// the MAC sits on the data path of every read and write at both ends.
//
// - session key: the first 16 bytes of HMAC-SHA256(user key,
//   "lanefs-session" | client nonce | server cookie); both ends derive it,
//   it never crosses the wire, and every session has its own (the cookie is
//   fresh per connect).
// - nonce (12 bytes): the header's seq (u64, per session and direction,
//   never reused) | direction (0 client->server, 1 server->client,
//   2 kConnectOk) | 0 0 0.
// - tag: UMAC-64 over the header (check field zero) and the payload, in the
//   check field's first 8 bytes; the other 8 are zero.
//
// Threading: SessionKey, SessionMac and ReplayWindow belong to their session
// (one thread at a time).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "proto/auth.h"
#include "proto/wire.h"

namespace lanefs::proto {

struct SessionKey {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const SessionKey&) const = default;
};
SessionKey session_key(const AuthKey& user_key, uint64_t nonce, std::span<const uint8_t> cookie);

// False when the environment says LANEFS_PACKET_MAC=off: servers key no
// session and clients accept unkeyed ones (for measuring their cost only;
// docs/security.md).
bool packet_macs_enabled();

// Direction of a packet type, the nonce's byte 8.
uint8_t mac_direction(PktType t) noexcept;

// A keyed session's MAC: its key and the UMAC context set up with it once
// (a UMAC key setup derives ~2.5 KiB of subkeys and takes ~2 µs here, so
// it is done when the session is, never per packet).
class SessionMac {
 public:
  explicit SessionMac(const SessionKey& key);
  ~SessionMac();  // wipes the subkeys
  SessionMac(const SessionMac&) = delete;
  SessionMac& operator=(const SessionMac&) = delete;

  const SessionKey& key() const { return key_; }
  // encode_header() for a keyed packet: sets kFlagMac and writes the tag
  // over the header and p1 ++ p2 (h.seq must be set; h.payload_len their
  // total size).
  void seal_header(const PacketHeader& h, std::span<const uint8_t> p1, std::span<const uint8_t> p2, uint8_t* out);
  // Whether a decoded packet carries kFlagMac and a tag made with this key.
  bool verify(const PacketHeader& h, std::span<const uint8_t> payload);

 private:
  struct Ctx;
  // The check field (tag and zeros) into out[0..kCheckSize).
  void tag(const uint8_t* hdr, uint64_t seq, uint8_t dir, std::span<const uint8_t> p1, std::span<const uint8_t> p2,
           uint8_t* out);
  SessionKey key_;
  std::unique_ptr<Ctx> ctx_;
};

// Which sequence numbers of a session's direction were seen: the newest
// and a window of kWindow behind it (enough for every packet of a full
// session in flight, reordered across HA paths). Older or already seen:
// a replay (or a duplicate the network made), dropped.
class ReplayWindow {
 public:
  static constexpr uint64_t kWindow = 8192;
  // True (and recorded) the first time `seq` is seen within the window.
  // Call only for packets whose tag verified.
  bool accept(uint64_t seq) noexcept;

 private:
  uint64_t top_ = 0;  // highest seq accepted (0: none; seqs start at 1)
  std::array<uint64_t, kWindow / 64> bits_{};
};

}  // namespace lanefs::proto

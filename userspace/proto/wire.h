// The packet header every lanefs datagram starts with. Specified in
// docs/protocol.md; this file is its only implementation.
//
// Layout (little-endian, 64 bytes, then `payload_len` payload bytes):
//   0 magic u32 'LNFS'   4 version u8   5 type u8   6 flags u16
//   8 session_id u32     12 request_id u64
//   20 pkt_num u16 (packet index within the message, or the index the packet
//      answers for credit returns / requests-for-response)
//   22 pkt_count u16 (packets in the message)   24 generation u16
//   26 opcode u16        28 msg_len u32 (whole message length)
//   32 frag_offset u32   36 payload_len u32
//   40 seq u64 (per session and direction; the MAC's nonce; 0 before a session)
//   48 check[16]: with kFlagMac a UMAC-64 tag (8 bytes, then 8 zero) under the session key
//      (proto/packet_mac.h), else a CRC32C (u32) and 12 zero bytes.
// Either covers the header (with check zero) and the payload. decode_packet
// checks the CRC; the tag is checked by whoever holds the session's key.
//
// decode_packet() validates everything a hostile sender controls and never
// reads out of bounds; callers count each rejection reason.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace lanefs::proto {

inline constexpr uint32_t kMagic = 0x53464e4c;  // "LNFS" in memory order
// Version 4: the header carries a sequence number and a 16-byte check, an
// UMAC-64 tag on every packet of an authenticated session. Version 3: a session is set up by challenge-response on the user's token
// (kConnectChallenge; docs/protocol.md, "Sessions"). Version 2: WriteReq
// carries its data last with the size/mtime commit, WriteResp the commit's
// outcome, kConnect the push count and raw-frames flag ("Versions").
// Older peers are refused.
inline constexpr uint8_t kVersion = 5;
inline constexpr uint8_t kMinVersion = 5;
inline constexpr uint32_t kHeaderSize = 64;
inline constexpr uint32_t kCheckOffset = 48, kCheckSize = 16;
// Largest message the protocol carries (fragmented): 16 MiB.
inline constexpr uint32_t kMaxMessage = 16u << 20;
inline constexpr uint32_t kMaxPackets = 65535;

enum class PktType : uint8_t {
  kConnect = 1,       // client -> server: open a session (request_id = client nonce; user, cookie, proof)
  kConnectOk = 2,     // server -> client: session_id assigned; payload = server info
  kConnectReject = 3, // server -> client: payload i32 Errc (kVersion, kBusy, kPermission), u8 version, message
  kRequest = 4,       // client -> server: request fragment pkt_num of pkt_count
  kCreditReturn = 5,  // server -> client: request packet pkt_num received
  kRfr = 6,           // client -> server: send response packet pkt_num
  kResponse = 7,      // server -> client: response fragment pkt_num
  kSessionReset = 8,  // server -> client: session unknown (server restarted)
  kDisconnect = 9,    // client -> server: session closed (no reply)
  kPing = 10,         // either way: liveness probe, answered by kPong
  kPong = 11,
  // server -> client: answer to a kConnect without a valid cookie; payload
  // = the cookie to echo with the proof (the server keeps no state for it)
  kConnectChallenge = 12,
};
bool pkt_type_valid(uint8_t raw) noexcept;

// flags
inline constexpr uint16_t kFlagEcn = 1u << 0;  // congestion experienced seen on this path
// A request sent again on a new session because the server lost the old
// one (kSessionReset: it restarted): it may have run before the restart.
inline constexpr uint16_t kFlagResent = 1u << 1;
// check holds a MAC under the session's key (proto/packet_mac.h), not a CRC.
inline constexpr uint16_t kFlagMac = 1u << 2;

// kConnect / kConnectOk payload flags (their last u32): this side parses raw
// frames itself (the DPDK lane), so the peer must send it plain datagrams,
// never kernel-coalesced ones (UDP GSO), which a link that does not segment
// (a veth) would deliver as one oversized frame.
inline constexpr uint32_t kConnectRawFrames = 1u << 0;
// kConnectOk: the session is keyed; the body ends with the cookie its key
// was derived from, and the packet itself carries a MAC under that key.
inline constexpr uint32_t kConnectKeyed = 1u << 1;

struct PacketHeader {
  uint32_t magic = kMagic;
  uint8_t version = kVersion;
  PktType type = PktType::kRequest;
  uint16_t flags = 0;
  uint32_t session_id = 0;
  uint64_t request_id = 0;
  uint16_t pkt_num = 0;
  uint16_t pkt_count = 0;
  uint16_t generation = 0;
  uint16_t opcode = 0;
  uint32_t msg_len = 0;
  uint32_t frag_offset = 0;
  uint32_t payload_len = 0;
  uint64_t seq = 0;
  uint32_t crc = 0;                        // decoded: the CRC of a packet without kFlagMac
  std::array<uint8_t, kCheckSize> tag{};   // decoded: the MAC of one with it
};

enum class DecodeError : uint8_t {
  kOk = 0,
  kTruncated,    // shorter than a header, or than header + payload_len
  kBadMagic,
  kBadVersion,   // version outside [kMinVersion, kVersion]
  kBadType,
  kBadLength,    // payload_len/msg_len/frag_offset/pkt_num inconsistent
  kBadCrc,
  // Found by the session owner after decoding (packet_mac.h): a tag that
  // does not verify or a packet of a keyed session without one, and a
  // sequence number seen before or too old for the replay window.
  kBadMac,
  kReplayed,
  kCount
};
const char* decode_error_name(DecodeError e) noexcept;

// Writes the header for `payload` into out[0..kHeaderSize), computing the CRC
// over header and payload (a keyed packet: SessionMac::seal_header). h.payload_len must equal payload.size().
void encode_header(const PacketHeader& h, std::span<const uint8_t> payload, uint8_t* out) noexcept;
// Same for a payload sent in two parts (p1 then p2; h.payload_len must be
// their total): the CRC covers both without joining them.
void encode_header(const PacketHeader& h, std::span<const uint8_t> p1, std::span<const uint8_t> p2,
                   uint8_t* out) noexcept;
// The header's fields with the check zero (what a CRC or MAC covers).
void write_header_fields(const PacketHeader& h, uint8_t* out) noexcept;

// Parses and validates one datagram. On kOk, *h is filled and *payload views
// the payload inside `pkt`. A packet with kFlagMac passes with its tag in
// h->tag, unchecked: only its session's owner has the key. Version mismatches are reported as kBadVersion
// with h->version set so a server can answer kConnectReject.
DecodeError decode_packet(std::span<const uint8_t> pkt, PacketHeader* h,
                          std::span<const uint8_t>* payload) noexcept;

}  // namespace lanefs::proto

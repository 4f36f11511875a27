#include "proto/wire.h"

#include <cstring>

#include "common/crc32c.h"

namespace lanefs::proto {
namespace {

template <class T>
void put(uint8_t* out, size_t off, T v) { std::memcpy(out + off, &v, sizeof v); }
template <class T>
T get(const uint8_t* in, size_t off) { T v; std::memcpy(&v, in + off, sizeof v); return v; }

}  // namespace

void write_header_fields(const PacketHeader& h, uint8_t* out) noexcept {
  put(out, 0, h.magic);
  put(out, 4, h.version);
  put(out, 5, static_cast<uint8_t>(h.type));
  put(out, 6, h.flags);
  put(out, 8, h.session_id);
  put(out, 12, h.request_id);
  put(out, 20, h.pkt_num);
  put(out, 22, h.pkt_count);
  put(out, 24, h.generation);
  put(out, 26, h.opcode);
  put(out, 28, h.msg_len);
  put(out, 32, h.frag_offset);
  put(out, 36, h.payload_len);
  put(out, 40, h.seq);
  std::memset(out + kCheckOffset, 0, kCheckSize);
}

bool pkt_type_valid(uint8_t raw) noexcept { return raw >= 1 && raw <= 12; }

const char* decode_error_name(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::kOk: return "ok";
    case DecodeError::kTruncated: return "truncated";
    case DecodeError::kBadMagic: return "bad_magic";
    case DecodeError::kBadVersion: return "bad_version";
    case DecodeError::kBadType: return "bad_type";
    case DecodeError::kBadLength: return "bad_length";
    case DecodeError::kBadCrc: return "bad_crc";
    case DecodeError::kBadMac: return "bad_mac";
    case DecodeError::kReplayed: return "replayed";
    case DecodeError::kCount: break;
  }
  return "unknown";
}

void encode_header(const PacketHeader& h, std::span<const uint8_t> payload, uint8_t* out) noexcept {
  write_header_fields(h, out);
  uint32_t crc = crc32c_extend(0, out, kHeaderSize);
  crc = crc32c_extend(crc, payload.data(), payload.size());
  put(out, kCheckOffset, crc);
}

void encode_header(const PacketHeader& h, std::span<const uint8_t> p1, std::span<const uint8_t> p2,
                   uint8_t* out) noexcept {
  write_header_fields(h, out);
  uint32_t crc = crc32c_extend(0, out, kHeaderSize);
  crc = crc32c_extend(crc, p1.data(), p1.size());
  crc = crc32c_extend(crc, p2.data(), p2.size());
  put(out, kCheckOffset, crc);
}

DecodeError decode_packet(std::span<const uint8_t> pkt, PacketHeader* h,
                          std::span<const uint8_t>* payload) noexcept {
  if (pkt.size() < kHeaderSize) return DecodeError::kTruncated;
  const uint8_t* p = pkt.data();
  h->magic = get<uint32_t>(p, 0);
  if (h->magic != kMagic) return DecodeError::kBadMagic;
  h->version = get<uint8_t>(p, 4);
  uint8_t type = get<uint8_t>(p, 5);
  h->type = static_cast<PktType>(type);
  h->flags = get<uint16_t>(p, 6);
  h->session_id = get<uint32_t>(p, 8);
  h->request_id = get<uint64_t>(p, 12);
  h->pkt_num = get<uint16_t>(p, 20);
  h->pkt_count = get<uint16_t>(p, 22);
  h->generation = get<uint16_t>(p, 24);
  h->opcode = get<uint16_t>(p, 26);
  h->msg_len = get<uint32_t>(p, 28);
  h->frag_offset = get<uint32_t>(p, 32);
  h->payload_len = get<uint32_t>(p, 36);
  h->seq = get<uint64_t>(p, 40);
  if (pkt.size() - kHeaderSize < h->payload_len) return DecodeError::kTruncated;
  if (pkt.size() - kHeaderSize > h->payload_len) return DecodeError::kBadLength;
  if (h->flags & kFlagMac) {
    // Keyed: the session's owner checks the tag (and nothing of it acts
    // before that); a corrupted one fails there.
    h->crc = 0;
    std::memcpy(h->tag.data(), p + kCheckOffset, kCheckSize);
  } else {
    // CRC before interpreting version/type: a corrupted version byte must
    // read as corruption, not as a peer speaking another version.
    h->crc = get<uint32_t>(p, kCheckOffset);
    h->tag = {};
    uint8_t hdr[kHeaderSize];
    std::memcpy(hdr, p, kHeaderSize);
    std::memset(hdr + kCheckOffset, 0, kCheckSize);
    uint32_t crc = crc32c_extend(0, hdr, kHeaderSize);
    crc = crc32c_extend(crc, p + kHeaderSize, h->payload_len);
    if (crc != h->crc) return DecodeError::kBadCrc;
    for (uint32_t i = kCheckOffset + 4; i < kHeaderSize; ++i)  // the unused rest of check: zero
      if (p[i] != 0) return DecodeError::kBadCrc;
  }
  if (h->version < kMinVersion || h->version > kVersion) return DecodeError::kBadVersion;
  if (!pkt_type_valid(type)) return DecodeError::kBadType;
  if (h->type == PktType::kRequest || h->type == PktType::kResponse) {
    if (h->msg_len > kMaxMessage || h->pkt_count == 0 || h->pkt_num >= h->pkt_count ||
        uint64_t{h->frag_offset} + h->payload_len > h->msg_len)
      return DecodeError::kBadLength;
  }
  *payload = pkt.subspan(kHeaderSize, h->payload_len);
  return DecodeError::kOk;
}

}  // namespace lanefs::proto

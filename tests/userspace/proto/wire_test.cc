// Wire protocol v1 packet header: layout, round trips for every packet type,
// and the exact rejection reason for corrupted, truncated, oversized,
// wrong-version, wrong-type and inconsistent packets (decode order: length
// vs header, magic, payload length, CRC, version, type, fragment fields).
#include "proto/wire.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "proto/packet_mac.h"

namespace lanefs::proto {
namespace {

constexpr PktType kAllTypes[] = {
    PktType::kConnect,      PktType::kConnectOk, PktType::kConnectReject, PktType::kRequest,
    PktType::kCreditReturn, PktType::kRfr,       PktType::kResponse,      PktType::kSessionReset,
    PktType::kDisconnect,   PktType::kPing,      PktType::kPong,  PktType::kConnectChallenge};

std::vector<uint8_t> build(PacketHeader h, const std::vector<uint8_t>& payload) {
  h.payload_len = static_cast<uint32_t>(payload.size());
  std::vector<uint8_t> pkt(kHeaderSize + payload.size());
  if (!payload.empty()) std::memcpy(pkt.data() + kHeaderSize, payload.data(), payload.size());
  encode_header(h, payload, pkt.data());
  return pkt;
}

// Decodes from an exact-size heap copy so that a read past the end would be
// caught by sanitizers (and is at least never from our own slack).
DecodeError decode_exact(const uint8_t* data, size_t len, PacketHeader* h,
                         std::span<const uint8_t>* payload) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len) std::memcpy(copy.get(), data, len);
  return decode_packet({copy.get(), len}, h, payload);
}
DecodeError decode_exact(const std::vector<uint8_t>& pkt) {
  PacketHeader h;
  std::span<const uint8_t> payload;
  return decode_exact(pkt.data(), pkt.size(), &h, &payload);
}

// A request fragment with every field set to a distinctive value.
PacketHeader sample_header(PktType type, uint32_t payload_len) {
  PacketHeader h;
  h.type = type;
  h.flags = kFlagEcn;
  h.session_id = 0xA1B2C3D4u;
  h.request_id = 0x1122334455667788ull;
  h.pkt_num = 2;
  h.pkt_count = 5;
  h.generation = 0x0304;
  h.opcode = 0x0506;
  h.frag_offset = 1000;
  h.msg_len = 1000 + payload_len + 77;
  h.payload_len = payload_len;
  h.seq = 0x0102030405060708ull;
  return h;
}

std::vector<uint8_t> sample_payload(size_t n) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 37 + 11);
  return p;
}

TEST(Wire, HeaderLayoutMatchesSpec) {
  PacketHeader h = sample_header(PktType::kRequest, 3);
  const auto pkt = build(h, {7, 8, 9});
  ASSERT_EQ(pkt.size(), 67u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(pkt.data()), 4), "LNFS");
  EXPECT_EQ(pkt[4], kVersion);
  EXPECT_EQ(pkt[5], static_cast<uint8_t>(PktType::kRequest));
  auto le = [&](size_t off, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{pkt[off + i]} << (8 * i);
    return v;
  };
  EXPECT_EQ(le(6, 2), kFlagEcn);
  EXPECT_EQ(le(8, 4), 0xA1B2C3D4u);
  EXPECT_EQ(le(12, 8), 0x1122334455667788ull);
  EXPECT_EQ(le(20, 2), 2u);
  EXPECT_EQ(le(22, 2), 5u);
  EXPECT_EQ(le(24, 2), 0x0304u);
  EXPECT_EQ(le(26, 2), 0x0506u);
  EXPECT_EQ(le(28, 4), h.msg_len);
  EXPECT_EQ(le(32, 4), 1000u);
  EXPECT_EQ(le(36, 4), 3u);
  EXPECT_EQ(le(40, 8), 0x0102030405060708ull);
  // CRC32C over the header with the check field zeroed, then the payload;
  // the rest of the check field zero.
  std::vector<uint8_t> zeroed = pkt;
  std::memset(zeroed.data() + 48, 0, 16);
  EXPECT_EQ(le(48, 4), crc32c(zeroed.data(), zeroed.size()));
  EXPECT_EQ(le(52, 8), 0u);
  EXPECT_EQ(le(60, 4), 0u);
}

TEST(Wire, RoundTripsEveryFieldForEveryType) {
  for (PktType type : kAllTypes) {
    for (size_t plen : {size_t{0}, size_t{1}, size_t{100}}) {
      PacketHeader in = sample_header(type, static_cast<uint32_t>(plen));
      const auto payload = sample_payload(plen);
      const auto pkt = build(in, payload);
      PacketHeader out;
      out.magic = 0;
      out.version = 0;
      std::span<const uint8_t> view;
      ASSERT_EQ(decode_packet(pkt, &out, &view), DecodeError::kOk)
          << "type " << int(type) << " payload " << plen;
      EXPECT_EQ(out.magic, kMagic);
      EXPECT_EQ(out.version, kVersion);
      EXPECT_EQ(out.type, type);
      EXPECT_EQ(out.flags, in.flags);
      EXPECT_EQ(out.session_id, in.session_id);
      EXPECT_EQ(out.request_id, in.request_id);
      EXPECT_EQ(out.pkt_num, in.pkt_num);
      EXPECT_EQ(out.pkt_count, in.pkt_count);
      EXPECT_EQ(out.generation, in.generation);
      EXPECT_EQ(out.opcode, in.opcode);
      EXPECT_EQ(out.msg_len, in.msg_len);
      EXPECT_EQ(out.frag_offset, in.frag_offset);
      EXPECT_EQ(out.payload_len, plen);
      EXPECT_EQ(out.seq, in.seq);
      std::vector<uint8_t> zeroed(pkt);
      std::memset(zeroed.data() + 48, 0, 16);
      EXPECT_EQ(out.crc, crc32c(zeroed.data(), zeroed.size()));
      ASSERT_EQ(view.size(), plen);
      if (plen) {
        EXPECT_EQ(view.data(), pkt.data() + kHeaderSize);  // a view, not a copy
      }
      EXPECT_EQ(std::vector<uint8_t>(view.begin(), view.end()), payload);
    }
  }
}

TEST(Wire, ControlPacketsIgnoreFragmentFields) {
  // Credit returns and RFRs name a packet index of another message: pkt_num
  // may exceed pkt_count there.
  for (PktType type : {PktType::kCreditReturn, PktType::kRfr, PktType::kConnect}) {
    PacketHeader h;
    h.type = type;
    h.pkt_num = 9;
    h.pkt_count = 0;
    EXPECT_EQ(decode_exact(build(h, {})), DecodeError::kOk) << int(type);
  }
}

TEST(Wire, EverySingleBitFlipIsRejected) {
  const PacketHeader h = sample_header(PktType::kRequest, 8);
  const auto good = build(h, sample_payload(8));
  ASSERT_EQ(decode_exact(good), DecodeError::kOk);
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto pkt = good;
    const size_t byte = bit / 8;
    pkt[byte] ^= static_cast<uint8_t>(1u << (bit % 8));
    DecodeError want = DecodeError::kBadCrc;
    if (byte == 6 && bit % 8 == 2) {
      // kFlagMac: the packet now claims a MAC, which only its session can
      // check, and which no key verifies.
      PacketHeader out;
      std::span<const uint8_t> payload;
      ASSERT_EQ(decode_packet(pkt, &out, &payload), DecodeError::kOk);
      SessionMac mac(SessionKey{});
      EXPECT_FALSE(mac.verify(out, payload));
      continue;
    }
    if (byte < 4) {
      want = DecodeError::kBadMagic;  // magic is checked first
    } else if (byte >= 36 && byte < 40) {
      // payload_len is checked against the datagram size before the CRC.
      uint32_t plen;
      std::memcpy(&plen, pkt.data() + 36, 4);
      want = plen > 8 ? DecodeError::kTruncated : DecodeError::kBadLength;
    }
    EXPECT_EQ(decode_exact(pkt), want) << "bit " << bit << " (byte " << byte << ")";
  }
}

TEST(Wire, CorruptedVersionOrTypeReadsAsBadCrc) {
  for (size_t off : {size_t{4}, size_t{5}}) {
    auto pkt = build(sample_header(PktType::kPing, 0), {});
    pkt[off] = 0x7F;
    EXPECT_EQ(decode_exact(pkt), DecodeError::kBadCrc) << "offset " << off;
  }
}

TEST(Wire, TruncatedAtEveryLength) {
  const auto good = build(sample_header(PktType::kResponse, 20), sample_payload(20));
  for (size_t len = 0; len < good.size(); ++len) {
    PacketHeader h;
    std::span<const uint8_t> payload;
    EXPECT_EQ(decode_exact(good.data(), len, &h, &payload), DecodeError::kTruncated)
        << "length " << len;
  }
  // Below a header the magic is not even looked at.
  std::vector<uint8_t> junk(kHeaderSize - 1, 0xEE);
  EXPECT_EQ(decode_exact(junk), DecodeError::kTruncated);
}

TEST(Wire, TrailingBytesAreBadLength) {
  for (size_t extra : {size_t{1}, size_t{4}, size_t{1000}}) {
    auto pkt = build(sample_header(PktType::kRequest, 10), sample_payload(10));
    pkt.resize(pkt.size() + extra, 0);
    EXPECT_EQ(decode_exact(pkt), DecodeError::kBadLength) << extra;
  }
}

TEST(Wire, OtherVersionWithValidCrcIsBadVersion) {
  for (uint8_t version : {uint8_t{0}, uint8_t(kMinVersion - 1), uint8_t(kVersion + 1), uint8_t{255}}) {
    PacketHeader in = sample_header(PktType::kConnect, 4);
    in.version = version;
    const auto pkt = build(in, sample_payload(4));
    PacketHeader out;
    std::span<const uint8_t> payload;
    EXPECT_EQ(decode_packet(pkt, &out, &payload), DecodeError::kBadVersion) << int(version);
    // The version is reported so a server can answer kConnectReject(kVersion).
    EXPECT_EQ(out.version, version);
    EXPECT_EQ(out.type, PktType::kConnect);
    EXPECT_EQ(out.request_id, in.request_id);
  }
}

TEST(Wire, UnknownTypeIsBadType) {
  for (int raw : {0, 13, 14, 128, 255}) {
    PacketHeader h = sample_header(PktType::kPing, 0);
    h.type = static_cast<PktType>(raw);
    EXPECT_EQ(decode_exact(build(h, {})), DecodeError::kBadType) << raw;
    EXPECT_FALSE(pkt_type_valid(static_cast<uint8_t>(raw)));
  }
  for (PktType t : kAllTypes) EXPECT_TRUE(pkt_type_valid(static_cast<uint8_t>(t)));
}

TEST(Wire, InconsistentFragmentFieldsAreBadLength) {
  for (PktType type : {PktType::kRequest, PktType::kResponse}) {
    const auto payload = sample_payload(16);
    auto expect = [&](PacketHeader h, DecodeError want, const char* what) {
      EXPECT_EQ(decode_exact(build(h, payload)), want) << what << " type " << int(type);
    };
    PacketHeader base = sample_header(type, 16);
    expect(base, DecodeError::kOk, "baseline");

    PacketHeader h = base;
    h.pkt_num = h.pkt_count;
    expect(h, DecodeError::kBadLength, "pkt_num == pkt_count");
    h.pkt_num = 0xFFFF;
    expect(h, DecodeError::kBadLength, "pkt_num > pkt_count");
    h = base;
    h.pkt_num = 0;
    h.pkt_count = 0;
    expect(h, DecodeError::kBadLength, "pkt_count == 0");

    h = base;
    h.frag_offset = 0;
    h.msg_len = kMaxMessage + 1;
    h.pkt_num = 0;
    expect(h, DecodeError::kBadLength, "msg_len > kMaxMessage");
    h.msg_len = 0xFFFFFFFFu;
    expect(h, DecodeError::kBadLength, "msg_len = UINT32_MAX");
    h.msg_len = kMaxMessage;
    h.frag_offset = kMaxMessage - 16;
    expect(h, DecodeError::kOk, "last fragment of a maximal message");

    h = base;
    h.msg_len = h.frag_offset + 15;
    expect(h, DecodeError::kBadLength, "frag_offset + payload_len = msg_len + 1");
    h.msg_len = h.frag_offset + 16;
    expect(h, DecodeError::kOk, "frag_offset + payload_len = msg_len");
    h.frag_offset = 0xFFFFFFF8u;  // would wrap in 32-bit arithmetic
    h.msg_len = 8;
    expect(h, DecodeError::kBadLength, "frag_offset overflow");
  }
}

TEST(Wire, DecodeErrorNamesAreDistinct) {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(DecodeError::kCount); ++i) {
    std::string n = decode_error_name(static_cast<DecodeError>(i));
    EXPECT_NE(n, "unknown") << i;
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_STREQ(decode_error_name(DecodeError::kBadCrc), "bad_crc");
}

TEST(Wire, RandomBytesNeverDecode) {
  std::mt19937_64 rng(12345);
  std::array<int, static_cast<size_t>(DecodeError::kCount)> seen{};
  for (int i = 0; i < 100000; ++i) {
    const size_t len = rng() % 200;
    std::vector<uint8_t> pkt(len);
    for (auto& b : pkt) b = static_cast<uint8_t>(rng());
    // Half the inputs get a valid magic and a self-consistent payload_len so
    // they reach the CRC check instead of all stopping at the magic.
    if (i % 2 == 0 && len >= kHeaderSize) {
      std::memcpy(pkt.data(), &kMagic, 4);
      const uint32_t plen = static_cast<uint32_t>(len - kHeaderSize);
      std::memcpy(pkt.data() + 36, &plen, 4);
    }
    const DecodeError r = decode_exact(pkt);
    if (r == DecodeError::kOk) {
      // Only a packet claiming a MAC passes decoding unchecked; its session
      // then refuses it.
      PacketHeader out;
      std::span<const uint8_t> payload;
      ASSERT_EQ(decode_packet(pkt, &out, &payload), DecodeError::kOk);
      ASSERT_TRUE(out.flags & kFlagMac) << "random input " << i << " decoded";
      static SessionMac mac(SessionKey{});
      ASSERT_FALSE(mac.verify(out, payload)) << "random input " << i << " verified";
      ++seen[static_cast<size_t>(DecodeError::kBadMac)];
      continue;
    }
    ASSERT_LT(static_cast<int>(r), static_cast<int>(DecodeError::kCount));
    ++seen[static_cast<size_t>(r)];
  }
  EXPECT_GT(seen[static_cast<size_t>(DecodeError::kTruncated)], 0);
  EXPECT_GT(seen[static_cast<size_t>(DecodeError::kBadMagic)], 0);
  EXPECT_GT(seen[static_cast<size_t>(DecodeError::kBadCrc)], 0);
}

}  // namespace
}  // namespace lanefs::proto

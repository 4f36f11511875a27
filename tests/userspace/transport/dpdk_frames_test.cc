// The DPDK lane's pure parts: ARP packets and table, IPv4/UDP framing.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "transport/dpdk/frames.h"

namespace lanefs::transport::dpdk {
namespace {

constexpr Mac kA = {0x02, 0, 0, 0, 0, 0x0a}, kB = {0x02, 0, 0, 0, 0, 0x0b};
constexpr uint32_t kIpA = 0xc0000201, kIpB = 0xc0000202;

TEST(DpdkFrames, ArpRequestAndReplyRoundTrip) {
  uint8_t f[kArpFrame];
  build_arp(1, kBroadcastMac, kA, kIpA, Mac{}, kIpB, f);
  // Ethernet: broadcast destination, our source, type 0x0806.
  EXPECT_EQ(f[0], 0xff);
  EXPECT_EQ(f[11], 0x0a);
  EXPECT_EQ(f[12], 0x08);
  EXPECT_EQ(f[13], 0x06);
  auto p = parse_arp(f);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->op, 1);
  EXPECT_EQ(p->sender_mac, kA);
  EXPECT_EQ(p->sender_ip, kIpA);
  EXPECT_EQ(p->target_ip, kIpB);
  build_arp(2, kA, kB, kIpB, kA, kIpA, f);
  p = parse_arp(f);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->op, 2);
  EXPECT_EQ(p->sender_mac, kB);
  EXPECT_EQ(p->target_mac, kA);
  // Not ARP, or truncated: rejected.
  f[13] = 0x00;
  EXPECT_FALSE(parse_arp(f).has_value());
  EXPECT_FALSE(parse_arp(std::span<const uint8_t>(f, 20)).has_value());
}

TEST(DpdkFrames, ArpTableLearnExpireRefreshAndChange) {
  ArpTable t(1000, 100);  // ttl 1000 ns, retry 100 ns
  EXPECT_FALSE(t.lookup(kIpB, 0).has_value());
  EXPECT_TRUE(t.should_request(kIpB, 0));
  EXPECT_FALSE(t.should_request(kIpB, 50));  // within the retry period
  EXPECT_TRUE(t.should_request(kIpB, 150));
  EXPECT_TRUE(t.learn(kIpB, kB, 200));
  EXPECT_EQ(t.lookup(kIpB, 300), kB);
  EXPECT_FALSE(t.should_request(kIpB, 300));
  EXPECT_FALSE(t.learn(kIpB, kB, 300));  // same MAC: not a change
  EXPECT_FALSE(t.should_refresh(kIpB, 400));
  EXPECT_TRUE(t.should_refresh(kIpB, 800));  // past half its lifetime
  EXPECT_FALSE(t.should_refresh(kIpB, 850));
  EXPECT_EQ(t.lookup(kIpB, 1299), kB);
  EXPECT_FALSE(t.lookup(kIpB, 1300).has_value());  // expired
  EXPECT_TRUE(t.learn(kIpB, kA, 1400));            // the peer's MAC changed
  EXPECT_EQ(t.lookup(kIpB, 1401), kA);
}

TEST(DpdkFrames, UdpHeadersAndChecksum) {
  std::vector<uint8_t> f(kUdpFrameOverhead + 5);
  build_udp_headers(kB, kA, kIpA, kIpB, 40000, 14000, 5, 7, f.data());
  std::memcpy(f.data() + kUdpFrameOverhead, "hello", 5);
  // The IPv4 header checksums to zero, total length 33, DF set.
  EXPECT_EQ(ipv4_checksum(f.data() + kEthHeader, kIpHeader), 0);
  EXPECT_EQ(f[kEthHeader + 2] << 8 | f[kEthHeader + 3], 33);
  auto u = parse_udp(f);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->src_ip, kIpA);
  EXPECT_EQ(u->dst_ip, kIpB);
  EXPECT_EQ(u->src_port, 40000);
  EXPECT_EQ(u->dst_port, 14000);
  EXPECT_EQ(std::string(u->payload.begin(), u->payload.end()), "hello");
  // A known header (RFC 1071 example style): checksum of a fixed header.
  const uint8_t hdr[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                           0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(ipv4_checksum(hdr, 20), 0xb861);
  // Corrupt header or a fragment: rejected.
  auto bad = f;
  bad[kEthHeader + 8] ^= 1;
  EXPECT_FALSE(parse_udp(bad).has_value());
  bad = f;
  bad[kEthHeader + 6] = 0x20;  // more fragments
  EXPECT_FALSE(parse_udp(bad).has_value());
}

TEST(DpdkFrames, ArpTableProbesSilentPeers) {
  constexpr uint64_t kMs = 1'000'000;
  ArpTable t(60'000 * kMs, 100 * kMs, 500 * kMs);
  EXPECT_FALSE(t.should_probe_silent(kIpB, 0));  // unknown: a request, not a probe
  t.learn(kIpB, kB, 1000 * kMs);
  EXPECT_FALSE(t.should_probe_silent(kIpB, 1400 * kMs));  // heard 400 ms ago
  t.heard(kIpB, 1400 * kMs);
  EXPECT_FALSE(t.should_probe_silent(kIpB, 1800 * kMs));
  EXPECT_TRUE(t.should_probe_silent(kIpB, 1950 * kMs));   // silent for 550 ms
  EXPECT_FALSE(t.should_probe_silent(kIpB, 2000 * kMs));  // at most once per 500 ms
  EXPECT_TRUE(t.should_probe_silent(kIpB, 2500 * kMs));
  // The old MAC stays in use while probing.
  EXPECT_EQ(t.lookup(kIpB, 2500 * kMs), kB);
  t.heard(kIpB, 2600 * kMs);
  EXPECT_FALSE(t.should_probe_silent(kIpB, 3000 * kMs));
}

// The one's-complement sum over pseudo-header, UDP header (with the
// checksum) and payload of a correct datagram is 0xffff (RFC 768/1071).
uint16_t verify_sum(const uint8_t* f, uint32_t payload_len) {
  auto g16 = [](const uint8_t* p) { return uint32_t(p[0] << 8 | p[1]); };
  const uint8_t* ip = f + kEthHeader;
  uint32_t ulen = kUdpHeader + payload_len;
  uint32_t sum = g16(ip + 12) + g16(ip + 14) + g16(ip + 16) + g16(ip + 18) + 17 + ulen;
  const uint8_t* u = ip + kIpHeader;
  for (uint32_t i = 0; i + 1 < ulen; i += 2) sum += g16(u + i);
  if (ulen % 2) sum += uint32_t(u[ulen - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

TEST(DpdkFrames, UdpChecksumVerifiesForOddAndEvenPayloads) {
  for (uint32_t len : {0u, 1u, 7u, 64u, 1431u, 1472u}) {
    std::vector<uint8_t> f(kUdpFrameOverhead + len);
    build_udp_headers(kB, kA, kIpA, kIpB, 40000, 14000, len, 9, f.data());
    for (uint32_t i = 0; i < len; ++i) f[kUdpFrameOverhead + i] = uint8_t(i * 37 + 11);
    uint16_t c = udp_checksum(f.data(), len);
    EXPECT_NE(c, 0) << len;  // 0 means "no checksum" on IPv4
    f[kEthHeader + kIpHeader + 6] = uint8_t(c >> 8);
    f[kEthHeader + kIpHeader + 7] = uint8_t(c);
    EXPECT_EQ(verify_sum(f.data(), len), 0xffff) << "payload " << len;
    if (len > 0) {
      f[kUdpFrameOverhead + len / 2] ^= 1;  // one flipped bit is caught
      EXPECT_NE(verify_sum(f.data(), len), 0xffff) << "payload " << len;
    }
  }
  // On receive: a valid UDP checksum passes, none (0) passes, a damaged
  // datagram is refused unless the NIC has already checked it.
  for (uint32_t len : {1u, 64u, 1472u}) {
    std::vector<uint8_t> f(kUdpFrameOverhead + len);
    build_udp_headers(kB, kA, kIpA, kIpB, 40000, 14000, len, 9, f.data());
    for (uint32_t i = 0; i < len; ++i) f[kUdpFrameOverhead + i] = uint8_t(i * 13 + 5);
    EXPECT_TRUE(parse_udp(f).has_value()) << "no checksum, payload " << len;
    uint16_t c = udp_checksum(f.data(), len);
    f[kEthHeader + kIpHeader + 6] = uint8_t(c >> 8);
    f[kEthHeader + kIpHeader + 7] = uint8_t(c);
    EXPECT_TRUE(parse_udp(f).has_value()) << "valid checksum, payload " << len;
    f[kUdpFrameOverhead + len - 1] ^= 0x40;
    EXPECT_FALSE(parse_udp(f).has_value()) << "damaged payload " << len;
    EXPECT_TRUE(parse_udp(f, false).has_value()) << "checked by the NIC, payload " << len;
  }
  // With IP checksum offload the header checksum field is left for the NIC.
  uint8_t h[kUdpFrameOverhead];
  build_udp_headers(kB, kA, kIpA, kIpB, 1, 2, 10, 3, h, true);
  EXPECT_EQ(h[kEthHeader + 10], 0);
  EXPECT_EQ(h[kEthHeader + 11], 0);
  // The pseudo-header sum for offload: src, dst, protocol, length.
  EXPECT_EQ(udp_pseudo_header_sum(0xc0000201, 0xc0000202, 18),
            uint16_t((0xc000 + 0x0201 + 0xc000 + 0x0202 + 17 + 18) % 0xffff));
}

}  // namespace
}  // namespace lanefs::transport::dpdk

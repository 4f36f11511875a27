#include "transport/dpdk/frames.h"

#include <bit>
#include <cstdio>
#include <cstring>
#include <string>

namespace lanefs::transport::dpdk {
namespace {

void put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
void put32(uint8_t* p, uint32_t v) { put16(p, uint16_t(v >> 16)); put16(p + 2, uint16_t(v)); }
uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) { return uint32_t(get16(p)) << 16 | get16(p + 2); }
constexpr uint16_t kEtherIpv4 = 0x0800, kEtherArp = 0x0806;

void put_eth(uint8_t* p, const Mac& dst, const Mac& src, uint16_t type) {
  std::memcpy(p, dst.data(), 6);
  std::memcpy(p + 6, src.data(), 6);
  put16(p + 12, type);
}

}  // namespace

std::string mac_string(const Mac& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

void build_arp(uint16_t op, const Mac& eth_dst, const Mac& src_mac, uint32_t src_ip,
               const Mac& target_mac, uint32_t target_ip, uint8_t out[kArpFrame]) {
  put_eth(out, eth_dst, src_mac, kEtherArp);
  uint8_t* a = out + kEthHeader;
  put16(a, 1);           // hardware: Ethernet
  put16(a + 2, 0x0800);  // protocol: IPv4
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, op);
  std::memcpy(a + 8, src_mac.data(), 6);
  put32(a + 14, src_ip);
  std::memcpy(a + 18, target_mac.data(), 6);
  put32(a + 24, target_ip);
}

std::optional<ArpPacket> parse_arp(std::span<const uint8_t> f) {
  if (f.size() < kArpFrame || get16(f.data() + 12) != kEtherArp) return std::nullopt;
  const uint8_t* a = f.data() + kEthHeader;
  if (get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) return std::nullopt;
  ArpPacket p;
  p.op = get16(a + 6);
  if (p.op != 1 && p.op != 2) return std::nullopt;
  std::memcpy(p.sender_mac.data(), a + 8, 6);
  p.sender_ip = get32(a + 14);
  std::memcpy(p.target_mac.data(), a + 18, 6);
  p.target_ip = get32(a + 24);
  return p;
}

std::optional<Mac> ArpTable::lookup(uint32_t ip, uint64_t now) const {
  auto it = entries_.find(ip);
  if (it == entries_.end() || !it->second.valid || now - it->second.learned_ns >= ttl_) return std::nullopt;
  return it->second.mac;
}

bool ArpTable::learn(uint32_t ip, const Mac& mac, uint64_t now) {
  auto& e = entries_[ip];
  bool changed = !e.valid || e.mac != mac;
  e.mac = mac;
  e.valid = true;
  e.learned_ns = now;
  e.heard_ns = now;
  e.requested = false;
  return changed;
}

bool ArpTable::should_request(uint32_t ip, uint64_t now) {
  auto& e = entries_[ip];
  if (e.valid && now - e.learned_ns < ttl_) return false;
  if (e.requested && now - e.requested_ns < retry_) return false;
  e.requested = true;
  e.requested_ns = now;
  return true;
}

bool ArpTable::should_refresh(uint32_t ip, uint64_t now) {
  auto it = entries_.find(ip);
  if (it == entries_.end() || !it->second.valid) return false;
  auto& e = it->second;
  if (now - e.learned_ns < ttl_ / 2) return false;
  if (e.requested && now - e.requested_ns < retry_) return false;
  e.requested = true;
  e.requested_ns = now;
  return true;
}

void ArpTable::heard(uint32_t ip, uint64_t now) {
  auto it = entries_.find(ip);
  if (it != entries_.end()) it->second.heard_ns = now;
}

bool ArpTable::should_probe_silent(uint32_t ip, uint64_t now) {
  auto it = entries_.find(ip);
  if (it == entries_.end() || !it->second.valid) return false;
  auto& e = it->second;
  if (now - e.heard_ns < silent_ || now - e.probed_ns < silent_) return false;
  e.probed_ns = now;
  return true;
}

uint16_t ipv4_checksum(const uint8_t* h, uint32_t len) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < len; i += 2) sum += get16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

void build_udp_headers(const Mac& dst, const Mac& src, uint32_t src_ip, uint32_t dst_ip,
                       uint16_t src_port, uint16_t dst_port, uint32_t payload_len, uint16_t ip_id,
                       uint8_t out[kUdpFrameOverhead], bool ip_cksum_offload) {
  put_eth(out, dst, src, kEtherIpv4);
  uint8_t* ip = out + kEthHeader;
  ip[0] = 0x45;  // IPv4, 20-byte header
  ip[1] = 0;
  put16(ip + 2, uint16_t(kIpHeader + kUdpHeader + payload_len));
  put16(ip + 4, ip_id);
  put16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = 17;  // UDP
  put16(ip + 10, 0);
  put32(ip + 12, src_ip);
  put32(ip + 16, dst_ip);
  if (!ip_cksum_offload) put16(ip + 10, ipv4_checksum(ip, kIpHeader));
  uint8_t* u = ip + kIpHeader;
  put16(u, src_port);
  put16(u + 2, dst_port);
  put16(u + 4, uint16_t(kUdpHeader + payload_len));
  put16(u + 6, 0);
}

namespace {
uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}
// RFC 1071 sum of p[0..len) as big-endian 16-bit words, added to `sum`.
// The one's-complement sum does not care about byte order until the end
// (RFC 1071 §2(B)): add native 32-bit words into 64 bits, fold, then swap
// on a little-endian host. Every datagram is summed once on send.
uint32_t sum16(const uint8_t* p, uint32_t len, uint32_t sum) {
  uint64_t acc = 0;
  uint32_t i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    acc += w;
  }
  if (i + 2 <= len) {
    uint16_t w;
    std::memcpy(&w, p + i, 2);
    acc += w;
    i += 2;
  }
  if (i < len) {  // odd length: the last byte is the high byte of a zero-padded word
    uint8_t last[2] = {p[i], 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    acc += w;
  }
  uint16_t folded = fold(acc);
  if constexpr (std::endian::native == std::endian::little) folded = uint16_t(folded << 8 | folded >> 8);
  return sum + folded;
}
}  // namespace

uint16_t udp_pseudo_header_sum(uint32_t src_ip, uint32_t dst_ip, uint32_t udp_len) {
  uint32_t sum = (src_ip >> 16) + (src_ip & 0xffff) + (dst_ip >> 16) + (dst_ip & 0xffff);
  return fold(sum + 17 + udp_len);
}

uint16_t udp_checksum(const uint8_t* frame, uint32_t payload_len) {
  const uint8_t* ip = frame + kEthHeader;
  const uint8_t* u = ip + kIpHeader;
  uint32_t ulen = kUdpHeader + payload_len;
  uint32_t sum = udp_pseudo_header_sum(get32(ip + 12), get32(ip + 16), ulen);
  sum = sum16(u, 6, sum);  // the header without its checksum field
  sum = sum16(u + kUdpHeader, payload_len, sum);
  uint16_t c = uint16_t(~fold(sum));
  return c == 0 ? 0xffff : c;
}

std::optional<UdpView> parse_udp(std::span<const uint8_t> f, bool verify_checksum) {
  if (f.size() < kUdpFrameOverhead || get16(f.data() + 12) != kEtherIpv4) return std::nullopt;
  const uint8_t* ip = f.data() + kEthHeader;
  uint32_t ihl = uint32_t(ip[0] & 0x0f) * 4;
  if ((ip[0] >> 4) != 4 || ihl < kIpHeader || ip[9] != 17) return std::nullopt;
  uint32_t total = get16(ip + 2);
  if (total < ihl + kUdpHeader || kEthHeader + total > f.size()) return std::nullopt;
  if ((get16(ip + 6) & 0x3fff) != 0) return std::nullopt;  // a fragment
  if (ipv4_checksum(ip, ihl) != 0) return std::nullopt;
  const uint8_t* u = ip + ihl;
  uint32_t ulen = get16(u + 4);
  if (ulen < kUdpHeader || ulen > total - ihl) return std::nullopt;
  // Checksum 0: the sender computed none (allowed on IPv4).
  if (verify_checksum && get16(u + 6) != 0) {
    uint32_t sum = udp_pseudo_header_sum(get32(ip + 12), get32(ip + 16), ulen);
    if (fold(sum16(u, ulen, sum)) != 0xffff) return std::nullopt;
  }
  UdpView v;
  v.src_ip = get32(ip + 12);
  v.dst_ip = get32(ip + 16);
  v.src_port = get16(u);
  v.dst_port = get16(u + 2);
  v.payload = std::span<const uint8_t>(u + kUdpHeader, ulen - kUdpHeader);
  return v;
}

}  // namespace lanefs::transport::dpdk

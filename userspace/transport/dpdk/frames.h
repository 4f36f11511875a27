// The DPDK lane's own Ethernet / IPv4 / UDP / ARP handling, as pure
// functions and a pure ARP table (no DPDK calls, unit-tested on their own).
//
// The lane never uses the kernel's ARP table: ArpTable learns from ARP
// replies and requests seen on the port, expires entries after `ttl`, asks
// again (at most every `retry`) for peers it needs, and notices a peer whose
// MAC changed (the entry is simply replaced and reported).
//
// Threading: plain values; an ArpTable is guarded by its owner (the port).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

namespace lanefs::transport::dpdk {

using Mac = std::array<uint8_t, 6>;
inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr uint32_t kEthHeader = 14, kIpHeader = 20, kUdpHeader = 8, kArpFrame = 42;
inline constexpr uint32_t kUdpFrameOverhead = kEthHeader + kIpHeader + kUdpHeader;  // 42

std::string mac_string(const Mac& m);

// ---- ARP
struct ArpPacket {
  uint16_t op = 0;  // 1 request, 2 reply
  Mac sender_mac{};
  uint32_t sender_ip = 0;  // host order
  Mac target_mac{};
  uint32_t target_ip = 0;
};
// Writes a 42-byte Ethernet+ARP frame. A request goes to broadcast (or to
// eth_dst for a unicast refresh); a gratuitous ARP is a request for our own
// IP with target ip == sender ip.
void build_arp(uint16_t op, const Mac& eth_dst, const Mac& src_mac, uint32_t src_ip,
               const Mac& target_mac, uint32_t target_ip, uint8_t out[kArpFrame]);
// Parses an Ethernet frame carrying IPv4-over-Ethernet ARP.
std::optional<ArpPacket> parse_arp(std::span<const uint8_t> frame);

class ArpTable {
 public:
  ArpTable(uint64_t ttl_ns = 60'000'000'000ull, uint64_t retry_ns = 100'000'000ull,
           uint64_t silent_ns = 500'000'000ull)
      : ttl_(ttl_ns), retry_(retry_ns), silent_(silent_ns) {}
  // The MAC of ip if known and not expired.
  std::optional<Mac> lookup(uint32_t ip, uint64_t now_ns) const;
  // Records ip -> mac; returns true when it is new or the MAC changed.
  bool learn(uint32_t ip, const Mac& mac, uint64_t now_ns);
  // True when a request for ip should go out now (unknown or expired, and
  // none sent within retry); records that one is being sent.
  bool should_request(uint32_t ip, uint64_t now_ns);
  // True when a known entry is past half its lifetime: refresh it (without
  // dropping traffic meanwhile) — at most once per retry period.
  bool should_refresh(uint32_t ip, uint64_t now_ns);
  // Records that ip sent us something (any frame): it is alive at its MAC.
  void heard(uint32_t ip, uint64_t now_ns);
  // True when we keep sending to a known ip that has sent nothing for
  // `silent` (its MAC may have changed without an ARP, e.g. a replaced
  // NIC): ask again by broadcast, at most once per `silent`, while still
  // using the old MAC.
  bool should_probe_silent(uint32_t ip, uint64_t now_ns);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Mac mac{};
    bool valid = false, requested = false;
    uint64_t learned_ns = 0, requested_ns = 0, heard_ns = 0, probed_ns = 0;
  };
  uint64_t ttl_, retry_, silent_;
  std::unordered_map<uint32_t, Entry> entries_;
};

// ---- IPv4 / UDP
uint16_t ipv4_checksum(const uint8_t* header, uint32_t len);
// Writes Ethernet + IPv4 + UDP headers (42 bytes) for a payload of
// payload_len bytes. The IPv4 header checksum is computed unless
// `ip_cksum_offload` (the NIC fills it; the field is left 0). The UDP
// checksum field is left 0: fill it with udp_checksum() once the payload is
// in place, or leave it to the NIC's offload (which needs the pseudo-header
// sum: udp_pseudo_header_sum()).
void build_udp_headers(const Mac& dst, const Mac& src, uint32_t src_ip, uint32_t dst_ip,
                       uint16_t src_port, uint16_t dst_port, uint32_t payload_len, uint16_t ip_id,
                       uint8_t out[kUdpFrameOverhead], bool ip_cksum_offload = false);
// The UDP checksum (RFC 768, with the IPv4 pseudo-header) of a frame built
// by build_udp_headers whose payload follows the headers; never 0 (0xffff
// stands for a computed 0, as the RFC asks).
uint16_t udp_checksum(const uint8_t* frame, uint32_t payload_len);
// The folded, not inverted, pseudo-header sum an offloading NIC starts from.
uint16_t udp_pseudo_header_sum(uint32_t src_ip, uint32_t dst_ip, uint32_t udp_len);
struct UdpView {
  uint32_t src_ip = 0, dst_ip = 0;
  uint16_t src_port = 0, dst_port = 0;
  std::span<const uint8_t> payload;
};
// An unfragmented IPv4/UDP datagram with a valid IP header checksum,
// consistent lengths and, when `verify_checksum` (false: the NIC checked
// it), a valid UDP checksum or none (0); nullopt for anything else.
std::optional<UdpView> parse_udp(std::span<const uint8_t> frame, bool verify_checksum = true);

}  // namespace lanefs::transport::dpdk

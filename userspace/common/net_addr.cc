#include "common/net_addr.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <optional>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <vector>

namespace lanefs {

std::string NetAddr::ip_string() const {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{htonl(ip)};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string NetAddr::to_string() const { return ip_string() + ":" + std::to_string(port); }

Result<NetAddr> parse_net_addr(std::string_view text, uint16_t default_port) {
  std::string_view host = text;
  uint16_t port = default_port;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    auto ps = text.substr(colon + 1);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), v);
    if (ec != std::errc() || p != ps.data() + ps.size() || v == 0 || v > 65535)
      return make_error(Errc::kInvalid, "bad port in address '" + std::string(text) + "'");
    port = static_cast<uint16_t>(v);
  }
  if (port == 0)
    return make_error(Errc::kInvalid, "address '" + std::string(text) + "' needs a port");
  in_addr a{};
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &a) != 1)
    return make_error(Errc::kInvalid, "bad IPv4 address '" + std::string(text) + "'");
  return NetAddr{ntohl(a.s_addr), port};
}

Result<std::vector<NetAddr>> parse_net_addr_list(std::string_view text, uint16_t default_port) {
  std::vector<NetAddr> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    LANEFS_ASSIGN_OR_RETURN(auto a, parse_net_addr(item, default_port));
    out.push_back(a);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (out.empty()) return make_error(Errc::kInvalid, "empty address list");
  return out;
}

uint32_t source_ip_for(const NetAddr& peer) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(peer.ip);
  a.sin_port = htons(peer.port ? peer.port : 9);
  uint32_t ip = 0;
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t len = sizeof a;
    if (getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) ip = ntohl(a.sin_addr.s_addr);
  }
  close(s);
  return ip;
}

Result<IfaceAddr> interface_ipv4(const std::string& dev) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return sys_error("getifaddrs", errno);
  std::optional<IfaceAddr> found;
  bool exists = false;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_name == nullptr || dev != a->ifa_name) continue;
    exists = true;
    if (found || a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    IfaceAddr r;
    r.ip = ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    uint32_t mask = a->ifa_netmask ? ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr) : ~0u;
    r.prefix_bits = static_cast<uint8_t>(__builtin_popcount(mask));
    found = r;
  }
  freeifaddrs(list);
  if (!found)
    return make_error(Errc::kNotFound, exists ? "network interface " + dev + " has no IPv4 address"
                                              : "no network interface named " + dev);
  return *found;
}

std::string interface_with(uint32_t ip) {
  ifaddrs* list = nullptr;
  if (ip == 0 || getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
    if (a->ifa_name == nullptr || a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if (ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr) == ip) found = a->ifa_name;
  }
  freeifaddrs(list);
  return found;
}

}  // namespace lanefs

#include "transport/net_spec.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>

namespace lanefs::transport {
namespace {

bool is_pci_address(std::string_view d) {
  // 0000:03:00.0
  if (d.size() != 12 || d[4] != ':' || d[7] != ':' || d[10] != '.') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11})
    if (!std::isxdigit(static_cast<unsigned char>(d[i]))) return false;
  return true;
}

std::string read_link_base(const std::string& path) {
  char buf[512];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  return s.substr(s.rfind('/') + 1);
}

Result<std::string> netdev_pci(const std::string& sysfs, const std::string& dev, std::string_view given) {
  std::string pci = read_link_base(sysfs + "/class/net/" + dev + "/device");
  if (pci.empty() || !is_pci_address(pci))
    return make_error(Errc::kInvalid, "net=" + std::string(given) + ": " + dev +
                                          " is not a PCI network device (for virtual devices use "
                                          "tap:<iface>, afpacket:<iface> or memif:<socket>)");
  return pci;
}

Result<std::string> mac_netdev(const std::string& sysfs, const std::string& mac) {
  DIR* d = opendir((sysfs + "/class/net").c_str());
  if (!d) return make_error(Errc::kNotFound, "cannot list " + sysfs + "/class/net");
  std::string found;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(sysfs + "/class/net/" + e->d_name + "/address");
    std::string a;
    std::getline(in, a);
    if (strcasecmp(a.c_str(), mac.c_str()) == 0) found = e->d_name;
  }
  closedir(d);
  if (found.empty()) return make_error(Errc::kNotFound, "no network device has MAC " + mac);
  return found;
}

// DPDK device names must be unique and start with the driver's name.
std::string vdev_suffix(std::string_view s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

}  // namespace

std::string NetSpec::to_string() const {
  if (udp) return "udp";
  std::string s = device;
  for (size_t i = 0; i < ips.size(); ++i) s += (i ? "+" : "/") + NetAddr{ips[i], 0}.ip_string();
  s += "/" + std::to_string(prefix_bits);
  if (gateway) s += "/" + NetAddr{gateway, 0}.ip_string();
  return s;
}

Result<NetSpec> parse_net_spec(std::string_view text, const std::string& sysfs, std::string_view option) {
  NetSpec n;
  if (text == "udp") return n;
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalid, std::string(option) + std::string(text) +
                                          (option.ends_with("=") ? "': " : ": ") + why);
  };
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    size_t slash = text.find('/', at);
    // memif sockets are paths: the device part may contain '/'; it ends
    // where an IPv4 address starts.
    parts.emplace_back(text.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at));
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  // Re-join leading parts until the next part parses as an IPv4 address.
  in_addr a{};
  auto first_ip = [&](const std::string& p) {
    return inet_pton(AF_INET, p.substr(0, p.find('+')).c_str(), &a) == 1;
  };
  size_t ip_at = 1;
  while (ip_at < parts.size() && !first_ip(parts[ip_at])) ++ip_at;
  if (ip_at >= parts.size()) return bad("expected <device>/<ip>[+<ip>...]/<bits>[/<gw>] or udp");
  std::string dev = parts[0];
  for (size_t i = 1; i < ip_at; ++i) dev += "/" + parts[i];
  if (dev.empty()) return bad("no device");
  n.udp = false;
  n.device = dev;
  for (size_t at = 0; at <= parts[ip_at].size();) {
    size_t plus = parts[ip_at].find('+', at);
    std::string one = parts[ip_at].substr(at, plus == std::string::npos ? std::string::npos : plus - at);
    if (inet_pton(AF_INET, one.c_str(), &a) != 1) return bad("bad address '" + one + "'");
    uint32_t ip = ntohl(a.s_addr);
    if (std::find(n.ips.begin(), n.ips.end(), ip) != n.ips.end()) return bad("address " + one + " given twice");
    n.ips.push_back(ip);
    if (plus == std::string::npos) break;
    at = plus + 1;
  }
  if (ip_at + 1 >= parts.size()) return bad("missing /<bits> after the address");
  unsigned bits = 0;
  const std::string& bs = parts[ip_at + 1];
  auto [bp, bec] = std::from_chars(bs.data(), bs.data() + bs.size(), bits);
  if (bs.empty() || bec != std::errc() || bp != bs.data() + bs.size() || bits < 1 || bits > 32)
    return bad("bad prefix length '" + bs + "'");
  n.prefix_bits = static_cast<uint8_t>(bits);
  if (ip_at + 2 < parts.size()) {
    if (inet_pton(AF_INET, parts[ip_at + 2].c_str(), &a) != 1) return bad("bad gateway '" + parts[ip_at + 2] + "'");
    n.gateway = ntohl(a.s_addr);
  }
  if (ip_at + 3 < parts.size()) return bad("too many parts");
  if (dev.rfind("tap:", 0) == 0) {
    n.dpdk_port = "net_tap_" + vdev_suffix(dev.substr(4)) + ",iface=" + dev.substr(4);
  } else if (dev.rfind("afpacket:", 0) == 0) {
    n.dpdk_port = "net_af_packet_" + vdev_suffix(dev.substr(9)) + ",iface=" + dev.substr(9);
  } else if (dev.rfind("memif:", 0) == 0) {
    std::string sock = dev.substr(6), role = "client";
    if (sock.size() > 7 && sock.ends_with(":server")) {
      sock.resize(sock.size() - 7);
      role = "server";
    }
    if (sock.empty() || sock[0] != '/') return bad("memif needs an absolute socket path");
    n.dpdk_port = "net_memif_" + vdev_suffix(sock) + ",role=" + role + ",socket=" + sock;
  } else if (is_pci_address(dev)) {
    n.dpdk_port = dev;
  } else if (std::count(dev.begin(), dev.end(), ':') == 5) {
    LANEFS_ASSIGN_OR_RETURN(std::string nd, mac_netdev(sysfs, dev));
    LANEFS_ASSIGN_OR_RETURN(n.dpdk_port, netdev_pci(sysfs, nd, text));
  } else {
    LANEFS_ASSIGN_OR_RETURN(n.dpdk_port, netdev_pci(sysfs, dev, text));
  }
  return n;
}


bool hugepages_cover(uint32_t mb, const std::string& sysfs) {
  DIR* d = opendir((sysfs + "/kernel/mm/hugepages").c_str());
  if (!d) return false;
  uint64_t free_kb = 0;
  while (dirent* e = readdir(d)) {
    unsigned long kb = 0;  // "hugepages-2048kB"
    if (std::sscanf(e->d_name, "hugepages-%lukB", &kb) != 1) continue;
    std::ifstream in(sysfs + "/kernel/mm/hugepages/" + e->d_name + "/free_hugepages");
    uint64_t n = 0;
    if (in >> n) free_kb += n * kb;
  }
  closedir(d);
  return free_kb >= uint64_t{mb} * 1024;
}

DpdkConfig NetSpec::dpdk_config(uint32_t ip, bool interrupt_mode) const {
  DpdkConfig d;
  d.port = dpdk_port;
  d.ip = ip;
  d.prefix_bits = prefix_bits;
  d.gateway = gateway;
  d.interrupt_mode = interrupt_mode;
  return d;
}

}  // namespace lanefs::transport

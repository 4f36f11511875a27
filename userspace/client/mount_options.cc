#include "client/mount_options.h"

#include <arpa/inet.h>

#include <dirent.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>

namespace lanefs::client {
namespace {

Result<uint32_t> parse_uint(std::string_view key, std::string_view v, uint32_t min, uint32_t max) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < min || n > max)
    return make_error(Errc::kInvalid, "mount option '" + std::string(key) + "': expected a number " +
                                          std::to_string(min) + ".." + std::to_string(max) + ", got '" +
                                          std::string(v) + "'");
  return static_cast<uint32_t>(n);
}

// mount(8)/fstab options that are not lanefs's business.
bool generic_option(std::string_view k) {
  static const std::set<std::string_view> kGeneric = {
      "defaults", "_netdev", "nofail", "auto", "noauto", "user", "users", "nouser", "owner",
      "group", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "atime", "noatime",
      "relatime", "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime",
      "async", "lazytime", "nolazytime", "silent", "loud", "nofail"};
  return kGeneric.count(k) || k.starts_with("x-") || k.starts_with("comment=");
}

}  // namespace

std::string_view cache_mode_name(CacheMode m) {
  switch (m) {
    case CacheMode::kWriteCache: return "writecache";
    case CacheMode::kReadCache: return "readcache";
    case CacheMode::kForceDirect: return "forcedirect";
  }
  return "?";
}

std::string MountOptions::to_string() const {
  std::string s(cache_mode_name(cache));
  if (sync_on_close) s += ",sync_on_close";
  s += read_only ? ",ro" : ",rw";
  s += ",readahead_kb=" + std::to_string(readahead_kb);
  s += ",dentry_max_age_positive=" + std::to_string(dentry_max_age_positive_ms);
  s += ",dentry_max_age_negative=" + std::to_string(dentry_max_age_negative_ms);
  s += ",connect_timeout_secs=" + std::to_string(connect_timeout_secs);
  s += ",response_timeout_secs=" + std::to_string(response_timeout_secs);
  s += ",remove_after_secs=" + std::to_string(remove_after_secs);
  s += ",net=" + net.to_string();
  if (!net.udp) s += dedicated_full ? ",dedicated_mode=full" : ",dedicated_mode=none";
  if (!key_file.empty()) s += ",key_file=" + key_file;
  s += ",rdma_read_min=" + std::to_string(rdma_read_min);
  s += ",rdma_write_min=" + std::to_string(rdma_write_min);
  if (local_ip != 0) s += ",local_ip=" + NetAddr{local_ip, 0}.ip_string();
  return s;
}

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
  std::string s = device + "/" + NetAddr{ip, 0}.ip_string() + "/" + std::to_string(prefix_bits);
  if (gateway) s += "/" + NetAddr{gateway, 0}.ip_string();
  return s;
}

Result<NetSpec> parse_net_spec(std::string_view text, const std::string& sysfs) {
  NetSpec n;
  if (text == "udp") return n;
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalid, "mount option 'net=" + std::string(text) + "': " + why);
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
  size_t ip_at = 1;
  while (ip_at < parts.size() && inet_pton(AF_INET, parts[ip_at].c_str(), &a) != 1) ++ip_at;
  if (ip_at >= parts.size()) return bad("expected <device>/<ip>/<bits>[/<gw>] or udp");
  std::string dev = parts[0];
  for (size_t i = 1; i < ip_at; ++i) dev += "/" + parts[i];
  if (dev.empty()) return bad("no device");
  n.udp = false;
  n.device = dev;
  n.ip = ntohl(a.s_addr);
  if (ip_at + 1 >= parts.size()) return bad("missing /<bits> after the address");
  auto bits = parse_uint("net", parts[ip_at + 1], 1, 32);
  if (!bits.ok()) return bad("bad prefix length '" + parts[ip_at + 1] + "'");
  n.prefix_bits = static_cast<uint8_t>(*bits);
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

std::string MountSource::to_string() const {
  std::string s;
  for (size_t i = 0; i < backends.size(); ++i) s += (i ? "," : "") + backends[i].to_string();
  return s + "/" + fs_name;
}

Result<MountSource> parse_mount_source(std::string_view text) {
  auto slash = text.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
    return make_error(Errc::kInvalid, "mount source '" + std::string(text) +
                                          "' must look like HOST[:PORT][,HOST[:PORT]...]/FSNAME");
  MountSource src;
  src.fs_name = std::string(text.substr(slash + 1));
  if (src.fs_name.find('/') != std::string::npos)
    return make_error(Errc::kInvalid, "bad filesystem name in mount source '" + std::string(text) + "'");
  auto addrs = parse_net_addr_list(text.substr(0, slash), kDefaultBackendPort);
  if (!addrs.ok()) return make_error(Errc::kInvalid, "mount source: " + addrs.error().to_string());
  src.backends = std::move(*addrs);
  return src;
}

Result<MountOptions> parse_mount_options(std::string_view text) {
  MountOptions o;
  std::string_view mode_set;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view val = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    bool has_val = eq != std::string_view::npos;
    auto flag_only = [&]() -> Status {
      if (has_val) return make_error(Errc::kInvalid, "mount option '" + std::string(key) + "' takes no value");
      return ok_status();
    };
    auto need_val = [&]() -> Status {
      if (!has_val) return make_error(Errc::kInvalid, "mount option '" + std::string(key) + "' needs a value");
      return ok_status();
    };
    if (key == "writecache" || key == "readcache" || key == "forcedirect") {
      LANEFS_TRY(flag_only());
      if (!mode_set.empty() && mode_set != key)
        return make_error(Errc::kInvalid, "mount options '" + std::string(mode_set) + "' and '" +
                                              std::string(key) + "' conflict");
      mode_set = key;
      o.cache = key == "writecache" ? CacheMode::kWriteCache
                : key == "readcache" ? CacheMode::kReadCache
                                     : CacheMode::kForceDirect;
    } else if (key == "sync_on_close") {
      LANEFS_TRY(flag_only());
      o.sync_on_close = true;
    } else if (key == "ro" || key == "rw") {
      LANEFS_TRY(flag_only());
      o.read_only = key == "ro";
    } else if (key == "readahead_kb") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.readahead_kb, parse_uint(key, val, 0, 1 << 20));
    } else if (key == "dentry_max_age_positive") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.dentry_max_age_positive_ms, parse_uint(key, val, 0, 86'400'000));
    } else if (key == "dentry_max_age_negative") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.dentry_max_age_negative_ms, parse_uint(key, val, 0, 86'400'000));
    } else if (key == "connect_timeout_secs") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.connect_timeout_secs, parse_uint(key, val, 1, 3600));
    } else if (key == "response_timeout_secs") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.response_timeout_secs, parse_uint(key, val, 1, 86400));
    } else if (key == "remove_after_secs") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.remove_after_secs, parse_uint(key, val, 1, 86400 * 30));
    } else if (key == "net") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.net, parse_net_spec(val));
    } else if (key == "dedicated_mode") {
      LANEFS_TRY(need_val());
      if (val != "full" && val != "none")
        return make_error(Errc::kInvalid, "mount option 'dedicated_mode=" + std::string(val) + "': expected full or none");
      o.dedicated_full = val == "full";
    } else if (key == "key_file") {
      LANEFS_TRY(need_val());
      // The frontend reads the file, from its own working directory.
      if (!val.starts_with('/'))
        return make_error(Errc::kInvalid, "mount option 'key_file=" + std::string(val) + "': needs an absolute path");
      o.key_file = std::string(val);
    } else if (key == "rdma_read_min" || key == "rdma_write_min") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(uint32_t v, parse_uint(key, val, 0, 64u << 20));
      (key == "rdma_read_min" ? o.rdma_read_min : o.rdma_write_min) = v;
    } else if (key == "local_ip") {
      LANEFS_TRY(need_val());
      in_addr a{};
      if (inet_pton(AF_INET, std::string(val).c_str(), &a) != 1 || a.s_addr == 0)
        return make_error(Errc::kInvalid, "mount option 'local_ip=" + std::string(val) + "': expected an IPv4 address");
      o.local_ip = ntohl(a.s_addr);
    } else if (generic_option(key) || generic_option(item)) {
      continue;
    } else {
      return make_error(Errc::kInvalid, "unknown mount option '" + std::string(key) + "'");
    }
  }
  return o;
}

}  // namespace lanefs::client

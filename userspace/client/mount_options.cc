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

std::string_view fuse_channel_name(FuseChannel c) {
  switch (c) {
    case FuseChannel::kAuto: return "auto";
    case FuseChannel::kUring: return "uring";
    case FuseChannel::kClassic: return "classic";
  }
  return "?";
}

std::string_view client_kind_name(ClientKind c) {
  switch (c) {
    case ClientKind::kAuto: return "auto";
    case ClientKind::kKernel: return "kernel";
    case ClientKind::kFuse: return "fuse";
  }
  return "?";
}

std::string MountOptions::to_string() const {
  std::string s(cache_mode_name(cache));
  if (sync_on_close) s += ",sync_on_close";
  s += read_only ? ",ro" : ",rw";
  s += ",readahead_kb=" + std::to_string(readahead_kb);
  s += ",client=" + std::string(client_kind_name(client));
  s += ",fuse_channel=" + std::string(fuse_channel_name(fuse_channel));
  s += ",fuse_queue_depth=" + std::to_string(fuse_queue_depth);
  s += ",dentry_max_age_positive=" + std::to_string(dentry_max_age_positive_ms);
  s += ",dentry_max_age_negative=" + std::to_string(dentry_max_age_negative_ms);
  s += ",connect_timeout_secs=" + std::to_string(connect_timeout_secs);
  s += ",response_timeout_secs=" + std::to_string(response_timeout_secs);
  s += ",remove_after_secs=" + std::to_string(remove_after_secs);
  s += ",net=" + net.to_string();
  for (const auto& n : extra_nets) s += ",net=" + n.to_string();
  for (const auto& d : ha_devs) s += ",net:ha=" + d;
  if (!net.udp) {
    s += dedicated_full ? ",dedicated_mode=full" : ",dedicated_mode=none";
    s += ",num_cores=" + std::to_string(num_cores);
    for (int c : cores) s += ",core=" + std::to_string(c);
    s += ",memory_mb=" + std::to_string(memory_mb);
    s += ",dpdk_base_memory_mb=" + std::to_string(dpdk_base_memory_mb);
  }
  if (!key_file.empty()) s += ",key_file=" + key_file;
  if (!auth_token_path.empty()) s += ",auth_token_path=" + auth_token_path;
  s += ",rdma_read_min=" + std::to_string(rdma_read_min);
  s += ",rdma_write_min=" + std::to_string(rdma_write_min);
  if (local_ip != 0) s += ",local_ip=" + NetAddr{local_ip, 0}.ip_string();
  return s;
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
  bool num_cores_set = false;
  bool net_set = false;
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
    } else if (key == "client") {
      LANEFS_TRY(need_val());
      if (val == "auto") o.client = ClientKind::kAuto;
      else if (val == "kernel") o.client = ClientKind::kKernel;
      else if (val == "fuse") o.client = ClientKind::kFuse;
      else
        return make_error(Errc::kInvalid, "mount option client='" + std::string(val) +
                                              "': expected auto, kernel or fuse");
    } else if (key == "fuse_channel") {
      LANEFS_TRY(need_val());
      if (val == "auto") o.fuse_channel = FuseChannel::kAuto;
      else if (val == "uring") o.fuse_channel = FuseChannel::kUring;
      else if (val == "classic") o.fuse_channel = FuseChannel::kClassic;
      else
        return make_error(Errc::kInvalid, "mount option fuse_channel='" + std::string(val) +
                                              "': expected auto, uring or classic");
    } else if (key == "fuse_queue_depth") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.fuse_queue_depth, parse_uint(key, val, 1, 64));
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
      LANEFS_ASSIGN_OR_RETURN(auto n, parse_net_spec(val));
      if (!net_set) {
        o.net = n;
        net_set = true;
      } else if (o.net.udp || n.udp) {
        return make_error(Errc::kInvalid, "mount option 'net=" + std::string(val) +
                                              "': net=udp cannot be combined with other net= options");
      } else {
        for (const auto& have : o.extra_nets)
          if (have.dpdk_port == n.dpdk_port) return make_error(Errc::kInvalid, "mount option 'net=" + std::string(val) + "' given twice");
        if (n.dpdk_port == o.net.dpdk_port)
          return make_error(Errc::kInvalid, "mount option 'net=" + std::string(val) + "' given twice");
        o.extra_nets.push_back(n);
      }
    } else if (key == "dedicated_mode") {
      LANEFS_TRY(need_val());
      if (val != "full" && val != "none")
        return make_error(Errc::kInvalid, "mount option 'dedicated_mode=" + std::string(val) + "': expected full or none");
      o.dedicated_full = val == "full";
    } else if (key == "num_cores") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(o.num_cores, parse_uint(key, val, 1, 16));
      num_cores_set = true;
    } else if (key == "core") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(uint32_t c, parse_uint(key, val, 0, 4095));
      if (std::find(o.cores.begin(), o.cores.end(), int(c)) != o.cores.end())
        return make_error(Errc::kInvalid, "mount option 'core=" + std::string(val) + "' given twice");
      o.cores.push_back(int(c));
    } else if (key == "memory_mb" || key == "dpdk_base_memory_mb") {
      LANEFS_TRY(need_val());
      LANEFS_ASSIGN_OR_RETURN(uint32_t v, parse_uint(key, val, key == "memory_mb" ? 16 : 0, 1 << 20));
      (key == "memory_mb" ? o.memory_mb : o.dpdk_base_memory_mb) = v;
    } else if (key == "net:ha") {
      LANEFS_TRY(need_val());
      std::string dev(val);
      if (dev.empty() || dev.size() > 15 || dev.find_first_of("/ ,=") != std::string::npos)
        return make_error(Errc::kInvalid, "mount option 'net:ha=" + dev + "': expected a network interface name");
      if (std::find(o.ha_devs.begin(), o.ha_devs.end(), dev) != o.ha_devs.end())
        return make_error(Errc::kInvalid, "mount option 'net:ha=" + dev + "' given twice");
      o.ha_devs.push_back(dev);
    } else if (key == "key_file") {
      LANEFS_TRY(need_val());
      // The frontend reads the file, from its own working directory.
      if (!val.starts_with('/'))
        return make_error(Errc::kInvalid, "mount option 'key_file=" + std::string(val) + "': needs an absolute path");
      o.key_file = std::string(val);
    } else if (key == "auth_token_path") {
      LANEFS_TRY(need_val());
      if (!val.starts_with('/'))
        return make_error(Errc::kInvalid, "mount option 'auth_token_path=" + std::string(val) +
                                              "': needs an absolute path");
      o.auth_token_path = std::string(val);
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
  // core= pins the cores: their count is the core count unless num_cores
  // says otherwise (then they must agree).
  if (!o.cores.empty()) {
    if (num_cores_set && o.num_cores != o.cores.size())
      return make_error(Errc::kInvalid, "mount options 'num_cores=" + std::to_string(o.num_cores) + "' and " +
                                            std::to_string(o.cores.size()) + " 'core=' disagree");
    o.num_cores = static_cast<uint32_t>(o.cores.size());
  }
  if (!o.net.udp && !o.ha_devs.empty())
    return make_error(Errc::kInvalid, "mount options 'net=" + o.net.to_string() +
                                          "' and 'net:ha=': net:ha= names kernel interfaces for the UDP lane; "
                                          "on the DPDK lane give each NIC its own net=");
  if (!o.extra_nets.empty()) {
    // HA on the DPDK lane: every port has one address, shared by the cores.
    if (o.net.ips.size() > 1)
      return make_error(Errc::kInvalid, "mount option 'net=" + o.net.to_string() +
                                            "': with several net= (HA legs) each port takes one shared address");
    for (const auto& n : o.extra_nets)
      if (n.ips.size() > 1)
        return make_error(Errc::kInvalid, "mount option 'net=" + n.to_string() +
                                              "': with several net= (HA legs) each port takes one shared address");
  }
  if (!o.net.udp && o.net.ips.size() > 1 && o.net.ips.size() != o.num_cores)
    return make_error(Errc::kInvalid, "mount option 'net=" + o.net.to_string() + "': " +
                                          std::to_string(o.net.ips.size()) + " addresses for " +
                                          std::to_string(o.num_cores) +
                                          " cores (give one shared address or one per core)");
  return o;
}

}  // namespace lanefs::client

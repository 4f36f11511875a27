#include "cli/net_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>

#include "cli/format.h"

namespace lanefs::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The one table of driver capabilities (WEKA's NIC guidelines). Shared-IP
// drivers use one IP for management and data; the others need one data IP
// per frontend core, which Intel physical functions get from SR-IOV VFs.
constexpr DriverCaps kDriverTable[] = {
    {.driver = "ena",
     .description = "AWS ENA",
     .dpdk = true,
     .rx_interrupts = false,
     .shared_ip = true,
     .notes = "DPDK with dedicated cores (polling) only: no RX interrupts"},
    {.driver = "mlx4_core", .description = "Mellanox ConnectX-3", .notes = "UDP only"},
    {.driver = "mlx4_en", .description = "Mellanox ConnectX-3", .notes = "UDP only"},
    {.driver = "mlx5_core",
     .description = "Mellanox ConnectX-4 or later",
     .dpdk = true,
     .rx_interrupts = true,
     .shared_ip = true,
     .notes = "DPDK polling and RX interrupts; RDMA-capable"},
    {.driver = "ixgbe",
     .description = "Intel 82599/X540/X550",
     .dpdk = true,
     .rx_interrupts = true,
     .needs_vfs = true,
     .notes = "DPDK on SR-IOV VFs (non-shared IP); RX interrupts"},
    {.driver = "i40e",
     .description = "Intel X710/XL710",
     .dpdk = true,
     .rx_interrupts = true,
     .needs_vfs = true,
     .notes = "DPDK on SR-IOV VFs (non-shared IP); RX interrupts"},
    {.driver = "ice",
     .description = "Intel E810",
     .dpdk = true,
     .rx_interrupts = true,
     .needs_vfs = true,
     .notes = "DPDK on SR-IOV VFs (non-shared IP); RX interrupts"},
    {.driver = "iavf",
     .description = "Intel adaptive virtual function",
     .dpdk = true,
     .rx_interrupts = true,
     .is_vf = true,
     .notes = "SR-IOV VF: DPDK takes it over (non-shared IP); RX interrupts"},
    {.driver = "ixgbevf",
     .description = "Intel 82599 virtual function",
     .dpdk = true,
     .rx_interrupts = true,
     .is_vf = true,
     .notes = "SR-IOV VF: DPDK takes it over (non-shared IP); RX interrupts"},
    {.driver = "virtio_net",
     .description = "virtio",
     .dpdk = true,
     .rx_interrupts = true,
     .notes = "DPDK polling and RX interrupts (non-shared IP)"},
    {.driver = "virtio-pci",
     .description = "virtio",
     .dpdk = true,
     .rx_interrupts = true,
     .notes = "DPDK polling and RX interrupts (non-shared IP)"},
    {.driver = "vmxnet3",
     .description = "VMware VMXNET3",
     .dpdk = true,
     .rx_interrupts = true,
     .notes = "DPDK polling; RX interrupts (non-shared IP)"},
};

std::optional<std::string> read_attr(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

template <class T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

template <class T>
std::optional<T> read_number(const fs::path& p) {
  auto s = read_attr(p);
  if (!s) return std::nullopt;
  return parse_number<T>(*s);
}

std::string link_base(const fs::path& p) {
  std::error_code ec;
  fs::path t = fs::read_symlink(p, ec);
  return ec ? "" : t.filename().string();
}

std::string resolved(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::canonical(p, ec);
  return ec ? "" : r.string();
}

// "0000:03:00.0" (the domain may be longer than four digits).
bool is_pci_address(std::string_view s) {
  size_t c1 = s.find(':'), c2 = s.rfind(':'), dot = s.rfind('.');
  if (c1 == std::string_view::npos || c1 == c2 || dot == std::string_view::npos || dot < c2 ||
      s.size() - c2 != 5 || c2 - c1 != 3)
    return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (i != c1 && i != c2 && i != dot && !std::isxdigit(static_cast<unsigned char>(s[i])))
      return false;
  return true;
}

Hugepages read_hugepages(const fs::path& dir) {
  Hugepages h;
  std::error_code ec;
  h.present = fs::is_directory(dir, ec);
  h.total = read_number<uint64_t>(dir / "nr_hugepages").value_or(0);
  h.free = read_number<uint64_t>(dir / "free_hugepages").value_or(0);
  return h;
}

std::vector<RdmaDevice> read_rdma_devices(const fs::path& root) {
  std::vector<RdmaDevice> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "class/infiniband", ec)) {
    RdmaDevice d;
    d.name = e.path().filename().string();
    d.link_layer = read_attr(e.path() / "ports/1/link_layer").value_or("");
    d.device_path = resolved(e.path() / "device");
    // Soft-RoCE (rxe) has no device link; it names its netdev instead.
    d.netdev = read_attr(e.path() / "parent")
                   .value_or(read_attr(e.path() / "ports/1/gid_attrs/ndevs/0").value_or(""));
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

NicInfo read_nic(const fs::path& dir, const HostInfo& host) {
  NicInfo n;
  n.name = dir.filename().string();
  n.mac = read_attr(dir / "address").value_or("");
  n.operstate = read_attr(dir / "operstate").value_or("");
  n.mtu = read_number<uint32_t>(dir / "mtu");
  if (auto s = read_number<int64_t>(dir / "speed"); s && *s > 0) n.speed_mbps = s;
  std::error_code ec;
  if (!fs::exists(dir / "device", ec)) {
    n.is_virtual = true;
  } else {
    n.driver = link_base(dir / "device/driver");
    fs::path dev = resolved(dir / "device");
    // virtio netdevs hang off a virtio<N> device below their PCI function.
    if (!is_pci_address(dev.filename().string()) &&
        is_pci_address(dev.parent_path().filename().string()))
      dev = dev.parent_path();
    n.device_path = dev.string();
    n.pci = dev.filename().string();
    n.sriov_totalvfs = read_number<uint32_t>(dev / "sriov_totalvfs");
    n.sriov_numvfs = read_number<uint32_t>(dev / "sriov_numvfs");
  }
  for (const auto& r : host.rdma) {
    bool same = r.device_path.empty() ? (!r.netdev.empty() && r.netdev == n.name)
                                      : (!n.device_path.empty() && r.device_path == n.device_path);
    if (same) n.rdma.push_back(r);
  }
  return n;
}

std::string plural(uint64_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// What keeps a DPDK-capable NIC on UDP in every dedicated_mode.
std::vector<std::string> dpdk_blockers(const NicInfo& nic, const DriverCaps& caps,
                                       const HostInfo& host, const NetCheckOptions& o) {
  std::vector<std::string> out;
  if (caps.needs_vfs) {
    std::string numvfs = "/sys/class/net/" + nic.name + "/device/sriov_numvfs";
    uint32_t total = nic.sriov_totalvfs.value_or(0), num = nic.sriov_numvfs.value_or(0);
    if (total == 0) {
      out.push_back("no SR-IOV on " + nic.pci +
                    ": non-shared-IP (one IP per frontend core) needs VFs: kernel UDP");
    } else if (total < o.cores) {
      out.push_back(fmt::format(
          "SR-IOV: the NIC has at most {}, fewer than the {}: non-shared-IP needs one VF per core",
          plural(total, "VF", "VFs"), plural(o.cores, "dedicated core", "dedicated cores")));
    } else if (num == 0) {
      out.push_back(fmt::format(
          "SR-IOV supported but off: non-shared-IP (one IP per frontend core) needs VFs: "
          "echo {} > {}",
          o.cores, numvfs));
    } else if (num < o.cores) {
      out.push_back(fmt::format(
          "SR-IOV: {} for {}: non-shared-IP needs one VF per core: echo 0 > {} && echo {} > {}",
          plural(num, "VF", "VFs"), plural(o.cores, "dedicated core", "dedicated cores"), numvfs,
          o.cores, numvfs));
    }
  }
  uint64_t need = uint64_t{o.dpdk_memory_mb} << 20, have = host.hugepage_bytes();
  if (have < need) {
    uint64_t pages = host.huge_2m.total + (need - have + (2ull << 20) - 1) / (2ull << 20);
    std::string hint = fmt::format(
        "reserve {}×2MiB (echo {} > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)", pages,
        pages);
    if (have == 0)
      out.push_back("no hugepages reserved: " + hint);
    else
      out.push_back(fmt::format("only {} MiB of hugepages reserved, the DPDK lane needs {} MiB: {}",
                                have >> 20, o.dpdk_memory_mb, hint));
  }
  return out;
}

}  // namespace

std::string_view net_lane_name(NetLane lane) {
  switch (lane) {
    case NetLane::kUdp:
      return "UDP";
    case NetLane::kDpdkPolling:
      return "DPDK polling";
    case NetLane::kDpdkInterrupt:
      return "DPDK rx-interrupt";
  }
  return "UDP";
}

const DriverCaps* find_driver(std::string_view driver) {
  for (const auto& d : kDriverTable)
    if (d.driver == driver) return &d;
  return nullptr;
}

std::optional<uint32_t> count_cpu_list(std::string_view list) {
  uint32_t n = 0;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    size_t dash = item.find('-');
    auto lo = parse_number<uint32_t>(item.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : parse_number<uint32_t>(item.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) return std::nullopt;
    n += *hi - *lo + 1;
  }
  return n;
}

NicDecision decide(const NicInfo& nic, const HostInfo& host, const NetCheckOptions& o) {
  NicDecision d;
  auto& why = d.reasons;
  const DriverCaps* caps = nic.is_virtual || nic.driver.empty() ? nullptr : find_driver(nic.driver);
  std::vector<std::string> blockers;
  std::string none_blocker;  // what keeps dedicated_mode=none off DPDK
  bool dpdk = false;
  if (nic.is_virtual) {
    why.push_back("no PCI device (virtual interface): kernel UDP");
  } else if (nic.driver.empty()) {
    why.push_back("no driver bound to " + nic.pci + ": kernel UDP");
  } else if (caps == nullptr) {
    why.push_back("driver " + nic.driver + " is not known to lanefs' DPDK table");
  } else {
    why.push_back(fmt::format("{} ({}): {}", caps->driver, caps->description, caps->notes));
    d.shared_ip = caps->shared_ip;
    dpdk = caps->dpdk;
    if (dpdk) blockers = dpdk_blockers(nic, *caps, host, o);
    if (dpdk && !caps->rx_interrupts)
      none_blocker = fmt::format(
          "{} ({}) has no RX interrupts: dedicated_mode=none (CPU-optimized) uses kernel UDP",
          caps->driver, caps->description);
  }
  if (nic.operstate != "up")
    why.push_back("operstate is " + (nic.operstate.empty() ? "unreadable" : nic.operstate) +
                  ", not up: the link must be up to carry traffic");
  bool dpdk_ok = dpdk && blockers.empty();
  d.lane_full = dpdk_ok ? NetLane::kDpdkPolling : NetLane::kUdp;
  d.lane_none = dpdk_ok && none_blocker.empty() ? NetLane::kDpdkInterrupt : NetLane::kUdp;
  d.lane = o.dedicated_full ? d.lane_full : d.lane_none;
  why.insert(why.end(), blockers.begin(), blockers.end());
  if (!none_blocker.empty()) why.push_back(none_blocker);
  if (d.lane == NetLane::kDpdkPolling)
    why.push_back("DPDK polling on " + plural(o.cores, "dedicated core", "dedicated cores") +
                  " (dedicated_mode=full)");
  else if (d.lane == NetLane::kDpdkInterrupt)
    why.push_back("DPDK with RX interrupts (dedicated_mode=none): sleeps when idle");
  if (d.lane != NetLane::kUdp && caps != nullptr) {
    if (caps->shared_ip) {
      why.push_back("shared IP: one IP for management and data");
    } else {
      d.ips_needed = 1 + o.cores;
      why.push_back(fmt::format("non-shared IP: 1 management IP + {} (one per frontend core)",
                                plural(o.cores, "data IP", "data IPs")));
    }
  }
  if (host.mixed_fabric) {
    why.push_back("mixed InfiniBand/Ethernet: no RDMA");
  } else if (!nic.rdma.empty()) {
    d.rdma = true;
    std::vector<std::string> names;
    for (const auto& r : nic.rdma)
      names.push_back(r.name + " (" + (r.link_layer.empty() ? "?" : r.link_layer) + ")");
    why.push_back("RDMA: " + join(names, ", ") +
                  " on the same device: large reads and writes may use RDMA");
  } else {
    why.push_back("no RDMA device on this NIC");
  }
  return d;
}

Result<NetReport> inspect_host(const std::string& sysfs_root, const NetCheckOptions& o) {
  if (o.cores == 0) return make_error(Errc::kInvalid, "dedicated cores must be at least 1");
  std::error_code ec;
  fs::path root(sysfs_root);
  if (!fs::is_directory(root, ec))
    return make_error(Errc::kInvalid, "sysfs root " + sysfs_root + " is not a directory");
  if (!fs::is_directory(root / "class/net", ec))
    return make_error(Errc::kInvalid, "sysfs root " + sysfs_root + " has no class/net");
  NetReport r;
  r.options = o;
  HostInfo& h = r.host;
  h.sysfs_root = sysfs_root;
  h.cpus_online = read_attr(root / "devices/system/cpu/online").value_or("");
  h.cores_online = count_cpu_list(h.cpus_online).value_or(0);
  h.huge_2m = read_hugepages(root / "kernel/mm/hugepages/hugepages-2048kB");
  h.huge_1g = read_hugepages(root / "kernel/mm/hugepages/hugepages-1048576kB");
  h.rdma = read_rdma_devices(root);
  auto has = [&](std::string_view ll) {
    return std::any_of(h.rdma.begin(), h.rdma.end(),
                       [&](const auto& d) { return d.link_layer == ll; });
  };
  h.mixed_fabric = has("InfiniBand") && has("Ethernet");

  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root / "class/net", ec)) {
    // Skips lo and plain files such as bonding_masters.
    std::error_code dir_ec;
    if (e.path().filename() != "lo" && fs::is_directory(e.path(), dir_ec)) dirs.push_back(e.path());
  }
  if (ec)
    return make_error(Errc::kIo, "list " + (root / "class/net").string() + ": " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    NicReport n;
    n.nic = read_nic(dir, h);
    n.decision = decide(n.nic, h, o);
    r.nics.push_back(std::move(n));
  }
  return r;
}

std::string format_text(const NetReport& r) {
  const HostInfo& h = r.host;
  std::string out;
  out += fmt::format("host: {} online ({})\n",
                     h.cores_online ? plural(h.cores_online, "core", "cores") : "? cores",
                     h.cpus_online.empty() ? "unreadable" : h.cpus_online);
  auto huge = [](const Hugepages& p) {
    return p.present ? fmt::format("{} reserved, {} free", p.total, p.free) : "not available";
  };
  out += "hugepages: 2MiB " + huge(h.huge_2m) + "; 1GiB " + huge(h.huge_1g) + "\n";
  std::vector<std::string> devs;
  for (const auto& d : h.rdma)
    devs.push_back(d.name + " (" + (d.link_layer.empty() ? "?" : d.link_layer) + ")");
  out += "RDMA devices: " + (devs.empty() ? std::string("none") : join(devs, ", ")) +
         (h.mixed_fabric ? " - mixed InfiniBand/Ethernet: no RDMA" : "") + "\n";
  out += fmt::format("checked for: {}, dedicated_mode={}, {} MiB of DPDK memory\n\n",
                     plural(r.options.cores, "dedicated core", "dedicated cores"),
                     r.options.dedicated_full ? "full" : "none", r.options.dpdk_memory_mb);
  if (r.nics.empty()) return out + "no network interfaces besides lo\n";

  std::vector<std::vector<std::string>> rows;
  for (const auto& [n, d] : r.nics) {
    std::string sriov = "-";
    if (n.sriov_totalvfs && *n.sriov_totalvfs > 0)
      sriov = fmt::format("{}/{} VFs", n.sriov_numvfs.value_or(0), *n.sriov_totalvfs);
    std::string rdma = "no";
    if (d.rdma)
      rdma = n.rdma.front().name + " (" + n.rdma.front().link_layer + ")";
    else if (!n.rdma.empty())
      rdma = "off";
    rows.push_back({n.name, n.is_virtual ? "(virtual)" : (n.driver.empty() ? "-" : n.driver),
                    n.is_virtual ? "-" : n.pci, n.mac.empty() ? "-" : n.mac,
                    n.operstate.empty() ? "?" : n.operstate, n.mtu ? std::to_string(*n.mtu) : "-",
                    n.speed_mbps ? std::to_string(*n.speed_mbps) + "Mb/s" : "-", sriov, rdma,
                    std::string(net_lane_name(d.lane)), std::to_string(d.ips_needed)});
  }
  std::string table = render_table(
      {"NIC", "DRIVER", "PCI", "MAC", "STATE", "MTU", "SPEED", "SR-IOV", "RDMA", "LANE", "IPS"},
      rows);
  // Each row followed by its reasons.
  size_t at = table.find('\n') + 1;
  out += table.substr(0, at);
  for (const auto& n : r.nics) {
    size_t end = table.find('\n', at) + 1;
    out += table.substr(at, end - at);
    at = end;
    for (const auto& why : n.decision.reasons) out += "    - " + why + "\n";
  }
  return out;
}

json to_json(const NetReport& r) {
  const HostInfo& h = r.host;
  auto huge = [](const Hugepages& p) {
    return json{{"present", p.present}, {"total", p.total}, {"free", p.free}};
  };
  json rdma = json::array();
  for (const auto& d : h.rdma)
    rdma.push_back({{"name", d.name},
                    {"link_layer", d.link_layer},
                    {"netdev", d.netdev.empty() ? json(nullptr) : json(d.netdev)}});
  json host = {{"sysfs_root", h.sysfs_root},
               {"cpus_online", h.cpus_online},
               {"cores_online", h.cores_online},
               {"hugepages", {{"2MiB", huge(h.huge_2m)}, {"1GiB", huge(h.huge_1g)}}},
               {"rdma_devices", rdma},
               {"mixed_fabric", h.mixed_fabric},
               {"options",
                {{"cores", r.options.cores},
                 {"dedicated_mode", r.options.dedicated_full ? "full" : "none"},
                 {"dpdk_memory_mb", r.options.dpdk_memory_mb}}}};
  auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  auto str = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json nics = json::array();
  for (const auto& [n, d] : r.nics) {
    json devs = json::array();
    for (const auto& x : n.rdma) devs.push_back({{"name", x.name}, {"link_layer", x.link_layer}});
    json sriov = nullptr;
    if (n.sriov_totalvfs)
      sriov = {{"totalvfs", *n.sriov_totalvfs}, {"numvfs", opt(n.sriov_numvfs)}};
    bool is_dpdk = d.lane != NetLane::kUdp;
    nics.push_back(
        {{"name", n.name},
         {"virtual", n.is_virtual},
         {"driver", str(n.driver)},
         {"pci", str(n.pci)},
         {"mac", str(n.mac)},
         {"operstate", str(n.operstate)},
         {"mtu", opt(n.mtu)},
         {"speed_mbps", opt(n.speed_mbps)},
         {"sriov", sriov},
         {"rdma", d.rdma},
         {"rdma_devices", devs},
         {"lane", is_dpdk ? "DPDK" : "UDP"},
         {"mode", is_dpdk ? json(d.lane == NetLane::kDpdkPolling ? "polling" : "rx-interrupt")
                          : json(nullptr)},
         {"lanes", {{"full", net_lane_name(d.lane_full)}, {"none", net_lane_name(d.lane_none)}}},
         {"shared_ip", opt(d.shared_ip)},
         {"ips_needed", d.ips_needed},
         {"reasons", d.reasons}});
  }
  return {{"host", host}, {"nics", nics}};
}

}  // namespace lanefs::cli

#include "cli/net_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "support/test_support.h"

namespace lanefs::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A sysfs-shaped tree in a temporary directory, with the same symlinks as
// the kernel's: class/net/<nic>/device -> ../../../devices/pci0000:00/<pci>,
// <pci>/driver -> ../../../bus/pci/drivers/<driver>.
class SysfsTree {
 public:
  SysfsTree() {
    netdev("lo", "00:00:00:00:00:00", "unknown");  // like the kernel's; never listed
    cpus("0-7");
    hugepages(512, 512, 0, 0);
  }
  const std::string& root() const { return dir_.path(); }

  void write(const std::string& rel, const std::string& text) {
    fs::path p = fs::path(root()) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
  }
  void link(const std::string& rel, const std::string& target) {
    fs::path p = fs::path(root()) / rel;
    fs::create_directories(p.parent_path());
    fs::create_directory_symlink(target, p);
  }
  void cpus(const std::string& list) { write("devices/system/cpu/online", list); }
  void hugepages(uint64_t nr2m, uint64_t free2m, uint64_t nr1g, uint64_t free1g) {
    write("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", std::to_string(nr2m));
    write("kernel/mm/hugepages/hugepages-2048kB/free_hugepages", std::to_string(free2m));
    write("kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", std::to_string(nr1g));
    write("kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", std::to_string(free1g));
  }
  void netdev(const std::string& name, const std::string& mac, const std::string& state = "up") {
    write("class/net/" + name + "/address", mac);
    write("class/net/" + name + "/operstate", state);
    write("class/net/" + name + "/mtu", "9000");
  }
  void pci_nic(const std::string& name, const std::string& pci, const std::string& driver,
               const std::string& state = "up") {
    netdev(name, "02:00:00:00:00:" + pci.substr(pci.size() - 4, 2), state);
    write("class/net/" + name + "/speed", state == "up" ? "25000" : "-1");
    fs::create_directories(fs::path(root()) / "bus/pci/drivers" / driver);
    fs::create_directories(fs::path(root()) / "devices/pci0000:00" / pci);
    link("devices/pci0000:00/" + pci + "/driver", "../../../bus/pci/drivers/" + driver);
    link("class/net/" + name + "/device", "../../../devices/pci0000:00/" + pci);
  }
  void sriov(const std::string& pci, uint32_t total, uint32_t num) {
    write("devices/pci0000:00/" + pci + "/sriov_totalvfs", std::to_string(total));
    write("devices/pci0000:00/" + pci + "/sriov_numvfs", std::to_string(num));
  }
  void rdma(const std::string& dev, const std::string& pci, const std::string& link_layer) {
    write("class/infiniband/" + dev + "/ports/1/link_layer", link_layer);
    link("class/infiniband/" + dev + "/device", "../../../devices/pci0000:00/" + pci);
  }

 private:
  test::TempDir dir_;
};

NetReport inspect(const SysfsTree& t, NetCheckOptions o = {}) {
  auto r = inspect_host(t.root(), o);
  EXPECT_OK(r);
  return r.ok() ? std::move(*r) : NetReport{};
}

// A copy, so that nic(inspect(t), "eth0") outlives the report.
NicReport nic(const NetReport& r, const std::string& name) {
  for (const auto& n : r.nics)
    if (n.nic.name == name) return n;
  ADD_FAILURE() << "no NIC " << name;
  return {};
}

bool has_reason(const NicReport& n, const std::string& text) {
  const auto& v = n.decision.reasons;
  return std::find(v.begin(), v.end(), text) != v.end();
}

std::string reasons(const NicReport& n) {
  std::string s;
  for (const auto& r : n.decision.reasons) s += "\n  " + r;
  return s;
}

TEST(NetCheck, CountsCpuLists) {
  EXPECT_EQ(count_cpu_list("0"), 1u);
  EXPECT_EQ(count_cpu_list("0-7"), 8u);
  EXPECT_EQ(count_cpu_list("0-3,8,10-11"), 7u);
  EXPECT_EQ(count_cpu_list("3-1"), std::nullopt);
  EXPECT_EQ(count_cpu_list("a"), std::nullopt);
  EXPECT_EQ(count_cpu_list("0,,1"), std::nullopt);
}

TEST(NetCheck, DriverTableEncodesTheGuidelines) {
  ASSERT_NE(find_driver("ena"), nullptr);
  EXPECT_TRUE(find_driver("ena")->dpdk);
  EXPECT_FALSE(find_driver("ena")->rx_interrupts);
  EXPECT_TRUE(find_driver("ena")->shared_ip);
  EXPECT_FALSE(find_driver("mlx4_core")->dpdk);
  EXPECT_FALSE(find_driver("mlx4_en")->dpdk);
  EXPECT_TRUE(find_driver("mlx5_core")->rx_interrupts);
  EXPECT_TRUE(find_driver("mlx5_core")->shared_ip);
  for (const char* d : {"ixgbe", "i40e", "ice"}) EXPECT_TRUE(find_driver(d)->needs_vfs) << d;
  for (const char* d : {"iavf", "ixgbevf"}) EXPECT_TRUE(find_driver(d)->is_vf) << d;
  for (const char* d : {"virtio_net", "virtio-pci", "vmxnet3"}) {
    ASSERT_NE(find_driver(d), nullptr) << d;
    EXPECT_TRUE(find_driver(d)->dpdk && find_driver(d)->rx_interrupts) << d;
  }
  EXPECT_EQ(find_driver("r8169"), nullptr);
}

TEST(NetCheck, ReadsHostSummary) {
  SysfsTree t;
  t.cpus("0-3,8");
  t.hugepages(256, 200, 2, 1);
  t.rdma("mlx5_0", "0000:03:00.0", "Ethernet");
  auto r = inspect(t);
  EXPECT_EQ(r.host.cpus_online, "0-3,8");
  EXPECT_EQ(r.host.cores_online, 5u);
  EXPECT_EQ(r.host.huge_2m.total, 256u);
  EXPECT_EQ(r.host.huge_2m.free, 200u);
  EXPECT_EQ(r.host.huge_1g.total, 2u);
  EXPECT_EQ(r.host.huge_1g.free, 1u);
  ASSERT_EQ(r.host.rdma.size(), 1u);
  EXPECT_EQ(r.host.rdma[0].name, "mlx5_0");
  EXPECT_EQ(r.host.rdma[0].link_layer, "Ethernet");
  EXPECT_FALSE(r.host.mixed_fabric);
}

TEST(NetCheck, EnaPollsOnDedicatedCores) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:00:05.0", "ena");
  auto r = inspect(t);
  ASSERT_EQ(r.nics.size(), 1u);
  const auto& n = nic(r, "eth0");
  EXPECT_EQ(n.nic.driver, "ena");
  EXPECT_EQ(n.nic.pci, "0000:00:05.0");
  EXPECT_EQ(n.nic.mac, "02:00:00:00:00:05");
  EXPECT_EQ(n.nic.mtu, 9000u);
  EXPECT_EQ(n.nic.speed_mbps, 25000);
  EXPECT_EQ(n.decision.lane, NetLane::kDpdkPolling) << reasons(n);
  EXPECT_EQ(n.decision.lane_full, NetLane::kDpdkPolling);
  EXPECT_EQ(n.decision.lane_none, NetLane::kUdp);
  EXPECT_EQ(n.decision.shared_ip, true);
  EXPECT_EQ(n.decision.ips_needed, 1u);
  EXPECT_FALSE(n.decision.rdma);
  EXPECT_TRUE(has_reason(n, "DPDK polling on 1 dedicated core (dedicated_mode=full)"))
      << reasons(n);
  EXPECT_TRUE(has_reason(n, "shared IP: one IP for management and data")) << reasons(n);
}

TEST(NetCheck, EnaCpuOptimizedUsesUdp) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:00:05.0", "ena");
  NetCheckOptions o;
  o.dedicated_full = false;
  auto r = inspect(t, o);
  const auto& n = nic(r, "eth0");
  EXPECT_EQ(n.decision.lane, NetLane::kUdp) << reasons(n);
  EXPECT_TRUE(has_reason(
      n, "ena (AWS ENA) has no RX interrupts: dedicated_mode=none (CPU-optimized) uses kernel UDP"))
      << reasons(n);
}

TEST(NetCheck, ConnectX3IsUdpOnly) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:04:00.0", "mlx4_core");
  t.pci_nic("eth1", "0000:05:00.0", "mlx4_en");
  for (bool full : {true, false}) {
    NetCheckOptions o;
    o.dedicated_full = full;
    auto r = inspect(t, o);
    const auto& a = nic(r, "eth0");
    EXPECT_EQ(a.decision.lane, NetLane::kUdp) << reasons(a);
    EXPECT_TRUE(has_reason(a, "mlx4_core (Mellanox ConnectX-3): UDP only")) << reasons(a);
    EXPECT_EQ(nic(r, "eth1").decision.lane, NetLane::kUdp);
  }
}

TEST(NetCheck, Mlx5WithRdmaOnTheSamePciFunction) {
  SysfsTree t;
  t.pci_nic("ens1f0", "0000:03:00.0", "mlx5_core");
  t.pci_nic("ens1f1", "0000:03:00.1", "mlx5_core");
  t.rdma("mlx5_0", "0000:03:00.0", "Ethernet");
  auto r = inspect(t);
  const auto& a = nic(r, "ens1f0");
  EXPECT_EQ(a.decision.lane, NetLane::kDpdkPolling) << reasons(a);
  EXPECT_EQ(a.decision.lane_none, NetLane::kDpdkInterrupt);
  EXPECT_TRUE(a.decision.rdma);
  ASSERT_EQ(a.nic.rdma.size(), 1u);
  EXPECT_EQ(a.nic.rdma[0].name, "mlx5_0");
  EXPECT_EQ(a.nic.rdma[0].link_layer, "Ethernet");
  EXPECT_TRUE(has_reason(
      a, "RDMA: mlx5_0 (Ethernet) on the same device: large reads and writes may use RDMA"))
      << reasons(a);
  // The other port is another PCI function: no RDMA device of its own.
  const auto& b = nic(r, "ens1f1");
  EXPECT_FALSE(b.decision.rdma);
  EXPECT_TRUE(b.nic.rdma.empty());
  EXPECT_TRUE(has_reason(b, "no RDMA device on this NIC")) << reasons(b);

  NetCheckOptions none;
  none.dedicated_full = false;
  EXPECT_EQ(nic(inspect(t, none), "ens1f0").decision.lane, NetLane::kDpdkInterrupt);
}

TEST(NetCheck, IxgbeNeedsSriovVfs) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:06:00.0", "ixgbe");
  t.sriov("0000:06:00.0", 63, 0);
  t.pci_nic("eth1", "0000:07:00.0", "ixgbe");  // no SR-IOV at all
  NetCheckOptions o;
  o.cores = 4;
  auto r = inspect(t, o);
  const auto& a = nic(r, "eth0");
  EXPECT_EQ(a.nic.sriov_totalvfs, 63u);
  EXPECT_EQ(a.nic.sriov_numvfs, 0u);
  EXPECT_EQ(a.decision.lane, NetLane::kUdp) << reasons(a);
  EXPECT_TRUE(has_reason(a,
                         "SR-IOV supported but off: non-shared-IP (one IP per frontend core) "
                         "needs VFs: echo 4 > /sys/class/net/eth0/device/sriov_numvfs"))
      << reasons(a);
  const auto& b = nic(r, "eth1");
  EXPECT_EQ(b.decision.lane, NetLane::kUdp);
  EXPECT_TRUE(has_reason(b,
                         "no SR-IOV on 0000:07:00.0: non-shared-IP (one IP per frontend core) "
                         "needs VFs: kernel UDP"))
      << reasons(b);
}

TEST(NetCheck, IxgbeWithEnoughVfsUsesDpdk) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:06:00.0", "ixgbe");
  t.sriov("0000:06:00.0", 63, 4);
  NetCheckOptions o;
  o.cores = 4;
  auto r = inspect(t, o);
  const auto& a = nic(r, "eth0");
  EXPECT_EQ(a.decision.lane, NetLane::kDpdkPolling) << reasons(a);
  EXPECT_EQ(a.decision.shared_ip, false);
  EXPECT_EQ(a.decision.ips_needed, 5u);
  EXPECT_TRUE(has_reason(a, "non-shared IP: 1 management IP + 4 data IPs (one per frontend core)"))
      << reasons(a);

  // Fewer VFs than cores: back to UDP, with the command that fixes it.
  o.cores = 8;
  const auto& c = nic(inspect(t, o), "eth0");
  EXPECT_EQ(c.decision.lane, NetLane::kUdp);
  EXPECT_TRUE(has_reason(c,
                         "SR-IOV: 4 VFs for 8 dedicated cores: non-shared-IP needs one VF per "
                         "core: echo 0 > /sys/class/net/eth0/device/sriov_numvfs && echo 8 > "
                         "/sys/class/net/eth0/device/sriov_numvfs"))
      << reasons(c);
}

TEST(NetCheck, MixedFabricMeansNoRdma) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:03:00.0", "mlx5_core");
  t.pci_nic("ib0", "0000:04:00.0", "mlx5_core");
  t.pci_nic("eth9", "0000:09:00.0", "ena");
  t.rdma("mlx5_0", "0000:03:00.0", "Ethernet");
  t.rdma("mlx5_1", "0000:04:00.0", "InfiniBand");
  auto r = inspect(t);
  EXPECT_TRUE(r.host.mixed_fabric);
  for (const auto& n : r.nics) {
    EXPECT_FALSE(n.decision.rdma) << n.nic.name;
    EXPECT_TRUE(has_reason(n, "mixed InfiniBand/Ethernet: no RDMA")) << n.nic.name << reasons(n);
  }
  EXPECT_EQ(nic(r, "ib0").nic.rdma.at(0).link_layer, "InfiniBand");
}

TEST(NetCheck, NoHugepagesFallsBackToUdp) {
  SysfsTree t;
  t.hugepages(0, 0, 0, 0);
  t.pci_nic("eth0", "0000:03:00.0", "mlx5_core");
  auto r = inspect(t);
  const auto& n = nic(r, "eth0");
  EXPECT_EQ(n.decision.lane, NetLane::kUdp);
  EXPECT_EQ(n.decision.lane_none, NetLane::kUdp);
  EXPECT_TRUE(has_reason(n,
                         "no hugepages reserved: reserve 128×2MiB (echo 128 > "
                         "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"))
      << reasons(n);

  NetCheckOptions big;
  big.dpdk_memory_mb = 1024;
  EXPECT_TRUE(has_reason(nic(inspect(t, big), "eth0"),
                         "no hugepages reserved: reserve 512×2MiB (echo 512 > "
                         "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"));

  t.hugepages(64, 64, 0, 0);  // 128 MiB of the 256 needed
  const auto& s = nic(inspect(t), "eth0");
  EXPECT_EQ(s.decision.lane, NetLane::kUdp);
  EXPECT_TRUE(has_reason(s,
                         "only 128 MiB of hugepages reserved, the DPDK lane needs 256 MiB: "
                         "reserve 128×2MiB (echo 128 > "
                         "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"))
      << reasons(s);

  t.hugepages(0, 0, 1, 1);  // one 1 GiB page is enough
  EXPECT_EQ(nic(inspect(t), "eth0").decision.lane, NetLane::kDpdkPolling);
}

TEST(NetCheck, VirtualInterfaceIsListedOnUdp) {
  SysfsTree t;
  t.netdev("veth0", "0a:00:00:00:00:01");
  t.write("class/net/bonding_masters", "");  // a file, not an interface
  auto r = inspect(t);
  ASSERT_EQ(r.nics.size(), 1u);
  const auto& n = nic(r, "veth0");
  EXPECT_TRUE(n.nic.is_virtual);
  EXPECT_EQ(n.decision.lane, NetLane::kUdp);
  EXPECT_EQ(n.decision.ips_needed, 1u);
  EXPECT_FALSE(n.decision.shared_ip.has_value());
  EXPECT_TRUE(has_reason(n, "no PCI device (virtual interface): kernel UDP")) << reasons(n);
}

TEST(NetCheck, UnknownDriverIsUdp) {
  SysfsTree t;
  t.pci_nic("enp2s0", "0000:02:00.0", "r8169");
  const auto& n = nic(inspect(t), "enp2s0");
  EXPECT_EQ(n.nic.driver, "r8169");
  EXPECT_EQ(n.decision.lane, NetLane::kUdp);
  EXPECT_TRUE(has_reason(n, "driver r8169 is not known to lanefs' DPDK table")) << reasons(n);
}

TEST(NetCheck, VirtioNetdevSitsBelowItsPciFunction) {
  // Real layout: class/net/eth0/device -> .../0000:00:03.0/virtio0, driver virtio_net.
  SysfsTree t;
  t.netdev("eth0", "52:54:00:12:34:56");
  fs::create_directories(fs::path(t.root()) / "devices/pci0000:00/0000:00:03.0/virtio0");
  fs::create_directories(fs::path(t.root()) / "bus/virtio/drivers/virtio_net");
  t.link("devices/pci0000:00/0000:00:03.0/virtio0/driver",
         "../../../../bus/virtio/drivers/virtio_net");
  t.link("class/net/eth0/device", "../../../devices/pci0000:00/0000:00:03.0/virtio0");
  const auto& n = nic(inspect(t), "eth0");
  EXPECT_EQ(n.nic.driver, "virtio_net");
  EXPECT_EQ(n.nic.pci, "0000:00:03.0");
  EXPECT_EQ(n.decision.lane, NetLane::kDpdkPolling) << reasons(n);
  EXPECT_EQ(n.decision.lane_none, NetLane::kDpdkInterrupt);
  EXPECT_EQ(n.decision.ips_needed, 2u);
}

TEST(NetCheck, LinkDownIsNotedButTheLaneIsStillDecided) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:03:00.0", "mlx5_core", "down");
  const auto& n = nic(inspect(t), "eth0");
  EXPECT_EQ(n.decision.lane, NetLane::kDpdkPolling);
  EXPECT_FALSE(n.nic.speed_mbps.has_value());  // "-1" while the link is down
  EXPECT_TRUE(has_reason(n, "operstate is down, not up: the link must be up to carry traffic"))
      << reasons(n);
}

TEST(NetCheck, MissingRootIsInvalid) {
  auto r = inspect_host("/nonexistent/lanefs-sysfs", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kInvalid);
  EXPECT_NE(r.error().message.find("/nonexistent/lanefs-sysfs"), std::string::npos);

  test::TempDir empty;  // a directory, but not a sysfs tree
  auto e = inspect_host(empty.path(), {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.code(), Errc::kInvalid);

  SysfsTree t;
  NetCheckOptions zero;
  zero.cores = 0;
  EXPECT_EQ(inspect_host(t.root(), zero).code(), Errc::kInvalid);
}

TEST(NetCheck, JsonShape) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:00:05.0", "ena");
  t.pci_nic("eth1", "0000:06:00.0", "ixgbe");
  t.sriov("0000:06:00.0", 8, 2);
  t.rdma("mlx5_0", "0000:03:00.0", "Ethernet");
  t.netdev("veth0", "0a:00:00:00:00:01");
  json j = to_json(inspect(t));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 2u);
  ASSERT_TRUE(j["host"].is_object());
  EXPECT_EQ(j["host"]["cores_online"], 8);
  EXPECT_EQ(j["host"]["cpus_online"], "0-7");
  EXPECT_EQ(j["host"]["hugepages"]["2MiB"]["total"], 512);
  EXPECT_EQ(j["host"]["hugepages"]["1GiB"]["free"], 0);
  EXPECT_EQ(j["host"]["rdma_devices"].at(0)["name"], "mlx5_0");
  EXPECT_EQ(j["host"]["mixed_fabric"], false);
  EXPECT_EQ(j["host"]["options"]["dedicated_mode"], "full");
  ASSERT_TRUE(j["nics"].is_array());
  ASSERT_EQ(j["nics"].size(), 3u);
  const json& ena = j["nics"][0];
  EXPECT_EQ(ena["name"], "eth0");
  EXPECT_EQ(ena["driver"], "ena");
  EXPECT_EQ(ena["pci"], "0000:00:05.0");
  EXPECT_EQ(ena["lane"], "DPDK");
  EXPECT_EQ(ena["mode"], "polling");
  EXPECT_EQ(ena["lanes"]["full"], "DPDK polling");
  EXPECT_EQ(ena["lanes"]["none"], "UDP");
  EXPECT_EQ(ena["rdma"], false);
  EXPECT_EQ(ena["shared_ip"], true);
  EXPECT_EQ(ena["ips_needed"], 1);
  EXPECT_EQ(ena["speed_mbps"], 25000);
  EXPECT_TRUE(ena["sriov"].is_null());
  EXPECT_TRUE(ena["reasons"].is_array());
  const json& ix = j["nics"][1];
  EXPECT_EQ(ix["sriov"]["totalvfs"], 8);
  EXPECT_EQ(ix["sriov"]["numvfs"], 2);
  EXPECT_EQ(ix["lane"], "DPDK");
  EXPECT_EQ(ix["ips_needed"], 2);
  const json& v = j["nics"][2];
  EXPECT_EQ(v["name"], "veth0");
  EXPECT_EQ(v["virtual"], true);
  EXPECT_TRUE(v["driver"].is_null());
  EXPECT_TRUE(v["pci"].is_null());
  EXPECT_EQ(v["lane"], "UDP");
  EXPECT_TRUE(v["mode"].is_null());
  EXPECT_EQ(v["reasons"][0], "no PCI device (virtual interface): kernel UDP");
}

TEST(NetCheck, TextPutsReasonsUnderTheirNic) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:00:05.0", "ena");
  t.netdev("veth0", "0a:00:00:00:00:01");
  std::string s = format_text(inspect(t));
  EXPECT_NE(s.find("host: 8 cores online (0-7)\n"), std::string::npos) << s;
  EXPECT_NE(s.find("hugepages: 2MiB 512 reserved, 512 free; 1GiB 0 reserved, 0 free\n"),
            std::string::npos)
      << s;
  size_t eth0 = s.find("\neth0 "), veth0 = s.find("\nveth0 ");
  size_t ena_reason = s.find("    - ena (AWS ENA) has no RX interrupts");
  size_t virt_reason = s.find("    - no PCI device (virtual interface): kernel UDP");
  ASSERT_NE(eth0, std::string::npos) << s;
  ASSERT_NE(veth0, std::string::npos) << s;
  EXPECT_LT(eth0, ena_reason) << s;
  EXPECT_LT(ena_reason, veth0) << s;
  EXPECT_LT(veth0, virt_reason) << s;
  EXPECT_NE(s.find("DPDK polling"), std::string::npos) << s;
}

// ---- the real binary

std::string lanefs_bin() { return test::build_path("userspace/cli/lanefs"); }

TEST(NetCheckCli, JsonAgainstAFixture) {
  SysfsTree t;
  t.pci_nic("eth0", "0000:00:05.0", "ena");
  t.pci_nic("eth1", "0000:04:00.0", "mlx4_core");
  std::string out;
  int rc = test::run_command({lanefs_bin(), "net", "check", "--json", "--sysfs-root", t.root(),
                              "--dedicated-mode", "none"},
                             &out);
  ASSERT_EQ(rc, 0) << out;
  json j = json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  ASSERT_EQ(j["nics"].size(), 2u) << out;
  EXPECT_EQ(j["host"]["options"]["dedicated_mode"], "none");
  EXPECT_EQ(j["nics"][0]["name"], "eth0");
  EXPECT_EQ(j["nics"][0]["lane"], "UDP");  // ENA, CPU-optimized
  EXPECT_EQ(j["nics"][0]["lanes"]["full"], "DPDK polling");
  EXPECT_EQ(j["nics"][1]["lane"], "UDP");

  // Text output by default, and --json may come before the subcommand.
  ASSERT_EQ(test::run_command({lanefs_bin(), "net", "check", "--sysfs-root", t.root()}, &out), 0);
  EXPECT_NE(out.find("LANE"), std::string::npos) << out;
  ASSERT_EQ(
      test::run_command({lanefs_bin(), "--json", "net", "check", "--sysfs-root", t.root()}, &out),
      0);
  EXPECT_EQ(json::parse(out, nullptr, false)["nics"][0]["lane"], "DPDK") << out;
}

TEST(NetCheckCli, MissingRootIsExitCode2) {
  std::string out;
  int rc = test::run_command(
      {lanefs_bin(), "net", "check", "--sysfs-root", "/nonexistent/lanefs-sysfs"}, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(out.rfind("lanefs: ", 0), 0u) << out;
  EXPECT_NE(out.find("/nonexistent/lanefs-sysfs"), std::string::npos) << out;
}

TEST(NetCheckCli, RealSysListsEveryNicButLo) {
  std::error_code ec;
  if (!fs::is_directory("/sys/class/net", ec)) GTEST_SKIP() << "no /sys/class/net";
  std::vector<std::string> want;
  for (const auto& e : fs::directory_iterator("/sys/class/net", ec))
    if (e.path().filename() != "lo" && fs::is_directory(e.path(), ec))
      want.push_back(e.path().filename().string());
  std::sort(want.begin(), want.end());
  std::string out;
  ASSERT_EQ(test::run_command({lanefs_bin(), "net", "check", "--json"}, &out), 0) << out;
  json j = json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  std::vector<std::string> got;
  for (const auto& n : j["nics"]) got.push_back(n["name"].get<std::string>());
  EXPECT_EQ(got, want) << out;
}

}  // namespace
}  // namespace lanefs::cli

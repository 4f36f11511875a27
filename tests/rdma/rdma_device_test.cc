// Device discovery: list_rdma_devices() and rdma_device_for_ip().
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "lanefs/config.h"
#include "rdma/rdma_test_env.h"
#include "support/test_support.h"
#include "transport/rdma_lane.h"

namespace lanefs::transport {
namespace {

TEST(RdmaDevice, LinkLayerNames) {
  EXPECT_EQ(link_layer_name(LinkLayer::kNone), "none");
  EXPECT_EQ(link_layer_name(LinkLayer::kInfiniBand), "infiniband");
  EXPECT_EQ(link_layer_name(LinkLayer::kEthernet), "ethernet");
}

// LANEFS_TEST_RDMA_DEVICES="rxe0,rxe1" (set by the vm rig): each is listed,
// active, on Ethernet (soft-RoCE) and names its netdev.
TEST(RdmaDevice, ListFindsConfiguredDevices) {
  const char* env = std::getenv("LANEFS_TEST_RDMA_DEVICES");
  if (env == nullptr) GTEST_SKIP() << "LANEFS_TEST_RDMA_DEVICES not set (the vm rig sets rxe0,rxe1)";
  auto devs = list_rdma_devices();
  std::stringstream want(env);
  std::string name;
  while (std::getline(want, name, ',')) {
    bool found = false;
    for (const auto& d : devs) {
      if (d.device != name) continue;
      found = true;
      EXPECT_EQ(d.port, 1);
      EXPECT_TRUE(d.active) << name;
      EXPECT_EQ(d.link, LinkLayer::kEthernet) << name << ": " << link_layer_name(d.link);
      EXPECT_FALSE(d.netdev.empty()) << name;
      std::printf("[ INFO     ] %s port %u netdev %s link %s %s\n", d.device.c_str(), d.port,
                  d.netdev.c_str(), std::string(link_layer_name(d.link)).c_str(),
                  d.active ? "ACTIVE" : "down");
    }
    EXPECT_TRUE(found) << name << " not listed";
  }
}

TEST(RdmaDevice, DeviceForIpMatchesListing) {
  std::vector<uint32_t> ips;
  LANEFS_REQUIRE_RDMA_IPS(ips);
  auto a = rdma_device_for_ip(ips[0]);
  auto b = rdma_device_for_ip(ips[1]);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(a->device, b->device) << "the two test addresses must be on different devices";
  EXPECT_EQ(a->link, LinkLayer::kEthernet);
  EXPECT_TRUE(a->active);
}

// Holds everywhere: without rdma-core the stub answers kNotSupported; with it
// an address no device serves (TEST-NET-3, not configured) is kNotFound or,
// on a host without any RDMA device, kNotSupported.
TEST(RdmaDevice, UnservedAddressIsNotFoundOrNotSupported) {
  auto r = rdma_device_for_ip(0xcb007163);  // 203.0.113.99
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.code() == Errc::kNotFound || r.code() == Errc::kNotSupported)
      << r.error().to_string();
  if (!LANEFS_HAVE_RDMA) {
    EXPECT_TRUE(list_rdma_devices().empty());
    EXPECT_EQ(make_rdma_lane(RdmaLaneConfig{}).code(), Errc::kNotSupported);
  }
}

}  // namespace
}  // namespace lanefs::transport

// Staged data NICs of a backend container (DATA_DIR/net.json).
#include "backend/container_net.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.h"

namespace lanefs::backend {
namespace {

TEST(ContainerNet, RoundTripAndLegs) {
  test::TempDir dir;
  auto empty = load_container_nics(dir.path());
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->empty());
  std::vector<proto::ContainerNic> nics(2);
  nics[0].dev = "sb";
  nics[0].ips = {"198.51.100.2", "198.51.100.3"};
  nics[0].netmask_bits = 24;
  nics[0].gateway = "198.51.100.1";
  nics[0].label = "B";
  nics[1].dev = "lo";  // no IPs: its own address
  ASSERT_OK(save_container_nics(dir.path(), nics));
  auto back = load_container_nics(dir.path());
  ASSERT_OK(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].ips, nics[0].ips);
  EXPECT_EQ((*back)[0].netmask_bits, 24u);
  EXPECT_EQ((*back)[0].gateway, "198.51.100.1");
  EXPECT_EQ((*back)[0].label, "B");
  auto legs = staged_legs(*back, 14000);
  ASSERT_OK(legs);
  ASSERT_EQ(legs->size(), 3u);
  EXPECT_EQ((*legs)[0].addr, (NetAddr{0xc6336402, 14000}));
  EXPECT_EQ((*legs)[1].addr, (NetAddr{0xc6336403, 14000}));
  EXPECT_EQ((*legs)[0].label, "B");
  EXPECT_EQ((*legs)[2].addr, (NetAddr{0x7f000001, 14000}));  // lo's address
  nics[1].dev = "nosuch0";
  auto missing = staged_legs(nics, 14000);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nosuch0"), std::string::npos) << missing.error().to_string();
}

TEST(ContainerNet, BadInputIsAnErrorNotACrash) {
  for (const char* text : {"{\"nics\":[{\"dev\":5}]}", "not json", "{\"nics\":[{\"dev\":\"sb\",\"ips\":[\"x\"]}]}",
                           "{\"nics\":[{\"dev\":\"sb\",\"netmask_bits\":\"24\"}]}"}) {
    test::TempDir dir;
    std::ofstream(dir.path() + "/net.json") << text;
    auto r = load_container_nics(dir.path());
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.code(), Errc::kInvalid) << text;
    EXPECT_NE(r.error().message.find("net.json"), std::string::npos) << r.error().to_string();
  }
  proto::ContainerNic n;
  for (const char* dev : {"", "a/b", "a,b", "averyveryverylongname"}) {
    n.dev = dev;
    EXPECT_EQ(check_container_nic(n).code(), Errc::kInvalid) << dev;
  }
  n.dev = "sb";
  n.ips = {"198.51.100.300"};
  EXPECT_EQ(check_container_nic(n).code(), Errc::kInvalid);
  n.ips = {"198.51.100.2"};
  n.netmask_bits = 33;
  EXPECT_EQ(check_container_nic(n).code(), Errc::kInvalid);
  n.netmask_bits = 24;
  n.gateway = "gw";
  EXPECT_EQ(check_container_nic(n).code(), Errc::kInvalid);
  n.gateway = "";
  EXPECT_OK(check_container_nic(n));
}

}  // namespace
}  // namespace lanefs::backend

// NetAddr parsing and formatting: ports, default ports, lists, bad inputs.
#include "common/net_addr.h"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>
#include <vector>

#include "support/test_support.h"

namespace lanefs {
namespace {

TEST(NetAddr, ParsesAddressWithPort) {
  auto a = parse_net_addr("192.0.2.1:14000");
  ASSERT_OK(a);
  EXPECT_EQ(a->ip, 0xC0000201u);  // host byte order
  EXPECT_EQ(a->port, 14000);
  EXPECT_EQ(a->to_string(), "192.0.2.1:14000");
  EXPECT_EQ(a->ip_string(), "192.0.2.1");
}

TEST(NetAddr, FormatRoundTrips) {
  for (const char* text : {"0.0.0.0:1", "127.0.0.1:65535", "255.255.255.255:80", "10.1.2.3:443"}) {
    auto a = parse_net_addr(text);
    ASSERT_OK(a);
    EXPECT_EQ(a->to_string(), text);
  }
  NetAddr n{0x0A000001u, 7};
  EXPECT_EQ(n.to_string(), "10.0.0.1:7");
}

TEST(NetAddr, DefaultPortUsedOnlyWhenNoneGiven) {
  auto a = parse_net_addr("10.0.0.1", 14000);
  ASSERT_OK(a);
  EXPECT_EQ(a->port, 14000);
  auto b = parse_net_addr("10.0.0.1:15000", 14000);
  ASSERT_OK(b);
  EXPECT_EQ(b->port, 15000);
}

TEST(NetAddr, PortRequiredWithoutDefault) {
  auto a = parse_net_addr("10.0.0.1");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.code(), Errc::kInvalid);
}

TEST(NetAddr, RejectsBadInput) {
  for (const char* text :
       {"1.2.3", "1.2.3.4:0", "1.2.3.4:70000", "x:1", "", ":14000", "1.2.3.4:", "1.2.3.4:12a",
        "1.2.3.4:-1", "256.1.1.1:1", "1.2.3.4.5:1", " 1.2.3.4:1", "localhost:1", "1.2.3.4:1:2"}) {
    auto a = parse_net_addr(text, 14000);
    EXPECT_FALSE(a.ok()) << "'" << text << "' parsed as " << (a.ok() ? a->to_string() : "");
    if (!a.ok()) {
      EXPECT_EQ(a.code(), Errc::kInvalid) << text;
      EXPECT_FALSE(a.error().message.empty()) << text;
    }
  }
}

TEST(NetAddr, ParsesList) {
  auto l = parse_net_addr_list("10.0.0.1,10.0.0.2:15000,10.0.0.3", 14000);
  ASSERT_OK(l);
  ASSERT_EQ(l->size(), 3u);
  EXPECT_EQ((*l)[0].to_string(), "10.0.0.1:14000");
  EXPECT_EQ((*l)[1].to_string(), "10.0.0.2:15000");
  EXPECT_EQ((*l)[2].to_string(), "10.0.0.3:14000");
}

TEST(NetAddr, ListRejectsEmptyAndBadItems) {
  for (const char* text : {"", "10.0.0.1,x", ",10.0.0.1", "10.0.0.1,,10.0.0.2", "1.2.3"}) {
    auto l = parse_net_addr_list(text, 14000);
    EXPECT_FALSE(l.ok()) << "'" << text << "'";
    EXPECT_EQ(l.code(), Errc::kInvalid) << text;
  }
}

TEST(NetAddr, EqualityOrderingAndHash) {
  NetAddr a{1, 2}, b{1, 3}, c{2, 1};
  EXPECT_EQ(a, (NetAddr{1, 2}));
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);  // ip compares first
  std::unordered_set<NetAddr, NetAddrHash> set{a, b, c, NetAddr{1, 2}};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_NE(NetAddrHash()(a), NetAddrHash()(b));
}

}  // namespace
}  // namespace lanefs

// UDP GSO/GRO across a real device: a veth pair between this test's own
// network namespace (unshared at start, gone with the process) and a named
// one it creates (`ip netns add`, deleted at the end), addresses from
// 192.0.2.0/24 (TEST-NET-1) only. What the kernel refuses there:
//   - TX checksum offload off on the sending veth (`ethtool -K ... tx off`):
//     kernels before 6.11 refuse UDP_SEGMENT with EIO; since 10154dbded6d
//     ("udp: Allow GSO transmit from devices with no checksum offload") they
//     segment and checksum in software. Either way every datagram arrives;
//     a refusal is one fallback, after which bursts go plainly;
//   - a socket without UDP checksums (SO_NO_CHECK): EINVAL on every kernel
//     -> one fallback, everything arrives, later bursts plain;
//   - a route whose MTU is below the segment size: EMSGSIZE -> those
//     datagrams go plainly (the kernel fragments them), smaller segments
//     keep GSO.
// Needs root (unshare, ip, ethtool); skipped with the reason otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "transport/transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs::transport {
namespace {

using test::pattern;
using test::receive;
using test::send_all;

constexpr uint32_t kIpA = 0xc0000201, kIpB = 0xc0000202;  // 192.0.2.1, 192.0.2.2
constexpr int kTimeoutMs = 10000;

std::string g_skip;
const std::string g_ns = "lanefs-gso-" + std::to_string(getpid());
const std::string g_veth_a = "lgsoa" + std::to_string(getpid() % 100000);
const std::string g_veth_b = "lgsob" + std::to_string(getpid() % 100000);

// Every command is bounded in time (coreutils timeout).
int sh(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"timeout", "20"});
  return lanefs::test::run_command(argv);
}

class NetnsEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    if (geteuid() != 0) {
      g_skip = "needs root (network namespaces, veth, ethtool)";
    } else if (sh({"ethtool", "--version"}) != 0) {
      g_skip = "ethtool is not installed (scripts/deps.sh installs it)";
    } else if (unshare(CLONE_NEWNET) != 0) {
      g_skip = std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
    } else if (sh({"ip", "netns", "add", g_ns}) != 0) {
      g_skip = "ip netns add failed";
    } else {
      created_ = true;
      const std::vector<std::vector<std::string>> steps = {
          {"ip", "link", "set", "lo", "up"},
          {"ip", "link", "add", g_veth_a, "type", "veth", "peer", "name", g_veth_b, "netns", g_ns},
          {"ip", "addr", "add", "192.0.2.1/24", "dev", g_veth_a},
          {"ip", "link", "set", g_veth_a, "up"},
          {"ip", "-n", g_ns, "link", "set", "lo", "up"},
          {"ip", "-n", g_ns, "addr", "add", "192.0.2.2/24", "dev", g_veth_b},
          {"ip", "-n", g_ns, "link", "set", g_veth_b, "up"},
      };
      for (const auto& s : steps)
        if (sh(s) != 0) {
          g_skip = "netns setup failed at: " + s[0] + " " + s[1] + " " + s[2] + " " + s[3];
          break;
        }
    }
  }
  void TearDown() override {
    // Our own namespace (and veth end) goes with the process; the named one
    // must be deleted.
    if (created_) sh({"ip", "netns", "del", g_ns});
  }

 private:
  bool created_ = false;
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new NetnsEnv);

// Runs `fn` with this thread in the named namespace (sockets created there
// stay there), then switches back.
template <class Fn>
auto in_peer_ns(Fn fn) {
  const int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int peer = open(("/run/netns/" + g_ns).c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(self, 0);
  EXPECT_GE(peer, 0);
  EXPECT_EQ(setns(peer, CLONE_NEWNET), 0) << strerror(errno);
  auto r = fn();
  EXPECT_EQ(setns(self, CLONE_NEWNET), 0) << strerror(errno);
  close(peer);
  close(self);
  return r;
}

Result<std::unique_ptr<Transport>> udp(uint32_t ip, UdpOffload gro = UdpOffload::kOff) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{ip, 0};
  c.gro = gro;
  return make_transport(c);
}

class UdpGsoNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_skip.empty()) GTEST_SKIP() << g_skip;
    auto tx = udp(kIpA);
    ASSERT_OK(tx);
    tx_ = std::move(tx).value();
    auto rx = in_peer_ns([] { return udp(kIpB, UdpOffload::kAuto); });
    ASSERT_OK(rx);
    rx_ = std::move(rx).value();
    ASSERT_TRUE(tx_->stats().gso_active);
    // The first datagram waits for ARP; send one and wait for it.
    auto hello = pattern(20, 1);
    TxDatagram d{rx_->local_addr(), hello.data(), 20};
    ASSERT_TRUE(send_all(*tx_, {&d, 1}));
    ASSERT_EQ(receive(*rx_, 1, kTimeoutMs).size(), 1u);
  }

  // n datagrams of `size` bytes (session 5), then one of `last` (if > 0).
  // Bytes 0..3 carry a sequence number that continues across calls.
  std::span<const TxDatagram> make(size_t n, uint32_t size, uint32_t last) {
    bytes_.clear();
    pkts_.clear();
    for (size_t i = 0; i <= n; ++i) {
      const uint32_t len = i < n ? size : last;
      if (len == 0) break;
      auto b = pattern(len, seq_);
      std::memcpy(b.data(), &seq_, 4);
      const uint32_t session = 5;
      std::memcpy(b.data() + 8, &session, 4);
      ++seq_;
      bytes_.push_back(std::move(b));
    }
    for (const auto& b : bytes_) {
      TxDatagram d{rx_->local_addr(), b.data(), 44, b.data() + 44, uint32_t(b.size() - 44)};
      pkts_.push_back(d);
    }
    return pkts_;
  }
  // Everything make() built arrives intact and in order.
  void expect_all_arrive() {
    auto got = receive(*rx_, bytes_.size(), kTimeoutMs);
    ASSERT_EQ(got.size(), bytes_.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].data, bytes_[i]) << "datagram " << i;
      EXPECT_EQ(got[i].src, tx_->local_addr());
    }
  }

  std::unique_ptr<Transport> tx_, rx_;
  std::vector<std::vector<uint8_t>> bytes_;
  std::vector<TxDatagram> pkts_;
  uint32_t seq_ = 0;
};

TEST_F(UdpGsoNetns, GsoAndGroAcrossVeth) {
  ASSERT_TRUE(send_all(*tx_, make(40, 1000, 300)));
  EXPECT_GE(tx_->stats().tx_gso_sends, 1u);
  expect_all_arrive();
  EXPECT_EQ(rx_->stats().rx_packets, 1u + 41u);
  // The veth hands the GSO packet to the GRO socket whole.
  EXPECT_GE(rx_->stats().rx_gro_messages, 1u);
}

TEST_F(UdpGsoNetns, TxChecksumOffloadOffStillDelivers) {
  ASSERT_EQ(sh({"ethtool", "-K", g_veth_a, "tx", "off"}), 0);
  ASSERT_TRUE(send_all(*tx_, make(40, 1000, 300)));
  expect_all_arrive();
  const uint64_t fallbacks = tx_->stats().gso_fallbacks;
  const uint64_t gso_sends = tx_->stats().tx_gso_sends;
  std::cout << "[ INFO     ] tx off on the veth: "
            << (fallbacks ? "the kernel refused GSO (before 6.11)"
                          : "the kernel segments in software (6.11+)")
            << "\n";
  ASSERT_TRUE(send_all(*tx_, make(40, 1000, 300)));
  expect_all_arrive();
  if (fallbacks > 0) {
    EXPECT_EQ(fallbacks, 1u);
    EXPECT_FALSE(tx_->stats().gso_active);
    EXPECT_EQ(tx_->stats().tx_gso_sends, gso_sends);  // later bursts plain
  } else {
    EXPECT_TRUE(tx_->stats().gso_active);
    EXPECT_GT(tx_->stats().tx_gso_sends, gso_sends);
  }
  EXPECT_EQ(tx_->stats().gso_fallbacks, fallbacks);
  ASSERT_EQ(sh({"ethtool", "-K", g_veth_a, "tx", "on"}), 0);
}

TEST_F(UdpGsoNetns, NoChecksumSocketFallsBackOnce) {
  int one = 1;
  ASSERT_EQ(setsockopt(tx_->notify_fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
  ASSERT_TRUE(send_all(*tx_, make(40, 1000, 300)));
  expect_all_arrive();
  EXPECT_EQ(tx_->stats().gso_fallbacks, 1u);
  EXPECT_FALSE(tx_->stats().gso_active);
  EXPECT_EQ(tx_->stats().tx_gso_sends, 0u);
  ASSERT_TRUE(send_all(*tx_, make(40, 1000, 300)));
  expect_all_arrive();
  EXPECT_EQ(tx_->stats().gso_fallbacks, 1u);
  EXPECT_EQ(tx_->stats().tx_gso_sends, 0u);
}

TEST_F(UdpGsoNetns, RouteMtuBelowSegmentGoesPlainly) {
  ASSERT_EQ(sh({"ip", "route", "add", "192.0.2.2/32", "dev", g_veth_a, "mtu", "1200"}), 0);
  ASSERT_TRUE(send_all(*tx_, make(10, 1400, 0)));  // 1428 > 1200: EMSGSIZE
  expect_all_arrive();
  EXPECT_EQ(tx_->stats().tx_gso_sends, 0u);
  EXPECT_TRUE(tx_->stats().gso_active);
  EXPECT_EQ(tx_->stats().gso_fallbacks, 0u);
  ASSERT_TRUE(send_all(*tx_, make(10, 1000, 0)));  // 1028 <= 1200: GSO
  expect_all_arrive();
  EXPECT_EQ(tx_->stats().tx_gso_sends, 1u);
  ASSERT_EQ(sh({"ip", "route", "del", "192.0.2.2/32", "dev", g_veth_a}), 0);
}

}  // namespace
}  // namespace lanefs::transport

// The DPDK lane on real DPDK virtual ports, in a network namespace of its
// own (the test process unshares one at start: only loopback, 192.0.2.0/24
// addresses, gone when the process exits).
//   - net_tap, polling: DPDK <-> kernel UDP both ways, exact bytes and
//     source addresses; the kernel's ARP request for the DPDK address is
//     answered; the kernel side changes its MAC and traffic continues;
//   - net_tap, RX interrupts: the notify fd sleeps while idle and wakes an
//     epoll when a datagram arrives;
//   - net_af_packet (no RX interrupts, like AWS ENA) in interrupt mode:
//     kNotSupported with the reason.
//   - endpoints sharing one port (several IPs, several UDP ports on one IP),
//     datagrams handed between them, the port's mode fixed by its first
//     user, the device closed and opened again in the same process.
// Needs root (unshare, tap devices); skipped with the reason otherwise.
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/clock.h"
#include "lanefs/config.h"
#include "support/test_support.h"
#include "transport/dpdk/frames.h"
#include "transport/transport.h"
#include "userspace/transport/transport_test_util.h"

namespace lanefs::transport {
namespace {

using test::dgram;
using test::pattern;
using test::receive;

std::string g_netns_error;

class NetnsEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!LANEFS_HAVE_DPDK) g_netns_error = "lanefs built without the DPDK lane";
    else if (geteuid() != 0) g_netns_error = "needs root (network namespace, tap devices)";
    else if (unshare(CLONE_NEWNET) != 0) g_netns_error = std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
    else if (lanefs::test::run_command({"ip", "link", "set", "lo", "up"}) != 0) g_netns_error = "ip link set lo up failed";
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new NetnsEnv);

int sh(const std::vector<std::string>& argv, std::string* out = nullptr) { return lanefs::test::run_command(argv, out); }

Result<std::unique_ptr<Transport>> make_dpdk(const std::string& port, uint32_t ip, bool interrupts,
                                             uint16_t queues = 1) {
  TransportConfig c;
  c.kind = TransportKind::kDpdk;
  c.dpdk.port = port;
  c.dpdk.ip = ip;
  c.dpdk.prefix_bits = 28;
  c.dpdk.interrupt_mode = interrupts;
  c.dpdk.queues = queues;
  c.bind = NetAddr{ip, 0};
  return make_transport(c);
}

Result<std::unique_ptr<Transport>> make_kernel(uint32_t ip) {
  TransportConfig c;
  c.kind = TransportKind::kUdp;
  c.bind = NetAddr{ip, 0};
  return make_transport(c);
}

// Sends one datagram from `from` to `to` and checks it arrives intact.
void expect_delivery(Transport& from, Transport& to, uint32_t seed) {
  auto bytes = pattern(700, seed);
  TxDatagram d = dgram(to.local_addr(), bytes);
  // The first datagrams may wait for ARP; resend a few times (bounded).
  std::vector<test::Received> got;
  for (int i = 0; i < 5 && got.empty(); ++i) {
    ASSERT_OK(from.tx_burst({&d, 1}));
    got = receive(to, 1, 2000);
  }
  ASSERT_FALSE(got.empty()) << "nothing arrived from " << from.local_addr().to_string();
  EXPECT_EQ(got[0].data, bytes);
  EXPECT_EQ(got[0].src, from.local_addr());
}

class DpdkTap : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_netns_error.empty()) GTEST_SKIP() << g_netns_error;
  }
};

TEST_F(DpdkTap, PollingTalksToKernelUdpArpAndMacChange) {
  constexpr uint32_t kDpdkIp = 0xc0000202, kKernelIp = 0xc0000201;  // 192.0.2.2 / .1
  auto t = make_dpdk("net_tap0,iface=dtap0", kDpdkIp, false);
  ASSERT_OK(t);
  ASSERT_EQ(sh({"ip", "addr", "add", "192.0.2.1/28", "dev", "dtap0"}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", "dtap0", "up"}), 0);
  auto k = make_kernel(kKernelIp);
  ASSERT_OK(k);
  EXPECT_EQ((*t)->kind(), TransportKind::kDpdk);
  EXPECT_EQ((*t)->max_datagram(), 1472u);
  // Polling mode: the owner polls; its notify fd wakes it only after
  // arm_notify(), when another thread's poll_shared() hands it a datagram.
  EXPECT_TRUE((*t)->busy_polls());
  EXPECT_FALSE(test::readable((*t)->notify_fd(), 0));

  expect_delivery(**k, **t, 1);  // the kernel ARPs for 192.0.2.2: we answer
  expect_delivery(**t, **k, 2);  // we ARP for 192.0.2.1 ourselves
  std::string neigh;
  sh({"ip", "neigh", "show", "192.0.2.2", "dev", "dtap0"}, &neigh);
  EXPECT_NE(neigh.find("lladdr"), std::string::npos) << "kernel did not learn the DPDK MAC: " << neigh;

  // The kernel side gets a new MAC: our table follows it.
  ASSERT_EQ(sh({"ip", "link", "set", "dev", "dtap0", "address", "02:00:5e:00:53:99"}), 0);
  expect_delivery(**k, **t, 3);
  expect_delivery(**t, **k, 4);
  EXPECT_GE((*t)->stats().rx_packets, 2u);
  EXPECT_GE((*t)->stats().tx_packets, 2u);
}

// Polling mode with a sleeping owner: endpoint b arms its notify fd and
// sleeps while another endpoint's receive polls the port (a backend's
// server loop polling for its peer calls): b's datagram lands in its inbox
// and wakes it. Without arm_notify() nobody writes b's fd (its owner polls
// by itself).
TEST_F(DpdkTap, PollingHandsOverToASleepingEndpoint) {
  constexpr uint32_t kIpA = 0xc0000272, kIpB = 0xc0000273, kKernelIp = 0xc0000271;  // .114 .115 / .113
  auto a = make_dpdk("net_tap7,iface=dtap7", kIpA, false);
  ASSERT_OK(a);
  auto b = make_dpdk("net_tap7,iface=dtap7", kIpB, false);
  ASSERT_OK(b);
  ASSERT_EQ(sh({"ip", "addr", "add", "192.0.2.113/28", "dev", "dtap7"}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", "dtap7", "up"}), 0);
  auto k = make_kernel(kKernelIp);
  ASSERT_OK(k);
  expect_delivery(**k, **b, 51);  // ARP resolved both ways
  expect_delivery(**b, **k, 52);
  for (int round = 0; round < 2; ++round) {
    const bool armed = round == 1;
    if (armed) ASSERT_OK((*b)->arm_notify());
    auto bytes = pattern(400, 60 + round);
    TxDatagram d = dgram((*b)->local_addr(), bytes);
    ASSERT_OK((*k)->tx_burst({&d, 1}));
    bool handed = false;
    for (int i = 0; i < 200 && !handed; ++i) {
      RxDatagram none[4];
      auto n = (*a)->rx_burst(none);
      ASSERT_OK(n);
      ASSERT_EQ(*n, 0u) << "b's datagram was handed to a";
      handed = test::readable((*b)->notify_fd(), 10);
    }
    EXPECT_EQ(handed, armed) << (armed ? "a sleeping endpoint was not woken by another thread's poll"
                                       : "an endpoint that polls by itself was woken");
    auto got = receive(**b, 1, 2000);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, bytes);
    EXPECT_FALSE(test::readable((*b)->notify_fd(), 0)) << "receiving clears the wake-up";
  }
}

// A frame damaged on the wire (its UDP checksum no longer matches) is
// dropped by the lane; the same datagram intact is delivered. The kernel
// side of the tap sends raw frames (AF_PACKET) to the DPDK client.
TEST_F(DpdkTap, DamagedDatagramsAreDropped) {
  constexpr uint32_t kDpdkIp = 0xc0000262, kKernelIp = 0xc0000261;  // 192.0.2.98 / .97
  auto t = make_dpdk("net_tap6,iface=dtap6", kDpdkIp, false);
  ASSERT_OK(t);
  ASSERT_EQ(sh({"ip", "addr", "add", "192.0.2.97/28", "dev", "dtap6"}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", "dtap6", "up"}), 0);
  int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0) << strerror(errno);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(if_nametoindex("dtap6"));
  to.sll_halen = 6;
  ASSERT_GT(to.sll_ifindex, 0);
  auto send_frame = [&](uint32_t seed, bool damage) {
    auto payload = pattern(900, seed);
    std::vector<uint8_t> f(transport::dpdk::kUdpFrameOverhead + payload.size());
    transport::dpdk::Mac any{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src{0x02, 0, 0x5e, 0, 0x53, 0x61};
    transport::dpdk::build_udp_headers(any, src, kKernelIp, kDpdkIp, 5000, (*t)->local_addr().port,
                                       uint32_t(payload.size()), 1, f.data());
    std::memcpy(f.data() + transport::dpdk::kUdpFrameOverhead, payload.data(), payload.size());
    uint16_t c = transport::dpdk::udp_checksum(f.data(), uint32_t(payload.size()));
    f[transport::dpdk::kEthHeader + transport::dpdk::kIpHeader + 6] = uint8_t(c >> 8);
    f[transport::dpdk::kEthHeader + transport::dpdk::kIpHeader + 7] = uint8_t(c);
    if (damage) f[f.size() - 100] ^= 0x10;  // one bit, after the checksum was computed
    EXPECT_EQ(sendto(s, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to), ssize_t(f.size()))
        << strerror(errno);
    return payload;
  };
  send_frame(71, true);
  auto good = send_frame(72, false);
  auto got = receive(**t, 2, 1500);
  ASSERT_EQ(got.size(), 1u) << "expected only the intact datagram";
  EXPECT_EQ(got[0].data, good);
  EXPECT_EQ(got[0].src, (NetAddr{kKernelIp, 5000}));
  close(s);
}

TEST_F(DpdkTap, RxInterruptModeSleepsAndWakes) {
  constexpr uint32_t kDpdkIp = 0xc0000212, kKernelIp = 0xc0000211;  // 192.0.2.18 / .17
  auto t = make_dpdk("net_tap1,iface=dtap1", kDpdkIp, true);
  ASSERT_OK(t);
  ASSERT_EQ(sh({"ip", "addr", "add", "192.0.2.17/28", "dev", "dtap1"}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", "dtap1", "up"}), 0);
  auto k = make_kernel(kKernelIp);
  ASSERT_OK(k);
  expect_delivery(**k, **t, 5);
  expect_delivery(**t, **k, 6);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, (*t)->notify_fd(), &ev), 0);
  // Drain, arm, and sleep: nothing arrives, nothing wakes us.
  RxDatagram rx[8];
  while (*(*t)->rx_burst(rx) > 0) {
  }
  ASSERT_OK((*t)->arm_notify());
  ASSERT_EQ(*(*t)->rx_burst({rx, 0}), 0u);
  epoll_event out{};
  // Idle for 300 ms: the endpoint sleeps. Stray kernel packets (an ARP
  // refresh; IPv6 is off in a fresh netns) may wake it a few times (3 seen
  // once on a loaded machine); an endpoint that did not really sleep
  // (interrupt left on, fd always readable) wakes at once, again and again,
  // and reaches the loop's cap of 6 within microseconds.
  int wakes = 0;
  const uint64_t quiet_until = mono_ns() + 300'000'000;
  for (uint64_t now = mono_ns(); now < quiet_until && wakes <= 5; now = mono_ns()) {
    if (epoll_wait(ep, &out, 1, int((quiet_until - now) / 1'000'000) + 1) <= 0) break;
    ++wakes;
    while (*(*t)->rx_burst(rx) > 0) {
    }
    ASSERT_OK((*t)->arm_notify());
  }
  EXPECT_LE(wakes, 4) << "an idle endpoint in RX-interrupt mode kept waking";
  ASSERT_OK((*t)->arm_notify());
  auto bytes = pattern(100, 7);
  TxDatagram d = dgram((*t)->local_addr(), bytes);
  ASSERT_OK((*k)->tx_burst({&d, 1}));
  ASSERT_EQ(epoll_wait(ep, &out, 1, 5000), 1) << "the RX interrupt fd did not wake epoll";
  auto got = receive(**t, 1, 2000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, bytes);
  close(ep);
}

TEST_F(DpdkTap, AfPacketHasNoRxInterrupts) {
  ASSERT_EQ(sh({"ip", "link", "add", "lfv0", "type", "veth", "peer", "name", "lfv1"}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", "lfv0", "up"}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", "lfv1", "up"}), 0);
  auto t = make_dpdk("net_af_packet0,iface=lfv0", 0xc0000222, true);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.code(), Errc::kNotSupported);
  EXPECT_NE(t.error().message.find("no RX interrupts"), std::string::npos) << t.error().to_string();
}

TEST_F(DpdkTap, EndpointsShareAPortAndItCanBeReopened) {
  constexpr uint32_t kIp1 = 0xc0000232, kIp2 = 0xc0000233, kKernelIp = 0xc0000231;  // .50 .51 / .49
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Two endpoints on one port, one per IP (non-shared IP per core), and a
    // third sharing the first IP on another UDP port; interrupt mode, so
    // datagrams one endpoint receives for another must wake that one.
    auto a = make_dpdk("net_tap2,iface=dtap2", kIp1, true);
    ASSERT_OK(a);
    auto b = make_dpdk("net_tap2,iface=dtap2", kIp2, true);
    ASSERT_OK(b);
    auto c = make_dpdk("net_tap2,iface=dtap2", kIp1, true);
    ASSERT_OK(c);
    EXPECT_EQ((*c)->local_addr().ip, kIp1);
    EXPECT_NE((*c)->local_addr().port, (*a)->local_addr().port);
    // The port's mode is fixed by its first user.
    auto polling = make_dpdk("net_tap2,iface=dtap2", kIp2, false);
    ASSERT_FALSE(polling.ok());
    EXPECT_NE(polling.error().message.find("already open in rx-interrupt mode"), std::string::npos)
        << polling.error().to_string();
    // The PMD made dtap2 (and removed it with the port in round 0).
    ASSERT_EQ(sh({"ip", "addr", "add", "192.0.2.49/28", "dev", "dtap2"}), 0);
    ASSERT_EQ(sh({"ip", "link", "set", "dtap2", "up"}), 0);
    auto k = make_kernel(kKernelIp);
    ASSERT_OK(k);
    for (Transport* t : {a->get(), b->get(), c->get()}) {
      expect_delivery(**k, *t, 20 + round);
      expect_delivery(*t, **k, 30 + round);
    }
    // b receives while a polls: a's poll hands b's datagram over and b's
    // notify fd becomes readable.
    RxDatagram rx[4];
    ASSERT_OK((*b)->arm_notify());
    while (*(*b)->rx_burst(rx) > 0) {
    }
    auto bytes = pattern(300, 40 + round);
    TxDatagram d = dgram((*b)->local_addr(), bytes);
    ASSERT_OK((*k)->tx_burst({&d, 1}));
    bool handed = false;
    for (int i = 0; i < 200 && !handed; ++i) {
      (void)(*a)->rx_burst(rx);
      handed = test::readable((*b)->notify_fd(), 10);
    }
    EXPECT_TRUE(handed) << "b's notify fd did not wake for a datagram received by a";
    auto got = receive(**b, 1, 2000);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, bytes);
    // All endpoints closed: the port and its device go; round 1 opens them again.
  }
}

// One queue pair per core: two endpoints on a two-queue port each get their
// own pair, and once an endpoint has sent on its queue the kernel's replies
// to that flow come back on it (net_tap: tun steers a flow to the queue it
// was sent from), so each endpoint receives alone, without hand-over. A
// third endpoint shares a pair. Polling and interrupt mode (each endpoint
// sleeps on its own queue's fd).
class DpdkQueues : public DpdkTap, public ::testing::WithParamInterface<bool> {};

TEST_P(DpdkQueues, OneQueuePairPerCoreAndRepliesComeBackOnIt) {
  const bool intr = GetParam();
  const std::string dev = intr ? "dtap5" : "dtap4", spec = "net_tap" + std::string(intr ? "5" : "4") + ",iface=" + dev;
  const uint32_t base = intr ? 0xc0000250 : 0xc0000240;  // 192.0.2.80/28 or 192.0.2.64/28
  auto a = make_dpdk(spec, base + 2, intr, 2);
  ASSERT_OK(a);
  auto b = make_dpdk(spec, base + 3, intr, 2);
  ASSERT_OK(b);
  auto c = make_dpdk(spec, base + 2, intr, 2);  // a third core: shares a pair
  ASSERT_OK(c);
  EXPECT_EQ((*a)->stats().queues, 2u);
  EXPECT_NE((*a)->stats().queue, (*b)->stats().queue);
  EXPECT_EQ((*c)->stats().queue, (*a)->stats().queue);
  ASSERT_EQ(sh({"ip", "addr", "add", NetAddr{base + 1, 0}.ip_string() + "/28", "dev", dev}), 0);
  ASSERT_EQ(sh({"ip", "link", "set", dev, "up"}), 0);
  auto k = make_kernel(base + 1);
  ASSERT_OK(k);
  Transport* ends[] = {a->get(), b->get(), c->get()};
  // Warm-up: ARP both ways; an ARP frame can land on any queue, so every
  // endpoint polls meanwhile (bounded: 3 s per direction).
  auto until = [&](Transport& rx, uint64_t ms) {
    std::vector<test::Received> got;
    for (uint64_t end = mono_ns() + ms * 1'000'000; got.empty() && mono_ns() < end;) {
      for (Transport* t : ends) (void)t->rx_burst({});
      got = receive(rx, 1, 1);
    }
    return got;
  };
  for (Transport* t : ends) {
    auto bytes = pattern(200, 50);
    TxDatagram d = dgram((*k)->local_addr(), bytes);
    ASSERT_OK(t->tx_burst({&d, 1}));
    ASSERT_EQ(until(**k, 3000).size(), 1u) << "warm-up from " << t->local_addr().to_string();
    TxDatagram back = dgram(t->local_addr(), bytes);
    ASSERT_OK((*k)->tx_burst({&back, 1}));
    ASSERT_EQ(until(*t, 3000).size(), 1u) << "warm-up reply to " << t->local_addr().to_string();
  }
  // Steady state: request and reply, each endpoint polling only itself.
  uint64_t off_before[3];
  for (int e = 0; e < 3; ++e) off_before[e] = ends[e]->stats().rx_off_queue;
  for (int round = 0; round < 30; ++round) {
    for (int e = 0; e < 3; ++e) {
      Transport* t = ends[e];
      auto bytes = pattern(600, uint32_t(round * 3 + e));
      TxDatagram d = dgram((*k)->local_addr(), bytes);
      ASSERT_OK(t->tx_burst({&d, 1}));
      auto req = receive(**k, 1, 2000);
      ASSERT_EQ(req.size(), 1u) << "round " << round << " from " << t->local_addr().to_string();
      TxDatagram back = dgram(t->local_addr(), bytes);
      ASSERT_OK((*k)->tx_burst({&back, 1}));
      // c shares a's pair: either of them may take the frame off it.
      auto got = receive(*t, 1, 2000, e == 0 ? ends[2] : e == 2 ? ends[0] : nullptr);
      ASSERT_EQ(got.size(), 1u) << "round " << round << ": the reply to " << t->local_addr().to_string()
                                << " did not come back on its own queue";
      EXPECT_EQ(got[0].data, bytes);
    }
  }
  for (int e = 0; e < 3; ++e)
    EXPECT_EQ(ends[e]->stats().rx_off_queue, off_before[e]) << ends[e]->local_addr().to_string();
}

INSTANTIATE_TEST_SUITE_P(Modes, DpdkQueues, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? std::string("RxInterrupt") : std::string("Polling"); });

}  // namespace
}  // namespace lanefs::transport

#include "client/mount_options.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace lanefs::client {
namespace {

TEST(MountSource, ParsesHostsPortsAndName) {
  auto s = parse_mount_source("192.0.2.1,192.0.2.2:15000/fs1");
  ASSERT_OK(s);
  ASSERT_EQ(s->backends.size(), 2u);
  EXPECT_EQ(s->backends[0].to_string(), "192.0.2.1:14000");
  EXPECT_EQ(s->backends[1].to_string(), "192.0.2.2:15000");
  EXPECT_EQ(s->fs_name, "fs1");
  EXPECT_EQ(s->to_string(), "192.0.2.1:14000,192.0.2.2:15000/fs1");
}

TEST(MountSource, RejectsMalformedSources) {
  for (const char* bad : {"", "fs1", "/fs1", "192.0.2.1/", "192.0.2.1:0/fs", "host.example/fs",
                          "192.0.2.1/a/b", "192.0.2.1:99999/fs"}) {
    auto s = parse_mount_source(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_EQ(s.code(), Errc::kInvalid) << bad;
    }
  }
}

TEST(MountOptions, DefaultsFollowWeka) {
  auto o = parse_mount_options("");
  ASSERT_OK(o);
  EXPECT_EQ(o->cache, CacheMode::kWriteCache);
  EXPECT_FALSE(o->sync_on_close);
  EXPECT_FALSE(o->read_only);
  EXPECT_EQ(o->readahead_kb, 32768u);
  EXPECT_EQ(o->dentry_max_age_positive_ms, 1000u);
  EXPECT_EQ(o->dentry_max_age_negative_ms, 0u);
  EXPECT_EQ(o->connect_timeout_secs, 10u);
  EXPECT_EQ(o->response_timeout_secs, 60u);
  EXPECT_EQ(o->remove_after_secs, 3600u);
  EXPECT_TRUE(o->net.udp);
  EXPECT_EQ(o->net.to_string(), "udp");
}

TEST(MountOptions, ParsesEveryOption) {
  auto o = parse_mount_options(
      "readcache,sync_on_close,ro,readahead_kb=128,dentry_max_age_positive=5,"
      "dentry_max_age_negative=7,connect_timeout_secs=3,response_timeout_secs=4,"
      "remove_after_secs=9,net=udp");
  ASSERT_OK(o);
  EXPECT_EQ(o->cache, CacheMode::kReadCache);
  EXPECT_TRUE(o->sync_on_close);
  EXPECT_TRUE(o->read_only);
  EXPECT_EQ(o->readahead_kb, 128u);
  EXPECT_EQ(o->dentry_max_age_positive_ms, 5u);
  EXPECT_EQ(o->dentry_max_age_negative_ms, 7u);
  EXPECT_EQ(o->connect_timeout_secs, 3u);
  EXPECT_EQ(o->response_timeout_secs, 4u);
  EXPECT_EQ(o->remove_after_secs, 9u);
  auto f = parse_mount_options("forcedirect,rw");
  ASSERT_OK(f);
  EXPECT_EQ(f->cache, CacheMode::kForceDirect);
  EXPECT_FALSE(f->read_only);
  // The canonical string parses back to the same options.
  auto again = parse_mount_options(o->to_string());
  ASSERT_OK(again);
  EXPECT_EQ(again->to_string(), o->to_string());
}

TEST(MountOptions, IgnoresGenericMountOptions) {
  auto o = parse_mount_options("defaults,_netdev,nofail,noauto,noatime,x-systemd.automount,nosuid,nodev");
  ASSERT_OK(o);
  EXPECT_EQ(o->cache, CacheMode::kWriteCache);
}

TEST(MountOptions, ErrorsNameTheOption) {
  struct Case {
    const char* opts;
    const char* must_mention;
  } cases[] = {
      {"bogus=1", "bogus"},
      {"readahead_kb=abc", "readahead_kb"},
      {"readahead_kb=", "readahead_kb"},
      {"readahead_kb", "readahead_kb"},
      {"connect_timeout_secs=0", "connect_timeout_secs"},
      {"response_timeout_secs=-1", "response_timeout_secs"},
      {"readcache,forcedirect", "forcedirect"},
      {"writecache=1", "writecache"},
      {"net=eth0", "net=eth0"},
      {"dedicated_mode=sometimes", "dedicated_mode"},
  };
  for (const auto& c : cases) {
    auto o = parse_mount_options(c.opts);
    ASSERT_FALSE(o.ok()) << c.opts;
    EXPECT_NE(o.error().message.find(c.must_mention), std::string::npos)
        << c.opts << " -> " << o.error().message;
    EXPECT_EQ(o.error().message.find('\n'), std::string::npos) << "one line";
  }
}

TEST(MountOptions, RdmaThresholdsAndLocalIp) {
  auto d = parse_mount_options("");
  ASSERT_OK(d);
  EXPECT_EQ(d->rdma_read_min, 32u * 1024);
  EXPECT_EQ(d->rdma_write_min, 256u * 1024);
  EXPECT_EQ(d->local_ip, 0u);
  auto o = parse_mount_options("rdma_read_min=65536,rdma_write_min=0,local_ip=192.0.2.2");
  ASSERT_OK(o);
  EXPECT_EQ(o->rdma_read_min, 65536u);
  EXPECT_EQ(o->rdma_write_min, 0u);
  EXPECT_EQ(o->local_ip, 0xc0000202u);
  EXPECT_NE(o->to_string().find("local_ip=192.0.2.2"), std::string::npos) << o->to_string();
  EXPECT_NE(o->to_string().find("rdma_read_min=65536"), std::string::npos) << o->to_string();
  for (const char* bad : {"local_ip=192.0.2", "local_ip=0.0.0.0", "local_ip=", "rdma_read_min=x",
                          "rdma_write_min=-1", "rdma_read_min=999999999999"}) {
    auto r = parse_mount_options(bad);
    EXPECT_EQ(r.code(), Errc::kInvalid) << bad;
  }
}

TEST(MountOptions, NetSpecDpdkDevices) {
  auto tap = parse_mount_options("net=tap:dtap0/192.0.2.2/28,dedicated_mode=none");
  ASSERT_OK(tap);
  EXPECT_FALSE(tap->net.udp);
  EXPECT_EQ(tap->net.dpdk_port, "net_tap_dtap0,iface=dtap0");
  EXPECT_EQ(tap->net.ip(), 0xc0000202u);
  EXPECT_EQ(tap->net.ips.size(), 1u);
  EXPECT_EQ(tap->net.prefix_bits, 28);
  EXPECT_EQ(tap->net.gateway, 0u);
  EXPECT_FALSE(tap->dedicated_full);
  EXPECT_NE(tap->to_string().find("net=tap:dtap0/192.0.2.2/28,dedicated_mode=none"), std::string::npos)
      << tap->to_string();
  auto gw = parse_net_spec("afpacket:veth1/198.51.100.7/24/198.51.100.1");
  ASSERT_OK(gw);
  EXPECT_EQ(gw->dpdk_port, "net_af_packet_veth1,iface=veth1");
  EXPECT_EQ(gw->gateway, 0xc6336401u);
  auto memif = parse_net_spec("memif:/run/lanefs/m.sock:server/192.0.2.9/24");
  ASSERT_OK(memif);
  EXPECT_EQ(memif->dpdk_port, "net_memif__run_lanefs_m_sock,role=server,socket=/run/lanefs/m.sock");
  auto pci = parse_net_spec("0000:03:00.1/203.0.113.5/24");
  ASSERT_OK(pci);
  EXPECT_EQ(pci->dpdk_port, "0000:03:00.1");
  EXPECT_TRUE(parse_mount_options("dedicated_mode=full")->dedicated_full);
  // A netdev that is not a PCI device (here: lo) cannot be driven by DPDK.
  auto lo = parse_net_spec("lo/192.0.2.2/24");
  EXPECT_EQ(lo.code(), Errc::kInvalid);
  EXPECT_NE(lo.error().message.find("not a PCI network device"), std::string::npos) << lo.error().to_string();
  for (const char* bad : {"net=tap:x/192.0.2.2", "net=tap:x/192.0.2.2/33", "net=tap:x/192.0.2.2/24/nope",
                          "net=/192.0.2.2/24", "net=memif:rel.sock/192.0.2.2/24", "dedicated_mode=half"})
    EXPECT_EQ(parse_mount_options(bad).code(), Errc::kInvalid) << bad;
}

TEST(MountOptions, CoresAndPerCoreAddresses) {
  // One shared IP for two pinned cores.
  auto shared = parse_mount_options("net=tap:t0/192.0.2.2/24,core=1,core=0");
  ASSERT_OK(shared);
  EXPECT_EQ(shared->num_cores, 2u);
  EXPECT_EQ(shared->cores, (std::vector<int>{1, 0}));
  EXPECT_NE(shared->to_string().find("num_cores=2,core=1,core=0"), std::string::npos) << shared->to_string();
  // One IP per core (non-shared IP).
  auto own = parse_mount_options("net=memif:/run/m.sock/192.0.2.2+192.0.2.3/24,num_cores=2");
  ASSERT_OK(own);
  EXPECT_EQ(own->net.ips, (std::vector<uint32_t>{0xc0000202u, 0xc0000203u}));
  EXPECT_TRUE(own->cores.empty());
  EXPECT_NE(own->to_string().find("net=memif:/run/m.sock/192.0.2.2+192.0.2.3/24"), std::string::npos)
      << own->to_string();
  auto mem = parse_mount_options("net=tap:t0/192.0.2.2/24,memory_mb=512,dpdk_base_memory_mb=64");
  ASSERT_OK(mem);
  EXPECT_EQ(mem->memory_mb, 512u);
  EXPECT_EQ(mem->dpdk_base_memory_mb, 64u);
  struct Bad {
    const char* opts;
    const char* says;
  };
  for (const Bad& b : {Bad{"num_cores=0", "expected a number"}, Bad{"num_cores=17", "expected a number"},
                       Bad{"core=1,core=1", "given twice"}, Bad{"num_cores=3,core=0", "disagree"},
                       Bad{"net=tap:t0/192.0.2.2+192.0.2.3/24", "2 addresses for 1 cores"},
                       Bad{"net=tap:t0/192.0.2.2+192.0.2.2/24,num_cores=2", "given twice"},
                       Bad{"net=tap:t0/192.0.2.2+x/24,num_cores=2", "bad address"},
                       Bad{"memory_mb=8", "expected a number"}}) {
    auto r = parse_mount_options(b.opts);
    ASSERT_EQ(r.code(), Errc::kInvalid) << b.opts;
    EXPECT_NE(r.error().message.find(b.says), std::string::npos) << b.opts << ": " << r.error().to_string();
  }
  // lanefsd's --net names its option in errors.
  auto be = parse_net_spec("tap:x/192.0.2.2", "/sys", "--net ");
  ASSERT_FALSE(be.ok());
  EXPECT_EQ(be.error().message.rfind("--net tap:x/192.0.2.2: ", 0), 0u) << be.error().message;
}


TEST(MountOptions, HaDevicesRepeatableInOrder) {
  auto none = parse_mount_options("");
  ASSERT_OK(none);
  EXPECT_TRUE(none->ha_devs.empty());
  EXPECT_EQ(none->to_string().find("net:ha"), std::string::npos) << none->to_string();

  auto o = parse_mount_options("net:ha=cb,readcache,net:ha=ca,net:ha=eth0.100");
  ASSERT_OK(o);
  EXPECT_EQ(o->ha_devs, (std::vector<std::string>{"cb", "ca", "eth0.100"}));
  EXPECT_TRUE(o->net.udp);
  EXPECT_NE(o->to_string().find(",net=udp,net:ha=cb,net:ha=ca,net:ha=eth0.100,"), std::string::npos)
      << o->to_string();
  auto again = parse_mount_options(o->to_string());
  ASSERT_OK(again);
  EXPECT_EQ(again->ha_devs, o->ha_devs);
  EXPECT_EQ(again->to_string(), o->to_string());
  // With the UDP lane named explicitly, and at the longest interface name (15).
  auto udp = parse_mount_options("net=udp,net:ha=abcdefghijklmno");
  ASSERT_OK(udp);
  EXPECT_EQ(udp->ha_devs, (std::vector<std::string>{"abcdefghijklmno"}));

  struct Bad {
    const char* opts;
    const char* says;
  };
  for (const Bad& b : {Bad{"net:ha=ca,net:ha=ca", "'net:ha=ca' given twice"},
                       Bad{"net:ha=ca,net:ha=cb,net:ha=ca", "given twice"},
                       Bad{"net:ha=", "expected a network interface name"},
                       Bad{"net:ha=a/b", "expected a network interface name"},
                       Bad{"net:ha=a=b", "expected a network interface name"},
                       Bad{"net:ha=a b", "expected a network interface name"},
                       Bad{"net:ha=abcdefghijklmnop", "expected a network interface name"},
                       // A comma ends the option: "b" is an unknown option of its own.
                       Bad{"net:ha=a,b", "'b'"},
                       Bad{"net:ha", "needs a value"}}) {
    auto r = parse_mount_options(b.opts);
    ASSERT_EQ(r.code(), Errc::kInvalid) << b.opts;
    EXPECT_NE(r.error().message.find(b.says), std::string::npos) << b.opts << ": " << r.error().to_string();
  }

  // net:ha= names kernel interfaces (UDP lane); DPDK legs are repeated net=.
  for (const char* dpdk : {"net=tap:t0/192.0.2.2/24,net:ha=ca", "net:ha=ca,net=tap:t0/192.0.2.2/24,num_cores=1"}) {
    auto r = parse_mount_options(dpdk);
    ASSERT_EQ(r.code(), Errc::kInvalid) << dpdk;
    EXPECT_NE(r.error().message.find("on the DPDK lane give each NIC its own net="), std::string::npos)
        << dpdk << ": " << r.error().to_string();
    EXPECT_NE(r.error().message.find("net=tap:t0/192.0.2.2/24"), std::string::npos) << r.error().to_string();
  }
}

TEST(MountOptions, RepeatedNetIsDpdkHaLegs) {
  auto o = parse_mount_options("net=afpacket:ca/192.0.2.11/24,net=afpacket:cb/198.51.100.11/24,num_cores=2");
  ASSERT_OK(o);
  EXPECT_EQ(o->net.dpdk_port, "net_af_packet_ca,iface=ca");
  ASSERT_EQ(o->extra_nets.size(), 1u);
  EXPECT_EQ(o->extra_nets[0].dpdk_port, "net_af_packet_cb,iface=cb");
  EXPECT_EQ(o->extra_nets[0].ip(), 0xc633640bu);
  EXPECT_NE(o->to_string().find("net=afpacket:ca/192.0.2.11/24,net=afpacket:cb/198.51.100.11/24"), std::string::npos)
      << o->to_string();
  struct Bad {
    const char* opts;
    const char* says;
  };
  for (const Bad& b : {Bad{"net=udp,net=afpacket:cb/198.51.100.11/24", "cannot be combined"},
                       Bad{"net=afpacket:ca/192.0.2.11/24,net=udp", "cannot be combined"},
                       Bad{"net=afpacket:ca/192.0.2.11/24,net=afpacket:ca/192.0.2.12/24", "given twice"},
                       Bad{"net=afpacket:ca/192.0.2.11+192.0.2.12/24,net=afpacket:cb/198.51.100.11/24,num_cores=2",
                           "one shared address"}}) {
    auto r = parse_mount_options(b.opts);
    ASSERT_EQ(r.code(), Errc::kInvalid) << b.opts;
    EXPECT_NE(r.error().message.find(b.says), std::string::npos) << b.opts << ": " << r.error().to_string();
  }
}

}  // namespace
}  // namespace lanefs::client

// The lane policy (lane_policy.h) and the cluster/host half of it
// (RdmaPath::availability): every rule, in the order it is checked.
#include <gtest/gtest.h>

#include "client/lane_policy.h"
#include "client/rdma_path.h"

namespace lanefs::client {
namespace {

LaneRequest req(bool encrypted, IoDir dir, uint64_t bytes, NotRdmaReason avail = NotRdmaReason::kNone) {
  LaneRequest r;
  r.encrypted = encrypted;
  r.dir = dir;
  r.bytes = bytes;
  r.availability = avail;
  return r;
}

TEST(LanePolicyTest, ThresholdsReads32KiBWrites256KiB) {
  EXPECT_EQ(choose_lane(req(false, IoDir::kRead, 32 * 1024)).lane, Lane::kRdma);
  EXPECT_EQ(choose_lane(req(false, IoDir::kRead, 32 * 1024 - 1)).not_rdma, NotRdmaReason::kBelowThreshold);
  EXPECT_EQ(choose_lane(req(false, IoDir::kWrite, 256 * 1024)).lane, Lane::kRdma);
  EXPECT_EQ(choose_lane(req(false, IoDir::kWrite, 128 * 1024)).not_rdma, NotRdmaReason::kBelowThreshold);
  LaneRequest r = req(false, IoDir::kWrite, 8192);
  r.thresholds.write_min = 4096;  // configurable (mount option rdma_write_min=)
  EXPECT_EQ(choose_lane(r).lane, Lane::kRdma);
}

TEST(LanePolicyTest, EncryptedNeverRdmaWhateverElse) {
  for (auto dir : {IoDir::kRead, IoDir::kWrite})
    for (uint64_t bytes : {uint64_t{4096}, uint64_t{1} << 20, uint64_t{64} << 20}) {
      auto c = choose_lane(req(true, dir, bytes, NotRdmaReason::kNone));
      EXPECT_EQ(c.lane, Lane::kUdp);
      EXPECT_EQ(not_rdma_reason_text(c.not_rdma), "encrypted filesystem");
    }
}

TEST(LanePolicyTest, AvailabilityReasonWinsOverThreshold) {
  for (auto why : {NotRdmaReason::kNotBuilt, NotRdmaReason::kDisabledCluster, NotRdmaReason::kDisabledClient,
                   NotRdmaReason::kBackendNoRdma, NotRdmaReason::kNoLocalDevice, NotRdmaReason::kMixedFabric,
                   NotRdmaReason::kUnavailable}) {
    auto c = choose_lane(req(false, IoDir::kRead, 1 << 20, why));
    EXPECT_EQ(c.lane, Lane::kUdp);
    EXPECT_EQ(c.not_rdma, why);
    EXPECT_FALSE(not_rdma_reason_text(why).empty());
    EXPECT_NE(not_rdma_reason_key(why), "?");
  }
}

TEST(LanePolicyTest, CountersPerLaneAndFallbacks) {
  LaneCounters lc;
  lc.account(choose_lane(req(false, IoDir::kRead, 1 << 20)), 1 << 20);
  lc.account(choose_lane(req(true, IoDir::kWrite, 100)), 100);
  lc.account({Lane::kUdp, NotRdmaReason::kFallback}, 4096);
  EXPECT_EQ(lc.lanes[size_t(Lane::kRdma)].ios.load(), 1u);
  EXPECT_EQ(lc.lanes[size_t(Lane::kRdma)].bytes.load(), 1u << 20);
  EXPECT_EQ(lc.lanes[size_t(Lane::kUdp)].ios.load(), 2u);
  EXPECT_EQ(lc.lanes[size_t(Lane::kUdp)].bytes.load(), 4196u);
  EXPECT_EQ(lc.not_rdma[size_t(NotRdmaReason::kEncrypted)].load(), 1u);
  EXPECT_EQ(lc.fallbacks.load(), 1u);
}

// A lane that only reports its device: availability looks at nothing else.
class DeviceOnlyLane : public transport::RdmaLane {
 public:
  explicit DeviceOnlyLane(transport::LinkLayer l) { dev_.device = "fake0"; dev_.link = l; }
  const transport::RdmaDeviceInfo& device() const noexcept override { return dev_; }
  NetAddr local_addr() const noexcept override { return {}; }
  Result<uint64_t> connect(NetAddr) override { return make_error(Errc::kUnreachable, "no fabric"); }
  void disconnect(NetAddr) override {}
  Result<std::unique_ptr<transport::RdmaBuffer>> lease(size_t) override {
    return make_error(Errc::kNotSupported, "no buffers");
  }
  Result<std::unique_ptr<transport::RdmaBuffer>> try_lease(size_t n) override { return lease(n); }
  Status write_remote(uint64_t, const transport::RdmaBuffer&, uint32_t, const transport::RemoteBuffer&) override {
    return make_error(Errc::kNotSupported, "no fabric");
  }
  Status read_remote(uint64_t, transport::RdmaBuffer&, uint32_t, const transport::RemoteBuffer&) override {
    return make_error(Errc::kNotSupported, "no fabric");
  }
  Result<std::shared_ptr<transport::MemRegion>> register_cached(void*, size_t) override {
    return make_error(Errc::kNotSupported, "no device");
  }
  Result<std::shared_ptr<transport::MemRegion>> register_region(void*, size_t, int, uint64_t) override {
    return make_error(Errc::kNotSupported, "no device");
  }
  transport::RemoteBuffer remote_of(const transport::MemRegion&, const void*, uint32_t) const override { return {}; }
  transport::RdmaLaneStats stats() const override { return {}; }
  bool alive() const noexcept override { return true; }

 private:
  transport::RdmaDeviceInfo dev_;
};

proto::ClusterMap two_backends(uint8_t link_a, uint8_t link_b) {
  proto::ClusterMap m;
  m.members.push_back({0, 11, "a", "ha", NetAddr{0xc0000201, 14000}, link_a, 14000, {}});
  m.members.push_back({1, 12, "b", "hb", NetAddr{0xc0000202, 14000}, link_b, 14000, {}});
  return m;
}

TEST(RdmaAvailabilityTest, RulesInOrder) {
  constexpr uint8_t kEth = uint8_t(transport::LinkLayer::kEthernet);
  constexpr uint8_t kIb = uint8_t(transport::LinkLayer::kInfiniBand);
  RdmaPath eth(std::make_unique<DeviceOnlyLane>(transport::LinkLayer::kEthernet), NotRdmaReason::kNone);
  auto m = two_backends(kEth, kEth);
  EXPECT_EQ(eth.availability(m, "host1"), NotRdmaReason::kNone);
  m.rdma_disabled_clients = {"host1"};
  EXPECT_EQ(eth.availability(m, "host1"), NotRdmaReason::kDisabledClient);
  EXPECT_EQ(eth.availability(m, "host2"), NotRdmaReason::kNone);
  m.rdma_enabled = false;
  EXPECT_EQ(eth.availability(m, "host2"), NotRdmaReason::kDisabledCluster);
  EXPECT_EQ(eth.availability(two_backends(kEth, 0), "h"), NotRdmaReason::kBackendNoRdma);
  EXPECT_EQ(eth.availability(two_backends(kEth, kIb), "h"), NotRdmaReason::kMixedFabric);
  // Backends on InfiniBand, this client on Ethernet: mixed too.
  EXPECT_EQ(eth.availability(two_backends(kIb, kIb), "h"), NotRdmaReason::kMixedFabric);
  RdmaPath none(nullptr, NotRdmaReason::kNoLocalDevice);
  EXPECT_EQ(none.availability(two_backends(kEth, kEth), "h"), NotRdmaReason::kNoLocalDevice);
  RdmaPath unbuilt(nullptr, NotRdmaReason::kNotBuilt);
  EXPECT_EQ(unbuilt.availability(two_backends(kEth, kEth), "h"), NotRdmaReason::kNotBuilt);
}

TEST(RdmaAvailabilityTest, FailedConnectionBacksOff) {
  RdmaPath eth(std::make_unique<DeviceOnlyLane>(transport::LinkLayer::kEthernet), NotRdmaReason::kNone);
  auto m = two_backends(2, 2);
  auto t = eth.token_for(m.members[0]);
  EXPECT_EQ(t.code(), Errc::kUnreachable);
  EXPECT_EQ(eth.availability(m, "h"), NotRdmaReason::kUnavailable);
  // Within the back-off the lane is not even asked again.
  auto again = eth.token_for(m.members[0]);
  EXPECT_NE(again.error().message.find("backing off"), std::string::npos) << again.error().to_string();
}

}  // namespace
}  // namespace lanefs::client

namespace lanefs::client {
namespace {

// Device memory of the direct API: GPUDirect only when every rule holds;
// otherwise the first failing rule is the bounce reason.
TEST(DevicePathTest, GpuDirectOnlyWhenEveryRuleHolds) {
  DeviceIo ok;
  ok.lane = Lane::kRdma;
  ok.dmabuf_supported = true;
  ok.registered = true;
  ok.buf_off = 8192;
  ok.file_off = 1 << 20;
  ok.len = 1 << 20;
  EXPECT_EQ(choose_device_path(ok), BounceReason::kNone);

  DeviceIo d = ok;
  d.encrypted = true;
  d.lane = Lane::kUdp;  // encrypted wins over every other rule
  EXPECT_EQ(choose_device_path(d), BounceReason::kEncrypted);
  d = ok;
  d.lane = Lane::kDpdk;
  EXPECT_EQ(choose_device_path(d), BounceReason::kNotRdma);
  d = ok;
  d.dmabuf_supported = false;
  d.registered = false;
  EXPECT_EQ(choose_device_path(d), BounceReason::kNoDmabufSupport);
  d = ok;
  d.registered = false;
  EXPECT_EQ(choose_device_path(d), BounceReason::kDeviceUnregistered);
  for (uint64_t DeviceIo::*field : {&DeviceIo::buf_off, &DeviceIo::file_off, &DeviceIo::len}) {
    d = ok;
    d.*field += 512;
    EXPECT_EQ(choose_device_path(d), BounceReason::kUnaligned);
  }
  EXPECT_EQ(bounce_reason_key(BounceReason::kNoDmabufSupport), "no_dmabuf_support");
  EXPECT_EQ(bounce_reason_key(BounceReason::kDeviceUnregistered), "device_unregistered");
}

}  // namespace
}  // namespace lanefs::client

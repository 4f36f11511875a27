// Filesystem value types: encode/decode round trips, failure on every
// truncation, name limits, and inode-number composition.
#include "proto/types.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lanefs::proto {
namespace {

template <class T>
std::vector<uint8_t> encode(const T& v) {
  std::vector<uint8_t> out;
  Encoder e(&out);
  v.encode(e);
  return out;
}

// Every strict prefix of `full` must fail to decode as T.
template <class T>
void expect_truncations_fail(const std::vector<uint8_t>& full) {
  for (size_t cut = 0; cut < full.size(); ++cut) {
    std::vector<uint8_t> part(full.begin(), full.begin() + cut);
    Decoder d(part);
    T v;
    EXPECT_FALSE(v.decode(d)) << "cut at " << cut << " of " << full.size();
  }
}

InodeAttr sample_attr() {
  InodeAttr a;
  a.ino = make_ino(7, 123456);
  a.fs_id = 3;
  a.mode = 0100644;
  a.uid = 1000;
  a.gid = 1001;
  a.nlink = 2;
  a.rdev = 0x0801;
  a.size = (uint64_t{1} << 40) + 5;
  a.blocks = 99;
  a.atime = {1700000000, 1};
  a.mtime = {-5, 999999999};
  a.ctime = {1700000002, 3};
  a.btime = {1700000003, 4};
  a.parent = make_ino(1, 1);
  a.next_cookie = 42;
  return a;
}

TEST(Types, InodeAttrRoundTrip) {
  const InodeAttr in = sample_attr();
  const auto buf = encode(in);
  EXPECT_EQ(buf.size(), 8u + 6 * 4 + 8 + 8 + 4 * 12 + 8 + 8);
  Decoder d(buf);
  InodeAttr out;
  ASSERT_TRUE(out.decode(d));
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out, in);
  // Each field lands in its own place: a change anywhere is visible.
  InodeAttr other = in;
  other.btime.nsec = 5;
  EXPECT_NE(encode(other), buf);
  expect_truncations_fail<InodeAttr>(buf);
}

TEST(Types, DirentRoundTrip) {
  Dirent in;
  in.name = "file.txt";
  in.ino = make_ino(2, 77);
  in.type = 0040000;
  in.cookie = 0xFFFFFFFFFFull;
  const auto buf = encode(in);
  Decoder d(buf);
  Dirent out;
  ASSERT_TRUE(out.decode(d));
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.ino, in.ino);
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.cookie, in.cookie);
  expect_truncations_fail<Dirent>(buf);
}

TEST(Types, DirentNameLimit) {
  Dirent in;
  in.name = std::string(kNameMax, 'a');
  {
    const auto buf = encode(in);
    Decoder d(buf);
    Dirent out;
    ASSERT_TRUE(out.decode(d));
    EXPECT_EQ(out.name.size(), kNameMax);
  }
  in.name.push_back('b');
  const auto buf = encode(in);
  Decoder d(buf);
  Dirent out;
  EXPECT_FALSE(out.decode(d));
}

TEST(Types, SetAttrRoundTrip) {
  SetAttr in;
  in.mask = kSetMode | kSetSize | kSetMtime | kSetCtime;
  in.mode = 0755;
  in.uid = 11;
  in.gid = 12;
  in.size = 1ull << 33;
  in.atime = {1, 2};
  in.mtime = {3, 4};
  in.ctime = {5, 6};
  const auto buf = encode(in);
  Decoder d(buf);
  SetAttr out;
  ASSERT_TRUE(out.decode(d));
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out.mask, in.mask);
  EXPECT_EQ(out.mode, in.mode);
  EXPECT_EQ(out.uid, in.uid);
  EXPECT_EQ(out.gid, in.gid);
  EXPECT_EQ(out.size, in.size);
  EXPECT_EQ(out.atime, in.atime);
  EXPECT_EQ(out.mtime, in.mtime);
  EXPECT_EQ(out.ctime, in.ctime);
  expect_truncations_fail<SetAttr>(buf);
}

TEST(Types, SetAttrMaskBitsAreDistinct) {
  const uint32_t bits[] = {kSetMode,  kSetUid,      kSetGid,      kSetSize, kSetAtime,
                           kSetMtime, kSetAtimeNow, kSetMtimeNow, kSetCtime};
  uint32_t all = 0;
  for (uint32_t b : bits) {
    EXPECT_EQ(b & (b - 1), 0u) << b;  // a single bit
    EXPECT_EQ(all & b, 0u) << b;
    all |= b;
  }
}

TEST(Types, StatFsRoundTrip) {
  StatFs in;
  in.total_bytes = 1ull << 50;
  in.free_bytes = 1ull << 49;
  in.avail_bytes = (1ull << 49) - 1;
  in.total_inodes = 1000000;
  in.free_inodes = 999;
  in.block_size = 65536;
  in.name_max = 200;
  const auto buf = encode(in);
  Decoder d(buf);
  StatFs out;
  ASSERT_TRUE(out.decode(d));
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out.total_bytes, in.total_bytes);
  EXPECT_EQ(out.free_bytes, in.free_bytes);
  EXPECT_EQ(out.avail_bytes, in.avail_bytes);
  EXPECT_EQ(out.total_inodes, in.total_inodes);
  EXPECT_EQ(out.free_inodes, in.free_inodes);
  EXPECT_EQ(out.block_size, in.block_size);
  EXPECT_EQ(out.name_max, in.name_max);
  expect_truncations_fail<StatFs>(buf);
}

TEST(Types, InodeNumbers) {
  EXPECT_EQ(make_ino(0, 1), 1u);
  EXPECT_EQ(make_ino(1, 0), uint64_t{1} << 48);
  EXPECT_EQ(make_ino(0xFFFF, 0), 0xFFFF000000000000ull);
  for (uint32_t shard : {0u, 1u, 2u, 255u, 0x1234u, 0xFFFFu}) {
    for (uint64_t seq : {uint64_t{0}, uint64_t{1}, uint64_t{123456789}, (uint64_t{1} << 48) - 1}) {
      const uint64_t ino = make_ino(shard, seq);
      EXPECT_EQ(ino_shard(ino), shard) << shard << "/" << seq;
      EXPECT_EQ(ino & ((uint64_t{1} << 48) - 1), seq) << shard << "/" << seq;
    }
  }
  // A sequence number wider than 48 bits never leaks into the shard.
  EXPECT_EQ(ino_shard(make_ino(5, ~uint64_t{0})), 5u);
  EXPECT_EQ(make_ino(5, uint64_t{1} << 48), make_ino(5, 0));
}

TEST(Types, NowTimespecIsSane) {
  const Timespec t = now_timespec();
  EXPECT_GT(t.sec, 1600000000);  // after 2020
  EXPECT_LT(t.nsec, 1000000000u);
}

}  // namespace
}  // namespace lanefs::proto

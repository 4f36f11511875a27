#include "common/msg_buffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace lanefs {
namespace {

TEST(MsgBuffer, GrowsKeepingContents) {
  MsgBuffer b;
  EXPECT_TRUE(b.empty());
  b.append("abc", 3);
  b.resize_uninit(10000);
  ASSERT_EQ(b.size(), 10000u);
  EXPECT_EQ(0, std::memcmp(b.data(), "abc", 3));
  EXPECT_GE(b.capacity(), 10000u);
}

TEST(MsgBuffer, ClearKeepsCapacitySoReuseDoesNotAllocate) {
  MsgBuffer b;
  b.resize_uninit(1 << 20);
  const uint8_t* p = b.data();
  b.clear();
  EXPECT_EQ(b.size(), 0u);
  b.resize_uninit(4096);
  EXPECT_EQ(b.data(), p);  // same storage
  b.resize_uninit(1 << 20);
  EXPECT_EQ(b.data(), p);
}

TEST(MsgBuffer, AssignCopiesAndMoveEmptiesTheSource) {
  std::vector<uint8_t> v{1, 2, 3, 4};
  MsgBuffer a;
  a.assign(v);
  MsgBuffer b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(a.data(), nullptr);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(std::vector<uint8_t>(b.data(), b.data() + 4), v);
  b.release();
  EXPECT_EQ(b.capacity(), 0u);
}

}  // namespace
}  // namespace lanefs

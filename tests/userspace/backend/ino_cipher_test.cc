// The inode number permutation (backend/ino_cipher.h): a bijection on the
// counter's range, undone by counter(), keyed, and with no visible order.
#include "backend/ino_cipher.h"

#include <gtest/gtest.h>

#include <set>

namespace lanefs::backend {
namespace {

InoCipher::Key key_of(uint8_t b) {
  InoCipher::Key k;
  k.fill(b);
  k[0] = 0x5a;
  return k;
}

TEST(InoCipherTest, NumbersAreDistinctInRangeAndMapBackToTheirCounter) {
  const InoCipher c(key_of(1));
  std::set<uint64_t> seen;
  for (uint64_t seq : {uint64_t{0}, uint64_t{1}, uint64_t{16}, InoCipher::kDomain - 1, InoCipher::kDomain / 3}) {
    auto n = c.number(seq);
    ASSERT_TRUE(n.ok()) << n.error().to_string();
    EXPECT_GE(*n, InoCipher::kPermutedBit);
    EXPECT_LT(*n, uint64_t{1} << 48);
    auto back = c.counter(*n);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, seq);
    EXPECT_TRUE(seen.insert(*n).second);
  }
  for (uint64_t seq = 17; seq < 20017; ++seq) {  // 16 was taken above
    auto n = c.number(seq);
    ASSERT_TRUE(n.ok());
    ASSERT_TRUE(seen.insert(*n).second) << "two counters gave one number at " << seq;
    auto back = c.counter(*n);
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(*back, seq);
  }
}

TEST(InoCipherTest, UnpermutedNumbersOfOlderStoresAreTheirOwnCounter) {
  const InoCipher c(key_of(2));
  auto back = c.counter(12345);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, 12345u);
}

TEST(InoCipherTest, AnotherKeyGivesOtherNumbersAndNeighboursAreFarApart) {
  const InoCipher a(key_of(3)), b(key_of(4));
  int same = 0, near = 0;
  for (uint64_t seq = 16; seq < 1016; ++seq) {
    auto x = a.number(seq), y = b.number(seq), next = a.number(seq + 1);
    ASSERT_TRUE(x.ok() && y.ok() && next.ok());
    same += *x == *y;
    const uint64_t gap = *next > *x ? *next - *x : *x - *next;
    near += gap < (uint64_t{1} << 20);
  }
  EXPECT_EQ(same, 0);
  EXPECT_LE(near, 2) << "consecutive counters give nearby numbers";
}

TEST(InoCipherTest, ACounterPastTheRangeIsRefused) {
  const InoCipher c(key_of(5));
  auto n = c.number(InoCipher::kDomain);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, Errc::kNoSpace);
}

}  // namespace
}  // namespace lanefs::backend

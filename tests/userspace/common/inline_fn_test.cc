#include "common/inline_fn.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace lanefs {
namespace {

TEST(InlineFn, CallsAndReturns) {
  int base = 40;
  InlineFn<int(int)> f = [base](int x) { return base + x; };
  ASSERT_TRUE(f);
  EXPECT_EQ(f(2), 42);
}

TEST(InlineFn, EmptyIsFalse) {
  InlineFn<void()> f;
  EXPECT_FALSE(f);
  InlineFn<void()> g = nullptr;
  EXPECT_FALSE(g);
}

TEST(InlineFn, MoveTransfersAndEmptiesTheSource) {
  auto owned = std::make_unique<std::string>("payload");
  InlineFn<size_t()> f = [p = std::move(owned)] { return p->size(); };
  InlineFn<size_t()> g = std::move(f);
  EXPECT_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  ASSERT_TRUE(g);
  EXPECT_EQ(g(), 7u);
  InlineFn<size_t()> h;
  h = std::move(g);
  EXPECT_EQ(h(), 7u);
}

TEST(InlineFn, DestroysItsCaptureExactlyOnce) {
  auto counter = std::make_shared<int>(0);
  {
    InlineFn<void()> f = [c = counter] { ++*c; };
    EXPECT_EQ(counter.use_count(), 2);
    InlineFn<void()> g = std::move(f);
    EXPECT_EQ(counter.use_count(), 2);
    g();
    g.reset();
    EXPECT_EQ(counter.use_count(), 1);
  }
  EXPECT_EQ(*counter, 1);
  EXPECT_EQ(counter.use_count(), 1);
}

TEST(InlineFn, ArgumentsAreForwarded) {
  InlineFn<std::string(std::string&&)> f = [](std::string&& s) { return s + "!"; };
  EXPECT_EQ(f(std::string("done")), "done!");
}

}  // namespace
}  // namespace lanefs

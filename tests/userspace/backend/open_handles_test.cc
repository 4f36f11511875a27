// OpenHandles: which clients hold which inodes open; request order by seq
// (a release or renewal never drops a handle registered after it), leases.
#include "backend/open_handles.h"

#include <gtest/gtest.h>

namespace lanefs::backend {
namespace {

constexpr uint64_t kLease = 10'000;

TEST(OpenHandles, OpenReleaseAndHolders) {
  OpenHandles h(kLease);
  EXPECT_FALSE(h.held(7));
  h.open(1, 7, 1, 0);
  h.open(2, 7, 1, 0);
  h.open(1, 7, 2, 0);  // again: one handle
  EXPECT_EQ(h.handles(), 2u);
  EXPECT_TRUE(h.release(1, 7, 3, 0));
  EXPECT_TRUE(h.held(7)) << "client 2 still holds it";
  EXPECT_FALSE(h.release(1, 7, 4, 0)) << "released twice";
  EXPECT_TRUE(h.release(2, 7, 2, 0));
  EXPECT_FALSE(h.held(7));
  EXPECT_EQ(h.handles(), 0u);
}

TEST(OpenHandles, AReleaseOvertakenByALaterOpenKeepsTheHandle) {
  OpenHandles h(kLease);
  h.open(1, 7, 5, 0);   // the open that followed the close (seq 5) arrived first
  EXPECT_FALSE(h.release(1, 7, 4, 0));  // the close's release (seq 4) arrives late
  EXPECT_TRUE(h.held(7));
}

TEST(OpenHandles, RenewalTakesUpDropsAndSparesNewerHandles) {
  OpenHandles h(kLease);
  h.open(1, 7, 1, 0);
  h.open(1, 8, 2, 0);
  h.open(1, 9, 6, 0);  // registered after the renewal's list was made (seq 5)
  auto r = h.renew(1, 5, std::vector<uint64_t>{8, 10}, 0);
  EXPECT_EQ(r.dropped, std::vector<uint64_t>{7});  // lost release: not listed, older
  EXPECT_EQ(r.added, std::vector<uint64_t>{10});   // e.g. after a backend restart
  EXPECT_FALSE(h.held(7));
  EXPECT_TRUE(h.held(8));
  EXPECT_TRUE(h.held(9)) << "a handle newer than the renewal was dropped";
  EXPECT_TRUE(h.held(10));
}

TEST(OpenHandles, SilentClientsLoseTheirHandles) {
  OpenHandles h(kLease);
  h.open(1, 7, 1, 0);
  h.open(2, 7, 1, 0);
  h.open(2, 8, 2, 0);
  (void)h.renew(1, 1, std::vector<uint64_t>{7}, kLease);  // client 1 renews
  EXPECT_TRUE(h.expire(kLease).empty());
  auto gone = h.expire(kLease + 1);  // client 2 silent for more than the lease
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_EQ(gone[0].first, 2u);
  EXPECT_TRUE(h.held(7));
  EXPECT_FALSE(h.held(8));
  EXPECT_EQ(h.expire(2 * kLease + 1).size(), 1u) << "client 1's lease ran out too";
  EXPECT_FALSE(h.held(7));
}

}  // namespace
}  // namespace lanefs::backend

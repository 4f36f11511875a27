// The leader's registry of client containers: a frontend that heartbeats is
// listed as a FRONTEND process (container = its host name, network UDP); it
// disappears when it leaves, or after remove_after_secs without contact.
#include <gtest/gtest.h>

#include <thread>

#include "common/clock.h"
#include "integration/backend_fixture.h"
#include "rpc/typed_call.h"

namespace lanefs::test {
namespace {

proto::ClientInfo info(uint64_t uuid, uint32_t remove_after_secs) {
  proto::ClientInfo ci;
  ci.uuid = uuid;
  ci.hostname = "client-" + std::to_string(uuid);
  ci.ips = {"127.0.0.1"};
  ci.pid = 4242;
  ci.memory_bytes = 5'000'000;
  ci.uptime_s = 7;
  ci.mounts = 1;
  ci.remove_after_secs = remove_after_secs;
  return ci;
}

// FRONTEND rows of `lanefs cluster processes`, as the CLI's client sees them.
std::vector<proto::ProcessInfo> frontends(client::ClusterClient& c) {
  std::vector<proto::ProcessInfo> out;
  auto ps = c.processes();
  EXPECT_TRUE(ps.ok());
  if (!ps.ok()) return out;
  for (auto& p : *ps)
    if (!p.roles.empty() && p.roles[0] == "FRONTEND") out.push_back(p);
  return out;
}

TEST(ClientRegistry, HeartbeatListsLeaveRemovesTimeoutExpires) {
  BackendProcess b;
  ASSERT_OK(b.start());
  auto c = connect_client({b.addr()});
  ASSERT_OK(c);
  auto beat = [&](const proto::ClientInfo& ci, proto::Op op) {
    return rpc::call_typed<rpc::Empty>((*c)->rpc(), b.addr(), op, ci, 5 * kSecond);
  };
  EXPECT_TRUE(frontends(**c).empty());

  ASSERT_OK(beat(info(1, 3600), proto::Op::kClientHeartbeat));
  ASSERT_OK(beat(info(2, 1), proto::Op::kClientHeartbeat));
  auto rows = frontends(**c);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& p : rows) {
    EXPECT_EQ(p.container, p.hostname);
    EXPECT_EQ(p.network, "UDP");
    EXPECT_EQ(p.status, "UP");
    EXPECT_EQ(p.memory_bytes, 5'000'000u);
    EXPECT_GE(p.id, 1000u);
  }
  EXPECT_NE(rows[0].id, rows[1].id);

  // Client 2 (remove_after_secs=1) stops heartbeating: it is dropped once
  // that time has passed; client 1 keeps its row and its process id.
  uint64_t id1 = rows[0].hostname == "client-1" ? rows[0].id : rows[1].id;
  uint64_t deadline = mono_ns() + 10 * kSecond;
  bool gone = false;
  while (!gone && mono_ns() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    rows = frontends(**c);
    gone = rows.size() == 1;
  }
  ASSERT_TRUE(gone) << "client with remove_after_secs=1 still listed";
  EXPECT_EQ(rows[0].hostname, "client-1");
  EXPECT_EQ(rows[0].id, id1);

  // Leaving removes the row at once.
  ASSERT_OK(beat(info(1, 3600), proto::Op::kClientLeave));
  EXPECT_TRUE(frontends(**c).empty());
}

}  // namespace
}  // namespace lanefs::test

// Round trips per operation, counted by the frontend (`lanefs stats` "rpcs":
// calls sent per opcode): a file create + close costs at most 2 RPCs (the
// kernel's LOOKUP of the new name and CREATE, which answers the directory's
// new attributes too); direct 4 KiB writes cost one RPC each (write and
// size/mtime commit in one message, no capability probe per write). And
// the attributes served without a round trip are right.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

using nlohmann::json;

// Calls per opcode sent by the mount at `target`.
std::map<std::string, uint64_t> rpcs_of(MountEnv& env, const std::string& target) {
  std::map<std::string, uint64_t> out;
  CmdResult st = env.cli({"--json", "stats"});
  EXPECT_EQ(st.rc, 0) << st.describe();
  json j = json::parse(st.out, nullptr, false);
  if (!j.is_array()) {
    ADD_FAILURE() << "stats: " << st.out;
    return out;
  }
  for (const auto& m : j)
    if (m.value("target", "") == target && m.contains("rpcs"))
      for (auto it = m["rpcs"].begin(); it != m["rpcs"].end(); ++it) out[it.key()] = it.value().get<uint64_t>();
  return out;
}

// RPCs between two snapshots, without the background ones (heartbeats,
// map refreshes, handle renewals) that run on a timer.
uint64_t delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b,
               std::string* detail) {
  uint64_t n = 0;
  for (const auto& [op, v] : b) {
    // Timer-driven, at most one per second per backend: heartbeats, map
    // refreshes, open-handle renewals (which carry the closes' releases).
    if (op == "client_heartbeat" || op == "get_map" || op == "handle_renew") continue;
    uint64_t was = a.count(op) ? a.at(op) : 0;
    if (v > was) {
      n += v - was;
      *detail += op + "=" + std::to_string(v - was) + " ";
    }
  }
  return n;
}

TEST(RpcCount, CreateAndCloseTakeAtMostTwoRpcs) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("");
  ASSERT_TRUE(m.ok()) << m.error().to_string() << env.diagnostics();
  const std::string dir = *m + "/creates";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  struct stat d0 {};
  ASSERT_EQ(::stat(dir.c_str(), &d0), 0);

  constexpr int kFiles = 50;
  auto before = rpcs_of(env, *m);
  for (int i = 0; i < kFiles; ++i) {
    std::string p = dir + "/f" + std::to_string(i);
    int fd = ::open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << p << ": " << strerror(errno);
    ASSERT_EQ(::close(fd), 0);
  }
  auto after = rpcs_of(env, *m);
  std::string detail;
  uint64_t n = delta(before, after, &detail);
  EXPECT_LE(n, 2u * kFiles) << kFiles << " creates took " << n << " RPCs: " << detail;
  EXPECT_GE(n, 1u * kFiles) << "every create reaches the backend: " << detail;

  // The directory's attributes served from the create replies are the
  // backend's: a second mount (nothing cached) sees the same.
  auto m2 = env.mount("", "other");
  ASSERT_TRUE(m2.ok()) << m2.error().to_string();
  struct stat here {}, there {};
  ASSERT_EQ(::stat(dir.c_str(), &here), 0);
  ASSERT_EQ(::stat((*m2 + "/creates").c_str(), &there), 0);
  EXPECT_EQ(here.st_mtim.tv_sec, there.st_mtim.tv_sec);
  EXPECT_EQ(here.st_mtim.tv_nsec, there.st_mtim.tv_nsec);
  EXPECT_EQ(here.st_nlink, there.st_nlink);
  EXPECT_TRUE(here.st_mtim.tv_sec > d0.st_mtim.tv_sec ||
              (here.st_mtim.tv_sec == d0.st_mtim.tv_sec && here.st_mtim.tv_nsec > d0.st_mtim.tv_nsec));

  // A change that answers no attributes (unlink, mkdir's nlink) is seen at
  // once on this mount too.
  ASSERT_EQ(::unlink((dir + "/f0").c_str()), 0);
  ASSERT_EQ(::mkdir((dir + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(::stat(dir.c_str(), &here), 0);
  EXPECT_EQ(here.st_nlink, d0.st_nlink + 1);
  ASSERT_EQ(::unlink((dir + "/f1").c_str()), 0);
  struct stat after_unlink {};
  ASSERT_EQ(::stat(dir.c_str(), &after_unlink), 0);
  EXPECT_TRUE(after_unlink.st_mtim.tv_sec > here.st_mtim.tv_sec ||
              (after_unlink.st_mtim.tv_sec == here.st_mtim.tv_sec &&
               after_unlink.st_mtim.tv_nsec > here.st_mtim.tv_nsec))
      << "unlink must move the directory's mtime on the mount that made it";
  ASSERT_OK(env.unmount(*m2));
  ASSERT_OK(env.unmount(*m));
}

TEST(RpcCount, DirectSmallWritesTakeOneRpcEach) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("");
  ASSERT_TRUE(m.ok()) << m.error().to_string() << env.diagnostics();
  const std::string p = *m + "/direct";
  int fd = ::open(p.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  void* buf = nullptr;
  ASSERT_EQ(posix_memalign(&buf, 4096, 4096), 0);
  memset(buf, 'w', 4096);
  constexpr int kWrites = 64;
  auto before = rpcs_of(env, *m);
  for (int i = 0; i < kWrites; ++i) ASSERT_EQ(::pwrite(fd, buf, 4096, off_t(i) * 4096), 4096) << strerror(errno);
  auto after = rpcs_of(env, *m);
  std::string detail;
  uint64_t n = delta(before, after, &detail);
  // One stray attribute refresh may land in the window.
  EXPECT_LE(n, uint64_t{kWrites} + 2) << kWrites << " writes took " << n << " RPCs: " << detail;
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, off_t(kWrites) * 4096);
  ::close(fd);
  free(buf);
  ASSERT_OK(env.unmount(*m));
}

}  // namespace
}  // namespace lanefs::test

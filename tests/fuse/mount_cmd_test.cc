// The real mount(8): `mount -t lanefs`, and fstab lines (with _netdev) used
// through a temporary fstab (`mount -T FILE DIR`, `mount -a -T FILE -t
// lanefs`); /etc/fstab is never touched. mount(8) runs /sbin/mount.lanefs:
// if it does not exist, the test links it to the built helper and removes
// the link afterwards.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

constexpr const char* kSbinHelper = "/sbin/mount.lanefs";

std::string exe_of(pid_t pid) {
  char buf[PATH_MAX] = {};
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? buf : p;
}

int mount_count(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp;
    ls >> id >> parent >> dev >> root >> mp;
    if (mp == dir) ++n;
  }
  return n;
}

class MountCmd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fuse_unavailable_reason().empty()) return;
    MountEnv& env = shared_mount_env();
    if (!shared_mount_env_status().ok()) return;
    struct stat st {};
    if (lstat(kSbinHelper, &st) != 0) {
      env.watch_link(kSbinHelper);
      created_link_ = symlink(mount_helper_path().c_str(), kSbinHelper) == 0;
      if (!created_link_) env.forget_link(kSbinHelper);
    }
  }
  static void TearDownTestSuite() {
    if (created_link_) {
      unlink(kSbinHelper);
      shared_mount_env().forget_link(kSbinHelper);
      created_link_ = false;
    }
  }
  void SetUp() override {
    LANEFS_MOUNT_ENV(env);
    struct stat st {};
    ASSERT_EQ(stat(kSbinHelper, &st), 0) << kSbinHelper << " missing and could not be created";
    if (real(kSbinHelper) != real(mount_helper_path()))
      std::printf("[ note ] %s is %s, not this build's helper; testing that one\n", kSbinHelper,
                  real(kSbinHelper).c_str());
  }
  static bool created_link_;
};
bool MountCmd::created_link_ = false;

// mount(8) runs the helper with our environment (we are root, so it is not
// sanitized): the frontend must be the one in our LANEFS_RUN_DIR, started
// from LANEFS_FRONTEND. Returns false (and cleans up) when it is not.
bool env_passed_through(MountEnv& env, const std::string& dir, std::string* why) {
  pid_t fe = env.frontend_pid();
  if (fe == 0) {
    *why = "no frontend in LANEFS_RUN_DIR=" + env.run_dir() + " serves the mount made by mount(8)";
    return false;
  }
  std::string exe = exe_of(fe);
  if (real(exe) != real(frontend_path())) {
    *why = "frontend " + std::to_string(fe) + " runs " + exe + ", not LANEFS_FRONTEND=" + frontend_path();
    return false;
  }
  CmdResult ps = env.cli({"--json", "local", "ps"});
  if (ps.out.find(dir) == std::string::npos) {
    *why = "the frontend in LANEFS_RUN_DIR does not list " + dir;
    return false;
  }
  return true;
}

TEST_F(MountCmd, MountTypeLanefs) {
  MountEnv& env = shared_mount_env();
  std::string dir = env.new_dir("mnt-t");
  CmdResult r = run_bounded({"mount", "-t", "lanefs", "-o", "readcache,readahead_kb=1024", env.source(), dir}, 60);
  env.track_mount(dir);
  ASSERT_EQ(r.rc, 0) << r.describe() << "\n" << env.diagnostics();
  ASSERT_TRUE(is_lanefs_mount(dir));
  std::string why;
  if (!env_passed_through(env, dir, &why)) {
    ASSERT_OK(env.unmount(dir, true));
    GTEST_SKIP() << "mount(8) did not pass LANEFS_RUN_DIR/LANEFS_FRONTEND to the helper: " << why;
  }
  CmdResult ps = env.cli({"--json", "local", "ps"});
  EXPECT_NE(ps.out.find("readcache"), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("readahead_kb=1024"), std::string::npos) << ps.out;
  ASSERT_TRUE(spit(dir + "/via-mount8", pattern(41, 0, 123'456)));
  EXPECT_TRUE(slurp(dir + "/via-mount8") == pattern(41, 0, 123'456));
  // A bad option through mount(8) fails with the helper's status and message.
  std::string bad = env.new_dir("mnt-bad");
  r = run_bounded({"mount", "-t", "lanefs", "-o", "bogus_opt=1", env.source(), bad}, 30);
  EXPECT_EQ(r.rc, 32) << r.describe();
  EXPECT_NE((r.out + r.err).find("bogus_opt"), std::string::npos) << r.describe();
  EXPECT_FALSE(is_lanefs_mount(bad));
  // Plain umount(8).
  r = run_bounded({"umount", dir}, 30);
  EXPECT_EQ(r.rc, 0) << r.describe();
  EXPECT_FALSE(is_lanefs_mount(dir));
}

TEST_F(MountCmd, TemporaryFstabWithNetdev) {
  MountEnv& env = shared_mount_env();
  std::string d1 = env.new_dir("fstab-a"), d2 = env.new_dir("fstab-b");
  std::string fstab = env.base_dir() + "/fstab";
  {
    std::ofstream f(fstab);
    f << "# temporary fstab of a lanefs test\n";
    f << env.source() << "  " << d1 << "  lanefs  _netdev,forcedirect,noatime  0 0\n";
    f << env.source() << "  " << d2 << "  lanefs  defaults,_netdev,sync_on_close  0 0\n";
  }
  // One entry by its mount point.
  CmdResult r = run_bounded({"mount", "-T", fstab, d1}, 60);
  env.track_mount(d1);
  ASSERT_EQ(r.rc, 0) << r.describe() << "\n" << env.diagnostics();
  ASSERT_TRUE(is_lanefs_mount(d1));
  std::string why;
  if (!env_passed_through(env, d1, &why)) {
    ASSERT_OK(env.unmount(d1, true));
    GTEST_SKIP() << "mount(8) did not pass LANEFS_RUN_DIR/LANEFS_FRONTEND to the helper: " << why;
  }
  CmdResult ps = env.cli({"--json", "local", "ps"});
  EXPECT_NE(ps.out.find("forcedirect"), std::string::npos) << "fstab options not applied: " << ps.out;
  ASSERT_TRUE(spit(d1 + "/from-fstab", {'f'}));
  r = run_bounded({"umount", d1}, 30);
  ASSERT_EQ(r.rc, 0) << r.describe();
  ASSERT_FALSE(is_lanefs_mount(d1));

  // Everything of type lanefs, as at boot; twice (the second is a no-op).
  for (int round = 0; round < 2; ++round) {
    r = run_bounded({"mount", "-a", "-T", fstab, "-t", "lanefs"}, 90);
    env.track_mount(d1);
    env.track_mount(d2);
    ASSERT_EQ(r.rc, 0) << "round " << round << ": " << r.describe() << "\n" << env.diagnostics();
    EXPECT_TRUE(is_lanefs_mount(d1));
    EXPECT_TRUE(is_lanefs_mount(d2));
    EXPECT_EQ(mount_count(d1), 1) << "round " << round << ": stacked mounts";
    EXPECT_EQ(mount_count(d2), 1) << "round " << round << ": stacked mounts";
  }
  auto got = slurp(d2 + "/from-fstab");
  EXPECT_EQ(std::string(got.begin(), got.end()), "f");
  for (const auto& d : {d1, d2}) {
    r = run_bounded({"umount", d}, 30);
    EXPECT_EQ(r.rc, 0) << r.describe();
    EXPECT_FALSE(is_lanefs_mount(d));
  }
  EXPECT_TRUE(env.wait_frontend_gone(10)) << "frontend still running after the last unmount";
}

}  // namespace
}  // namespace lanefs::test

// The real mount(8): `mount -t lanefs`, and fstab lines (with _netdev) used
// through a temporary fstab (`mount -T FILE DIR`, `mount -a -T FILE -t
// lanefs`); /etc/fstab is never touched. mount(8) runs /sbin/mount.lanefs:
// if it does not exist, the test links it to the built helper and removes
// the link afterwards.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
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

namespace lanefs::test {
namespace {

// docs/security.md: the token a mount presents decides whether it mounts.
// Refusals exit 13 through mount(8) too, with one line saying why.
TEST_F(MountCmd, TheTokenDecidesWhatMounts) {
  MountEnv& env = shared_mount_env();
  const std::string fs = env.fs_name(), tokens = env.new_dir("tokens");
  auto token = [&](const std::string& u) { return tokens + "/" + u + ".token"; };
  ASSERT_EQ(env.cli({"fs", "create", "elsewhere"}).rc, 0);
  for (const auto& [user, role, fs_list] : std::vector<std::array<std::string, 3>>{
           {"m-other", "client", "elsewhere"}, {"m-ro", "readonly", fs}, {"m-ok", "client", fs}}) {
    CmdResult a = env.cli({"user", "add", user, "--role", role, "--fs", fs_list});
    ASSERT_EQ(a.rc, 0) << a.describe();
    CmdResult l = env.cli({"user", "login", user, "--token-file", token(user)});
    ASSERT_EQ(l.rc, 0) << l.describe();
  }
  // The right key's form with a wrong key.
  ASSERT_TRUE(spit(token("wrong"), std::vector<uint8_t>(), 0600));
  {
    std::ofstream w(token("wrong"));
    w << "lanefs-token 1 m-ok 1 " << std::string(64, 'a') << "\n";
  }
  struct Case {
    std::string token, opts, why;
  };
  for (const Case& c : std::vector<Case>{{tokens + "/missing.token", "", "does not exist"},
                                         {token("wrong"), "", "wrong token"},
                                         {token("m-other"), "", "does not name filesystem"},
                                         {token("m-ro"), "", "-o ro"}}) {
    std::string dir = env.new_dir("auth");
    CmdResult r = run_bounded({"mount", "-t", "lanefs", "-o", "auth_token_path=" + c.token + c.opts, env.source(), dir}, 60);
    env.track_mount(dir);
    EXPECT_EQ(r.rc, 13) << c.token << ": " << r.describe();
    EXPECT_NE((r.out + r.err).find(c.why), std::string::npos) << r.describe();
    EXPECT_NE((r.out + r.err).find("permission denied"), std::string::npos) << r.describe();
    EXPECT_FALSE(is_lanefs_mount(dir));
  }
  // A readonly token mounts read-only; the right client token mounts.
  auto ro = env.mount("ro,auth_token_path=" + token("m-ro"), "auth-ro");
  ASSERT_TRUE(ro.ok()) << ro.error().to_string();
  EXPECT_FALSE(spit(*ro + "/nope", pattern(1, 0, 10)));
  EXPECT_EQ(errno, EROFS);
  ASSERT_OK(env.unmount(*ro));
  auto ok = env.mount("auth_token_path=" + token("m-ok"), "auth-ok");
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  ASSERT_TRUE(spit(*ok + "/by-token", pattern(2, 0, 4096)));
  EXPECT_TRUE(slurp(*ok + "/by-token") == pattern(2, 0, 4096));
  ASSERT_OK(env.unmount(*ok));
}

}  // namespace
}  // namespace lanefs::test

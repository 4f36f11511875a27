// Permissions through real mounts (docs/security.md, "Permissions"): a
// mount whose token squashes root runs root as nobody on the backend, even
// though the mounting kernel lets root through; a user whose access comes
// from a supplementary group gets it (the frontend sends the groups when
// the backend asks for them by refusing).
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <functional>

#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

class FusePermissions : public ::testing::Test {
 protected:
  void SetUp() override { LANEFS_REQUIRE_FUSE(); }
};

// Runs `fn` in a child running as uid:gid with `groups`, bounded by an
// alarm; the child's answer (0 or an errno), or -1 if it did not finish.
int as_user(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::function<int()>& fn) {
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    alarm(30);
    if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(250);
    _exit(fn());
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

int read_errno(const std::string& path) {
  bool ok = false;
  (void)slurp(path, &ok);
  return ok ? 0 : errno;
}

TEST_F(FusePermissions, ARootSquashingTokenRunsRootAsNobody) {
  MountEnv& env = shared_mount_env();
  auto plain = env.mount("", "plain");
  ASSERT_TRUE(plain.ok()) << plain.error().to_string();
  const std::string tokens = env.new_dir("tokens"), token = tokens + "/squashed.token";
  ASSERT_EQ(env.cli({"user", "add", "squashed", "--role", "client", "--fs", env.fs_name(), "--root-squash"}).rc, 0);
  ASSERT_EQ(env.cli({"user", "login", "squashed", "--token-file", token}).rc, 0);
  auto squashed = env.mount("auth_token_path=" + token, "squashed");
  ASSERT_TRUE(squashed.ok()) << squashed.error().to_string();

  // Root's files, made through the mount that does not squash.
  ASSERT_TRUE(spit(*plain + "/secret", pattern(1, 0, 100), 0600));
  ASSERT_EQ(mkdir((*plain + "/vault").c_str(), 0700), 0);
  ASSERT_TRUE(spit(*plain + "/vault/x", pattern(2, 0, 100), 0644));
  ASSERT_EQ(mkdir((*plain + "/pub").c_str(), 0777), 0);
  ASSERT_EQ(chmod((*plain + "/pub").c_str(), 0777), 0);  // past the umask
  EXPECT_EQ(read_errno(*plain + "/secret"), 0);

  // Through the squashing mount root is nobody: the kernel lets root
  // through, the backend does not.
  EXPECT_EQ(read_errno(*squashed + "/secret"), EACCES);
  struct stat st;
  errno = 0;
  EXPECT_NE(stat((*squashed + "/vault/x").c_str(), &st), 0);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(unlink((*squashed + "/vault/x").c_str()), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_FALSE(spit(*squashed + "/at-the-top", pattern(3, 0, 10)));  // root's 0755 root directory
  EXPECT_EQ(errno, EACCES);
  // What it makes belongs to nobody.
  ASSERT_TRUE(spit(*squashed + "/pub/made", pattern(4, 0, 10)));
  ASSERT_EQ(stat((*plain + "/pub/made").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  // A file already open on the mount (by its owner) is not opened again
  // at the backend: the frontend checks the squashed root itself.
  ASSERT_TRUE(spit(*plain + "/pub/alices", pattern(6, 0, 10), 0600));
  ASSERT_EQ(chown((*plain + "/pub/alices").c_str(), 1000, 1000), 0);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t holder = fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    alarm(30);
    char ok = 'n';
    if (setgid(1000) == 0 && setuid(1000) == 0 && open((*squashed + "/pub/alices").c_str(), O_RDONLY) >= 0) ok = 'y';
    (void)!write(ready[1], &ok, 1);
    pause();
    _exit(0);
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  close(ready[1]);
  EXPECT_EQ(ok, 'y');
  EXPECT_EQ(read_errno(*squashed + "/pub/alices"), EACCES);
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  // Root's data is unchanged, and other users are themselves.
  EXPECT_TRUE(slurp(*plain + "/vault/x") == pattern(2, 0, 100));
  ASSERT_EQ(chown((*plain + "/pub/made").c_str(), 1000, 1000), 0);
  EXPECT_EQ(as_user(1000, 1000, {}, [&] { return read_errno(*squashed + "/pub/made"); }), 0);
  ASSERT_OK(env.unmount(*squashed));
  ASSERT_OK(env.unmount(*plain));
}

TEST_F(FusePermissions, SupplementaryGroupsGrantAccess) {
  MountEnv& env = shared_mount_env();
  auto m = env.mount("", "groups");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string team = *m + "/team";
  ASSERT_EQ(mkdir(team.c_str(), 0770), 0);
  ASSERT_EQ(chown(team.c_str(), 0, 500), 0);
  ASSERT_EQ(chmod(team.c_str(), 0770), 0);
  ASSERT_TRUE(spit(team + "/doc", pattern(5, 0, 4096), 0640));
  ASSERT_EQ(chown((team + "/doc").c_str(), 0, 500), 0);
  // Member of group 500 only through its supplementary groups: the lookup
  // and the open are refused without them, then sent again with them.
  EXPECT_EQ(as_user(1000, 1000, {1000, 500}, [&] {
              bool ok = false;
              auto got = slurp(team + "/doc", &ok);
              return ok && got == pattern(5, 0, 4096) ? 0 : (ok ? 200 : errno);
            }),
            0);
  EXPECT_EQ(as_user(1000, 1000, {1000}, [&] { return read_errno(team + "/doc"); }), EACCES);
  // A chgrp into a supplementary group (the backend's EPERM without the
  // groups makes the frontend send them).
  ASSERT_TRUE(spit(*m + "/mine", pattern(7, 0, 10), 0644));
  ASSERT_EQ(chown((*m + "/mine").c_str(), 1000, 1000), 0);
  EXPECT_EQ(as_user(1000, 1000, {1000, 500}, [&] { return chown((*m + "/mine").c_str(), -1, 500) == 0 ? 0 : errno; }),
            0);
  struct stat st;
  ASSERT_EQ(stat((*m + "/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 500u);
  // A program only its owner may read, anyone may run (0711).
  ASSERT_TRUE(spit(*m + "/tool", slurp("/bin/true"), 0755));
  ASSERT_EQ(chmod((*m + "/tool").c_str(), 0711), 0);
  EXPECT_EQ(as_user(1000, 1000, {1000}, [&] {
              execl((*m + "/tool").c_str(), "tool", static_cast<char*>(nullptr));
              return errno;
            }),
            0);
  ASSERT_OK(env.unmount(*m));
}

TEST_F(FusePermissions, TrustedAttributeNamesAreListedToRootOnly) {
  MountEnv& env = shared_mount_env();
  auto m = env.mount("", "xattr-list");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/attrs";
  ASSERT_TRUE(spit(f, pattern(3, 0, 10), 0644));
  ASSERT_EQ(setxattr(f.c_str(), "trusted.t", "1", 1, 0), 0) << strerror(errno);
  ASSERT_EQ(setxattr(f.c_str(), "user.u", "2", 1, 0), 0) << strerror(errno);
  // The names listed, joined by spaces in the order given ("error N": failed).
  auto listed = [&] {
    char buf[256];
    ssize_t n = listxattr(f.c_str(), buf, sizeof buf);
    if (n < 0) return "error " + std::to_string(errno);
    std::string out;
    for (const char* p = buf; p < buf + n; p += strlen(p) + 1) out += (out.empty() ? "" : " ") + std::string(p);
    return out;
  };
  const std::string as_root = listed();
  EXPECT_TRUE(as_root == "trusted.t user.u" || as_root == "user.u trusted.t") << as_root;
  EXPECT_EQ(as_user(1000, 1000, {1000}, [&] { return listed() == "user.u" ? 0 : 1; }), 0);
  ASSERT_OK(env.unmount(*m));
}

}  // namespace
}  // namespace lanefs::test

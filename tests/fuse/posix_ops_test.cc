// POSIX operations through a real lanefs mount, with real system calls, in
// each cache mode (writecache, readcache, forcedirect).
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "common/clock.h"
#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

class PosixOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    LANEFS_MOUNT_ENV(env);
    auto m = shared_mount(GetParam());
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    // A fresh directory per test and mode keeps tests independent.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = *m + "/" + name;
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0) << dir_ << ": " << errno_str(errno);
    chmod(dir_.c_str(), 0755);
  }
  std::string path(const std::string& n) const { return dir_ + "/" + n; }
  bool writecache() const { return GetParam() == "writecache"; }
  std::string dir_;
};

struct stat stat_of(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(lstat(p.c_str(), &st), 0) << p << ": " << errno_str(errno);
  return st;
}

bool ts_after(const timespec& a, const timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

// Polls (bounded) until pred() holds; the kernel may keep attributes cached
// for up to dentry_max_age_positive in writecache mode.
template <class F>
bool eventually(F pred, double seconds = 5) {
  uint64_t deadline = mono_ns() + static_cast<uint64_t>(seconds * 1e9);
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    if (mono_ns() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// What a pwrite of `d` at `off` does to a file whose contents are `f`.
void apply(std::vector<uint8_t>& f, size_t off, const std::vector<uint8_t>& d) {
  if (f.size() < off + d.size()) f.resize(off + d.size(), 0);
  std::copy(d.begin(), d.end(), f.begin() + static_cast<ptrdiff_t>(off));
}

TEST_P(PosixOps, ReadWriteLargeAndUnaligned) {
  std::string p = path("f");
  int fd = open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << errno_str(errno);
  // 1 MiB + a bit with one write(2), crossing the first chunk boundary.
  std::vector<uint8_t> expect = pattern(1, 0, (1 << 20) + 4099);
  ASSERT_EQ(write(fd, expect.data(), expect.size()), static_cast<ssize_t>(expect.size())) << errno_str(errno);
  // Unaligned pwrite across the chunk boundary, and one past the end.
  auto a = pattern(2, 1'048'000, 5000);
  ASSERT_TRUE(write_full(fd, a.data(), a.size(), 1'048'000)) << errno_str(errno);
  apply(expect, 1'048'000, a);
  auto b = pattern(3, expect.size() + 777, 333);
  ASSERT_TRUE(write_full(fd, b.data(), b.size(), expect.size() + 777)) << errno_str(errno);
  apply(expect, expect.size() + 777, b);
  // A 3 MiB write at an odd offset.
  auto c = pattern(4, 2'000'001, 3 << 20);
  ASSERT_TRUE(write_full(fd, c.data(), c.size(), 2'000'001)) << errno_str(errno);
  apply(expect, 2'000'001, c);

  std::vector<uint8_t> got(expect.size());
  ASSERT_TRUE(read_full(fd, got.data(), got.size(), 0)) << errno_str(errno);
  EXPECT_TRUE(got == expect) << "read back through the same fd differs";
  // Unaligned pread in the middle.
  std::vector<uint8_t> mid(12345);
  ASSERT_TRUE(read_full(fd, mid.data(), mid.size(), 1'040'001));
  EXPECT_TRUE(std::equal(mid.begin(), mid.end(), expect.begin() + 1'040'001));
  // Reading past EOF returns 0.
  char x;
  EXPECT_EQ(pread(fd, &x, 1, static_cast<off_t>(expect.size()) + 10), 0);
  ASSERT_EQ(fsync(fd), 0) << errno_str(errno);
  ASSERT_EQ(close(fd), 0) << errno_str(errno);

  EXPECT_EQ(stat_of(p).st_size, static_cast<off_t>(expect.size()));
  bool ok = false;
  EXPECT_TRUE(slurp(p, &ok) == expect) << "read back after reopen differs";
  EXPECT_TRUE(ok);
}

TEST_P(PosixOps, OpenFlags) {
  std::string p = path("flags");
  ASSERT_TRUE(spit(p, pattern(5, 0, 10000)));
  EXPECT_EQ(stat_of(p).st_size, 10000);
  // O_EXCL on an existing name.
  errno = 0;
  EXPECT_EQ(open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644), -1);
  EXPECT_EQ(errno, EEXIST) << errno_str(errno);
  // O_TRUNC empties it.
  int fd = open(p.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  ASSERT_GE(fd, 0) << errno_str(errno);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  close(fd);
  EXPECT_EQ(stat_of(p).st_size, 0);
  EXPECT_TRUE(slurp(p).empty());
  // O_APPEND writes at the end, whatever the offset.
  for (const char* s : {"hello ", "append ", "world"}) {
    fd = open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0) << errno_str(errno);
    lseek(fd, 0, SEEK_SET);
    ASSERT_EQ(write(fd, s, strlen(s)), static_cast<ssize_t>(strlen(s))) << errno_str(errno);
    close(fd);
  }
  auto all = slurp(p);
  EXPECT_EQ(std::string(all.begin(), all.end()), "hello append world");
  // O_CREAT|O_TRUNC on an existing file with data.
  ASSERT_TRUE(spit(p, pattern(6, 0, 300000)));
  fd = open(p.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "xy", 2), 2);
  close(fd);
  all = slurp(p);
  EXPECT_EQ(std::string(all.begin(), all.end()), "xy");
  // Missing file without O_CREAT.
  errno = 0;
  EXPECT_EQ(open(path("missing").c_str(), O_RDONLY | O_CLOEXEC), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_P(PosixOps, TruncateGrowShrink) {
  std::string p = path("t");
  auto data = pattern(7, 0, 1'500'000);
  ASSERT_TRUE(spit(p, data));
  int fd = open(p.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 3 << 20), 0) << errno_str(errno);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 3 << 20);
  std::vector<uint8_t> got(3 << 20);
  ASSERT_TRUE(read_full(fd, got.data(), got.size(), 0)) << errno_str(errno);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin()));
  EXPECT_TRUE(std::all_of(got.begin() + 1'500'000, got.end(), [](uint8_t v) { return v == 0; }))
      << "grown region is not zero";
  // Shrink into the first chunk, then grow again: the cut data must not come back.
  ASSERT_EQ(ftruncate(fd, 1000), 0) << errno_str(errno);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1000);
  ASSERT_EQ(ftruncate(fd, 1'200'000), 0);
  got.assign(1'200'000, 0xff);
  ASSERT_TRUE(read_full(fd, got.data(), got.size(), 0)) << errno_str(errno);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 1000, got.begin()));
  EXPECT_TRUE(std::all_of(got.begin() + 1000, got.end(), [](uint8_t v) { return v == 0; }))
      << "data cut by truncate reappeared";
  close(fd);
  EXPECT_EQ(stat_of(p).st_size, 1'200'000);
  ASSERT_EQ(truncate(p.c_str(), 0), 0);
  EXPECT_EQ(stat_of(p).st_size, 0);
}

TEST_P(PosixOps, StatAttributes) {
  std::string f = path("s");
  ASSERT_TRUE(spit(f, pattern(8, 0, 2 << 20)));
  struct stat st = stat_of(f);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_size, 2 << 20);
  EXPECT_EQ(st.st_uid, 0u);
  // st_blocks follows the data on the backends (the kernel may show its
  // cached value until the attributes expire).
  EXPECT_TRUE(eventually([&] {
    struct stat s2 = stat_of(f);
    return s2.st_blocks * 512 >= (2 << 20) && s2.st_blocks * 512 <= (2 << 20) + (1 << 20);
  })) << "st_blocks=" << stat_of(f).st_blocks << " for 2 MiB of data";

  // Directories: 2 + subdirectories.
  std::string d = path("d");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  EXPECT_EQ(stat_of(d).st_nlink, 2u);
  ASSERT_EQ(mkdir((d + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((d + "/b").c_str(), 0755), 0);
  ASSERT_TRUE(spit(d + "/file", {1, 2, 3}));
  EXPECT_TRUE(eventually([&] { return stat_of(d).st_nlink == 4u; })) << stat_of(d).st_nlink;
  ASSERT_EQ(rmdir((d + "/b").c_str()), 0);
  EXPECT_TRUE(eventually([&] { return stat_of(d).st_nlink == 3u; })) << stat_of(d).st_nlink;

  // mtime moves on write.
  struct stat before = stat_of(f);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct timestamps, not an assertion
  int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(write_full(fd, "abc", 3, 100));
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  EXPECT_TRUE(eventually([&] { return ts_after(stat_of(f).st_mtim, before.st_mtim); }))
      << "mtime did not change on write";
  // ctime moves on chmod.
  before = stat_of(f);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(chmod(f.c_str(), 0600), 0);
  struct stat after = stat_of(f);
  EXPECT_EQ(after.st_mode & 07777, 0600u);
  EXPECT_TRUE(ts_after(after.st_ctim, before.st_ctim)) << "ctime did not change on chmod";
}

TEST_P(PosixOps, ChmodChownUtimens) {
  std::string f = path("c");
  ASSERT_TRUE(spit(f, {9}));
  ASSERT_EQ(chmod(f.c_str(), 04751), 0) << errno_str(errno);
  EXPECT_EQ(stat_of(f).st_mode & 07777, 04751u);
  ASSERT_EQ(chown(f.c_str(), 1234, 5678), 0) << errno_str(errno);
  struct stat st = stat_of(f);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  ASSERT_EQ(lchown(f.c_str(), static_cast<uid_t>(-1), 42), 0);
  st = stat_of(f);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 42u);
  timespec ts[2] = {{1'000'000'000, 123'456'789}, {1'200'000'000, 987'654'321}};
  ASSERT_EQ(utimensat(AT_FDCWD, f.c_str(), ts, 0), 0) << errno_str(errno);
  st = stat_of(f);
  EXPECT_EQ(st.st_atim.tv_sec, 1'000'000'000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123'456'789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'200'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987'654'321);
  // UTIME_NOW sets "now"; UTIME_OMIT leaves atime alone.
  timespec now_ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  time_t t0 = time(nullptr);
  ASSERT_EQ(utimensat(AT_FDCWD, f.c_str(), now_ts, 0), 0);
  st = stat_of(f);
  EXPECT_EQ(st.st_atim.tv_sec, 1'000'000'000);
  EXPECT_GE(st.st_mtim.tv_sec, t0 - 2);
}

TEST_P(PosixOps, DirectoriesAndUnlink) {
  std::string d = path("sub");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(mkdir(d.c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_TRUE(spit(d + "/x", {1}));
  errno = 0;
  EXPECT_EQ(rmdir(d.c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(rmdir((d + "/x").c_str()), -1);
  EXPECT_EQ(errno, ENOTDIR) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(unlink(d.c_str()), -1);
  EXPECT_EQ(errno, EISDIR) << errno_str(errno);
  ASSERT_EQ(unlink((d + "/x").c_str()), 0) << errno_str(errno);
  struct stat st {};
  errno = 0;
  EXPECT_EQ(stat((d + "/x").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(rmdir(d.c_str()), 0) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(stat(d.c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
}

// A path component longer than NAME_MAX (255 bytes) is ENAMETOOLONG for
// every operation that names it, never ENOENT.
TEST_P(PosixOps, OverlongNameIsEnametoolong) {
  const std::string longname(256, 'n');
  const std::string lp = path(longname), ok = path("short");
  ASSERT_TRUE(spit(ok, {1, 2, 3}));
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0) << errno_str(errno);
  struct stat st {};
  auto expect_long = [&](int rc, const char* what) {
    int e = errno;
    EXPECT_EQ(rc, -1) << what;
    EXPECT_EQ(e, ENAMETOOLONG) << what << ": " << errno_str(e);
  };
  errno = 0;
  expect_long(stat(lp.c_str(), &st), "stat");
  errno = 0;
  expect_long(chmod(lp.c_str(), 0600), "chmod");
  errno = 0;
  expect_long(truncate(lp.c_str(), 0), "truncate");
  errno = 0;
  expect_long(unlink(lp.c_str()), "unlink");
  errno = 0;
  expect_long(rmdir(lp.c_str()), "rmdir");
  errno = 0;
  expect_long(open(lp.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644), "open O_CREAT");
  errno = 0;
  expect_long(mkdir(lp.c_str(), 0755), "mkdir");
  errno = 0;
  expect_long(link(ok.c_str(), lp.c_str()), "link");
  errno = 0;
  expect_long(rename(ok.c_str(), lp.c_str()), "rename to");
  errno = 0;
  expect_long(rename(lp.c_str(), ok.c_str()), "rename from");
  errno = 0;
  expect_long(symlink("target", lp.c_str()), "symlink");
  errno = 0;
  expect_long(stat((lp + "/x").c_str(), &st), "stat below");
  // 255 bytes is fine.
  const std::string maxname = path(std::string(255, 'm'));
  ASSERT_TRUE(spit(maxname, {9})) << errno_str(errno);
  EXPECT_EQ(stat(maxname.c_str(), &st), 0) << errno_str(errno);
  EXPECT_EQ(unlink(maxname.c_str()), 0) << errno_str(errno);
}

TEST_P(PosixOps, Renames) {
  std::string a = path("a"), b = path("b"), c = path("c");
  ASSERT_TRUE(spit(a, {'A'}));
  ino_t ino_a = stat_of(a).st_ino;
  ASSERT_EQ(rename(a.c_str(), c.c_str()), 0) << errno_str(errno);
  struct stat st {};
  EXPECT_EQ(stat(a.c_str(), &st), -1);
  EXPECT_EQ(stat_of(c).st_ino, ino_a);
  // Over an existing file: the target's content is replaced.
  ASSERT_TRUE(spit(b, {'B', 'B'}));
  ASSERT_EQ(rename(c.c_str(), b.c_str()), 0) << errno_str(errno);
  auto got = slurp(b);
  EXPECT_EQ(std::string(got.begin(), got.end()), "A");
  EXPECT_EQ(stat_of(b).st_ino, ino_a);
  // RENAME_NOREPLACE onto an existing name.
  ASSERT_TRUE(spit(a, {'N', 'E', 'W'}));
  errno = 0;
  EXPECT_EQ(renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_NOREPLACE), -1);
  EXPECT_EQ(errno, EEXIST) << errno_str(errno);
  got = slurp(b);
  EXPECT_EQ(std::string(got.begin(), got.end()), "A");
  // RENAME_NOREPLACE onto a free name works.
  ASSERT_EQ(renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, c.c_str(), RENAME_NOREPLACE), 0) << errno_str(errno);
  // RENAME_EXCHANGE swaps.
  ASSERT_EQ(renameat2(AT_FDCWD, b.c_str(), AT_FDCWD, c.c_str(), RENAME_EXCHANGE), 0) << errno_str(errno);
  got = slurp(b);
  EXPECT_EQ(std::string(got.begin(), got.end()), "NEW");
  got = slurp(c);
  EXPECT_EQ(std::string(got.begin(), got.end()), "A");
  // Into a subdirectory.
  ASSERT_EQ(mkdir(path("sub").c_str(), 0755), 0);
  ASSERT_EQ(rename(c.c_str(), path("sub/moved").c_str()), 0) << errno_str(errno);
  got = slurp(path("sub/moved"));
  EXPECT_EQ(std::string(got.begin(), got.end()), "A");
}

TEST_P(PosixOps, LinksAndSpecialFiles) {
  std::string f = path("orig"), l = path("hard"), s = path("sym"), fifo = path("fifo");
  ASSERT_TRUE(spit(f, {'x', 'y'}));
  ASSERT_EQ(link(f.c_str(), l.c_str()), 0) << errno_str(errno);
  struct stat a = stat_of(f), b = stat_of(l);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(b.st_nlink, 2u);
  ASSERT_EQ(unlink(f.c_str()), 0);
  EXPECT_TRUE(eventually([&] { return stat_of(l).st_nlink == 1u; }));
  auto got = slurp(l);
  EXPECT_EQ(std::string(got.begin(), got.end()), "xy");

  ASSERT_EQ(symlink("hard", s.c_str()), 0) << errno_str(errno);
  char buf[256] = {};
  ASSERT_EQ(readlink(s.c_str(), buf, sizeof buf), 4) << errno_str(errno);
  EXPECT_STREQ(buf, "hard");
  EXPECT_TRUE(S_ISLNK(stat_of(s).st_mode));
  got = slurp(s);  // followed
  EXPECT_EQ(std::string(got.begin(), got.end()), "xy");

  ASSERT_EQ(mknod(fifo.c_str(), S_IFIFO | 0640, 0), 0) << errno_str(errno);
  struct stat fs = stat_of(fifo);
  EXPECT_TRUE(S_ISFIFO(fs.st_mode));
  EXPECT_EQ(fs.st_mode & 0777, 0640u);
}

// Open, unlink, then read and write through the open descriptor: the file
// stays alive until its last close (POSIX), in every cache mode; the name
// is gone at once.
TEST_P(PosixOps, OpenUnlinkThenReadKeepsTheData) {
  const std::string f = path("open-unlinked");
  auto data = pattern(77, 0, 300'000);
  ASSERT_TRUE(spit(f, data));
  int fd = open(f.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << errno_str(errno);
  ASSERT_EQ(unlink(f.c_str()), 0) << errno_str(errno);
  struct stat st {};
  errno = 0;
  EXPECT_EQ(stat(f.c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  std::vector<uint8_t> got(data.size());
  EXPECT_EQ(pread(fd, got.data(), got.size(), 0), ssize_t(got.size())) << errno_str(errno);
  EXPECT_TRUE(got == data) << "an open, unlinked file lost its data";
  ASSERT_EQ(fstat(fd, &st), 0) << errno_str(errno);
  EXPECT_EQ(st.st_size, off_t(data.size()));
  EXPECT_EQ(st.st_nlink, 0u);
  const uint8_t more[4] = {1, 2, 3, 4};
  EXPECT_EQ(pwrite(fd, more, 4, 10), 4) << errno_str(errno);
  uint8_t back[4] = {};
  EXPECT_EQ(pread(fd, back, 4, 10), 4) << errno_str(errno);
  EXPECT_EQ(std::memcmp(back, more, 4), 0);
  EXPECT_EQ(close(fd), 0);
}

TEST_P(PosixOps, ReaddirSmall) {
  std::set<std::string> want = {"one", "two", "three", "sub", "a-much-longer-name-with-dashes.txt"};
  for (const auto& n : want) {
    if (n == "sub") ASSERT_EQ(mkdir(path(n).c_str(), 0755), 0);
    else ASSERT_TRUE(spit(path(n), {}));
  }
  DIR* d = opendir(dir_.c_str());
  ASSERT_NE(d, nullptr) << errno_str(errno);
  std::multiset<std::string> got;
  while (dirent* e = readdir(d)) {
    got.insert(e->d_name);
    if (std::string(e->d_name) == "sub") {
      EXPECT_EQ(e->d_type, DT_DIR);
    }
    if (std::string(e->d_name) == "one") {
      EXPECT_EQ(e->d_type, DT_REG);
    }
  }
  closedir(d);
  std::multiset<std::string> expect(want.begin(), want.end());
  expect.insert(".");
  expect.insert("..");
  EXPECT_EQ(got, expect);
}

TEST_P(PosixOps, StatvfsAndFsync) {
  struct statvfs v {};
  ASSERT_EQ(statvfs(dir_.c_str(), &v), 0) << errno_str(errno);
  EXPECT_GT(v.f_bsize, 0u);
  EXPECT_GT(v.f_blocks, 0u);
  EXPECT_GT(v.f_bavail, 0u);
  EXPECT_GT(v.f_namemax, 0u);
  int fd = open(path("sync").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(write_full(fd, "data", 4, 0));
  EXPECT_EQ(fsync(fd), 0) << errno_str(errno);
  EXPECT_EQ(fdatasync(fd), 0) << errno_str(errno);
  close(fd);
  int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  EXPECT_EQ(fsync(dfd), 0) << errno_str(errno);
  close(dfd);
}

TEST_P(PosixOps, Xattrs) {
  std::string f = path("x");
  ASSERT_TRUE(spit(f, {}));
  ASSERT_EQ(setxattr(f.c_str(), "user.color", "blue", 4, 0), 0) << errno_str(errno);
  ASSERT_EQ(setxattr(f.c_str(), "user.empty", "", 0, 0), 0) << errno_str(errno);
  char buf[256] = {};
  EXPECT_EQ(getxattr(f.c_str(), "user.color", nullptr, 0), 4);
  ASSERT_EQ(getxattr(f.c_str(), "user.color", buf, sizeof buf), 4) << errno_str(errno);
  EXPECT_EQ(std::string(buf, 4), "blue");
  errno = 0;
  EXPECT_EQ(getxattr(f.c_str(), "user.color", buf, 2), -1);
  EXPECT_EQ(errno, ERANGE);
  errno = 0;
  EXPECT_EQ(setxattr(f.c_str(), "user.color", "red", 3, XATTR_CREATE), -1);
  EXPECT_EQ(errno, EEXIST) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(setxattr(f.c_str(), "user.nope", "v", 1, XATTR_REPLACE), -1);
  EXPECT_EQ(errno, ENODATA) << errno_str(errno);
  ASSERT_EQ(setxattr(f.c_str(), "user.color", "red", 3, XATTR_REPLACE), 0);
  ASSERT_EQ(getxattr(f.c_str(), "user.color", buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "red");
  ssize_t n = listxattr(f.c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0) << errno_str(errno);
  std::set<std::string> names;
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(strlen(buf + i)) + 1) names.insert(buf + i);
  EXPECT_EQ(names, (std::set<std::string>{"user.color", "user.empty"}));
  ASSERT_EQ(removexattr(f.c_str(), "user.color"), 0) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(getxattr(f.c_str(), "user.color", buf, sizeof buf), -1);
  EXPECT_EQ(errno, ENODATA) << errno_str(errno);
  errno = 0;
  EXPECT_EQ(removexattr(f.c_str(), "user.color"), -1);
  EXPECT_EQ(errno, ENODATA) << errno_str(errno);
  // On a directory too.
  ASSERT_EQ(setxattr(dir_.c_str(), "user.d", "1", 1, 0), 0) << errno_str(errno);
  EXPECT_EQ(getxattr(dir_.c_str(), "user.d", buf, sizeof buf), 1);
}

TEST_P(PosixOps, Fallocate) {
  std::string f = path("fa");
  int fd = open(f.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto data = pattern(9, 0, 3 << 20);
  ASSERT_TRUE(write_full(fd, data.data(), 1 << 20, 0));
  ASSERT_EQ(fallocate(fd, 0, 0, 3 << 20), 0) << errno_str(errno);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 3 << 20);
  ASSERT_TRUE(write_full(fd, data.data() + (1 << 20), 2 << 20, 1 << 20));
  // Punch a hole across the chunk boundary; the size stays.
  const off_t ho = 1'000'000, hl = 1'100'000;
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ho, hl), 0) << errno_str(errno);
  std::fill(data.begin() + ho, data.begin() + ho + hl, 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 3 << 20);
  std::vector<uint8_t> got(data.size());
  ASSERT_TRUE(read_full(fd, got.data(), got.size(), 0)) << errno_str(errno);
  EXPECT_TRUE(got == data) << "punched range not zero or neighbours damaged";
  close(fd);
  EXPECT_TRUE(slurp(f) == data) << "after reopen";
}

// A forked child drops to nobody (65534) and tries the files: opens with
// `flags` and reads or writes a byte, or only opens (O_TRUNC), or truncates
// to 1 byte (flags -1).
int access_as_nobody(const std::string& p, int flags) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(100);
    if (flags == -1) _exit(truncate(p.c_str(), 1) == 0 ? 0 : errno == EACCES ? 13 : 103);  // truncate(2) to 1 byte
    int fd = open(p.c_str(), flags | O_CLOEXEC);
    if (fd < 0) _exit(errno == EACCES ? 13 : 101);
    if (flags & O_TRUNC) _exit(0);  // the open truncated; no write
    char c;
    ssize_t n = (flags & O_ACCMODE) == O_RDONLY ? read(fd, &c, 1) : write(fd, "z", 1);
    _exit(n == 1 ? 0 : 102);
  }
  int st = 0;
  uint64_t deadline = mono_ns() + 30'000'000'000ull;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (mono_ns() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST_P(PosixOps, PermissionsAreEnforced) {
  std::string secret = path("secret"), pub = path("public");
  ASSERT_TRUE(spit(secret, {'s'}, 0600));
  ASSERT_TRUE(spit(pub, {'p'}, 0644));
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  ASSERT_EQ(chmod(pub.c_str(), 0644), 0);
  EXPECT_EQ(access_as_nobody(secret, O_RDONLY), 13) << "nobody could read a root 0600 file (or other error)";
  EXPECT_EQ(access_as_nobody(pub, O_RDONLY), 0) << "nobody could not read a 0644 file";
  EXPECT_EQ(access_as_nobody(pub, O_WRONLY), 13) << "nobody could write a root 0644 file";
  // And root still can.
  auto got = slurp(secret);
  EXPECT_EQ(std::string(got.begin(), got.end()), "s");
}

// A write by a user without CAP_FSETID clears set-user-ID, and
// set-group-ID when group execute is set, as on a local filesystem; in
// every cache mode (forcedirect bypasses the kernel's own clearing).
TEST_P(PosixOps, WriteByAnotherUserClearsSetuidSetgid) {
  std::string f = path("suid");
  ASSERT_TRUE(spit(f, {'x'}, 0666));
  ASSERT_EQ(chmod(f.c_str(), 06777), 0) << errno_str(errno);
  ASSERT_EQ(stat_of(f).st_mode & 07777, 06777u);
  EXPECT_EQ(access_as_nobody(f, O_WRONLY), 0) << "nobody could not write a 0777 file";
  uint32_t mode = stat_of(f).st_mode & 07777;
  EXPECT_EQ(mode & (S_ISUID | S_ISGID), 0u) << std::oct << "mode after the write: " << mode;
  EXPECT_EQ(mode & 0777, 0777u) << std::oct << mode;
  // Without group execute, set-group-ID stays (it then means locking).
  ASSERT_EQ(chmod(f.c_str(), 06766), 0);
  EXPECT_EQ(access_as_nobody(f, O_WRONLY), 0);
  mode = stat_of(f).st_mode & 07777;
  EXPECT_EQ(mode, 02766u) << std::oct << mode;
  // Root (CAP_FSETID) keeps them.
  ASSERT_EQ(chmod(f.c_str(), 06777), 0);
  ASSERT_TRUE(spit(f, {'r'}, 0666));
  EXPECT_EQ(stat_of(f).st_mode & 07777, 06777u);
}

// Truncation by a user without CAP_FSETID (open O_TRUNC, truncate(2)) and
// chown by anyone clear them too (the kernel leaves it to lanefs:
// HANDLE_KILLPRIV_V2); a directory's set-group-ID survives a chown.
TEST_P(PosixOps, TruncateAndChownClearSetuidSetgid) {
  std::string f = path("suid-trunc");
  ASSERT_TRUE(spit(f, {'x', 'y'}, 0666));
  for (const char* how : {"open O_TRUNC", "truncate"}) {
    ASSERT_EQ(chmod(f.c_str(), 06777), 0) << errno_str(errno);
    const bool by_open = how[0] == 'o';
    EXPECT_EQ(access_as_nobody(f, by_open ? O_WRONLY | O_TRUNC : -1), 0) << how;
    struct stat st = stat_of(f);
    EXPECT_EQ(st.st_mode & 07777, 0777u) << how << ": mode " << std::oct << (st.st_mode & 07777);
    EXPECT_EQ(st.st_size, by_open ? 0 : 1) << how;
    ASSERT_TRUE(spit(f, {'x', 'y'}, 0666));
  }
  // Root's truncate keeps them.
  ASSERT_EQ(chmod(f.c_str(), 06777), 0);
  ASSERT_EQ(truncate(f.c_str(), 1), 0) << errno_str(errno);
  EXPECT_EQ(stat_of(f).st_mode & 07777, 06777u);
  // chown clears set-user-ID even for root, set-group-ID with group execute.
  ASSERT_EQ(chown(f.c_str(), 65534, 65534), 0) << errno_str(errno);
  EXPECT_EQ(stat_of(f).st_mode & 07777, 0777u) << std::oct << (stat_of(f).st_mode & 07777);
  ASSERT_EQ(chmod(f.c_str(), 06766), 0);
  ASSERT_EQ(chown(f.c_str(), 0, 0), 0);
  EXPECT_EQ(stat_of(f).st_mode & 07777, 02766u) << std::oct << (stat_of(f).st_mode & 07777);
  std::string d = path("sgid-dir");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  ASSERT_EQ(chmod(d.c_str(), 02775), 0);
  ASSERT_EQ(chown(d.c_str(), 65534, 65534), 0);
  EXPECT_EQ(stat_of(d).st_mode & 07777, 02775u) << std::oct << (stat_of(d).st_mode & 07777);
}

INSTANTIATE_TEST_SUITE_P(Modes, PosixOps, ::testing::ValuesIn(all_cache_modes()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lanefs::test

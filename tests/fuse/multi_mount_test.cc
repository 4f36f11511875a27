// Two mounts of one filesystem (two mount points, one frontend): what one
// writes and closes, the other reads on its next open; names created in one
// appear in the other once dentry_max_age_positive has passed.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "common/clock.h"
#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

class MultiMount : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    if (!::testing::Test::IsSkipped())
      for (const auto& d : {a_, b_})
        if (!d.empty()) EXPECT_OK(shared_mount_env().unmount(d));
  }
  std::string a_, b_;
};

bool names_contain(const std::string& dir, const std::string& name) {
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  bool found = false;
  while (dirent* e = readdir(d))
    if (name == e->d_name) found = true;
  closedir(d);
  return found;
}

// Polls (bounded) until pred() holds.
template <class F>
bool within(double seconds, F pred) {
  uint64_t deadline = mono_ns() + static_cast<uint64_t>(seconds * 1e9);
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    if (mono_ns() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_P(MultiMount, CloseToOpenAndNewNames) {
  LANEFS_MOUNT_ENV(env);
  // Names may be cached for 100 ms; no negative caching (the default).
  const std::string opts = GetParam() + ",dentry_max_age_positive=100";
  auto a = env.mount(opts, "a");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  a_ = *a;
  auto b = env.mount(opts, "b");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  b_ = *b;
  pid_t fe = env.frontend_pid();
  EXPECT_GT(fe, 0);

  const std::string sub = "/mm-" + GetParam();
  ASSERT_EQ(mkdir((a_ + sub).c_str(), 0755), 0) << errno_str(errno);
  std::string fa = a_ + sub + "/file", fb = b_ + sub + "/file";

  // v1 through A; B reads it.
  auto v1 = pattern(1, 0, 300'000);
  ASSERT_TRUE(spit(fa, v1));
  bool ok = false;
  ASSERT_TRUE(within(5, [&] { return slurp(fb, &ok) == v1; })) << "B never saw v1";

  // v2, same size, rewritten in place through A after B cached v1: B's next
  // open must see v2 (same size, so only dropping the cache at open helps).
  auto v2 = pattern(2, 0, v1.size());
  {
    int fd = open(fa.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(write_full(fd, v2.data(), v2.size(), 0));
    ASSERT_EQ(close(fd), 0);
  }
  auto got = slurp(fb, &ok);
  ASSERT_TRUE(ok) << errno_str(errno);
  EXPECT_TRUE(got == v2) << "B read stale data after A rewrote the file (same size)";

  // v3 larger, across chunks; then v4 shorter.
  auto v3 = pattern(3, 0, 2'500'000);
  ASSERT_TRUE(spit(fa, v3));
  got = slurp(fb, &ok);
  EXPECT_TRUE(ok && got == v3) << "B read " << got.size() << " bytes, want v3 of " << v3.size();
  auto v4 = pattern(4, 0, 1000);
  ASSERT_TRUE(spit(fa, v4));
  got = slurp(fb, &ok);
  EXPECT_TRUE(ok && got == v4) << "B read " << got.size() << " bytes, want v4 of " << v4.size();
  // And the other way round.
  auto v5 = pattern(5, 0, 70'000);
  ASSERT_TRUE(spit(fb, v5));
  got = slurp(fa, &ok);
  EXPECT_TRUE(ok && got == v5) << "A did not see B's write";

  // A new name made in A: B looks it up first (miss), then sees it.
  std::string na = a_ + sub + "/new", nb = b_ + sub + "/new";
  struct stat st {};
  EXPECT_EQ(stat(nb.c_str(), &st), -1);
  EXPECT_FALSE(names_contain(b_ + sub, "new"));
  ASSERT_TRUE(spit(na, {'h', 'i'}));
  EXPECT_TRUE(within(5, [&] { return stat(nb.c_str(), &st) == 0; })) << "B never saw the new file";
  EXPECT_EQ(st.st_size, 2);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_TRUE(within(5, [&] { return names_contain(b_ + sub, "new"); })) << "B's listing lacks the new file";
  got = slurp(nb, &ok);
  EXPECT_EQ(std::string(got.begin(), got.end()), "hi");
  // Removed in A: gone in B.
  ASSERT_EQ(unlink(na.c_str()), 0);
  EXPECT_TRUE(within(5, [&] { return stat(nb.c_str(), &st) != 0 && errno == ENOENT; }))
      << "B still sees the removed file";
  EXPECT_TRUE(within(5, [&] { return !names_contain(b_ + sub, "new"); }));
  EXPECT_EQ(env.frontend_pid(), fe) << "both mounts should be served by one frontend";
}

INSTANTIATE_TEST_SUITE_P(Modes, MultiMount, ::testing::ValuesIn(all_cache_modes()),
                         [](const auto& info) { return info.param; });

// Two mounts, every cache mode: B renames s3 over t3 while A holds t3's
// name in its dentry cache. A's opens of t3 must never fail: the name
// exists on the backend the whole time (A's stale node answers ESTALE and
// the kernel looks the name up again).
class MultiMountAllModes : public MultiMount {};

TEST_P(MultiMountAllModes, RenameOverAStaleNameIsRevalidated) {
  LANEFS_MOUNT_ENV(env);
  auto a = env.mount(GetParam(), "ra");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  a_ = *a;
  auto b = env.mount(GetParam(), "rb");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  b_ = *b;
  const std::string sub = "/ro-" + GetParam();
  ASSERT_EQ(mkdir((a_ + sub).c_str(), 0755), 0) << errno_str(errno);
  struct stat st {};
  ASSERT_TRUE(within(5, [&] { return stat((b_ + sub).c_str(), &st) == 0; }));
  for (int round = 0; round < 3; ++round) {
    const std::string t3a = a_ + sub + "/t3", s3b = b_ + sub + "/s3", t3b = b_ + sub + "/t3";
    auto before = pattern(60 + round, 0, 4000), after = pattern(70 + round, 0, 4000);
    ASSERT_TRUE(spit(t3a, before));
    bool ok = false;
    ASSERT_TRUE(slurp(t3a, &ok) == before);  // A caches t3's name and node
    ASSERT_TRUE(within(5, [&] { return stat(t3b.c_str(), &st) == 0; }));
    ASSERT_TRUE(spit(s3b, after));
    ASSERT_EQ(rename(s3b.c_str(), t3b.c_str()), 0) << errno_str(errno);
    int failures = 0, first_errno = 0;
    bool saw_after = false;
    for (int i = 0; i < 40; ++i) {
      int fd = open(t3a.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (failures++ == 0) first_errno = errno;
      } else {
        std::vector<uint8_t> got(after.size());
        saw_after = saw_after || (pread(fd, got.data(), got.size(), 0) == ssize_t(got.size()) && got == after);
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    EXPECT_EQ(failures, 0) << "round " << round << ": open(t3) failed " << failures << " times, first with "
                           << errno_str(first_errno);
    EXPECT_TRUE(saw_after) << "round " << round << ": A never read the file renamed over t3";
    ASSERT_EQ(unlink(t3a.c_str()), 0) << errno_str(errno);
    ASSERT_TRUE(within(5, [&] { return stat(t3b.c_str(), &st) != 0; }));
  }
}

// Issue 13 item 1: B holds a file open read-only while A appends 4 bytes
// and closes. B's stat is right within dentry_max_age_positive, B's next
// open+read at once (close-to-open), B's held descriptor reads the new
// bytes, and all of it stays right after B closes. Then the same with the
// file not open on B at all, and a rewrite that shrinks it.
TEST_P(MultiMountAllModes, AppendSeenByAHolderAndAfterItCloses) {
  LANEFS_MOUNT_ENV(env);
  constexpr int kAgeMs = 300;
  const std::string opts = GetParam() + ",dentry_max_age_positive=" + std::to_string(kAgeMs);
  auto a = env.mount(opts, "pa");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  a_ = *a;
  auto b = env.mount(opts, "pb");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  b_ = *b;
  const std::string sub = "/ap-" + GetParam();
  ASSERT_EQ(mkdir((a_ + sub).c_str(), 0755), 0) << errno_str(errno);
  const std::string fa = a_ + sub + "/log", fb = b_ + sub + "/log";
  auto v = pattern(80, 0, 10'000);
  ASSERT_TRUE(spit(fa, v));
  bool ok = false;
  ASSERT_TRUE(within(5, [&] { return slurp(fb, &ok) == v; })) << "B never saw the file";

  auto append = [&](uint8_t seed) {
    int fd = open(fa.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return false;
    uint8_t four[4] = {seed, uint8_t(seed + 1), uint8_t(seed + 2), uint8_t(seed + 3)};
    bool wrote = ::write(fd, four, 4) == 4;
    if (close(fd) != 0) wrote = false;
    if (wrote) v.insert(v.end(), four, four + 4);
    return wrote;
  };
  auto stat_size = [](const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 ? int64_t(st.st_size) : int64_t(-1);
  };
  // Long enough for the attribute timeout plus a slow machine's round trips.
  const double settle_s = kAgeMs / 1000.0 + 3;

  int held = open(fb.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0) << errno_str(errno);
  std::vector<uint8_t> got(v.size() + 100);
  ASSERT_EQ(read_upto(held, got.data(), got.size(), 0), ssize_t(v.size()));  // B caches the pages

  ASSERT_TRUE(append(0xA1)) << errno_str(errno);
  EXPECT_TRUE(within(settle_s, [&] { return stat_size(fb) == int64_t(v.size()); }))
      << "B's stat stayed at " << stat_size(fb) << ", want " << v.size() << "\n" << env.diagnostics();
  EXPECT_TRUE(slurp(fb, &ok) == v) << "B's fresh open+read missed the appended bytes";
  struct stat st {};
  EXPECT_TRUE(within(settle_s, [&] { return fstat(held, &st) == 0 && st.st_size == int64_t(v.size()); }))
      << "B's open descriptor reports size " << st.st_size << ", want " << v.size();
  got.assign(v.size() + 100, 0);
  EXPECT_EQ(read_upto(held, got.data(), got.size(), 0), ssize_t(v.size()));
  got.resize(v.size());
  EXPECT_TRUE(got == v) << "B's open descriptor read stale bytes";

  // A second append while B still holds it: B's next open sees it at once.
  ASSERT_TRUE(append(0xB1));
  EXPECT_TRUE(slurp(fb, &ok) == v) << "close-to-open: B's open right after A's close missed the append";
  ASSERT_EQ(close(held), 0);
  EXPECT_EQ(stat_size(fb), int64_t(v.size())) << "B's size after it closed";
  EXPECT_TRUE(slurp(fb, &ok) == v);

  // Not open on B: stat within the attribute timeout, open+read at once.
  ASSERT_TRUE(append(0xC1));
  EXPECT_TRUE(slurp(fb, &ok) == v) << "B's open after A's close missed the append (not held)";
  ASSERT_TRUE(append(0xD1));
  EXPECT_TRUE(within(settle_s, [&] { return stat_size(fb) == int64_t(v.size()); }))
      << "B's stat stayed at " << stat_size(fb) << ", want " << v.size();

  // Shrunk in A (truncate and rewrite): B sees the short file.
  v = pattern(81, 0, 3000);
  ASSERT_TRUE(spit(fa, v));
  EXPECT_TRUE(slurp(fb, &ok) == v) << "B read " << slurp(fb).size() << " bytes after A shrank the file to " << v.size();
  EXPECT_TRUE(within(settle_s, [&] { return stat_size(fb) == int64_t(v.size()); }));
  // And B's own writes still reach A.
  auto w = pattern(82, 0, 5000);
  ASSERT_TRUE(spit(fb, w));
  EXPECT_TRUE(slurp(fa, &ok) == w) << "A did not see B's rewrite";

  // Shrunk in A while B holds it open and B's stat reaches the backend
  // meanwhile: after B's last close, B sees the short file.
  held = open(fb.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0) << errno_str(errno);
  got.assign(w.size() + 100, 0);
  ASSERT_EQ(read_upto(held, got.data(), got.size(), 0), ssize_t(w.size()));
  v = pattern(83, 0, 1000);
  ASSERT_TRUE(spit(fa, v));
  for (int i = 0; i < 2; ++i) {  // twice: the second check must not forget the first
    usleep((kAgeMs + 200) * 1000);  // past the attribute timeout: the fstat asks the backend
    ASSERT_EQ(fstat(held, &st), 0);
  }
  ASSERT_EQ(close(held), 0);
  EXPECT_TRUE(within(settle_s, [&] { return stat_size(fb) == int64_t(v.size()); }))
      << "B's stat stayed at " << stat_size(fb) << " after it closed the file A shrank to " << v.size();
  EXPECT_TRUE(slurp(fb, &ok) == v) << "B read " << slurp(fb).size() << " bytes of a file A shrank to " << v.size()
                                   << " while B held it";
}

// Issue 13 item 2: A unlinks (and renames over) files that B holds open.
// B keeps reading and writing them until its last close, as POSIX keeps an
// open file alive; then the backend drops their data.
TEST_P(MultiMountAllModes, UnlinkedOnOneMountStaysOpenOnTheOther) {
  LANEFS_MOUNT_ENV(env);
  auto a = env.mount(GetParam(), "ua");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  a_ = *a;
  auto b = env.mount(GetParam(), "ub");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  b_ = *b;
  const std::string sub = "/ul-" + GetParam();
  ASSERT_EQ(mkdir((a_ + sub).c_str(), 0755), 0) << errno_str(errno);
  const std::string fa = a_ + sub + "/gone", fb = b_ + sub + "/gone";
  const std::string ta = a_ + sub + "/target", tb = b_ + sub + "/target", sa = a_ + sub + "/src";
  auto v = pattern(100, 0, 1'500'000), t = pattern(101, 0, 200'000);
  ASSERT_TRUE(spit(fa, v));
  ASSERT_TRUE(spit(ta, t));
  struct stat st {};
  ASSERT_TRUE(within(5, [&] { return stat(fb.c_str(), &st) == 0 && stat(tb.c_str(), &st) == 0; }));

  int rd = open(fb.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(rd, 0) << errno_str(errno);
  int rw = open(tb.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(rw, 0) << errno_str(errno);
  std::vector<uint8_t> got(4096);
  ASSERT_TRUE(read_full(rd, got.data(), got.size(), 0));  // B has read some of it
  ASSERT_EQ(fstat(rd, &st), 0);
  const std::string chunk_dir = [&] {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(st.st_ino));
    return env.backend().data_dir() + "/chunks/" + hex;
  }();
  ASSERT_EQ(access(chunk_dir.c_str(), F_OK), 0) << "no chunk directory " << chunk_dir << " for the file";

  // A removes both names: one by unlink, one by renaming another file over it.
  ASSERT_EQ(unlink(fa.c_str()), 0) << errno_str(errno);
  ASSERT_TRUE(spit(sa, {'n', 'e', 'w'}));
  ASSERT_EQ(rename(sa.c_str(), ta.c_str()), 0) << errno_str(errno);
  ASSERT_TRUE(within(5, [&] { return stat(fb.c_str(), &st) != 0 && errno == ENOENT; })) << "B still sees the name";

  // B reads all of the unlinked file through its descriptor.
  got.assign(v.size(), 0);
  EXPECT_TRUE(read_full(rd, got.data(), got.size(), 0)) << "read after the unlink: " << errno_str(errno);
  EXPECT_TRUE(got == v) << "B read wrong bytes from the unlinked file";
  ASSERT_EQ(fstat(rd, &st), 0) << errno_str(errno);
  EXPECT_EQ(st.st_size, off_t(v.size()));
  EXPECT_EQ(st.st_nlink, 0u);
  // And writes and reads the one renamed over.
  auto w = pattern(102, 0, 300'000);
  EXPECT_TRUE(write_full(rw, w.data(), w.size(), 100'000)) << "write after the rename over: " << errno_str(errno);
  EXPECT_EQ(fsync(rw), 0) << errno_str(errno);
  std::vector<uint8_t> want = t;
  want.resize(100'000 + w.size());
  std::copy(w.begin(), w.end(), want.begin() + 100'000);
  got.assign(want.size(), 0);
  EXPECT_TRUE(read_full(rw, got.data(), got.size(), 0)) << errno_str(errno);
  EXPECT_TRUE(got == want) << "B read wrong bytes from the file renamed over";
  bool ok = false;
  EXPECT_EQ(slurp(tb, &ok).size(), 3u) << "the name now holds the new file";

  // The last close drops the unlinked file's data on the backend.
  ASSERT_EQ(close(rd), 0);
  ASSERT_EQ(close(rw), 0);
  EXPECT_TRUE(within(10, [&] { return access(chunk_dir.c_str(), F_OK) != 0; }))
      << "the unlinked file's data is still on the backend after its last close: " << chunk_dir;
}

INSTANTIATE_TEST_SUITE_P(Modes, MultiMountAllModes, ::testing::ValuesIn(all_cache_modes()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lanefs::test

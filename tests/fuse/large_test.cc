// Large things through a real mount: a sparse file beyond 4 GiB and a
// directory of 10,000 entries.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

TEST(Large, SparseFileBeyond4GiB) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  std::string p = *m + "/sparse";
  int fd = open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << errno_str(errno);
  const uint64_t big_off = 4 * kGiB + kGiB / 2;  // 4.5 GiB
  const uint64_t tail_off = 6 * kGiB - 10;
  auto big = pattern(11, big_off, 1 << 20);
  auto tail = pattern(12, tail_off, 7);
  ASSERT_TRUE(write_full(fd, big.data(), big.size(), big_off)) << errno_str(errno);
  ASSERT_TRUE(write_full(fd, tail.data(), tail.size(), tail_off)) << errno_str(errno);
  ASSERT_EQ(fsync(fd), 0) << errno_str(errno);
  ASSERT_EQ(close(fd), 0);

  fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), tail_off + tail.size());
  std::vector<uint8_t> got(big.size());
  ASSERT_TRUE(read_full(fd, got.data(), got.size(), big_off)) << errno_str(errno);
  EXPECT_TRUE(got == big) << "1 MiB at 4.5 GiB differs";
  std::vector<uint8_t> t(tail.size());
  ASSERT_TRUE(read_full(fd, t.data(), t.size(), tail_off)) << errno_str(errno);
  EXPECT_TRUE(t == tail) << "bytes at 6 GiB - 10 differ";
  // Reading at EOF gives nothing.
  char c;
  EXPECT_EQ(pread(fd, &c, 1, static_cast<off_t>(tail_off + tail.size())), 0);
  // Holes: before the data, just around it (across the 4 GiB line and the
  // 32-bit wrap), and between the two written ranges.
  const std::pair<uint64_t, size_t> holes[] = {
      {0, 4096},          {123456, 4096},         {4 * kGiB - 4096, 4096},   {4 * kGiB, 4096},
      {big_off - 100, 100}, {big_off + big.size(), 4096}, {5 * kGiB + 777, 4096}, {tail_off - 4096, 4096}};
  for (auto [off, len] : holes) {
    std::vector<uint8_t> h(len, 0xAA);
    ASSERT_TRUE(read_full(fd, h.data(), h.size(), off)) << "at " << off << ": " << errno_str(errno);
    EXPECT_TRUE(std::all_of(h.begin(), h.end(), [](uint8_t v) { return v == 0; })) << "hole at " << off;
  }
  // The bytes right before the tail must be zero and the last ones right.
  std::vector<uint8_t> edge(17);
  ASSERT_TRUE(read_full(fd, edge.data(), edge.size(), tail_off - 10));
  EXPECT_TRUE(std::all_of(edge.begin(), edge.begin() + 10, [](uint8_t v) { return v == 0; }));
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), edge.begin() + 10));
  close(fd);

  // Allocation: about 1 MiB + one block, far below size/512. Attributes may
  // be cached for dentry_max_age_positive; poll a bounded time.
  blkcnt_t blocks = 0;
  for (int i = 0; i < 60; ++i) {
    ASSERT_EQ(stat(p.c_str(), &st), 0);
    blocks = st.st_blocks;
    if (blocks >= 2048) break;
    usleep(50'000);
  }
  EXPECT_GE(blocks, 2048) << "1 MiB of data should take >= 2048 blocks";
  EXPECT_LT(static_cast<uint64_t>(blocks), (4ull << 20) / 512) << "sparse file allocates far too much";
  EXPECT_LT(static_cast<uint64_t>(blocks), static_cast<uint64_t>(st.st_size) / 512 / 100);
  ASSERT_EQ(unlink(p.c_str()), 0);
}

std::multiset<std::string> list_dir(const std::string& d, bool* ok) {
  std::multiset<std::string> names;
  *ok = false;
  DIR* dp = opendir(d.c_str());
  if (!dp) return names;
  errno = 0;
  while (dirent* e = readdir(dp)) names.insert(e->d_name);
  *ok = errno == 0;
  closedir(dp);
  return names;
}

TEST(Large, TenThousandEntryDirectory) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  std::string d = *m + "/big-dir";
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << errno_str(errno);
  constexpr int kFiles = 10000, kThreads = 8;
  std::atomic<int> failures{0};
  std::atomic<int> first_errno{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = t; i < kFiles; i += kThreads) {
        std::string p = d + "/entry-" + std::to_string(i) + (i % 3 ? "" : "-with-a-longer-name");
        int fd = open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) {
          int z = 0;
          first_errno.compare_exchange_strong(z, errno);
          ++failures;
          continue;
        }
        close(fd);
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(failures.load(), 0) << "creates failed, first: " << errno_str(first_errno.load());

  std::multiset<std::string> expect = {".", ".."};
  for (int i = 0; i < kFiles; ++i)
    expect.insert("entry-" + std::to_string(i) + (i % 3 ? "" : "-with-a-longer-name"));
  bool ok = false;
  auto first = list_dir(d, &ok);
  ASSERT_TRUE(ok) << "readdir failed: " << errno_str(errno);
  EXPECT_EQ(first.size(), expect.size());
  EXPECT_TRUE(first == expect) << "listing is not exactly the 10,000 names + . and ..";
  std::set<std::string> unique(first.begin(), first.end());
  EXPECT_EQ(unique.size(), first.size()) << "duplicate names in the listing";
  // A second listing (like ls -f) is the same.
  auto second = list_dir(d, &ok);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(second == first) << "second listing differs";
  // And the same through ls -f (getdents with its own buffer size).
  CmdResult ls = run_bounded({"ls", "-f", d}, 60);
  ASSERT_EQ(ls.rc, 0) << ls.describe();
  std::multiset<std::string> ls_names;
  size_t at = 0;
  while (at < ls.out.size()) {
    size_t nl = ls.out.find('\n', at);
    if (nl == std::string::npos) nl = ls.out.size();
    if (nl > at) ls_names.insert(ls.out.substr(at, nl - at));
    at = nl + 1;
  }
  EXPECT_TRUE(ls_names == expect) << "ls -f listed " << ls_names.size() << " names";
  struct stat st {};
  ASSERT_EQ(stat((d + "/entry-9998").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

}  // namespace
}  // namespace lanefs::test

// FUSE channels (issue 14): fuse_channel=auto|uring|classic against the
// kernel's fuse.enable_uring, a REGISTER that fails (test hook), unmount
// with entries parked in the kernel, kill -9 of a frontend whose rings are
// active, and shared mmap on a forcedirect mount (FUSE_DIRECT_IO_ALLOW_MMAP).
// Each test has its own backend and frontend (MountEnv), and sets the
// kernel parameter it needs; the value from before is restored at exit.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <atomic>
#include <fstream>
#include <thread>
#include <vector>
#include <nlohmann/json.hpp>

#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

constexpr const char* kParam = "/sys/module/fuse/parameters/enable_uring";

std::string read_param() {
  std::ifstream in(kParam);
  std::string v;
  std::getline(in, v);
  return v;
}
bool set_param(bool on) {
  std::ofstream out(kParam);
  out << (on ? "Y" : "N");
  out.close();
  return static_cast<bool>(out);
}

class Channel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { before_ = read_param(); }
  static void TearDownTestSuite() {
    if (!before_.empty()) set_param(before_ == "Y");
  }
  void SetUp() override {
    LANEFS_REQUIRE_FUSE();
    if (before_.empty()) GTEST_SKIP() << kParam << " is missing: this kernel has no FUSE over io_uring";
    env_ = std::make_unique<MountEnv>();
    ASSERT_OK(env_->start());
  }
  void TearDown() override {
    if (env_) env_->teardown();
    unsetenv("LANEFS_TEST_FUSE_URING_REGISTER_FAIL");
  }
  // The mount's entry in `lanefs --json local ps`.
  nlohmann::json ps_mount(const std::string& dir) {
    CmdResult r = env_->cli({"--json", "local", "ps"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_array())
      for (const auto& row : j)
        for (const auto& m : row.value("mounts", nlohmann::json::array()))
          if (m.value("target", "") == dir) return m;
    ADD_FAILURE() << "no mount " << dir << " in lanefs local ps: " << r.describe();
    return nlohmann::json::object();
  }
  static inline std::string before_;
  std::unique_ptr<MountEnv> env_;
};

TEST_F(Channel, AutoWithTheParameterOffMountsClassicAndSaysWhy) {
  ASSERT_TRUE(set_param(false));
  auto m = env_->mount("fuse_channel=auto");
  ASSERT_OK(m);
  struct stat st {};
  ASSERT_EQ(stat((*m + "/.").c_str(), &st), 0);
  auto j = ps_mount(*m);
  EXPECT_EQ(j.value("channel", ""), "classic");
  EXPECT_NE(j.value("channel_reason", "").find("enable_uring is off"), std::string::npos) << j.dump();
  EXPECT_GT(j.value("fuse_requests_classic", 0ull), 0u);
  EXPECT_EQ(j.value("fuse_requests_uring", 1ull), 0u);
}

TEST_F(Channel, UringWithTheParameterOffFailsWithExit32) {
  ASSERT_TRUE(set_param(false));
  std::string dir = env_->new_dir("uring-off");
  CmdResult r = env_->mount_helper(env_->source(), dir, "fuse_channel=uring", 30);
  EXPECT_EQ(r.rc, 32) << r.describe();
  EXPECT_NE((r.out + r.err).find("enable_uring"), std::string::npos) << r.describe();
  std::ifstream mounts("/proc/mounts");
  std::string all((std::istreambuf_iterator<char>(mounts)), {});
  EXPECT_EQ(all.find(" " + dir + " "), std::string::npos) << "a failed mount was left behind";
}

TEST_F(Channel, UringServesEveryRequestAndTheCountersSaySo) {
  ASSERT_TRUE(set_param(true));
  auto m = env_->mount("fuse_channel=uring");
  ASSERT_OK(m);
  const std::string f = *m + "/data";
  auto data = pattern(7, 0, 3 << 20);
  ASSERT_TRUE(spit(f, data)) << errno_str(errno);
  auto got = slurp(f);
  size_t first = 0;
  while (first < std::min(got.size(), data.size()) && got[first] == data[first]) ++first;
  EXPECT_TRUE(got == data) << "read back " << got.size() << " of " << data.size() << " bytes, first difference at "
                           << first;
  auto j = ps_mount(*m);
  EXPECT_EQ(j.value("channel", ""), "uring") << j.dump();
  EXPECT_GT(j.value("fuse_requests_uring", 0ull), 0u);
  EXPECT_EQ(j.value("fuse_requests_classic", 1ull), 0u) << "requests the rings should have carried came on /dev/fuse";
}

// Replies are committed as the backends answer: one queue thread holds
// several requests at once while they are in the network (it would hold
// one if each entry waited for its backend in its own thread).
TEST_F(Channel, OneQueueThreadHoldsSeveralRequestsWhileTheBackendsWork) {
  ASSERT_TRUE(set_param(true));
  auto m = env_->mount("fuse_channel=uring,forcedirect");
  ASSERT_OK(m);
  const std::string f = *m + "/spread";
  auto data = pattern(11, 0, 4 << 20);
  ASSERT_TRUE(spit(f, data)) << errno_str(errno);
  // 16 readers on CPU 0: every request goes to queue 0, i.e. one thread.
  constexpr int kReaders = 16, kReads = 200;
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t)
    readers.emplace_back([&, t] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(0, &one);
      sched_setaffinity(0, sizeof one, &one);
      int fd = ::open(f.c_str(), O_RDONLY);
      if (fd < 0) {
        ++bad;
        return;
      }
      std::vector<uint8_t> b(4096);
      for (int i = 0; i < kReads; ++i) {
        const size_t off = (static_cast<size_t>(t * kReads + i) * 7919 % 1024) * 4096;
        if (pread(fd, b.data(), b.size(), static_cast<off_t>(off)) != 4096 ||
            std::memcmp(b.data(), data.data() + off, 4096) != 0)
          ++bad;
      }
      ::close(fd);
    });
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0) << "reads that failed or returned the wrong bytes";
  auto j = ps_mount(*m);
  EXPECT_EQ(j.value("channel", ""), "uring") << j.dump();
  EXPECT_GT(j.value("fuse_uring_peak_per_thread", 0ull), 1u)
      << "queue 0's thread never held two requests at once: " << j.dump();
}

TEST_F(Channel, AFailingRegisterEndsTheMountWithoutAHang) {
  ASSERT_TRUE(set_param(true));
  // The frontend this env starts inherits the hook: its REGISTERs offer a
  // payload buffer one page short, which the kernel refuses.
  setenv("LANEFS_TEST_FUSE_URING_REGISTER_FAIL", "1", 1);
  std::string dir = env_->new_dir("register-fails");
  CmdResult r = env_->mount_helper(env_->source(), dir, "fuse_channel=uring", 5);
  EXPECT_FALSE(r.timed_out) << "the mount hung: " << r.describe();
  EXPECT_EQ(r.rc, 32) << r.describe();
  EXPECT_NE((r.out + r.err).find("REGISTER"), std::string::npos) << r.describe();
  // auto: the same failure mounts again on the classic channel.
  auto m = env_->mount("fuse_channel=auto");
  ASSERT_OK(m);
  EXPECT_TRUE(spit(*m + "/x", {1, 2, 3}));
  auto j = ps_mount(*m);
  EXPECT_EQ(j.value("channel", ""), "classic");
  EXPECT_NE(j.value("channel_reason", "").find("io_uring channel failed"), std::string::npos) << j.dump();
}

TEST_F(Channel, UnmountAndKill9WithRingsActive) {
  ASSERT_TRUE(set_param(true));
  auto m = env_->mount("fuse_channel=uring");
  ASSERT_OK(m);
  ASSERT_TRUE(spit(*m + "/a", {1, 2, 3}));
  // Every entry is parked in the kernel now: the unmount must not wait.
  ASSERT_OK(env_->unmount(*m));
  auto m2 = env_->mount("fuse_channel=uring", "again");
  ASSERT_OK(m2);
  EXPECT_EQ(slurp(*m2 + "/a"), (std::vector<uint8_t>{1, 2, 3}));
  // kill -9: the mount answers ENOTCONN, nothing hangs, and a new mount works.
  pid_t fe = env_->frontend_pid();
  ASSERT_GT(fe, 0);
  ASSERT_EQ(kill(fe, SIGKILL), 0);
  ASSERT_TRUE(env_->wait_frontend_gone(10));
  CmdResult ls = run_bounded({"ls", *m2}, 10);
  EXPECT_FALSE(ls.timed_out) << "a dead mount hung ls";
  EXPECT_NE(ls.rc, 0);
  ASSERT_OK(env_->unmount(*m2, true));
  auto m3 = env_->mount("fuse_channel=uring", "after-kill");
  ASSERT_OK(m3);
  EXPECT_EQ(slurp(*m3 + "/a"), (std::vector<uint8_t>{1, 2, 3}));
}

TEST_F(Channel, SharedMmapOnForcedirectSeesWhatReadAndWriteSee) {
  auto m = env_->mount("forcedirect");
  ASSERT_OK(m);
  const std::string f = *m + "/mapped";
  auto data = pattern(11, 0, 3 * 4096 + 100);
  ASSERT_TRUE(spit(f, data));
  int fd = open(f.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << errno_str(errno);
  void* p = mmap(nullptr, data.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << "shared mmap on a forcedirect mount: " << errno_str(errno);
  auto* bytes = static_cast<uint8_t*>(p);
  EXPECT_EQ(std::memcmp(bytes, data.data(), data.size()), 0) << "the mapping shows what write() wrote";
  // Through the mapping, then read() (direct, from the backend) sees it.
  std::memset(bytes + 4096, 0xAB, 4096);
  ASSERT_EQ(msync(p, data.size(), MS_SYNC), 0) << errno_str(errno);
  std::fill(data.begin() + 4096, data.begin() + 8192, 0xAB);
  std::vector<uint8_t> got(data.size());
  ASSERT_EQ(pread(fd, got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, data) << "read() after msync";
  munmap(p, data.size());
  close(fd);
  EXPECT_EQ(slurp(f), data);
}

}  // namespace
}  // namespace lanefs::test

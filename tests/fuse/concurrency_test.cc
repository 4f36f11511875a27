// Several processes on one mount: writers on their own files and on disjoint
// regions of a shared file, readers checking while they write and after.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "common/clock.h"
#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

constexpr int kWriters = 4, kReaders = 4;
constexpr uint64_t kOwnSize = 4 << 20;             // per writer file
constexpr uint64_t kRegion = (3 << 20) / 2;        // 1.5 MiB: regions cross chunk lines
constexpr uint64_t kSharedSize = kRegion * kWriters;
constexpr uint64_t kSharedSeed = 200;

uint64_t own_seed(int w) { return 100 + static_cast<uint64_t>(w); }

// Child bodies return an exit code; they report details on stderr.
int writer(const std::string& dir, int w) {
  std::mt19937_64 rng(static_cast<uint64_t>(w) * 7919);
  std::string own = dir + "/own-" + std::to_string(w);
  int fd = open(own.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  int sfd = open((dir + "/shared").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 || sfd < 0) {
    std::fprintf(stderr, "writer %d: open: %s\n", w, std::strerror(errno));
    return 2;
  }
  uint64_t o = 0, so = 0;
  while (o < kOwnSize || so < kRegion) {
    if (o < kOwnSize) {
      uint64_t n = std::min<uint64_t>(kOwnSize - o, 4096 + rng() % (700 << 10));
      auto d = pattern(own_seed(w), o, n);
      if (!write_full(fd, d.data(), d.size(), o)) {
        std::fprintf(stderr, "writer %d: pwrite own at %lu: %s\n", w, (unsigned long)o, std::strerror(errno));
        return 3;
      }
      o += n;
    }
    if (so < kRegion) {
      uint64_t n = std::min<uint64_t>(kRegion - so, 1 + rng() % (300 << 10));
      uint64_t at = static_cast<uint64_t>(w) * kRegion + so;
      auto d = pattern(kSharedSeed, at, n);
      if (!write_full(sfd, d.data(), d.size(), at)) {
        std::fprintf(stderr, "writer %d: pwrite shared at %lu: %s\n", w, (unsigned long)at, std::strerror(errno));
        return 4;
      }
      so += n;
    }
  }
  if (fsync(fd) != 0 || fsync(sfd) != 0 || close(fd) != 0 || close(sfd) != 0) {
    std::fprintf(stderr, "writer %d: fsync/close: %s\n", w, std::strerror(errno));
    return 5;
  }
  return 0;
}

// While writers run: every byte of the shared file is either not yet
// written (0) or exactly the pattern.
int racing_reader(const std::string& dir, int r, uint64_t until_ns) {
  int fd = open((dir + "/shared").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 2;
  std::mt19937_64 rng(static_cast<uint64_t>(r) * 31 + 5);
  std::vector<uint8_t> buf(512 << 10);
  for (int i = 0; i < 400 && mono_ns() < until_ns; ++i) {
    uint64_t off = rng() % kSharedSize;
    size_t n = 1 + rng() % buf.size();
    ssize_t got = read_upto(fd, buf.data(), n, off);
    if (got < 0) {
      std::fprintf(stderr, "racing reader %d: pread: %s\n", r, std::strerror(errno));
      return 3;
    }
    auto want = pattern(kSharedSeed, off, static_cast<size_t>(got));
    for (ssize_t k = 0; k < got; ++k)
      if (buf[k] != 0 && buf[k] != want[k]) {
        std::fprintf(stderr, "racing reader %d: byte %lu is %u, neither 0 nor %u\n", r,
                     (unsigned long)(off + k), buf[k], want[k]);
        return 4;
      }
  }
  close(fd);
  return 0;
}

int verify_file(const std::string& p, uint64_t seed, uint64_t size, size_t chunk, const char* who) {
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "%s: open %s: %s\n", who, p.c_str(), std::strerror(errno));
    return 2;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != size) {
    std::fprintf(stderr, "%s: %s has size %ld, want %lu\n", who, p.c_str(), (long)st.st_size, (unsigned long)size);
    return 3;
  }
  std::vector<uint8_t> buf(chunk);
  for (uint64_t o = 0; o < size; o += chunk) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, size - o));
    if (!read_full(fd, buf.data(), n, o)) {
      std::fprintf(stderr, "%s: read %s at %lu: %s\n", who, p.c_str(), (unsigned long)o, std::strerror(errno));
      return 4;
    }
    auto want = pattern(seed, o, n);
    if (!std::equal(want.begin(), want.end(), buf.begin())) {
      std::fprintf(stderr, "%s: %s differs in [%lu, +%zu)\n", who, p.c_str(), (unsigned long)o, n);
      return 5;
    }
  }
  close(fd);
  return 0;
}

int final_reader(const std::string& dir, int r) {
  std::string who = "reader " + std::to_string(r);
  size_t chunk = (r % 2) ? (128 << 10) + 7 : (1 << 20);
  for (int i = 0; i < kWriters; ++i) {
    int w = (i + r) % kWriters;
    if (int rc = verify_file(dir + "/own-" + std::to_string(w), own_seed(w), kOwnSize, chunk, who.c_str()))
      return rc;
  }
  return verify_file(dir + "/shared", kSharedSeed, kSharedSize, chunk, who.c_str());
}

template <class F>
pid_t spawn(F body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}

// Waits for all children (bounded); returns one message per failed child.
std::vector<std::string> wait_all(const std::vector<std::pair<std::string, pid_t>>& kids, double seconds) {
  std::vector<std::string> bad;
  uint64_t deadline = mono_ns() + static_cast<uint64_t>(seconds * 1e9);
  for (const auto& [name, pid] : kids) {
    int st = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && mono_ns() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (w == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      bad.push_back(name + " timed out");
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      bad.push_back(name + " failed, status " + std::to_string(st));
    }
  }
  return bad;
}

class Concurrency : public ::testing::TestWithParam<std::string> {};

TEST_P(Concurrency, WritersAndReaders) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount(GetParam());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  std::string dir = *m + "/conc-" + GetParam();
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << errno_str(errno);
  int sfd = open((dir + "/shared").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(sfd, 0);
  close(sfd);

  std::vector<std::pair<std::string, pid_t>> kids;
  uint64_t race_until = mono_ns() + 60'000'000'000ull;
  for (int w = 0; w < kWriters; ++w)
    kids.push_back({"writer " + std::to_string(w), spawn([&] { return writer(dir, w); })});
  for (int r = 0; r < 2; ++r)
    kids.push_back({"racing reader " + std::to_string(r), spawn([&] { return racing_reader(dir, r, race_until); })});
  auto bad = wait_all(kids, 120);
  ASSERT_TRUE(bad.empty()) << ::testing::PrintToString(bad) << "\n" << env.diagnostics();

  kids.clear();
  for (int r = 0; r < kReaders; ++r)
    kids.push_back({"reader " + std::to_string(r), spawn([&] { return final_reader(dir, r); })});
  bad = wait_all(kids, 120);
  EXPECT_TRUE(bad.empty()) << ::testing::PrintToString(bad) << "\n" << env.diagnostics();
  // The parent, after every child closed: same view.
  EXPECT_EQ(verify_file(dir + "/shared", kSharedSeed, kSharedSize, 1 << 20, "parent"), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, Concurrency, ::testing::Values("writecache", "forcedirect"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lanefs::test

// liblanefs-direct against real mounts on the UDP lane (issue 17): data
// integrity at random offsets and sizes, many rings and threads, an
// application killed mid-IO, bad calls, coherence with this host's page
// cache, an encrypted filesystem, and what `lanefs local ps` and
// `lanefs stats --json` show.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "fuse/mount_fixture.h"
#include "lanefs/direct.h"

namespace lanefs::test {
namespace {

using nlohmann::json;

struct Buf {
  lanefs_buf* b = nullptr;
  explicit Buf(const std::string& mnt, size_t n) : b(lanefs_buf_create(mnt.c_str(), n)) {}
  ~Buf() {
    if (b) lanefs_buf_destroy(b);
  }
  uint8_t* data() const { return static_cast<uint8_t*>(lanefs_buf_addr(b)); }
};
struct Ring {
  lanefs_ring* r = nullptr;
  Ring(const std::string& mnt, unsigned n) : r(lanefs_ring_create(mnt.c_str(), n)) {}
  ~Ring() {
    if (r) lanefs_ring_destroy(r);
  }
};

// Submits what was prepared and reaps `n` completions (bounded: 60 s).
std::vector<lanefs_cqe> finish(lanefs_ring* r, unsigned n) {
  EXPECT_EQ(lanefs_submit(r), static_cast<int>(n));
  std::vector<lanefs_cqe> out(n);
  unsigned got = 0;
  while (got < n) {
    int k = lanefs_wait(r, out.data() + got, n - got, n - got, 60'000);
    if (k <= 0) {
      ADD_FAILURE() << "lanefs_wait: " << k << " " << lanefs_direct_error();
      out.resize(got);
      return out;
    }
    got += static_cast<unsigned>(k);
  }
  return out;
}

json ps(MountEnv& env) {
  CmdResult r = env.cli({"--json", "local", "ps"});
  json j = json::parse(r.out, nullptr, false);
  return j.is_array() && !j.empty() ? j[0] : json::object();
}

json stats_of(MountEnv& env, const std::string& target) {
  json j = json::parse(env.cli({"--json", "stats"}).out, nullptr, false);
  if (j.is_array())
    for (const auto& m : j)
      if (m.value("target", "") == target) return m;
  return json::object();
}

size_t fd_count(pid_t pid) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

TEST(DirectApi, DataIntegrityAtRandomOffsetsAndSizes) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/integrity";
  constexpr size_t kFile = 6 << 20;
  ASSERT_TRUE(spit(f, pattern(1, 0, kFile)));
  const int fd = ::open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  Buf buf(*m, 8 << 20);
  ASSERT_NE(buf.b, nullptr) << lanefs_direct_error();
  Ring ring(*m, 16);
  ASSERT_NE(ring.r, nullptr) << lanefs_direct_error();
  std::mt19937_64 rng(7);
  // Reads: random ranges (some past the end, which stop there), 8 at a time.
  for (int round = 0; round < 12; ++round) {
    struct Want {
      uint64_t off;
      size_t len, at;
    };
    std::vector<Want> want;
    for (size_t i = 0; i < 8; ++i) {
      const uint64_t off = rng() % (kFile + 4096);
      const size_t len = 1 + rng() % (1 << 20);
      want.push_back({off, len, i << 20});
      ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, i << 20, fd, off, len, i), 0) << lanefs_direct_error();
    }
    for (const lanefs_cqe& c : finish(ring.r, 8)) {
      const Want& w = want[c.user_data];
      const size_t expect = w.off >= kFile ? 0 : std::min<size_t>(w.len, kFile - w.off);
      ASSERT_EQ(c.res, static_cast<int64_t>(expect)) << "read of " << w.len << " at " << w.off;
      EXPECT_EQ(c.path, LANEFS_PATH_HOST);
      auto p = pattern(1, w.off, expect);
      ASSERT_EQ(std::memcmp(buf.data() + w.at, p.data(), expect), 0) << "read of " << w.len << " at " << w.off;
    }
  }
  // Writes of a second pattern at random places (past the end too), then
  // everything read back through the mount and through the API.
  std::vector<uint8_t> model = pattern(1, 0, kFile);
  for (int round = 0; round < 6; ++round) {
    std::vector<std::pair<uint64_t, size_t>> ranges;
    for (size_t i = 0; i < 4; ++i) {
      // Disjoint: each write in its own quarter of the file (and beyond).
      const uint64_t base = i * (kFile / 4) + (round % 2) * 4096;
      const uint64_t off = base + rng() % (kFile / 8);
      const size_t len = 1 + rng() % (kFile / 8);
      auto p = pattern(100 + round, off, len);
      std::memcpy(buf.data() + (i << 20) * 2, p.data(), len);
      ASSERT_EQ(lanefs_prep_write(ring.r, buf.b, (i << 20) * 2, fd, off, len, i), 0) << lanefs_direct_error();
      ranges.push_back({off, len});
      if (model.size() < off + len) model.resize(off + len);
      std::memcpy(model.data() + off, p.data(), len);
    }
    for (const lanefs_cqe& c : finish(ring.r, 4))
      EXPECT_EQ(c.res, static_cast<int64_t>(ranges[c.user_data].second));
  }
  auto back = slurp(f);
  ASSERT_EQ(back.size(), model.size());
  EXPECT_TRUE(back == model) << "the mount reads what the direct API wrote";
  ::close(fd);
}

TEST(DirectApi, ManyRingsAndThreads) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  constexpr int kThreads = 6;
  constexpr size_t kPer = 2 << 20;
  Buf shared(*m, kThreads * kPer);  // one buffer, a slice per thread
  ASSERT_NE(shared.b, nullptr) << lanefs_direct_error();
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      const std::string f = *m + "/threads." + std::to_string(t);
      int fd = ::open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
      Ring ring(*m, 32);
      if (fd < 0 || !ring.r) {
        ++bad;
        return;
      }
      uint8_t* mine = shared.data() + t * kPer;
      // 32 writes of 64 KiB in flight, then 32 reads into the other half.
      auto p = pattern(500 + t, 0, kPer / 2);
      std::memcpy(mine, p.data(), p.size());
      for (unsigned i = 0; i < 16; ++i)
        if (lanefs_prep_write(ring.r, shared.b, t * kPer + i * 65536, fd, i * 65536, 65536, i) != 0) ++bad;
      for (const auto& c : finish(ring.r, 16))
        if (c.res != 65536) ++bad;
      for (unsigned i = 0; i < 16; ++i)
        if (lanefs_prep_read(ring.r, shared.b, t * kPer + kPer / 2 + i * 65536, fd, i * 65536, 65536, i) != 0) ++bad;
      for (const auto& c : finish(ring.r, 16))
        if (c.res != 65536) ++bad;
      if (std::memcmp(mine + kPer / 2, p.data(), kPer / 2) != 0) ++bad;
      ::close(fd);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(DirectApi, KilledApplicationLeavesNothingBehind) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/victim";
  ASSERT_TRUE(spit(f, pattern(3, 0, 4 << 20)));
  const pid_t fe = env.frontend_pid();
  ASSERT_GT(fe, 0);
  // The frontend's descriptors before (the child's session takes some).
  const size_t fds_before = fd_count(fe);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(go[0]);
    int fd = ::open(f.c_str(), O_RDWR);
    lanefs_buf* b = lanefs_buf_create(m->c_str(), 4 << 20);
    lanefs_ring* r = lanefs_ring_create(m->c_str(), 64);
    if (fd < 0 || !b || !r) _exit(3);
    bool told = false;
    lanefs_cqe c[64];
    for (int k = 0; k < 100000; ++k) {  // bounded; killed long before
      for (unsigned i = 0; i < 32; ++i) {
        if (lanefs_prep_read(r, b, i * 65536, fd, i * 65536, 65536, i) != 0) _exit(4);
        if (lanefs_prep_write(r, b, (32 + i) * 65536, fd, (32 + i) * 65536, 65536, i) != 0) _exit(4);
      }
      lanefs_submit(r);
      if (!told) {
        told = true;
        [[maybe_unused]] ssize_t w = ::write(go[1], "x", 1);  // IO in flight now
      }
      for (unsigned got = 0; got < 64;) {
        int n = lanefs_wait(r, c, 64, 1, 10'000);
        if (n <= 0) _exit(5);
        got += static_cast<unsigned>(n);
      }
    }
    _exit(0);
  }
  ::close(go[1]);
  char x;
  ASSERT_EQ(::read(go[0], &x, 1), 1) << "the child could not start its IO";
  ::close(go[0]);
  ::usleep(20'000);
  ::kill(child, SIGKILL);
  int st = 0;
  ::waitpid(child, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st)) << "the child ended before the kill: " << st;
  auto idle = [&] {
    for (const auto& c : ps(env).value("direct_clients", json::array()))
      if (c.value("pid", 0) == child) return false;
    return true;
  };
  // The frontend lets the session go: no client listed, descriptors back.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = idle() && fd_count(fe) <= fds_before;
    if (!gone) ::usleep(100'000);
  }
  EXPECT_TRUE(gone) << "still attached or leaking: " << ps(env).dump() << " fds " << fd_count(fe) << " > "
                    << fds_before;
  EXPECT_TRUE(process_alive(fe)) << env.diagnostics();
  // The file is still whole where nobody wrote.
  auto back = slurp(f);
  ASSERT_EQ(back.size(), size_t{4 << 20});
  auto p = pattern(3, 0, 2 << 20);
  EXPECT_TRUE(std::equal(p.begin(), p.end(), back.begin()));
}

TEST(DirectApi, BadCallsGetClearErrors) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/bad";
  ASSERT_TRUE(spit(f, pattern(4, 0, 65536)));
  Buf buf(*m, 65536);
  ASSERT_NE(buf.b, nullptr) << lanefs_direct_error();
  Ring ring(*m, 4);
  ASSERT_NE(ring.r, nullptr) << lanefs_direct_error();
  const int fd = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);

  EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 0, 987, 0, 4096, 0), -EBADF);  // not open
  EXPECT_NE(std::string(lanefs_direct_error()).find("987"), std::string::npos) << lanefs_direct_error();
  const int other = ::open("/proc/self/stat", O_RDONLY);
  EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 0, other, 0, 4096, 0), -EXDEV) << lanefs_direct_error();
  ::close(other);
  EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 65536 - 100, fd, 0, 4096, 0), -ERANGE);
  EXPECT_NE(std::string(lanefs_direct_error()).find("past the buffer"), std::string::npos);
  EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 0, 0), -EINVAL);
  EXPECT_EQ(lanefs_prep_write(ring.r, buf.b, 0, fd, 0, 4096, 0), -EBADF) << "open read-only";
  EXPECT_NE(std::string(lanefs_direct_error()).find("writing"), std::string::npos) << lanefs_direct_error();
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 4096, i), 0);
  EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 4096, 9), -EBUSY) << "ring full";
  auto done = finish(ring.r, 4);
  for (const auto& c : done) EXPECT_EQ(c.res, 4096);
  EXPECT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 4096, 9), 0) << "room again once reaped";
  finish(ring.r, 1);

  errno = 0;
  EXPECT_EQ(lanefs_ring_create("/tmp", 4), nullptr);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_NE(std::string(lanefs_direct_error()).find("not a lanefs mount"), std::string::npos) << lanefs_direct_error();
  EXPECT_EQ(lanefs_ring_create(m->c_str(), 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(lanefs_buf_create(m->c_str(), 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // Not a dma-buf; and no GPU driver here.
  const int mfd = ::memfd_create("x", 0);
  ASSERT_EQ(::ftruncate(mfd, 4096), 0);
  EXPECT_EQ(lanefs_buf_import_dmabuf(mfd, 0, 4096), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(lanefs_direct_error()).find("not a dma-buf"), std::string::npos) << lanefs_direct_error();
  ::close(mfd);
  int dummy = 0;
  EXPECT_EQ(lanefs_buf_import_cuda(&dummy, 4096), nullptr);
  EXPECT_EQ(errno, ENOTSUP) << lanefs_direct_error();
  EXPECT_FALSE(std::string(lanefs_direct_error()).empty());
  // A descriptor closed and reused for another file is noticed.
  const std::string g = *m + "/bad2";
  ASSERT_TRUE(spit(g, pattern(5, 0, 4096)));
  ::close(fd);
  const int fd2 = ::open(g.c_str(), O_RDONLY);
  ASSERT_EQ(fd2, fd) << "the lowest descriptor is reused";
  ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd2, 0, 4096, 1), 0) << lanefs_direct_error();
  auto c = finish(ring.r, 1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].res, 4096);
  auto p = pattern(5, 0, 4096);
  EXPECT_EQ(std::memcmp(buf.data(), p.data(), 4096), 0) << "read the new file, not the old one";
  EXPECT_EQ(lanefs_fd_forget(fd2), 0);
  EXPECT_EQ(lanefs_fd_forget(fd2), -EBADF);
  ::close(fd2);
  // O_APPEND: a direct write (an explicit offset) is refused, the file untouched.
  const int afd = ::open(g.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(afd, 0);
  ASSERT_EQ(lanefs_prep_write(ring.r, buf.b, 0, afd, 0, 4096, 3), 0) << lanefs_direct_error();
  c = finish(ring.r, 1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].res, -EINVAL);
  EXPECT_TRUE(slurp(g) == pattern(5, 0, 4096));
  EXPECT_EQ(lanefs_fd_forget(afd), 0);
  ::close(afd);
}

TEST(DirectApi, AForkedChildMakesItsOwnRingsAndBuffers) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/forked";
  ASSERT_TRUE(spit(f, pattern(12, 0, 65536)));
  const int fd = ::open(f.c_str(), O_RDONLY);
  Buf buf(*m, 65536);
  Ring ring(*m, 4);
  ASSERT_TRUE(fd >= 0 && buf.b && ring.r) << lanefs_direct_error();
  ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 4096, 0), 0);
  finish(ring.r, 1);
  const pid_t child = ::fork();
  if (child == 0) {
    // The parent's ring and buffer are the parent's; new ones work.
    if (lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 4096, 0) != -ENOTCONN) _exit(2);
    lanefs_buf* b = lanefs_buf_create(m->c_str(), 65536);
    lanefs_ring* r = lanefs_ring_create(m->c_str(), 4);
    if (!b || !r || lanefs_prep_read(r, b, 0, fd, 4096, 4096, 1) != 0 || lanefs_submit(r) != 1) _exit(3);
    lanefs_cqe c;
    if (lanefs_wait(r, &c, 1, 1, 30'000) != 1 || c.res != 4096) _exit(4);
    auto p = pattern(12, 4096, 4096);
    _exit(std::memcmp(lanefs_buf_addr(b), p.data(), 4096) == 0 ? 0 : 5);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child status " << st;
  // The parent's session is untouched.
  ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 8192, 4096, 2), 0) << lanefs_direct_error();
  auto c = finish(ring.r, 1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].res, 4096);
  ::close(fd);
}

TEST(DirectApi, UnmountWithARingAttached) {
  LANEFS_MOUNT_ENV(env);
  auto m = env.mount("forcedirect", "ringgone");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/x";
  ASSERT_TRUE(spit(f, pattern(13, 0, 8192)));
  Ring ring(*m, 4);
  Buf buf(*m, 8192);
  ASSERT_TRUE(ring.r && buf.b) << lanefs_direct_error();
  {
    const int fd = ::open(f.c_str(), O_RDONLY);
    ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 4096, 0), 0);
    auto c = finish(ring.r, 1);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].res, 4096);
    EXPECT_EQ(lanefs_fd_forget(fd), 0);  // the frontend's copy would keep the mount busy
    ::close(fd);
  }
  auto um = env.unmount(*m);
  ASSERT_TRUE(um.ok()) << um.error().to_string();
  // The frontend lets the mount go (its ring stays, answering ENOTCONN) and lives on.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = true;
    for (const auto& mm : ps(env).value("mounts", json::array()))
      if (mm.value("target", "") == *m) gone = false;
    if (!gone) ::usleep(100'000);
  }
  EXPECT_TRUE(gone) << ps(env).dump();
  EXPECT_TRUE(process_alive(env.frontend_pid())) << env.diagnostics();
  EXPECT_EQ(lanefs_ring_destroy(ring.r), 0) << lanefs_direct_error();
  ring.r = nullptr;
}

TEST(DirectApi, CoherentWithThisHostsPageCache) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("writecache");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/coherent";
  ASSERT_TRUE(spit(f, pattern(6, 0, 256 * 1024)));
  const int fd = ::open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  Buf buf(*m, 1 << 20);
  Ring ring(*m, 8);
  ASSERT_TRUE(buf.b && ring.r) << lanefs_direct_error();
  // Dirty in the page cache (no fsync): a direct read sees it.
  auto newer = pattern(7, 4096, 8192);
  ASSERT_EQ(::pwrite(fd, newer.data(), newer.size(), 4096), 8192);
  ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 4096, 8192, 0), 0);
  auto c = finish(ring.r, 1);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].res, 8192);
  EXPECT_EQ(std::memcmp(buf.data(), newer.data(), 8192), 0) << "the direct read missed this host's dirty pages";
  // Cached (read once through the mount), then written directly: the mount
  // reads the new bytes, and the file's growth.
  std::vector<uint8_t> tmp(256 * 1024);
  ASSERT_EQ(::pread(fd, tmp.data(), tmp.size(), 0), static_cast<ssize_t>(tmp.size()));
  auto direct = pattern(8, 200 * 1024, 100 * 1024);  // past the old end (256 KiB)
  std::memcpy(buf.data(), direct.data(), direct.size());
  ASSERT_EQ(lanefs_prep_write(ring.r, buf.b, 0, fd, 200 * 1024, direct.size(), 0), 0);
  c = finish(ring.r, 1);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].res, static_cast<int64_t>(direct.size()));
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 300 * 1024) << "the kernel's size grew";
  std::vector<uint8_t> got(direct.size());
  ASSERT_EQ(::pread(fd, got.data(), got.size(), 200 * 1024), static_cast<ssize_t>(got.size()));
  EXPECT_TRUE(got == direct) << "the mount served stale cached pages after a direct write";
  ::close(fd);
}

TEST(DirectApi, EncryptedFilesystemIsSealedInTheFrontendNeverRdma) {
  LANEFS_MOUNT_ENV(env);
  const std::string keys = env.new_dir("keys");
  const std::string key = keys + "/key";
  std::ofstream(key, std::ios::binary) << std::string(32, 'k');
  ::chmod(key.c_str(), 0600);
  CmdResult mk = env.cli({"fs", "create", "encdirect", "--encrypted", "--key-file", key});
  ASSERT_EQ(mk.rc, 0) << mk.describe();
  std::string source = env.source();
  source = source.substr(0, source.rfind('/') + 1) + "encdirect";
  const std::string dir = env.new_dir("enc");
  CmdResult mt = env.mount_helper(source, dir, "forcedirect,key_file=" + key);
  ASSERT_EQ(mt.rc, 0) << mt.describe();
  env.track_mount(dir);
  const std::string f = dir + "/sealed";
  ASSERT_TRUE(spit(f, pattern(10, 0, 3 << 20)));
  const int fd = ::open(f.c_str(), O_RDWR);
  Buf buf(dir, 4 << 20);
  Ring ring(dir, 8);
  ASSERT_TRUE(fd >= 0 && buf.b && ring.r) << lanefs_direct_error();
  // Reads and an unaligned read-modify-write, 1 MiB each (RDMA-sized).
  auto p = pattern(11, 4097, 1 << 20);
  std::memcpy(buf.data() + (2 << 20), p.data(), p.size());
  ASSERT_EQ(lanefs_prep_write(ring.r, buf.b, 2 << 20, fd, 4097, 1 << 20, 1), 0);
  auto w = finish(ring.r, 1);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].res, 1 << 20) << lanefs_direct_error();
  ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 2 << 20, 2), 0);
  auto r = finish(ring.r, 1);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].res, 2 << 20);
  EXPECT_EQ(r[0].path, LANEFS_PATH_HOST) << "never RDMA on an encrypted filesystem";
  std::vector<uint8_t> model = pattern(10, 0, 2 << 20);
  std::memcpy(model.data() + 4097, p.data(), p.size());
  EXPECT_EQ(std::memcmp(buf.data(), model.data(), model.size()), 0);
  json s = stats_of(env, dir);
  EXPECT_EQ(s["per_lane"]["rdma"].value("ios", 0ull), 0u) << s.dump();
  EXPECT_GE(s.value("direct_ios", 0ull), 2u) << s.dump();
  // Let go of the file (the frontend's copy keeps the mount busy), then unmount.
  EXPECT_EQ(lanefs_fd_forget(fd), 0);
  ::close(fd);
  lanefs_ring_destroy(ring.r);
  ring.r = nullptr;
  auto um = env.unmount(dir);
  EXPECT_TRUE(um.ok()) << um.error().to_string();
}

TEST(DirectApi, PythonBindingReadsIntoBytearrayAndNumpy) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/python";
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i % 251);
  ASSERT_TRUE(spit(f, data));
  const char* src = std::getenv("LANEFS_SOURCE_DIR");
  const char* bld = std::getenv("LANEFS_BUILD_DIR");
  ASSERT_TRUE(src && bld) << "run under ctest";
  CmdResult r = run_bounded({"python3", std::string(src) + "/tests/direct/python_smoke.py", *m, f,
                             std::to_string(data.size())},
                            120,
                            {"PYTHONPATH=" + std::string(src) + "/userspace/direct/python",
                             "LANEFS_DIRECT_LIB=" + std::string(bld) + "/userspace/direct/liblanefs-direct.so.1"});
  EXPECT_EQ(r.rc, 0) << r.describe();
  EXPECT_NE(r.out.find("python binding ok"), std::string::npos) << r.describe();
}

TEST(DirectApi, PsAndStatsShowTheApplicationAndItsIo) {
  LANEFS_MOUNT_ENV(env);
  auto m = shared_mount("forcedirect");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const std::string f = *m + "/shown";
  ASSERT_TRUE(spit(f, pattern(9, 0, 65536)));
  const int fd = ::open(f.c_str(), O_RDONLY);
  Buf buf(*m, 65536);
  Ring ring(*m, 4);
  ASSERT_TRUE(fd >= 0 && buf.b && ring.r) << lanefs_direct_error();
  const uint64_t before = stats_of(env, *m).value("direct_ios", 0ull);
  ASSERT_EQ(lanefs_prep_read(ring.r, buf.b, 0, fd, 0, 65536, 0), 0);
  finish(ring.r, 1);
  json s = stats_of(env, *m);
  EXPECT_EQ(s.value("direct_ios", 0ull), before + 1) << s.dump();
  EXPECT_TRUE(s.contains("gpudirect_ios") && s.contains("gpudirect_bounced") &&
              s.contains("gpudirect_bounce_reasons"))
      << s.dump();
  bool me = false;
  for (const auto& c : ps(env).value("direct_clients", json::array()))
    if (c.value("pid", 0) == ::getpid()) {
      me = true;
      EXPECT_GE(c.value("rings", 0), 1);
      EXPECT_GE(c.value("buffers", 0), 1);
      EXPECT_GE(c.value("ios", 0ull), 1u);
      EXPECT_EQ(c["mounts"], json::array({*m}));
    }
  EXPECT_TRUE(me) << ps(env).dump();
  CmdResult text = env.cli({"local", "ps"});
  EXPECT_NE(text.out.find("direct-API clients"), std::string::npos) << text.out;
  ::close(fd);
}

}  // namespace
}  // namespace lanefs::test

// Randomized operation checker: a seeded PRNG drives mixed operations on a
// file in a lanefs mount and on a reference file in tmpfs; sizes and full
// contents are compared every few operations. On a mismatch the seed, the
// op index and the recent ops are printed. Set LANEFS_RANDOM_SEED to replay.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <random>
#include <sstream>

#include <algorithm>
#include <cstdlib>

#include "common/clock.h"
#include "fuse/mount_fixture.h"

namespace lanefs::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMaxFile = 6 * kMiB;
// Operations per mode; LANEFS_RANDOM_OPS lowers it where every op is slow
// (the kernel-client runs in a TCG guest, tests/vm/guest/kmod_mount.sh).
int ops_per_mode() {
  const char* s = std::getenv("LANEFS_RANDOM_OPS");
  return s && *s ? std::max(100, std::atoi(s)) : 3000;
}
constexpr double kSecondsPerMode = 100;  // bound on a loaded machine
constexpr int kCompareEvery = 20;

struct Pair {
  std::string path, ref_path;
  int fd = -1, ref = -1;
  bool open() {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ref = ::open(ref_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    return fd >= 0 && ref >= 0;
  }
  void close() {
    if (fd >= 0) ::close(fd);
    if (ref >= 0) ::close(ref);
    fd = ref = -1;
  }
};

class RandomOps : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    pair_.close();
    if (!pair_.ref_path.empty()) unlink(pair_.ref_path.c_str());
  }

  void log_op(int i, const std::string& s) {
    std::ostringstream o;
    o << "#" << i << " " << s;
    recent_.push_back(o.str());
    if (recent_.size() > 25) recent_.pop_front();
  }
  std::string context(int i) const {
    std::ostringstream o;
    o << "mode=" << GetParam() << " seed=" << seed_ << " op index=" << i
      << " (replay: LANEFS_RANDOM_SEED=" << seed_ << ")\nrecent ops:\n";
    for (const auto& r : recent_) o << "  " << r << "\n";
    return o.str();
  }

  // Size and full contents equal? Empty string when they are.
  std::string compare(int fd, int ref) {
    struct stat a {}, b {};
    if (fstat(fd, &a) != 0) return "fstat(mount): " + errno_str(errno);
    if (fstat(ref, &b) != 0) return "fstat(ref): " + errno_str(errno);
    if (a.st_size != b.st_size)
      return "size " + std::to_string(a.st_size) + " != reference " + std::to_string(b.st_size);
    size_t n = static_cast<size_t>(b.st_size);
    std::vector<uint8_t> x(n), y(n);
    if (!read_full(fd, x.data(), n, 0)) return "read(mount): " + errno_str(errno);
    if (!read_full(ref, y.data(), n, 0)) return "read(ref): " + errno_str(errno);
    if (x == y) return {};
    size_t k = 0;
    while (x[k] == y[k]) ++k;
    size_t e = n;
    while (e > k && x[e - 1] == y[e - 1]) --e;
    return "contents differ in [" + std::to_string(k) + ", " + std::to_string(e) + ") of " + std::to_string(n) +
           " (chunk " + std::to_string(k / kMiB) + "), first bytes " + std::to_string(x[k]) + " vs " +
           std::to_string(y[k]);
  }

  Pair pair_;
  uint64_t seed_ = 0;
  std::deque<std::string> recent_;
};

TEST_P(RandomOps, MatchesTmpfsReference) {
  LANEFS_MOUNT_ENV(env);
  const std::string mode = GetParam();
  auto m = shared_mount(mode);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  struct stat shm {};
  ASSERT_EQ(stat("/dev/shm", &shm), 0) << "no /dev/shm for the tmpfs reference";

  if (const char* s = std::getenv("LANEFS_RANDOM_SEED"); s && *s) seed_ = std::strtoull(s, nullptr, 10);
  else seed_ = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^ getpid();
  std::printf("[ random ] mode=%s seed=%llu\n", mode.c_str(), static_cast<unsigned long long>(seed_));
  std::mt19937_64 rng(seed_);

  pair_.path = *m + "/random-" + mode;
  pair_.ref_path = "/dev/shm/lanefs-random-ref-" + std::to_string(getpid()) + "-" + mode;
  unlink(pair_.path.c_str());
  unlink(pair_.ref_path.c_str());
  ASSERT_TRUE(pair_.open()) << errno_str(errno);
  const long page = sysconf(_SC_PAGESIZE);

  // mmap MAP_SHARED is not available on direct_io files unless the kernel
  // and libfuse agree on FUSE_DIRECT_IO_ALLOW_MMAP.
  bool mmap_ok = true, punch_ok = true;
  {
    ASSERT_EQ(ftruncate(pair_.fd, page), 0);
    ASSERT_EQ(ftruncate(pair_.ref, page), 0);
    void* p = mmap(nullptr, static_cast<size_t>(page), PROT_READ | PROT_WRITE, MAP_SHARED, pair_.fd, 0);
    if (p == MAP_FAILED) {
      ASSERT_TRUE(errno == ENODEV || errno == EINVAL) << "mmap failed unexpectedly: " << errno_str(errno);
      ASSERT_EQ(mode, "forcedirect") << "MAP_SHARED must work in " << mode << ": " << errno_str(errno);
      std::printf("[ random ] mode=%s: mmap(MAP_SHARED) unsupported (%s): mmap ops skipped in this mode\n",
                  mode.c_str(), errno_str(errno).c_str());
      mmap_ok = false;
    } else {
      munmap(p, static_cast<size_t>(page));
    }
  }

  auto rnd = [&](uint64_t n) { return n ? rng() % n : 0; };
  auto rand_size = [&]() -> uint64_t {
    uint64_t r = rnd(100);
    if (r < 60) return 1 + rnd(64 << 10);
    if (r < 92) return 1 + rnd(300 << 10);
    return 1 + rnd(2 * kMiB);
  };
  auto rand_off = [&](uint64_t size) -> uint64_t {
    // A third of the offsets straddle a 1 MiB chunk boundary.
    if (rnd(3) == 0) {
      uint64_t edge = (1 + rnd(kMaxFile / kMiB - 1)) * kMiB;
      uint64_t back = rnd(std::min(size, edge) + 1);
      return edge - back;
    }
    return rnd(kMaxFile);
  };
  auto cur_size = [&]() -> uint64_t {
    struct stat st {};
    fstat(pair_.ref, &st);
    return static_cast<uint64_t>(st.st_size);
  };

  uint64_t t_end = mono_ns() + static_cast<uint64_t>(kSecondsPerMode * 1e9);
  int done = 0, counts[8] = {};
  const int ops = ops_per_mode();
  for (int i = 0; i < ops; ++i) {
    if (mono_ns() > t_end) break;
    int op = static_cast<int>(rnd(100));
    op = op < 35 ? 0 : op < 45 ? 1 : op < 60 ? 2 : op < 70 ? 3 : op < 80 ? 4 : op < 88 ? 5 : op < 94 ? 6 : 7;
    if ((op == 3 || op == 4) && !mmap_ok) op = 2;
    if (op == 5 && !punch_ok) op = 0;
    uint64_t fsize = cur_size();
    switch (op) {
      case 0: {  // pwrite
        uint64_t n = rand_size();
        uint64_t off = std::min(rand_off(n), kMaxFile - std::min(n, kMaxFile));
        auto d = pattern(rng(), off, n);
        log_op(i, "pwrite off=" + std::to_string(off) + " len=" + std::to_string(n));
        ASSERT_TRUE(write_full(pair_.fd, d.data(), n, off)) << errno_str(errno) << "\n" << context(i);
        ASSERT_TRUE(write_full(pair_.ref, d.data(), n, off)) << errno_str(errno);
        break;
      }
      case 1: {  // ftruncate up or down
        uint64_t to = rnd(3) == 0 ? rnd(kMaxFile) : (rnd(2) ? fsize / 2 + rnd(kMiB) : rand_off(0));
        to = std::min(to, kMaxFile);
        log_op(i, "ftruncate " + std::to_string(fsize) + " -> " + std::to_string(to));
        ASSERT_EQ(ftruncate(pair_.fd, static_cast<off_t>(to)), 0) << errno_str(errno) << "\n" << context(i);
        ASSERT_EQ(ftruncate(pair_.ref, static_cast<off_t>(to)), 0);
        break;
      }
      case 2: {  // pread, compared at once (also beyond EOF)
        uint64_t n = rand_size();
        uint64_t off = rnd(fsize + kMiB / 4);
        log_op(i, "pread off=" + std::to_string(off) + " len=" + std::to_string(n));
        std::vector<uint8_t> x(n), y(n);
        ssize_t a = read_upto(pair_.fd, x.data(), n, off), b = read_upto(pair_.ref, y.data(), n, off);
        ASSERT_EQ(a, b) << "pread lengths differ\n" << context(i);
        ASSERT_TRUE(a < 0 || std::equal(x.begin(), x.begin() + a, y.begin())) << "pread data differs\n" << context(i);
        break;
      }
      case 3:    // mmap read
      case 4: {  // mmap write + msync
        if (fsize == 0) {
          log_op(i, "mmap skipped (empty file)");
          break;
        }
        uint64_t off = rnd(fsize);
        uint64_t n = 1 + rnd(std::min<uint64_t>(fsize - off, kMiB + kMiB / 2));
        uint64_t map_off = off / static_cast<uint64_t>(page) * static_cast<uint64_t>(page);
        size_t map_len = static_cast<size_t>(off + n - map_off);
        bool wr = op == 4;
        log_op(i, std::string(wr ? "mmap-write" : "mmap-read") + " off=" + std::to_string(off) +
                      " len=" + std::to_string(n));
        void* p = mmap(nullptr, map_len, wr ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, pair_.fd,
                       static_cast<off_t>(map_off));
        ASSERT_NE(p, MAP_FAILED) << errno_str(errno) << "\n" << context(i);
        uint8_t* base = static_cast<uint8_t*>(p) + (off - map_off);
        if (wr) {
          auto d = pattern(rng(), off, n);
          std::memcpy(base, d.data(), n);
          int rc = msync(p, map_len, MS_SYNC);
          int e = errno;
          munmap(p, map_len);
          ASSERT_EQ(rc, 0) << "msync: " << errno_str(e) << "\n" << context(i);
          ASSERT_TRUE(write_full(pair_.ref, d.data(), n, off));
        } else {
          std::vector<uint8_t> y(n);
          ASSERT_TRUE(read_full(pair_.ref, y.data(), n, off));
          bool same = std::memcmp(base, y.data(), n) == 0;
          munmap(p, map_len);
          ASSERT_TRUE(same) << "mmap read differs\n" << context(i);
        }
        break;
      }
      case 5: {  // punch a hole (size kept)
        uint64_t n = rand_size();
        uint64_t off = rand_off(n);
        log_op(i, "punch off=" + std::to_string(off) + " len=" + std::to_string(n));
        int a = fallocate(pair_.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                          static_cast<off_t>(n));
        int ea = errno;
        int b = fallocate(pair_.ref, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                          static_cast<off_t>(n));
        int eb = errno;
        if ((a != 0 && ea == EOPNOTSUPP) || (b != 0 && eb == EOPNOTSUPP)) {
          ASSERT_TRUE(a != 0 && b != 0) << "punch unsupported on one side only; mount: " << errno_str(a ? ea : 0)
                                        << "\n" << context(i);
          std::printf("[ random ] punch hole unsupported: skipped from now on\n");
          punch_ok = false;
          break;
        }
        ASSERT_EQ(a, 0) << errno_str(ea) << "\n" << context(i);
        ASSERT_EQ(b, 0) << errno_str(eb);
        break;
      }
      case 6: {  // close and reopen (sometimes with O_TRUNC)
        bool trunc = rnd(8) == 0;
        log_op(i, trunc ? "reopen O_TRUNC" : "reopen");
        ASSERT_EQ(close(pair_.fd), 0) << errno_str(errno) << "\n" << context(i);
        close(pair_.ref);
        int fl = O_RDWR | O_CLOEXEC | (trunc ? O_TRUNC : 0);
        pair_.fd = open(pair_.path.c_str(), fl);
        pair_.ref = open(pair_.ref_path.c_str(), fl);
        ASSERT_GE(pair_.fd, 0) << errno_str(errno) << "\n" << context(i);
        ASSERT_GE(pair_.ref, 0);
        break;
      }
      case 7: {  // fallocate mode 0 (may extend)
        uint64_t n = rand_size();
        uint64_t off = std::min(rand_off(n), kMaxFile - n);
        log_op(i, "fallocate off=" + std::to_string(off) + " len=" + std::to_string(n));
        ASSERT_EQ(fallocate(pair_.fd, 0, static_cast<off_t>(off), static_cast<off_t>(n)), 0)
            << errno_str(errno) << "\n" << context(i);
        ASSERT_EQ(fallocate(pair_.ref, 0, static_cast<off_t>(off), static_cast<off_t>(n)), 0);
        break;
      }
    }
    ++counts[op];
    ++done;
    if (i % kCompareEvery == kCompareEvery - 1) {
      std::string diff = compare(pair_.fd, pair_.ref);
      ASSERT_TRUE(diff.empty()) << diff << "\n" << context(i);
    }
  }
  std::string diff = compare(pair_.fd, pair_.ref);
  ASSERT_TRUE(diff.empty()) << diff << "\n" << context(done);
  // A fresh open sees the same.
  pair_.close();
  ASSERT_TRUE(pair_.open());
  diff = compare(pair_.fd, pair_.ref);
  ASSERT_TRUE(diff.empty()) << "after reopen: " << diff << "\n" << context(done);
  std::printf("[ random ] mode=%s: %d ops (pwrite %d, truncate %d, pread %d, mmap-read %d, mmap-write %d, "
              "punch %d, reopen %d, fallocate %d)\n",
              mode.c_str(), done, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
              counts[7]);
  EXPECT_GE(done, 300) << "too few operations ran in the time bound";
}

INSTANTIATE_TEST_SUITE_P(Modes, RandomOps, ::testing::Values("writecache", "forcedirect"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lanefs::test

// The chunk store's fd cache (ChunkFiles) under chunk deletion, through the
// store's blocking and io_uring paths: a write that starts after a deletion
// returned must land in the new file, never in the unlinked one.
#include "backend/chunk_files.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "backend/chunk_store.h"
#include "backend/disk_ring.h"
#include "support/test_support.h"

namespace lanefs::backend {
namespace {

constexpr uint32_t kChunk = 1 << 20;

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

std::unique_ptr<ChunkStore> open_store(const std::string& dir, size_t max_open) {
  auto s = ChunkStore::open(dir, kChunk, max_open);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().to_string());
  return s.ok() ? std::move(s).value() : nullptr;
}

// write_async and wait for it on `ring`.
Result<int64_t> write_sync(ChunkStore& cs, DiskRing& ring, uint64_t ino, uint64_t index,
                           uint32_t off, std::span<const uint8_t> data) {
  std::optional<Result<int64_t>> got;
  cs.write_async(ring, ino, index, off, data, {},
                 [&](Result<int64_t> r) { got.emplace(std::move(r)); });
  while (!got) ring.poll_wait(100);
  return std::move(*got);
}

std::vector<uint8_t> read_all(ChunkStore& cs, uint64_t ino, uint64_t index, uint32_t off,
                              uint32_t len) {
  std::vector<uint8_t> out;
  EXPECT_OK(cs.read(ino, index, off, len, &out));
  return out;
}

bool all_zero(const std::vector<uint8_t>& v) {
  return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
}

class ChunkFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = DiskRing::create(64);
    ASSERT_OK(r);
    ring_ = std::move(r).value();
  }
  test::TempDir tmp_;
  std::unique_ptr<DiskRing> ring_;
};

TEST_F(ChunkFilesTest, WriteRemoveWriteShowsOnlyTheNewData) {
  auto cs = open_store(tmp_.path() + "/s", 4096);
  ASSERT_NE(cs, nullptr);
  auto old_data = pattern(kChunk, 1);
  auto fresh = pattern(300, 2);
  for (bool async : {false, true}) {
    SCOPED_TRACE(async ? "io_uring" : "blocking");
    ASSERT_OK(cs->write(7, 0, 0, old_data));
    ASSERT_OK(cs->write(7, 1, 0, old_data));
    ASSERT_EQ(read_all(*cs, 7, 0, 0, kChunk), old_data);  // cached now
    ASSERT_OK(cs->remove_from(7, 0));
    if (async)
      ASSERT_OK(write_sync(*cs, *ring_, 7, 0, 100, fresh));
    else
      ASSERT_OK(cs->write(7, 0, 100, fresh));
    auto got = read_all(*cs, 7, 0, 0, kChunk);
    EXPECT_TRUE(all_zero({got.begin(), got.begin() + 100}));
    EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), got.begin() + 100));
    EXPECT_TRUE(all_zero({got.begin() + 400, got.end()})) << "old bytes came back";
    struct stat st;
    ASSERT_EQ(::stat((tmp_.path() + "/s/chunks/0000000000000007/0").c_str(), &st), 0);
    // A fresh file: its one block and its CRCs, not the old 1 MiB.
    EXPECT_LT(st.st_blocks * 512, 65536) << "the write went to a fresh file";
    EXPECT_TRUE(all_zero(read_all(*cs, 7, 1, 0, 4096)));
    ASSERT_OK(cs->remove_from(7, 0));
  }
}

TEST_F(ChunkFilesTest, TruncateToZeroThenWriteShowsOnlyTheNewData) {
  auto cs = open_store(tmp_.path() + "/s", 4096);
  ASSERT_NE(cs, nullptr);
  auto old_data = pattern(65536, 3);
  auto fresh = pattern(10, 4);
  for (bool async : {false, true}) {
    SCOPED_TRACE(async ? "io_uring" : "blocking");
    ASSERT_OK(cs->write(8, 2, 0, old_data));
    ASSERT_OK(cs->truncate(8, 2, 0));
    if (async)
      ASSERT_OK(write_sync(*cs, *ring_, 8, 2, 5000, fresh));
    else
      ASSERT_OK(cs->write(8, 2, 5000, fresh));
    auto got = read_all(*cs, 8, 2, 0, 65536);
    EXPECT_TRUE(all_zero({got.begin(), got.begin() + 5000}));
    EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), got.begin() + 5000));
    EXPECT_TRUE(all_zero({got.begin() + 5010, got.end()}));
    ASSERT_OK(cs->truncate(8, 2, 0));
  }
}

TEST_F(ChunkFilesTest, SmallCacheEvictsLeastRecentlyUsedAndStaysCorrect) {
  size_t baseline = open_fds();
  {
    auto cs = open_store(tmp_.path() + "/s", 3);
    ASSERT_NE(cs, nullptr);
    std::vector<std::vector<uint8_t>> data;
    for (uint32_t i = 0; i < 20; ++i) {
      data.push_back(pattern(5000 + i, 10 + i));
      if (i % 2)
        ASSERT_OK(cs->write(9, i, i, data[i]));
      else
        ASSERT_OK(write_sync(*cs, *ring_, 9, i, i, data[i]));
      EXPECT_LE(cs->stats().open_files, 3u);
    }
    for (int round = 0; round < 3; ++round)
      for (uint32_t i = 0; i < 20; ++i) {
        ASSERT_EQ(read_all(*cs, 9, i, i, 5000 + i), data[i]) << i;
        EXPECT_LE(cs->stats().open_files, 3u);
      }
    EXPECT_LE(open_fds(), baseline + 3);
    // Overwrite evicted files and read them back.
    for (uint32_t i = 0; i < 20; i += 3) ASSERT_OK(cs->write(9, i, 0, pattern(100, 99 + i)));
    for (uint32_t i = 0; i < 20; ++i) {
      std::vector<uint8_t> want(i, 0);  // data[i] was written at offset i
      want.insert(want.end(), data[i].begin(), data[i].end());
      if (i % 3 == 0) {
        auto d = pattern(100, 99 + i);
        std::copy(d.begin(), d.end(), want.begin());
      }
      ASSERT_EQ(read_all(*cs, 9, i, 0, 5000 + 2 * i), want) << i;
    }
  }
  EXPECT_EQ(open_fds(), baseline) << "chunk files left open after the store was destroyed";
}

// Writers and deleters race on one inode for a bounded time; a logical clock
// orders each operation's start and end. A region's final content must be
// its last write, unless a deletion overlapped that write (then the write or
// zeros) or started after it (then zeros). A write that started after a
// deletion had returned is never lost: that is the fd cache's contract.
TEST_F(ChunkFilesTest, ConcurrentWritersAndDeletersMatchAModel) {
  for (size_t cache : {size_t{4096}, size_t{2}}) {
    SCOPED_TRACE("cache of " + std::to_string(cache) + " files");
    test::TempDir dir;
    size_t baseline = open_fds();
    {
      auto cs = open_store(dir.path() + "/s", cache);
      ASSERT_NE(cs, nullptr);
      constexpr uint64_t kIno = 0x42;
      constexpr uint32_t kChunks = 6;
      constexpr int kWriters = 3;
      constexpr uint32_t kRegion = 4096;
      std::atomic<uint64_t> clock{1};
      std::atomic<bool> stop{false};  // deleters
      std::atomic<bool> stop_writers{
          false};  // a little later: some last writes follow every deletion
      struct Write {
        uint64_t start, end;
        uint32_t seed;
      };
      struct Deletion {
        uint64_t start, end;
        uint32_t first, last;  // chunk indexes affected
      };
      // last_write[w][chunk]: each writer owns region w of every chunk and
      // writes it sequentially, so only its last write matters.
      std::vector<std::vector<std::optional<Write>>> last_write(
          kWriters, std::vector<std::optional<Write>>(kChunks));
      std::mutex del_mu;
      std::vector<Deletion> deletions;
      std::atomic<int> errors{0};
      std::mutex err_mu;
      std::string first_error;
      auto note_error = [&](const Error& e) {
        std::lock_guard lk(err_mu);
        if (errors++ == 0) first_error = e.to_string();
      };
      std::vector<std::thread> threads;
      for (int w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
          auto ring = DiskRing::create(32);
          if (!ring.ok()) {
            ++errors;
            return;
          }
          std::mt19937 rng(w);
          uint32_t seq = 0;
          while (!stop_writers.load()) {
            uint32_t chunk = rng() % kChunks;
            uint32_t seed = (uint32_t(w) << 24) | ++seq;
            auto d = pattern(kRegion, seed);
            Write rec{clock.fetch_add(1), 0, seed};
            Status st;
            if (seq % 2) {
              st = cs->write(kIno, chunk, w * kRegion, d);
            } else if (auto r = write_sync(*cs, **ring, kIno, chunk, w * kRegion, d); !r.ok()) {
              st = r.error();
            }
            rec.end = clock.fetch_add(1);
            if (!st.ok()) note_error(st.error());
            last_write[w][chunk] = rec;
          }
        });
      }
      for (int k = 0; k < 2; ++k) {
        threads.emplace_back([&, k] {
          std::mt19937 rng(100 + k);
          while (!stop.load()) {
            Deletion d{clock.fetch_add(1), 0, 0, 0};
            Status st;
            if (rng() % 2) {
              d.first = d.last = rng() % kChunks;
              st = cs->truncate(kIno, d.first, 0);
            } else {
              d.first = rng() % kChunks;
              d.last = kChunks - 1;
              st = cs->remove_from(kIno, d.first);
            }
            d.end = clock.fetch_add(1);
            if (!st.ok()) note_error(st.error());
            std::lock_guard lk(del_mu);
            deletions.push_back(d);
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      stop = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      stop_writers = true;
      for (auto& t : threads) t.join();
      ASSERT_EQ(errors.load(), 0) << first_error;
      ASSERT_GT(deletions.size(), 10u);
      size_t exact = 0, either = 0, zeros = 0;
      for (int w = 0; w < kWriters; ++w) {
        for (uint32_t c = 0; c < kChunks; ++c) {
          auto got = read_all(*cs, kIno, c, w * kRegion, kRegion);
          const auto& lw = last_write[w][c];
          if (!lw) {
            EXPECT_TRUE(all_zero(got)) << "never written: writer " << w << " chunk " << c;
            continue;
          }
          bool after = false, overlapped = false;
          for (const auto& d : deletions) {
            if (c < d.first || c > d.last) continue;
            if (d.start > lw->end)
              after = true;
            else if (d.end > lw->start)
              overlapped = true;
          }
          auto want = pattern(kRegion, lw->seed);
          if (after) {
            ++zeros;
            EXPECT_TRUE(all_zero(got))
                << "deleted after the last write: writer " << w << " chunk " << c;
          } else if (overlapped) {
            ++either;
            EXPECT_TRUE(got == want || all_zero(got)) << "writer " << w << " chunk " << c;
          } else {
            ++exact;
            EXPECT_EQ(got, want)
                << "a write that started after every deletion of its chunk returned "
                   "was lost: writer "
                << w << " chunk " << c;
          }
        }
      }
      std::printf("model: %zu exact, %zu either, %zu deleted; %zu deletions, %zu files cached\n",
                  exact, either, zeros, deletions.size(),
                  static_cast<size_t>(cs->stats().open_files));
      EXPECT_LE(cs->stats().open_files, cache);
    }
    EXPECT_EQ(open_fds(), baseline) << "fd leak";
  }
}

// A write that wants the path while a deletion has evicted it but not yet
// unlinked it must not open the old file (it would write into a file that is
// about to disappear): it waits for the deletion and creates the new file.
TEST_F(ChunkFilesTest, OpenBetweenEvictionAndUnlinkGetsTheNewFile) {
  for (bool whole_inode : {false, true}) {
    SCOPED_TRACE(whole_inode ? "remove_from" : "unlink");
    auto files = ChunkFiles::open(tmp_.path() + (whole_inode ? "/r" : "/u"), 16);
    ASSERT_OK(files);
    ChunkFiles& cf = **files;
    {
      auto old_file = cf.get(3, 0, true);
      ASSERT_OK(old_file);
      ASSERT_EQ(::pwrite(old_file->fd(), "old!", 4, 0), 4);
    }
    std::thread writer;
    std::atomic<bool> wrote{false};
    cf.set_evict_hook_for_test([&] {
      if (writer.joinable()) return;
      writer = std::thread([&] {
        auto f = cf.get(3, 0, true);
        if (f.ok() && *f && ::pwrite(f->fd(), "new!", 4, 100) == 4) wrote = true;
      });
      // Give the writer every chance to open the path before the unlink.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    });
    ASSERT_OK(whole_inode ? cf.remove_from(3, 0) : cf.unlink(3, 0));
    writer.join();
    ASSERT_TRUE(wrote);
    cf.set_evict_hook_for_test(nullptr);
    auto f = cf.get(3, 0, false);
    ASSERT_OK(f);
    ASSERT_TRUE(*f) << "the write went to the unlinked file";
    char buf[104] = {};
    ASSERT_EQ(::pread(f->fd(), buf, sizeof buf, 0), 104);
    EXPECT_EQ(std::string(buf, 4), std::string(4, '\0')) << "old data survived the deletion";
    EXPECT_EQ(std::string(buf + 100, 4), "new!");
  }
}

// With a low fd limit (soft = hard = 200) the default 4096-file cache shrinks
// to fit instead of failing opens with EMFILE.
TEST_F(ChunkFilesTest, CacheFitsALowFdLimit) {
  std::string dir = tmp_.path() + "/lim";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit rl = {200, 200};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(2);
    auto cs = ChunkStore::open(dir, kChunk);
    if (!cs.ok()) ::_exit(3);
    auto d = pattern(100, 1);
    for (uint64_t i = 0; i < 400; ++i)
      if (!(*cs)->write(5, i, 0, d).ok()) ::_exit(4);
    ::_exit((*cs)->stats().open_files <= 100 ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "2: setrlimit, 3: open, 4: a write failed (EMFILE?), 5: cache too big";
}

TEST_F(ChunkFilesTest, RefKeepsAnEvictedFileOpenUntilReleased) {
  auto files = ChunkFiles::open(tmp_.path() + "/f", 1);
  ASSERT_OK(files);
  bool created = false;
  auto a = (*files)->get(1, 0, true, &created);
  ASSERT_OK(a);
  EXPECT_TRUE(created);
  EXPECT_FALSE((*files)->dir_durable(**a)) << "a new file's name is not durable yet";
  ASSERT_OK((*files)->sync_dir(**a));
  EXPECT_TRUE((*files)->dir_durable(**a));
  auto b = (*files)->get(1, 1, true);  // evicts (1, 0): the cache holds one file
  ASSERT_OK(b);
  EXPECT_EQ((*files)->cached(), 1u);
  ASSERT_EQ(::write(a->fd(), "x", 1), 1) << "evicted but still referenced: the fd stays open";
  auto missing = (*files)->get(1, 7, false);
  ASSERT_OK(missing);
  EXPECT_FALSE(*missing);
  EXPECT_EQ((*files)->get(1, 7, false)->get(), nullptr);
}

}  // namespace
}  // namespace lanefs::backend

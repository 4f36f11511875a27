#include "backend/chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace lanefs::backend {
namespace {

constexpr uint32_t kChunk = 1 << 20;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return v;
}

bool all_zero(const std::vector<uint8_t>& v, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (v[i] != 0) return false;
  }
  return true;
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    store_.reset();
    auto s = ChunkStore::open(tmp_.path() + "/store", kChunk);
    ASSERT_OK(s);
    store_ = std::move(s).value();
  }
  std::vector<uint8_t> read(uint64_t ino, uint64_t index, uint32_t off, uint32_t len) {
    std::vector<uint8_t> out;
    auto st = store_->read(ino, index, off, len, &out);
    EXPECT_OK(st);
    EXPECT_EQ(out.size(), len);
    return out;
  }
  std::string chunk_path(uint64_t ino, uint64_t index) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(ino));
    return tmp_.path() + "/store/chunks/" + hex + "/" + std::to_string(index);
  }
  bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  test::TempDir tmp_;
  std::unique_ptr<ChunkStore> store_;
};

TEST_F(ChunkStoreTest, OpenRejectsZeroChunkSize) {
  EXPECT_EQ(ChunkStore::open(tmp_.path() + "/z", 0).code(), Errc::kInvalid);
}

TEST_F(ChunkStoreTest, WriteReadRoundTripAtOffsets) {
  EXPECT_EQ(store_->chunk_size(), kChunk);
  auto a = pattern(5000, 1);
  auto b = pattern(300, 2);
  auto c = pattern(4096, 3);
  ASSERT_OK(store_->write(0xabcdef, 0, 0, a));
  ASSERT_OK(store_->write(0xabcdef, 0, 1000, b));           // overwrite inside a
  ASSERT_OK(store_->write(0xabcdef, 7, kChunk - 4096, c));  // last bytes of a chunk
  EXPECT_TRUE(exists(chunk_path(0xabcdef, 7)));

  auto expect = a;
  std::copy(b.begin(), b.end(), expect.begin() + 1000);
  EXPECT_EQ(read(0xabcdef, 0, 0, 5000), expect);
  EXPECT_EQ(read(0xabcdef, 0, 999, 302),
            std::vector<uint8_t>(expect.begin() + 999, expect.begin() + 1301));
  EXPECT_EQ(read(0xabcdef, 7, kChunk - 4096, 4096), c);
  EXPECT_EQ(read(0xabcdef, 0, 0, 0), std::vector<uint8_t>{});
}

TEST_F(ChunkStoreTest, HolesReadAsZeros) {
  // Missing chunk file.
  EXPECT_TRUE(all_zero(read(1, 0, 0, 8192), 0, 8192));
  EXPECT_TRUE(all_zero(read(1, 3, 100, 10), 0, 10));
  // Gap inside a file and past its written end.
  auto d = pattern(100, 9);
  ASSERT_OK(store_->write(2, 0, 0, d));
  ASSERT_OK(store_->write(2, 0, 200000, d));
  auto got = read(2, 0, 0, 300000);
  EXPECT_TRUE(std::equal(d.begin(), d.end(), got.begin()));
  EXPECT_TRUE(all_zero(got, 100, 200000));
  EXPECT_TRUE(std::equal(d.begin(), d.end(), got.begin() + 200000));
  EXPECT_TRUE(all_zero(got, 200100, 300000));
  EXPECT_TRUE(all_zero(read(2, 0, 500000, 1000), 0, 1000));
}

TEST_F(ChunkStoreTest, RangesOutsideAChunkAreInvalid) {
  auto d = pattern(10, 1);
  std::vector<uint8_t> out;
  EXPECT_EQ(store_->write(1, 0, kChunk - 5, d).code(), Errc::kInvalid);
  EXPECT_EQ(store_->write(1, 0, kChunk, d).code(), Errc::kInvalid);
  EXPECT_EQ(store_->write(1, 0, UINT32_MAX, d).code(), Errc::kInvalid);
  EXPECT_EQ(store_->read(1, 0, kChunk - 5, 10, &out).code(), Errc::kInvalid);
  EXPECT_EQ(store_->read(1, 0, UINT32_MAX, UINT32_MAX, &out).code(), Errc::kInvalid);
  EXPECT_EQ(store_->punch(1, 0, kChunk - 5, 10).code(), Errc::kInvalid);
  EXPECT_EQ(store_->truncate(1, 0, kChunk + 1).code(), Errc::kInvalid);
  EXPECT_FALSE(exists(chunk_path(1, 0))) << "a rejected write must not create the chunk";
  // Exactly up to the end is fine.
  EXPECT_OK(store_->write(1, 0, kChunk - 10, d));
  EXPECT_OK(store_->read(1, 0, kChunk - 10, 10, &out));
  EXPECT_EQ(out, d);
  EXPECT_OK(store_->truncate(1, 0, kChunk));
}

TEST_F(ChunkStoreTest, TruncateShortensAndZeroExtends) {
  auto d = pattern(10000, 4);
  ASSERT_OK(store_->write(3, 1, 0, d));
  ASSERT_OK(store_->truncate(3, 1, 4000));
  auto got = read(3, 1, 0, 10000);
  EXPECT_TRUE(std::equal(d.begin(), d.begin() + 4000, got.begin()));
  EXPECT_TRUE(all_zero(got, 4000, 10000));

  // Growing leaves zeros behind the old end, not the old bytes.
  ASSERT_OK(store_->truncate(3, 1, 20000));
  got = read(3, 1, 0, 20000);
  EXPECT_TRUE(std::equal(d.begin(), d.begin() + 4000, got.begin()));
  EXPECT_TRUE(all_zero(got, 4000, 20000));

  // Truncating a chunk that was never written is a no-op.
  EXPECT_OK(store_->truncate(3, 9, 100));
  EXPECT_FALSE(exists(chunk_path(3, 9)));
}

TEST_F(ChunkStoreTest, TruncateToZeroRemovesTheChunk) {
  ASSERT_OK(store_->write(4, 2, 0, pattern(100, 1)));
  ASSERT_TRUE(exists(chunk_path(4, 2)));
  ASSERT_OK(store_->truncate(4, 2, 0));
  EXPECT_FALSE(exists(chunk_path(4, 2)));
  EXPECT_TRUE(all_zero(read(4, 2, 0, 100), 0, 100));
  auto blocks = store_->chunk_blocks(4, 2);
  ASSERT_OK(blocks);
  EXPECT_EQ(*blocks, 0u);
  EXPECT_OK(store_->truncate(4, 2, 0));  // idempotent
}

TEST_F(ChunkStoreTest, PunchZerosTheRangeAndFreesBlocks) {
  auto d = pattern(kChunk, 5);
  ASSERT_OK(store_->write(5, 0, 0, d));
  auto before = store_->allocated_blocks(5);
  ASSERT_OK(before);
  EXPECT_GE(*before, uint64_t{kChunk} / 512);
  auto chunk_before = store_->chunk_blocks(5, 0);
  ASSERT_OK(chunk_before);
  EXPECT_EQ(*chunk_before, *before);

  ASSERT_OK(store_->punch(5, 0, 65536, 512 * 1024));
  auto got = read(5, 0, 0, kChunk);
  EXPECT_TRUE(std::equal(d.begin(), d.begin() + 65536, got.begin()));
  EXPECT_TRUE(all_zero(got, 65536, 65536 + 512 * 1024));
  EXPECT_TRUE(
      std::equal(d.begin() + 65536 + 512 * 1024, d.end(), got.begin() + 65536 + 512 * 1024));

  auto after = store_->allocated_blocks(5);
  ASSERT_OK(after);
  EXPECT_LT(*after, *before);
  EXPECT_OK(store_->punch(5, 9, 0, 100));  // missing chunk: nothing to do
  EXPECT_OK(store_->punch(5, 0, 0, 0));
}

TEST_F(ChunkStoreTest, RemoveFromDropsLaterChunksAndEmptyDirectory) {
  const uint64_t ino = 0x0001000000000042ull;
  for (uint64_t i = 0; i < 12; ++i) ASSERT_OK(store_->write(ino, i, 0, pattern(10, 1)));
  ASSERT_OK(store_->write(ino + 1, 0, 0, pattern(10, 1)));
  ASSERT_OK(store_->remove_from(ino, 3));
  for (uint64_t i = 0; i < 12; ++i) EXPECT_EQ(exists(chunk_path(ino, i)), i < 3) << i;
  EXPECT_EQ(read(ino, 1, 0, 10), pattern(10, 1));
  EXPECT_TRUE(all_zero(read(ino, 10, 0, 10), 0, 10));

  std::string ino_dir = chunk_path(ino, 0);
  ino_dir.resize(ino_dir.rfind('/'));
  ASSERT_OK(store_->remove_from(ino, 0));
  EXPECT_FALSE(exists(ino_dir));
  EXPECT_TRUE(exists(chunk_path(ino + 1, 0))) << "other inodes untouched";
  EXPECT_OK(store_->remove_from(ino, 0));  // nothing left: fine
  auto blocks = store_->allocated_blocks(ino);
  ASSERT_OK(blocks);
  EXPECT_EQ(*blocks, 0u);

  // The directory is recreated by the next write.
  ASSERT_OK(store_->write(ino, 5, 0, pattern(10, 2)));
  EXPECT_EQ(read(ino, 5, 0, 10), pattern(10, 2));
}

TEST_F(ChunkStoreTest, SpaceAndStoredBytes) {
  uint64_t total = 0, free = 0, avail = 0;
  ASSERT_OK(store_->space(&total, &free, &avail));
  EXPECT_GT(total, 0u);
  EXPECT_LE(free, total);
  EXPECT_LE(avail, free);
  EXPECT_EQ(store_->stored_bytes(), 0u);
  ASSERT_OK(store_->write(6, 0, 0, pattern(65536, 1)));
  ASSERT_OK(store_->write(7, 3, 0, pattern(65536, 1)));
  auto b6 = store_->allocated_blocks(6);
  auto b7 = store_->allocated_blocks(7);
  ASSERT_OK(b6);
  ASSERT_OK(b7);
  EXPECT_EQ(store_->stored_bytes(), (*b6 + *b7) * 512);
  EXPECT_GE(store_->stored_bytes(), 2u * 65536);
}

TEST_F(ChunkStoreTest, DataSurvivesReopen) {
  auto d = pattern(12345, 7);
  ASSERT_OK(store_->write(8, 4, 777, d));
  reopen();
  EXPECT_EQ(read(8, 4, 777, 12345), d);
}

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

TEST_F(ChunkStoreTest, NoDescriptorLeaksOnSuccessOrError) {
  size_t before = open_fds();
  ASSERT_GT(before, 0u);
  std::vector<uint8_t> out;
  for (uint64_t i = 0; i < 50; ++i) {
    ASSERT_OK(store_->write(10, i, 0, pattern(100, 1)));
    ASSERT_OK(store_->read(10, i, 0, 100, &out));
    ASSERT_OK(store_->punch(10, i, 0, 10));
    ASSERT_OK(store_->truncate(10, i, 50));
    EXPECT_EQ(store_->write(10, i, kChunk, pattern(1, 1)).code(), Errc::kInvalid);
    ASSERT_OK(store_->read(11, i, 0, 100, &out));
  }
  ASSERT_OK(store_->allocated_blocks(10));
  ASSERT_OK(store_->remove_from(10, 0));
  (void)store_->stored_bytes();
  EXPECT_EQ(open_fds(), before);
}

TEST_F(ChunkStoreTest, AcknowledgedWriteSurvivesKill9) {
  auto d = pattern(200000, 11);
  store_.reset();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest assertions here; report failure by exit code.
    auto s = ChunkStore::open(tmp_.path() + "/store", kChunk);
    if (!s.ok()) ::_exit(2);
    if (!(*s)->write(9, 0, 4096, d).ok()) ::_exit(3);
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  reopen();
  EXPECT_EQ(read(9, 0, 4096, 200000), d);
  EXPECT_TRUE(all_zero(read(9, 0, 0, 4096), 0, 4096));
}

TEST_F(ChunkStoreTest, SealedChunksKeepSealsAfterTheData) {
  EXPECT_EQ(store_->max_chunk_bytes(), uint64_t{kChunk} + kChunk / 4096 * 32);
  auto data = pattern(3 * 4096, 7);
  std::vector<uint8_t> seals(3 * 32, 0x5a);
  ASSERT_OK(store_->write_sealed(11, 0, 4096, data, seals));
  std::vector<uint8_t> out;
  ASSERT_OK(store_->read_sealed(11, 0, 0, 4 * 4096, &out));
  ASSERT_EQ(out.size(), 4 * 4096 + 4 * 32u);
  EXPECT_TRUE(all_zero(out, 0, 4096));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), out.begin() + 4096));
  EXPECT_TRUE(all_zero(out, 4 * 4096, 4 * 4096 + 32));           // block 0: hole seal
  EXPECT_EQ(out[4 * 4096 + 32], 0x5a);                             // block 1's seal
  // The seals sit after the data, block 1's at kChunk + 32.
  {
    int fd = ::open(chunk_path(11, 0).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    uint8_t seal[32];
    ASSERT_EQ(::pread(fd, seal, 32, kChunk + 32), 32);
    ::close(fd);
    EXPECT_EQ(seal[0], 0x5a);
  }
  // Misaligned or mismatched requests are refused.
  EXPECT_FALSE(store_->write_sealed(11, 0, 100, data, seals).ok());
  EXPECT_FALSE(store_->write_sealed(11, 0, 0, data, std::span<const uint8_t>(seals).first(64)).ok());
  // Punch zeroes the seals of the punched blocks only.
  ASSERT_OK(store_->punch_sealed(11, 0, 8192, 4096));
  ASSERT_OK(store_->read_sealed(11, 0, 4096, 3 * 4096, &out));
  EXPECT_EQ(out[3 * 4096], 0x5a);
  EXPECT_TRUE(all_zero(out, 3 * 4096 + 32, 3 * 4096 + 64));
  EXPECT_EQ(out[3 * 4096 + 64], 0x5a);
  // Truncate keeps the block holding the cut (data and seal), drops the rest.
  ASSERT_OK(store_->truncate_sealed(11, 0, 4096 + 10));
  ASSERT_OK(store_->read_sealed(11, 0, 4096, 2 * 4096, &out));
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 4096, out.begin()));
  EXPECT_TRUE(all_zero(out, 4096, 2 * 4096));
  EXPECT_EQ(out[2 * 4096], 0x5a);
  EXPECT_TRUE(all_zero(out, 2 * 4096 + 32, 2 * 4096 + 64));
  ASSERT_OK(store_->truncate_sealed(11, 0, 0));
  EXPECT_FALSE(exists(chunk_path(11, 0)));
}

}  // namespace
}  // namespace lanefs::backend

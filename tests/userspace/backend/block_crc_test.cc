// Checksums at rest: every 4 KiB block of a chunk carries a CRC32C that every
// read checks. Damage (bytes written into a chunk file behind the store's
// back) is kCorrupt, counted and listed by a scrub, never returned as data;
// writes of any size and alignment, punches and truncates keep the CRCs right;
// and the update order leaves every block readable at each step in between.
#include "backend/block_crc.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/chunk_store.h"
#include "backend/disk_ring.h"
#include "support/test_support.h"

namespace lanefs::backend {
namespace {

constexpr uint32_t kChunk = 1 << 20;

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Each test on a disk-backed store (reads through io_uring or RWF_NOWAIT,
// checked when complete) and on a memory-backed one (/dev/shm: read and
// checked inline, slice by slice).
class BlockCrcTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    if (GetParam() == "memory") {
      char tmpl[] = "/dev/shm/lanefs-test-XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl), nullptr);
      root_ = shm_ = tmpl;
    }
    auto s = ChunkStore::open(root_ + "/store", kChunk);
    ASSERT_OK(s);
    store_ = std::move(s).value();
    // Never a pass: the variant is skipped, saying which path went untested.
    if (store_->memory_backed() != (GetParam() == "memory"))
      GTEST_SKIP() << (GetParam() == "memory"
                           ? root_ + " is not on tmpfs: the memory-backed read path is not tested here"
                           : root_ + " is on tmpfs (TMPDIR): the disk read path is not tested here; set TMPDIR to a "
                                     "directory on a disk");
  }
  void TearDown() override {
    store_.reset();
    if (!shm_.empty()) std::filesystem::remove_all(shm_);
  }
  std::string chunk_path(uint64_t ino, uint64_t index) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(ino));
    return root_ + "/store/chunks/" + hex + "/" + std::to_string(index);
  }
  // What the issue saw: garbage written into a chunk file by someone else.
  void damage(uint64_t ino, uint64_t index, uint64_t off, size_t n = 14) {
    int fd = ::open(chunk_path(ino, index).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> junk(n, 0xee);
    ASSERT_EQ(::pwrite(fd, junk.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
    ::close(fd);
  }
  Status read_async(uint64_t ino, uint64_t index, uint32_t off, uint32_t len, std::vector<uint8_t>* out) {
    auto r = DiskRing::create(8);
    EXPECT_OK(r);
    out->assign(len, 0);
    std::optional<Status> got;
    store_->read_async(**r, ino, index, off, len, out->data(), [&](Status st) { got.emplace(std::move(st)); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!got && std::chrono::steady_clock::now() < deadline) (*r)->poll_wait(100);
    EXPECT_TRUE(got.has_value());
    return got ? *got : Status(make_error(Errc::kTimeout, "read_async"));
  }
  test::TempDir tmp_;
  std::string root_, shm_;
  std::unique_ptr<ChunkStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, BlockCrcTest, ::testing::Values("disk", "memory"));

TEST_P(BlockCrcTest, DamagedBlockIsAnErrorNeverData) {
  auto d = pattern(3 * 4096, 1);
  ASSERT_OK(store_->write(9, 0, 0, d));
  damage(9, 0, 4096 + 100);
  std::vector<uint8_t> out;
  ASSERT_OK(store_->read(9, 0, 0, 4096, &out));  // the blocks around it still read
  EXPECT_TRUE(std::equal(out.begin(), out.end(), d.begin()));
  ASSERT_OK(store_->read(9, 0, 8192, 4096, &out));
  for (auto [off, len] : {std::pair{4096u, 4096u}, {0u, 3 * 4096u}, {4200u, 10u}, {4000u, 200u}}) {
    Status st = store_->read(9, 0, off, len, &out);
    EXPECT_EQ(st.code(), Errc::kCorrupt) << off << "+" << len;
    EXPECT_NE(st.error().message.find(chunk_path(9, 0)), std::string::npos) << st.error().message;
    EXPECT_EQ(read_async(9, 0, off, len, &out).code(), Errc::kCorrupt) << off << "+" << len;
  }
  EXPECT_GE(store_->stats().corrupt_blocks, 8u);

  ChunkStore::ScrubTally t;
  ASSERT_OK(store_->scrub_ino(9, &t));
  EXPECT_EQ(t.chunks, 1u);
  EXPECT_EQ(t.blocks, kChunk / 4096);
  ASSERT_EQ(t.damaged.size(), 1u);
  EXPECT_EQ(t.damaged[0].block, 1u);
  EXPECT_EQ(t.damaged[0].path, chunk_path(9, 0));

  // Rewriting the whole block makes it sound again.
  ASSERT_OK(store_->write(9, 0, 4096, std::span(d).subspan(4096, 4096)));
  ASSERT_OK(store_->read(9, 0, 0, 3 * 4096, &out));
  EXPECT_EQ(out, d);
  ChunkStore::ScrubTally clean;
  ASSERT_OK(store_->scrub_ino(9, &clean));
  EXPECT_TRUE(clean.damaged.empty());
}

TEST_P(BlockCrcTest, DamageInAHoleOrTheSlotsIsFound) {
  auto d = pattern(4096, 2);
  ASSERT_OK(store_->write(10, 0, 0, d));
  damage(10, 0, 20 * 4096 + 7);  // a block never written
  std::vector<uint8_t> out;
  EXPECT_EQ(store_->read(10, 0, 20 * 4096, 4096, &out).code(), Errc::kCorrupt);
  ASSERT_OK(store_->write(11, 0, 0, d));
  // Both slots of block 0 (A at the slot base, B one slot array later).
  const uint64_t base = (store_->max_chunk_bytes() + 4095) / 4096 * 4096;
  damage(11, 0, base, 4);
  damage(11, 0, base + kChunk / 4096 * 4, 4);
  EXPECT_EQ(store_->read(11, 0, 0, 4096, &out).code(), Errc::kCorrupt);
}

TEST_P(BlockCrcTest, WritesOfAnyShapePunchAndTruncateKeepTheCrcsRight) {
  std::vector<uint8_t> model(kChunk, 0);
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    uint32_t off = rng() % kChunk;
    uint32_t len = 1 + rng() % std::min<uint32_t>(kChunk - off, (i % 10 == 0) ? 200000 : 9000);
    auto d = pattern(len, i);
    if (i % 17 == 5) {
      ASSERT_OK(store_->punch(12, 0, off, len));
      std::fill(model.begin() + off, model.begin() + off + len, 0);
    } else {
      ASSERT_OK(store_->write(12, 0, off, d));
      std::copy(d.begin(), d.end(), model.begin() + off);
    }
  }
  std::vector<uint8_t> out;
  ASSERT_OK(store_->read(12, 0, 0, kChunk, &out));
  EXPECT_EQ(out, model);
  for (int i = 0; i < 40; ++i) {  // any offset and length, across 64 KiB slices
    uint32_t off = rng() % kChunk, len = 1 + rng() % std::min<uint32_t>(kChunk - off, 300000);
    ASSERT_OK(store_->read(12, 0, off, len, &out));
    ASSERT_TRUE(std::equal(out.begin(), out.end(), model.begin() + off)) << off << "+" << len;
    ASSERT_OK(read_async(12, 0, off, len, &out));
    ASSERT_TRUE(std::equal(out.begin(), out.end(), model.begin() + off)) << "async " << off << "+" << len;
  }
  ASSERT_OK(store_->truncate(12, 0, 123457));
  std::fill(model.begin() + 123457, model.end(), 0);
  ASSERT_OK(store_->read(12, 0, 0, kChunk, &out));
  EXPECT_EQ(out, model);
  ChunkStore::ScrubTally t;
  ASSERT_OK(store_->scrub_ino(12, &t));
  EXPECT_TRUE(t.damaged.empty());
  EXPECT_EQ(store_->stats().corrupt_blocks, 0u);
}

TEST_P(BlockCrcTest, SealedChunksAreCheckedToo) {
  auto d = pattern(2 * 4096, 3);
  std::vector<uint8_t> seals(2 * 32, 0x11);
  ASSERT_OK(store_->write_sealed(13, 0, 8192, d, seals));
  std::vector<uint8_t> out;
  ASSERT_OK(store_->read_sealed(13, 0, 8192, 8192, &out));
  damage(13, 0, 8192 + 4096 + 1);
  EXPECT_EQ(store_->read_sealed(13, 0, 8192, 8192, &out).code(), Errc::kCorrupt);
  ASSERT_OK(store_->truncate_sealed(13, 0, 8192 + 4096));  // drops the damaged block
  ASSERT_OK(store_->read_sealed(13, 0, 0, 4 * 4096, &out));
}

// The update order on a bare file: between stage() and the data change the
// old bytes still check (slot A), after it the new ones do (slot B), and
// after settle() both slots name the new bytes.
TEST(BlockCrc, EveryStepOfAnUpdateLeavesTheBlocksSound) {
  test::TempDir tmp;
  std::string path = tmp.path() + "/f";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  BlockCrc crc(kChunk, 2 * kChunk);
  auto check = [&](uint32_t off, uint32_t len) {
    std::vector<uint8_t> buf(len);
    EXPECT_EQ(::pread(fd, buf.data(), len, off), static_cast<ssize_t>(len));
    auto r = crc.check(fd, off, len, buf.data(), path);
    EXPECT_OK(r);
    return r.ok() ? *r : -2;
  };
  auto write = [&](uint32_t off, const std::vector<uint8_t>& d, int stop_after) {
    BlockCrc::Update u;
    struct iovec iov = {const_cast<uint8_t*>(d.data()), d.size()};
    ASSERT_OK(crc.compute(fd, off, static_cast<uint32_t>(d.size()), &iov, 1, &u, path));
    ASSERT_OK(crc.stage(fd, u, path));
    if (stop_after == 1) return;
    ASSERT_EQ(::pwrite(fd, d.data(), d.size(), off), static_cast<ssize_t>(d.size()));
    if (stop_after == 2) return;
    ASSERT_OK(crc.settle(fd, u, path));
  };
  write(0, pattern(3 * 4096, 1), 3);
  EXPECT_EQ(check(0, 3 * 4096), -1);
  for (int stop = 1; stop <= 3; ++stop) {
    write(1000, pattern(5000, 10 + stop), stop);  // partial blocks at both ends
    EXPECT_EQ(check(0, 3 * 4096), -1) << "stopped after step " << stop;
  }
  // A write into a hole cut short (ENOSPC, kill -9) before its bytes
  // landed: the hole, with a CRC staged in B only, is still a hole.
  write(8 * 4096, pattern(2 * 4096, 20), 1);
  EXPECT_EQ(check(8 * 4096, 2 * 4096), -1);
  ::close(fd);
}

}  // namespace
}  // namespace lanefs::backend

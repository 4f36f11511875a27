// ChunkStore's io_uring path: read_async/write_async semantics, group commit
// (fewer fdatasyncs than writes) and its ordering rule, checked on the ring's
// own trace: every acknowledged write was followed by an fdatasync of its file
// that was queued after the write completed and finished before the ack.
#include <liburing.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
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
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 9));
  return v;
}

class ChunkStoreAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ChunkStore::open(tmp_.path() + "/store", kChunk);
    ASSERT_OK(s);
    store_ = std::move(s).value();
    auto r = DiskRing::create(64);
    ASSERT_OK(r);
    ring_ = std::move(r).value();
  }
  void TearDown() override { ring_.reset(); }
  void drain(DiskRing& ring) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (ring.inflight() > 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline);
      ring.poll_wait(100);
    }
  }
  test::TempDir tmp_;
  std::unique_ptr<ChunkStore> store_;
  std::unique_ptr<DiskRing> ring_;
};

TEST_F(ChunkStoreAsyncTest, WriteTwoPartsThenReadWithHolesAsZeros) {
  auto a = pattern(3000, 1), b = pattern(5000, 2);
  std::optional<Result<int64_t>> wrote;
  store_->write_async(*ring_, 5, 1, 4096, a, b,
                      [&](Result<int64_t> r) { wrote.emplace(std::move(r)); });
  EXPECT_FALSE(wrote) << "done ran inside write_async";
  drain(*ring_);
  ASSERT_TRUE(wrote);
  ASSERT_OK(*wrote);
  auto blocks = store_->chunk_blocks(5, 1);
  ASSERT_OK(blocks);
  EXPECT_EQ(**wrote, static_cast<int64_t>(*blocks)) << "allocation change of a new chunk";

  std::vector<uint8_t> got(20000, 0xee);
  std::optional<Status> read;
  store_->read_async(*ring_, 5, 1, 0, 20000, got.data(),
                     [&](Status st) { read.emplace(std::move(st)); });
  EXPECT_FALSE(read);
  drain(*ring_);
  ASSERT_TRUE(read);
  ASSERT_OK(*read);
  std::vector<uint8_t> want(20000, 0);
  std::copy(a.begin(), a.end(), want.begin() + 4096);
  std::copy(b.begin(), b.end(), want.begin() + 4096 + 3000);
  EXPECT_EQ(got, want) << "hole before, data, zeros beyond the file's end";
  // Agrees with the blocking path both ways.
  std::vector<uint8_t> blocking;
  ASSERT_OK(store_->read(5, 1, 0, 20000, &blocking));
  EXPECT_EQ(blocking, want);

  // A chunk that was never written reads as zeros without any file.
  std::fill(got.begin(), got.end(), 0xee);
  read.reset();
  store_->read_async(*ring_, 5, 9, 100, 500, got.data(),
                     [&](Status st) { read.emplace(std::move(st)); });
  drain(*ring_);
  ASSERT_OK(*read);
  EXPECT_TRUE(std::all_of(got.begin(), got.begin() + 500, [](uint8_t c) { return c == 0; }));
  EXPECT_EQ(got[500], 0xee) << "wrote past len";
}

TEST_F(ChunkStoreAsyncTest, InvalidRangesFailLikeTheBlockingCalls) {
  auto d = pattern(10, 1);
  std::optional<Result<int64_t>> wrote;
  store_->write_async(*ring_, 1, 0, kChunk - 5, d, {},
                      [&](Result<int64_t> r) { wrote.emplace(std::move(r)); });
  EXPECT_FALSE(wrote);
  drain(*ring_);
  ASSERT_TRUE(wrote);
  auto blocking = store_->write(1, 0, kChunk - 5, d);
  ASSERT_EQ(wrote->code(), Errc::kInvalid);
  EXPECT_EQ(wrote->error().message, blocking.error().message);
  std::vector<uint8_t> buf(10);
  std::optional<Status> read;
  store_->read_async(*ring_, 1, 0, kChunk, 10, buf.data(),
                     [&](Status st) { read.emplace(std::move(st)); });
  drain(*ring_);
  EXPECT_EQ(read->code(), Errc::kInvalid);
  struct stat st;
  EXPECT_NE(::stat((tmp_.path() + "/store/chunks/0000000000000001/0").c_str(), &st), 0)
      << "a rejected write must not create the chunk";
}

// Many writes of one chunk in flight on one ring: acknowledged in groups,
// each readable afterwards, and the allocation changes add up.
TEST_F(ChunkStoreAsyncTest, WritesInFlightOnOneRingShareSyncs) {
  constexpr int kWrites = 64;
  std::vector<std::vector<uint8_t>> data;
  for (int i = 0; i < kWrites; ++i) data.push_back(pattern(4096, 100 + i));
  int acked = 0;
  int64_t blocks = 0;
  auto before = store_->stats();
  for (int i = 0; i < kWrites; ++i)
    store_->write_async(*ring_, 3, 0, i * 4096, data[i], {}, [&](Result<int64_t> r) {
      ASSERT_OK(r);
      blocks += *r;
      ++acked;
    });
  drain(*ring_);
  ASSERT_EQ(acked, kWrites);
  auto after = store_->stats();
  EXPECT_EQ(after.writes - before.writes, uint64_t{kWrites});
  EXPECT_GE(after.syncs - before.syncs, 1u);
  EXPECT_LT(after.syncs - before.syncs, after.writes - before.writes) << "no group commit";
  auto on_disk = store_->chunk_blocks(3, 0);
  ASSERT_OK(on_disk);
  EXPECT_EQ(blocks, static_cast<int64_t>(*on_disk))
      << "blocks counted twice (or missed) across a group";
  for (int i = 0; i < kWrites; ++i) {
    std::vector<uint8_t> got;
    ASSERT_OK(store_->read(3, 0, i * 4096, 4096, &got));
    ASSERT_EQ(got, data[i]) << i;
  }
}

// Threads with a ring each (one loop per core) and 16 writes in flight each,
// all on the same chunk, plus blocking writers on the same chunk.
TEST_F(ChunkStoreAsyncTest, ConcurrentRingsAndBlockingWritersOnOneChunk) {
  constexpr int kRings = 3, kBlocking = 3, kPerThread = 160, kDepth = 16;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  auto before = store_->stats();
  auto slot_of = [](int t, int i) { return uint32_t(t * kPerThread + i) * 1024; };
  for (int t = 0; t < kRings; ++t)
    threads.emplace_back([&, t] {
      auto ring = DiskRing::create(32);
      if (!ring.ok()) {
        ++failures;
        return;
      }
      std::vector<std::vector<uint8_t>> data;
      for (int i = 0; i < kPerThread; ++i) data.push_back(pattern(1024, t * 1000 + i));
      int next = 0, acked = 0;
      while (acked < kPerThread) {
        while (next < kPerThread && next - acked < kDepth) {
          int i = next++;
          store_->write_async(**ring, 4, 0, slot_of(t, i), data[i], {}, [&](Result<int64_t> r) {
            if (!r.ok()) ++failures;
            ++acked;
          });
        }
        (*ring)->poll_wait(100);
      }
    });
  for (int t = kRings; t < kRings + kBlocking; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        if (!store_->write(4, 0, slot_of(t, i), pattern(1024, t * 1000 + i)).ok()) ++failures;
    });
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  auto after = store_->stats();
  uint64_t writes = after.writes - before.writes, syncs = after.syncs - before.syncs;
  EXPECT_EQ(writes, uint64_t{(kRings + kBlocking) * kPerThread});
  EXPECT_LT(syncs, writes);
  std::printf("%llu writes, %llu fdatasyncs\n", static_cast<unsigned long long>(writes),
              static_cast<unsigned long long>(syncs));
  for (int t = 0; t < kRings + kBlocking; ++t)
    for (int i = 0; i < kPerThread; ++i) {
      std::vector<uint8_t> got;
      ASSERT_OK(store_->read(4, 0, slot_of(t, i), 1024, &got));
      ASSERT_EQ(got, pattern(1024, t * 1000 + i)) << t << "/" << i;
    }
}

// The ordering rule, on the ring's trace: write i puts its bytes into the
// file before write_async returns (marked -2, i there); its acknowledgement
// is a mark (-1, i). Some fdatasync of the chunk file must be queued after
// the first mark and complete before the second. Writes keep arriving while syncs run (more writes
// are queued from acknowledgements), so writes that complete during a sync
// have to wait for the next one.
TEST_F(ChunkStoreAsyncTest, EveryAckFollowsASyncQueuedAfterItsWriteCompleted) {
  std::vector<DiskRing::TraceEvent> trace;
  ring_->set_trace(&trace);
  constexpr int kWrites = 200;
  std::vector<std::vector<uint8_t>> data;
  for (int i = 0; i < kWrites; ++i) data.push_back(pattern(1000 + i, i));
  int next = 0, acked = 0;
  std::function<void()> issue = [&] {
    int i = next++;
    store_->write_async(*ring_, 6, 0, i * 1300, data[i], {}, [&, i](Result<int64_t> r) {
      ASSERT_OK(r);
      ring_->trace_mark(-1, uint64_t(i));
      ++acked;
      if (next < kWrites) issue();
    });
    ring_->trace_mark(-2, uint64_t(i));
  };
  for (int k = 0; k < 8; ++k) issue();
  drain(*ring_);
  ASSERT_EQ(acked, kWrites);
  // op id -> position of its completion; fsyncs by fd.
  std::map<uint64_t, size_t> completed_at;
  std::map<int, int> syncs_by_fd;  // the chunk file's: the most (one is its directory's)
  for (size_t p = 0; p < trace.size(); ++p) {
    if (trace[p].kind == DiskRing::TraceEvent::kCompleted) completed_at[trace[p].op] = p;
    if (trace[p].kind == DiskRing::TraceEvent::kQueued && trace[p].opcode == IORING_OP_FSYNC)
      ++syncs_by_fd[trace[p].fd];
  }
  int wfd = -1;
  for (auto [fd, n] : syncs_by_fd)
    if (wfd < 0 || n > syncs_by_fd[wfd]) wfd = fd;
  size_t checked = 0;
  for (size_t p = 0; p < trace.size(); ++p) {
    if (trace[p].kind != DiskRing::TraceEvent::kMark || trace[p].fd != -1) continue;
    auto i = static_cast<int32_t>(trace[p].op);
    // Where the write's bytes were in the file.
    size_t wc = trace.size();
    for (size_t q = 0; q < p; ++q)
      if (trace[q].kind == DiskRing::TraceEvent::kMark && trace[q].fd == -2 && trace[q].op == uint64_t(i)) wc = q;
    ASSERT_LT(wc, p) << "write " << i << " acknowledged before its bytes were written";
    bool covered = false;
    for (size_t q = wc + 1; q < p && !covered; ++q)
      if (trace[q].kind == DiskRing::TraceEvent::kQueued && trace[q].opcode == IORING_OP_FSYNC &&
          trace[q].fd == wfd) {
        auto c = completed_at.find(trace[q].op);
        covered = c != completed_at.end() && c->second < p && trace[c->second].res == 0;
      }
    EXPECT_TRUE(covered) << "write " << i
                         << " acknowledged without a sync queued after it completed";
    ++checked;
  }
  EXPECT_EQ(checked, size_t{kWrites});
  auto st = store_->stats();
  EXPECT_LT(st.syncs, st.writes);
}

TEST_F(ChunkStoreAsyncTest, NewChunkFileSyncsItsDirectoryThroughTheRing) {
  std::vector<DiskRing::TraceEvent> trace;
  ring_->set_trace(&trace);
  auto d = pattern(100, 1);
  auto before = store_->stats();
  std::optional<Result<int64_t>> wrote;
  store_->write_async(*ring_, 12, 0, 0, d, {},
                      [&](Result<int64_t> r) { wrote.emplace(std::move(r)); });
  drain(*ring_);
  ASSERT_OK(*wrote);
  EXPECT_EQ(store_->stats().dir_syncs, before.dir_syncs + 1);
  int fsyncs = 0;
  for (const auto& e : trace)
    if (e.kind == DiskRing::TraceEvent::kQueued && e.opcode == IORING_OP_FSYNC) ++fsyncs;
  EXPECT_EQ(fsyncs, 2) << "the file's fdatasync and its directory's fsync";
  // The next write to the same file needs no directory sync.
  wrote.reset();
  store_->write_async(*ring_, 12, 0, 100, d, {},
                      [&](Result<int64_t> r) { wrote.emplace(std::move(r)); });
  drain(*ring_);
  ASSERT_OK(*wrote);
  EXPECT_EQ(store_->stats().dir_syncs, before.dir_syncs + 1);
}

}  // namespace
}  // namespace lanefs::backend

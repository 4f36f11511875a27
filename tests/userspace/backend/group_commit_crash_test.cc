// Group commit under kill -9: a child process runs concurrent writers with
// group commit — chunk writes on two DiskRings (16 in flight each, two-part
// writes), a blocking writer (worker-thread style), and metadata commits from
// three threads — and logs every write it issues and every acknowledgement it
// gets, in order, to an O_APPEND file. The parent kills it with SIGKILL at a
// random point while all of that is in flight, reopens ChunkStore and
// MetaStore on the same directory and checks that every acknowledged write is
// there with its bytes (every record names itself and carries a checksum-like
// pattern) and that nothing was acknowledged before it was issued.
//
// The page cache survives kill -9, so what this checks is the process side of
// durability: an acknowledgement only after the write reached the file (and
// its fdatasync completed: the ordering rule itself is checked on the ring's
// trace in chunk_store_async_test), no acknowledged state lost with the
// process's in-memory group-commit queues, and RocksDB's WAL recovery of
// group-committed batches.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "backend/chunk_store.h"
#include "backend/disk_ring.h"
#include "backend/meta_store.h"
#include "support/test_support.h"

namespace lanefs::backend {
namespace {

constexpr uint32_t kChunk = 1 << 20;
constexpr uint32_t kRecord = 4096;
constexpr uint32_t kPerChunk = kChunk / kRecord;
constexpr uint64_t kMagic = 0x6c616e6566736763ull;  // "lanefsgc"
constexpr int kRings = 2, kMetaThreads = 3, kDepth = 16;
constexpr uint32_t kBlockingThread = kRings;  // thread id of the blocking writer
constexpr uint64_t kMaxRecords = 200000;      // per writer: far more than fits before the kill

enum Kind : uint32_t { kChunkIssued = 1, kChunkAcked = 2, kMetaIssued = 3, kMetaAcked = 4 };
struct LogRec {
  uint32_t kind;
  uint32_t thread;
  uint64_t seq;
};
static_assert(sizeof(LogRec) == 16);

uint64_t ino_of(uint32_t thread) { return 1000 + thread; }

// Record (thread, seq): a header naming it, then bytes derived from it.
void fill_record(uint8_t* p, uint32_t thread, uint64_t seq) {
  std::memcpy(p, &kMagic, 8);
  uint64_t id = (uint64_t{thread} << 48) | seq;
  std::memcpy(p + 8, &id, 8);
  uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;
  for (uint32_t i = 16; i < kRecord; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = static_cast<uint8_t>(x);
  }
}

std::string meta_key(uint32_t thread, uint64_t seq) {
  return "gc-" + std::to_string(thread) + "-" + std::to_string(seq);
}
std::string meta_value(uint32_t thread, uint64_t seq) {
  return std::string(100, static_cast<char>('a' + (seq + thread) % 26)) + std::to_string(seq);
}

void log_rec(int fd, Kind kind, uint32_t thread, uint64_t seq) {
  LogRec r{kind, thread, seq};
  if (::write(fd, &r, sizeof r) != sizeof r) ::_exit(5);
}

// The child: runs until it is killed (or fails: exit code says where).
[[noreturn]] void child_main(const std::string& dir, const std::string& log_path) {
  int log = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log < 0) ::_exit(2);
  auto cs_r = ChunkStore::open(dir + "/store", kChunk);
  auto ms_r = MetaStore::open(dir + "/meta");
  if (!cs_r.ok() || !ms_r.ok()) ::_exit(3);
  ChunkStore& cs = **cs_r;
  MetaStore& ms = **ms_r;
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kRings; ++t)
    threads.emplace_back([&, t] {
      auto ring = DiskRing::create(64);
      if (!ring.ok()) ::_exit(4);
      std::vector<std::vector<uint8_t>> bufs(kDepth, std::vector<uint8_t>(kRecord));
      std::vector<int> free_bufs;
      for (int i = 0; i < kDepth; ++i) free_bufs.push_back(i);
      for (uint64_t seq = 0; seq < kMaxRecords;) {
        while (!free_bufs.empty() && seq < kMaxRecords) {
          int b = free_bufs.back();
          free_bufs.pop_back();
          fill_record(bufs[b].data(), t, seq);
          std::span<const uint8_t> rec(bufs[b]);
          log_rec(log, kChunkIssued, t, seq);
          // Header and body as two parts (the RPC layer's header + payload).
          cs.write_async(**ring, ino_of(t), seq / kPerChunk, (seq % kPerChunk) * kRecord,
                         rec.first(16), rec.subspan(16), [&, b, t, seq](Result<int64_t> r) {
                           if (!r.ok()) ::_exit(6);
                           log_rec(log, kChunkAcked, t, seq);
                           free_bufs.push_back(b);
                         });
          ++seq;
        }
        (*ring)->poll_wait(100);
      }
      ::pause();
    });
  threads.emplace_back([&] {
    std::vector<uint8_t> buf(kRecord);
    for (uint64_t seq = 0; seq < kMaxRecords; ++seq) {
      fill_record(buf.data(), kBlockingThread, seq);
      log_rec(log, kChunkIssued, kBlockingThread, seq);
      if (!cs.write(ino_of(kBlockingThread), seq / kPerChunk, (seq % kPerChunk) * kRecord, buf)
               .ok())
        ::_exit(7);
      log_rec(log, kChunkAcked, kBlockingThread, seq);
    }
    ::pause();
  });
  for (uint32_t t = 0; t < kMetaThreads; ++t)
    threads.emplace_back([&, t] {
      for (uint64_t seq = 0; seq < kMaxRecords; ++seq) {
        log_rec(log, kMetaIssued, t, seq);
        auto lk = ms.lock();
        MetaStore::Batch b;
        b.put_kv(meta_key(t, seq), meta_value(t, seq));
        if (!ms.commit(b, lk).ok()) ::_exit(8);
        log_rec(log, kMetaAcked, t, seq);
      }
      ::pause();
    });
  for (auto& th : threads) th.join();
  ::_exit(9);
}

size_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
}

TEST(GroupCommitCrashTest, NoAcknowledgedWriteIsLostOnKill9) {
  test::TempDir tmp;
  std::string log_path = tmp.path() + "/acks.log";
  std::random_device rd;
  unsigned seed = rd();
  std::mt19937 rng(seed);
  std::printf("seed %u\n", seed);

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child_main(tmp.path(), log_path);

  // Let it get going (at least ~2000 log records), then kill at a random
  // point within the next 400 ms.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (file_size(log_path) < 2000 * sizeof(LogRec)) {
    if (::waitpid(pid, &status, WNOHANG) == pid)
      FAIL() << "child exited early with status " << status;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL() << "child made no progress";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child did not die by SIGKILL (exit code "
      << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")";

  // The log, in order: every acknowledgement follows the issue of the same
  // write.
  std::vector<LogRec> log;
  {
    int fd = ::open(log_path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    LogRec r;
    while (::read(fd, &r, sizeof r) == sizeof r) log.push_back(r);
    ::close(fd);
  }
  std::set<std::pair<uint32_t, uint64_t>> chunk_issued, meta_issued;
  std::vector<std::pair<uint32_t, uint64_t>> chunk_acked, meta_acked;
  for (const auto& r : log) {
    auto key = std::make_pair(r.thread, r.seq);
    switch (r.kind) {
      case kChunkIssued:
        chunk_issued.insert(key);
        break;
      case kMetaIssued:
        meta_issued.insert(key);
        break;
      case kChunkAcked:
        ASSERT_TRUE(chunk_issued.count(key))
            << "chunk write " << r.thread << "/" << r.seq << " acknowledged before issued";
        chunk_acked.push_back(key);
        break;
      case kMetaAcked:
        ASSERT_TRUE(meta_issued.count(key))
            << "commit " << r.thread << "/" << r.seq << " acknowledged before issued";
        meta_acked.push_back(key);
        break;
      default:
        FAIL() << "bad log record kind " << r.kind;
    }
  }
  size_t unacked_chunk = chunk_issued.size() - chunk_acked.size();
  std::printf(
      "killed with %zu chunk writes and %zu commits acknowledged, %zu chunk writes in flight\n",
      chunk_acked.size(), meta_acked.size(), unacked_chunk);
  ASSERT_GT(chunk_acked.size(), 0u);
  ASSERT_GT(meta_acked.size(), 0u);

  auto cs = ChunkStore::open(tmp.path() + "/store", kChunk);
  ASSERT_OK(cs);
  std::vector<uint8_t> want(kRecord), got;
  size_t lost = 0;
  for (auto [t, seq] : chunk_acked) {
    fill_record(want.data(), t, seq);
    ASSERT_OK((*cs)->read(ino_of(t), seq / kPerChunk, (seq % kPerChunk) * kRecord, kRecord, &got));
    if (got != want && ++lost <= 5)
      ADD_FAILURE() << "acknowledged chunk write " << t << "/" << seq << " lost or damaged";
  }
  EXPECT_EQ(lost, 0u);
  auto ms = MetaStore::open(tmp.path() + "/meta");
  ASSERT_OK(ms);
  lost = 0;
  for (auto [t, seq] : meta_acked) {
    auto v = (*ms)->get_kv(meta_key(t, seq));
    if ((!v.ok() || *v != meta_value(t, seq)) && ++lost <= 5)
      ADD_FAILURE() << "acknowledged commit " << t << "/" << seq << " lost";
  }
  EXPECT_EQ(lost, 0u);
}

}  // namespace
}  // namespace lanefs::backend

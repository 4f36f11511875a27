// Backend disk path micro-benchmark (Google Benchmark): 4 KiB chunk writes
// at 16 in flight and metadata commits from 8 threads, the old way next to
// the new one, on each directory given (default /var/tmp and /dev/shm).
//
//   disk_bench [--benchmark_repetitions=3 ...] [-- DIR...]
//   LANEFS_BENCH_DIRS=/var/tmp:/dev/shm disk_bench
//
// Chunk writes (files prefilled, so writes overwrite allocated blocks as a
// laid-out fio file does), each on one chunk file ("1file") and spread over
// 64 chunk files ("64files"):
//   old_pwrite_fdatasync  16 threads, each write: open, pwrite, fdatasync,
//                         close (ChunkStore::write before the fd cache)
//   store_blocking        16 threads, ChunkStore::write (fd cache, blocking
//                         group commit)
//   store_ring            1 thread, 1 DiskRing, 16 write_async in flight
//                         (fd cache, io_uring, group commit per file)
// Metadata commits, 8 threads, each a read-modify-write under lock():
//   meta_sync_each        commit(batch) with the lock held: one WAL sync per
//                         commit (what sync=true under the lock did)
//   meta_group            commit(batch, lock): lock released, syncs shared
// Counters: syncs/write (fdatasync per acknowledged write), syncs/commit
// (SyncWAL per commit), cpu_us/op (CPU of the whole process per operation,
// the kernel's io-wq workers included; Google Benchmark's CPU column counts
// the benchmark threads only).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/chunk_store.h"
#include "backend/disk_ring.h"
#include "backend/meta_store.h"

namespace lanefs::backend {
namespace {

constexpr uint32_t kChunk = 1 << 20;
constexpr uint32_t kIo = 4096;
constexpr int kDepth = 16;
constexpr int kMaxFiles = 64;
constexpr uint64_t kIno = 1;

struct Fixture {
  std::string root;
  std::unique_ptr<ChunkStore> cs;
  std::unique_ptr<MetaStore> ms;
  std::atomic<uint64_t> key{0};
};

std::map<std::string, std::unique_ptr<Fixture>> g_fixtures;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "disk_bench: %s\n", what.c_str());
  std::exit(1);
}

Fixture* fixture_for(const std::string& dir) {
  auto f = std::make_unique<Fixture>();
  std::string tmpl = dir + "/lanefs-disk-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp " + tmpl);
  f->root = tmpl;
  auto cs = ChunkStore::open(f->root + "/store", kChunk);
  if (!cs.ok()) die(cs.error().to_string());
  f->cs = std::move(*cs);
  auto ms = MetaStore::open(f->root + "/meta");
  if (!ms.ok()) die(ms.error().to_string());
  f->ms = std::move(*ms);
  std::vector<uint8_t> fill(kChunk, 0x11);
  for (int i = 0; i < kMaxFiles; ++i)
    if (auto st = f->cs->write(kIno, i, 0, fill); !st.ok()) die(st.error().to_string());
  Fixture* raw = f.get();
  g_fixtures[dir] = std::move(f);
  return raw;
}

std::string old_path(const Fixture& f, uint64_t index) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(kIno));
  return f.root + "/store/chunks/" + hex + "/" + std::to_string(index);
}

// CPU of the whole process (io_uring's io-wq workers included, which the
// benchmark's own CPU column does not see).
double process_cpu_us() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Measures process CPU per operation from thread 0 (all threads start and
// stop together).
class CpuPerOp {
 public:
  explicit CpuPerOp(benchmark::State& st) : st_(st), start_(process_cpu_us()) {}
  void report(uint64_t ops) {
    if (st_.thread_index() == 0 && ops > 0) st_.counters["cpu_us/op"] = (process_cpu_us() - start_) / double(ops);
  }

 private:
  benchmark::State& st_;
  double start_;
};

uint64_t total_ops(benchmark::State& st) { return st.iterations() * uint64_t(st.threads()); }

void report_syncs(benchmark::State& st, const ChunkStore::Stats& before,
                  const ChunkStore::Stats& after) {
  uint64_t writes = after.writes - before.writes;
  if (writes > 0) st.counters["syncs/write"] = double(after.syncs - before.syncs) / double(writes);
}

void old_pwrite_fdatasync(benchmark::State& st, Fixture* f, int files) {
  std::vector<uint8_t> buf(kIo, 0x5a);
  std::mt19937 rng(st.thread_index() + 1);
  CpuPerOp cpu(st);
  for (auto _ : st) {
    std::string path = old_path(*f, rng() % files);
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open " + path);
    if (::pwrite(fd, buf.data(), kIo, off_t(rng() % (kChunk / kIo)) * kIo) != kIo) die("pwrite");
    if (::fdatasync(fd) != 0) die("fdatasync");
    ::close(fd);
  }
  st.SetItemsProcessed(st.iterations());
  cpu.report(total_ops(st));
  if (st.thread_index() == 0) st.counters["syncs/write"] = 1.0;
}

void store_blocking(benchmark::State& st, Fixture* f, int files) {
  std::vector<uint8_t> buf(kIo, 0x6b);
  std::mt19937 rng(st.thread_index() + 1);
  auto before = f->cs->stats();
  CpuPerOp cpu(st);
  for (auto _ : st)
    if (!f->cs->write(kIno, rng() % files, (rng() % (kChunk / kIo)) * kIo, buf).ok()) die("write");
  st.SetItemsProcessed(st.iterations());
  cpu.report(total_ops(st));
  if (st.thread_index() == 0) report_syncs(st, before, f->cs->stats());
}

void store_ring(benchmark::State& st, Fixture* f, int files) {
  auto ring = DiskRing::create(64);
  if (!ring.ok()) die(ring.error().to_string());
  std::vector<uint8_t> buf(kIo, 0x7c);
  std::mt19937 rng(1);
  int inflight = 0;
  bool failed = false;
  auto before = f->cs->stats();
  CpuPerOp cpu(st);
  for (auto _ : st) {
    if (inflight >= kDepth) {
      (*ring)->poll();
      while (inflight >= kDepth) (*ring)->poll_wait(100);
    }
    ++inflight;
    f->cs->write_async(**ring, kIno, rng() % files, (rng() % (kChunk / kIo)) * kIo, buf, {},
                       [&](Result<int64_t> r) {
                         --inflight;
                         failed |= !r.ok();
                       });
  }
  while (inflight > 0) (*ring)->poll_wait(100);
  if (failed) die("write_async failed");
  st.SetItemsProcessed(st.iterations());
  cpu.report(total_ops(st));
  report_syncs(st, before, f->cs->stats());
}

void meta_commit(benchmark::State& st, Fixture* f, bool group) {
  MetaStore& ms = *f->ms;
  auto before = ms.stats();
  CpuPerOp cpu(st);
  for (auto _ : st) {
    auto lk = ms.lock();
    MetaStore::Batch b;
    uint64_t n = 0;
    if (auto c = ms.get_kv("count"); c.ok()) n = std::stoull(*c);
    b.put_kv("count", std::to_string(n + 1));
    b.put_kv("k" + std::to_string(f->key.fetch_add(1)), std::string(200, 'v'));
    Status s = group ? ms.commit(b, lk) : ms.commit(b);  // the latter syncs under the lock
    if (!s.ok()) die(s.error().to_string());
  }
  st.SetItemsProcessed(st.iterations());
  cpu.report(total_ops(st));
  if (st.thread_index() == 0) {
    auto after = ms.stats();
    if (after.commits > before.commits)
      st.counters["syncs/commit"] =
          double(after.wal_syncs - before.wal_syncs) / double(after.commits - before.commits);
  }
}

std::string fs_name(const std::string& dir) {
  if (dir.find("shm") != std::string::npos) return "tmpfs";
  return dir;
}

}  // namespace
}  // namespace lanefs::backend

int main(int argc, char** argv) {
  using namespace lanefs::backend;
  benchmark::Initialize(&argc, argv);
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) != "--") dirs.push_back(argv[i]);
  if (dirs.empty()) {
    const char* env = std::getenv("LANEFS_BENCH_DIRS");
    std::string list = env ? env : "/var/tmp:/dev/shm";
    for (size_t pos = 0; pos <= list.size();) {
      size_t end = list.find(':', pos);
      if (end == std::string::npos) end = list.size();
      if (end > pos) dirs.push_back(list.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  for (const auto& dir : dirs) {
    Fixture* f = fixture_for(dir);
    std::string tag = fs_name(dir);
    for (int files : {1, kMaxFiles}) {
      std::string shape = std::to_string(files) + (files == 1 ? "file" : "files");
      benchmark::RegisterBenchmark(("old_pwrite_fdatasync/" + shape + "/" + tag).c_str(),
                                   old_pwrite_fdatasync, f, files)
          ->Threads(kDepth)
          ->UseRealTime()
          ->MinTime(2.0);
      benchmark::RegisterBenchmark(("store_blocking/" + shape + "/" + tag).c_str(), store_blocking,
                                   f, files)
          ->Threads(kDepth)
          ->UseRealTime()
          ->MinTime(2.0);
      benchmark::RegisterBenchmark(("store_ring/" + shape + "/" + tag).c_str(), store_ring, f,
                                   files)
          ->UseRealTime()
          ->MinTime(2.0);
    }
    benchmark::RegisterBenchmark(("meta_sync_each/" + tag).c_str(), meta_commit, f, false)
        ->Threads(8)
        ->UseRealTime()
        ->MinTime(2.0);
    benchmark::RegisterBenchmark(("meta_group/" + tag).c_str(), meta_commit, f, true)
        ->Threads(8)
        ->UseRealTime()
        ->MinTime(2.0);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& [dir, f] : g_fixtures) {
    std::string root = f->root;
    f.reset();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  return 0;
}
